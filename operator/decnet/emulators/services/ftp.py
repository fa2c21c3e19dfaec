"""FTP: a vsftpd 3.0.3 as Debian ships it, over the emulated shell's file tree.

Written by hand: FTP is a line protocol with a handful of verbs a client or a
scanner uses, and vsftpd's exact reply texts are what identify it. The control
channel captures USER/PASS (`auth`) and every command (`command`); the data
channel is passive only (PASV/EPSV open a listener on the control connection's
own local address, one at a time, with a timeout) and never connects out, so
PORT/EPRT are refused as a vsftpd with port_promiscuous=NO refuses a bounce.
LIST/NLST/RETR show the same tree as the shell, lure files included (anonymous
users are confined to `anonymousRoot`); STOR/APPE read the upload, hash it and
drop it (`data` event with size and sha256): nothing is ever written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import posixpath
import time
from typing import Any

from .. import core, events, shell

PORTS = [(21, "tcp")]
DEFAULTS: dict[str, Any] = {
    "banner": "(vsFTPd 3.0.3)",
    "anonymous": False,
    "anonymousRoot": "/srv/ftp",
    "hostname": "",
    "users": {"admin": ["admin", "123456"], "ftp": ["ftp"]},
    "acceptAfter": 0,
    "maxUpload": 64 * 1024 * 1024,
    "filesRoot": "/",
}
DATA_TIMEOUT = 30.0
MAX_COMMANDS = 2000
FEATURES = ["EPRT", "EPSV", "MDTM", "PASV", "REST STREAM", "SIZE", "TVFS", "UTF8"]


# ---------------------------------------------------------------- pure protocol

def parse_command(line: bytes) -> tuple[str, str]:
    """(VERB, argument) of one control line; the verb upper-cased and bounded."""
    text = line.decode("utf-8", "replace").strip("\r\n")
    verb, _, arg = text.partition(" ")
    return verb.upper()[:16], arg[:1024]


def pasv_reply(ip: str, port: int) -> str:
    parts = ip.split(".") if ip.count(".") == 3 else ["127", "0", "0", "1"]
    return f"227 Entering Passive Mode ({','.join(parts)},{port >> 8},{port & 255})."


def epsv_reply(port: int) -> str:
    return f"229 Entering Extended Passive Mode (|||{port}|)"


def feat_reply() -> str:
    return "211-Features:\r\n" + "".join(f" {f}\r\n" for f in FEATURES) + "211 End"


def resolve(cwd: str, arg: str, root: str) -> str:
    """The tree path for a client path, confined below `root` (a chroot)."""
    inside = posixpath.normpath(posixpath.join(cwd, arg or "."))
    if not inside.startswith("/"):
        inside = "/" + inside
    inside = posixpath.normpath("/" + inside.lstrip("/"))
    return posixpath.normpath(root.rstrip("/") + inside) if root != "/" else inside


def visible(path: str, root: str) -> str:
    """A tree path as the client sees it (relative to its chroot)."""
    if root == "/":
        return path
    return "/" + path[len(root.rstrip("/")):].lstrip("/")


def _ids(persona: shell.Persona, owner: str) -> str:
    if owner in persona.users:
        return str(1000 + persona.users.index(owner))
    return "0" if owner in ("root", "") else "65534"


def list_lines(fs: shell.FileSystem, persona: shell.Persona, path: str, names_only: bool,
               now: float) -> list[str]:
    """vsftpd's LIST (numeric ids, hidden dotfiles) or NLST for a directory or a file."""
    real, node = fs.resolve(path)
    if node is None:
        return []
    if node.kind != "d":
        entries = [(posixpath.basename(real), node)]
    else:
        entries = []
        for name in fs.listdir(real):
            child = fs.nodes.get(posixpath.join(real, name))
            if child is not None and not name.startswith("."):
                entries.append((name, child))
    if names_only:
        return [name for name, _ in entries]
    lines = []
    for name, child in entries:
        when = dt.datetime.fromtimestamp(child.mtime, dt.UTC)
        stamp = when.strftime("%b %d %H:%M") if abs(now - child.mtime) < 180 * 86400 \
            else when.strftime("%b %d  %Y")
        uid = _ids(persona, child.owner)
        mode = shell._mode_string(child)
        lines.append(f"{mode}    1 {uid:<8} {uid:<8} {child.length:>12} {stamp} {name}")
    return lines


def file_bytes(node: shell.Node) -> bytes:
    if node.size is not None and not node.content:
        return b"\x7fELF\x02\x01\x01" + b"\x00" * (min(node.size, 65536) - 7)
    return node.content


# ---------------------------------------------------------------- the session

@dataclasses.dataclass
class Passive:
    """One passive-mode listener and the connection a client makes to it."""

    server: asyncio.Server
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]

    def close(self) -> None:
        self.server.close()
        if not self.accepted.done():
            self.accepted.cancel()


class Session:
    def __init__(self, ctx: core.Context, tree: shell.TreeCache, failures: shell.Failures,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: core.Peer) -> None:
        self.ctx, self.tree, self.failures = ctx, tree, failures
        self.reader, self.writer, self.peer = reader, writer, peer
        self.config = ctx.config
        self.user: str | None = None
        self.pending_user = ""
        self.root = "/"
        self.cwd = "/"
        self.binary = False
        self.passive: Passive | None = None
        self.local_ip = str((writer.get_extra_info("sockname") or ("127.0.0.1",))[0])

    async def reply(self, text: str) -> None:
        await core.send(self.writer, text + "\r\n")

    async def run(self) -> None:
        await self.reply(f"220 {self.config['banner']}")
        try:
            for _ in range(MAX_COMMANDS):
                line = await core.read_line(self.reader, self.ctx.idle_seconds, 1024)
                if line is None:
                    await self.reply("421 Timeout.")
                    return
                verb, arg = parse_command(line)
                if not verb:
                    continue
                if verb != "PASS":
                    self.ctx.emit(events.COMMAND, self.peer, "command",
                                  command=f"{verb} {arg}".strip(), username=self.user)
                if not await self.dispatch(verb, arg):
                    return
        finally:
            if self.passive is not None:
                self.passive.close()

    async def dispatch(self, verb: str, arg: str) -> bool:
        if verb == "QUIT":
            await self.reply("221 Goodbye.")
            return False
        if verb == "USER":
            if self.user is not None:
                await self.reply("530 Can't change to another user.")
            else:
                self.pending_user = arg[:256]
                await self.reply("331 Please specify the password.")
            return True
        if verb == "PASS":
            await self.login(arg)
            return True
        if verb in ("FEAT",):
            await self.reply(feat_reply())
            return True
        if verb == "SYST" and self.user is not None:
            await self.reply("215 UNIX Type: L8")
            return True
        if verb == "OPTS":
            await self.reply("200 Always in UTF8 mode." if arg.upper().startswith("UTF8")
                             else "501 Option not understood.")
            return True
        if verb == "NOOP":
            await self.reply("200 NOOP ok.")
            return True
        if verb == "HELP":
            await self.reply("214-The following commands are recognized.\r\n ABOR ACCT ALLO "
                             "APPE CDUP CWD DELE EPRT EPSV FEAT HELP LIST MDTM MKD\r\n MODE "
                             "NLST NOOP OPTS PASS PASV PORT PWD QUIT REIN REST RETR RMD RNFR"
                             "\r\n RNTO SITE SIZE SMNT STAT STOR STOU STRU SYST TYPE USER XCUP"
                             " XCWD XMKD\r\n XPWD XRMD\r\n214 Help OK.")
            return True
        if self.user is None:
            await self.reply("530 Please login with USER and PASS.")
            return True
        return await self.command(verb, arg)

    async def login(self, password: str) -> None:
        name = self.pending_user
        if not name:
            await self.reply("503 Login with USER first.")
            return
        if self.user is not None:
            await self.reply("230 Already logged in.")
            return
        anonymous = name.lower() in ("anonymous", "ftp")
        if anonymous:
            ok = bool(self.config.get("anonymous"))
        else:
            ok = shell.password_ok(self.config, name, password,
                                   self.failures.get(self.peer.ip))
        if not ok:
            self.failures.add(self.peer.ip)
        self.ctx.emit(events.AUTH, self.peer, "login attempt", username=name, password=password,
                      success=str(ok).lower(), mechanism="anonymous" if anonymous else "password")
        self.pending_user = ""
        if not ok:
            await asyncio.sleep(1.0)
            await self.reply("530 Login incorrect.")
            return
        self.user = name
        if anonymous:
            self.root = str(self.config.get("anonymousRoot") or "/srv/ftp")
            self.cwd = "/"
        else:
            self.root, self.cwd = "/", shell.home_of(name)
        await self.reply("230 Login successful.")

    def path(self, arg: str) -> str:
        return resolve(self.cwd, arg, self.root)

    async def command(self, verb: str, arg: str) -> bool:
        fs = self.tree.get()
        if verb in ("PWD", "XPWD"):
            await self.reply(f'257 "{self.cwd}" is the current directory')
        elif verb in ("CWD", "XCWD", "CDUP", "XCUP"):
            target = ".." if verb in ("CDUP", "XCUP") else arg
            real, node = fs.resolve(self.path(target))
            if node is None or node.kind != "d":
                await self.reply("550 Failed to change directory.")
            else:
                self.cwd = visible(posixpath.normpath(self.path(target)), self.root)
                await self.reply("250 Directory successfully changed.")
        elif verb == "TYPE":
            self.binary = arg.upper().startswith("I") or arg.upper().startswith("L")
            await self.reply("200 Switching to Binary mode." if self.binary
                             else "200 Switching to ASCII mode.")
        elif verb in ("MODE", "STRU"):
            await self.reply("200 Mode set to S." if verb == "MODE" else
                             "200 Structure set to F.")
        elif verb in ("PASV", "EPSV"):
            await self.open_passive(verb)
        elif verb in ("PORT", "EPRT"):
            self.ctx.emit(events.REQUEST, self.peer, "active mode refused", method=verb,
                          path=arg)
            await self.reply("500 Illegal PORT command.")
        elif verb in ("LIST", "NLST"):
            target = next((a for a in arg.split() if not a.startswith("-")), "")
            lines = list_lines(fs, self.tree.persona, self.path(target), verb == "NLST",
                               time.time())
            await self.transfer("150 Here comes the directory listing.",
                                "".join(ln + "\r\n" for ln in lines).encode(),
                                "226 Directory send OK.")
        elif verb == "RETR":
            await self.retrieve(fs, arg)
        elif verb in ("STOR", "APPE", "STOU"):
            await self.store(verb, arg)
        elif verb == "SIZE":
            _, node = fs.resolve(self.path(arg))
            await self.reply(f"213 {node.length}" if node is not None and node.kind == "f"
                             else "550 Could not get file size.")
        elif verb == "MDTM":
            _, node = fs.resolve(self.path(arg))
            if node is None or node.kind != "f":
                await self.reply("550 Could not get file modification time.")
            else:
                stamp = dt.datetime.fromtimestamp(node.mtime, dt.UTC).strftime("%Y%m%d%H%M%S")
                await self.reply(f"213 {stamp}")
        elif verb in ("REST",):
            await self.reply(f"350 Restart position accepted ({arg[:20]}).")
        elif verb == "ABOR":
            await self.reply("225 No transfer to ABOR.")
        elif verb in ("DELE", "MKD", "XMKD", "RMD", "XRMD", "RNFR", "RNTO", "SITE", "STAT"):
            await self.reply("550 Permission denied.")
        else:
            await self.reply("500 Unknown command.")
        return True

    async def open_passive(self, verb: str) -> None:
        if self.passive is not None:
            self.passive.close()
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = \
            loop.create_future()

        async def on_data(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            if accepted.done():
                w.close()
                return
            accepted.set_result((r, w))

        server = await asyncio.start_server(on_data, self.local_ip, 0)
        port = int(server.sockets[0].getsockname()[1])
        self.passive = Passive(server, accepted)
        await self.reply(pasv_reply(self.local_ip, port) if verb == "PASV" else epsv_reply(port))

    async def data_connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        passive, self.passive = self.passive, None
        if passive is None:
            await self.reply("425 Use PORT or PASV first.")
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(passive.accepted), DATA_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError):
            await self.reply("425 Failed to establish connection.")
            return None
        finally:
            passive.server.close()

    async def transfer(self, start: str, payload: bytes, done: str) -> None:
        conn = await self.data_connection()
        if conn is None:
            return
        _, w = conn
        await self.reply(start)
        try:
            await core.send(w, payload)
        finally:
            await core.close(w)
        await self.reply(done)

    async def retrieve(self, fs: shell.FileSystem, arg: str) -> None:
        path = self.path(arg)
        real, node = fs.resolve(path)
        self.ctx.emit(events.REQUEST, self.peer, "download", method="RETR",
                      path=visible(path, self.root), username=self.user)
        if node is None or node.kind != "f" or (
                self.user not in ("root",) and real == "/etc/shadow"):
            await self.reply("550 Failed to open file.")
            return
        data = file_bytes(node)
        mode = "BINARY" if self.binary else "ASCII"
        await self.transfer(f"150 Opening {mode} mode data connection for "
                            f"{posixpath.basename(real)} ({len(data)} bytes).", data,
                            "226 Transfer complete.")

    async def store(self, verb: str, arg: str) -> None:
        conn = await self.data_connection()
        if conn is None:
            return
        r, w = conn
        await self.reply("150 Ok to send data.")
        digest, size, hashed = hashlib.sha256(), 0, 0
        limit = int(self.config.get("maxUpload") or 0)
        try:
            while True:
                chunk = await core.read_some(r, 65536, self.ctx.idle_seconds)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    break
                digest.update(chunk)
                hashed = size
        finally:
            await core.close(w)
        path = visible(self.path(arg or "stou.1"), self.root)
        truncated = size > limit
        self.ctx.emit(events.DATA, self.peer, "upload discarded", method=verb, path=path,
                      size=hashed, sha256=digest.hexdigest(),
                      truncated=str(truncated).lower(), username=self.user)
        await self.reply("552 Requested file action aborted." if truncated
                         else "226 Transfer complete.")


async def serve(ctx: core.Context) -> None:
    persona = shell.persona(ctx.config)
    tree = shell.TreeCache(persona, str(ctx.config.get("filesRoot") or "/"))
    failures = shell.Failures()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await Session(ctx, tree, failures, r, w, p).run()

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
