"""Telnet: a Linux telnetd and login(1) in front of the emulated shell.

Written by hand: telnet is a byte stream with in-band option negotiation (IAC
sequences) and nothing else, and the exact first bytes are what scanners
fingerprint. With `style: debian` the server opens like netkit/inetutils telnetd
(DO TERMINAL-TYPE, TSPEED, XDISPLOC, NEW-ENVIRON, then waits for the client), then
takes over echo (WILL ECHO, WILL SGA) and prints the issue text and `login:`. With
`style: busybox` it opens like an embedded device's BusyBox telnetd instead.

Every login/password pair is an `auth` event; after a login the client gets the
emulated shell, where every line is a `command` event. Client options are
answered by silence and stripped: nothing the client negotiates changes state.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from .. import core, events, shell

PORTS = [(23, "tcp")]
DEFAULTS: dict[str, Any] = {
    "style": "debian",
    "issue": "Debian GNU/Linux 12",
    "hostname": "",
    "users": {"root": ["123456", "root"], "admin": ["admin", "1234"]},
    "acceptAfter": 0,
    "maxAttempts": 3,
    "filesRoot": "/",
}

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SGA, TTYPE, NAWS, TSPEED, LFLOW, XDISPLOC, NEW_ENVIRON = 1, 3, 24, 31, 32, 33, 35, 39
MAX_SUBNEGOTIATION = 512
MAX_TELNET_LINE = 1024

DEBIAN_OPEN = bytes([IAC, DO, TTYPE, IAC, DO, TSPEED, IAC, DO, XDISPLOC, IAC, DO, NEW_ENVIRON])
DEBIAN_ECHO = bytes([IAC, WILL, ECHO, IAC, WILL, SGA, IAC, DO, NAWS])
BUSYBOX_OPEN = bytes([IAC, DO, ECHO, IAC, DO, NAWS, IAC, DO, LFLOW, IAC, WILL, ECHO,
                      IAC, WILL, SGA])


class Decoder:
    """Strips telnet commands from a byte stream; keeps data bytes (IAC IAC -> 0xff).

    Stateful across reads (a sequence may be split between two packets) and bounded:
    an endless subnegotiation is cut at MAX_SUBNEGOTIATION bytes.
    """

    def __init__(self) -> None:
        self.state = "data"
        self.sub_len = 0
        self.options: list[tuple[int, int]] = []  # (verb, option) the client sent

    def feed(self, chunk: bytes) -> bytes:
        out = bytearray()
        for b in chunk:
            if self.state == "data":
                if b == IAC:
                    self.state = "iac"
                else:
                    out.append(b)
            elif self.state == "iac":
                if b == IAC:
                    out.append(IAC)
                    self.state = "data"
                elif b in (DO, DONT, WILL, WONT):
                    self.state = f"verb{b}"
                elif b == SB:
                    self.state, self.sub_len = "sb", 0
                else:
                    self.state = "data"
            elif self.state.startswith("verb"):
                if len(self.options) < 64:
                    self.options.append((int(self.state[4:]), b))
                self.state = "data"
            elif self.state == "sb":
                self.sub_len += 1
                if b == IAC:
                    self.state = "sb-iac"
                elif self.sub_len > MAX_SUBNEGOTIATION:
                    self.state = "data"
            elif self.state == "sb-iac":
                self.state = "data" if b == SE else "sb"
        return bytes(out)


@dataclasses.dataclass
class LineEditor:
    """A character-mode line discipline: echo, backspace, ^C, ^D, CR/LF/NUL endings."""

    echo: bool = True
    buffer: bytearray = dataclasses.field(default_factory=bytearray)
    last_cr: bool = False

    def feed(self, data: bytes) -> tuple[bytes, list[str | None]]:
        """(bytes to echo, finished lines); None in lines means EOF (^D on an empty line)."""
        echo = bytearray()
        lines: list[str | None] = []
        for b in data:
            if self.last_cr and b in (0, 10):
                self.last_cr = False
                continue
            self.last_cr = b == 13
            if b in (13, 10):
                lines.append(self.buffer.decode("utf-8", "replace"))
                self.buffer.clear()
                echo += b"\r\n"
            elif b in (8, 127):
                if self.buffer:
                    self.buffer.pop()
                    if self.echo:
                        echo += b"\b \b"
            elif b == 3:
                self.buffer.clear()
                echo += b"^C\r\n"
                lines.append("")
            elif b == 4:
                if not self.buffer:
                    lines.append(None)
            elif b == 21:  # ^U
                if self.echo:
                    echo += b"\b \b" * len(self.buffer)
                self.buffer.clear()
            elif b >= 32 or b == 9:
                if len(self.buffer) < MAX_TELNET_LINE:
                    self.buffer.append(b)
                    if self.echo:
                        echo.append(b)
        return bytes(echo), lines


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace")


def opening(config: dict[str, Any]) -> bytes:
    """The first bytes the server sends (what a scanner fingerprints)."""
    return BUSYBOX_OPEN if config.get("style") == "busybox" else DEBIAN_OPEN


def login_prompt(config: dict[str, Any], hostname: str, first: bool) -> bytes:
    issue = str(config.get("issue") or "")
    head = ""
    if first and issue and config.get("style") != "busybox":
        head = "\n" + issue.rstrip("\n") + "\n"
    if first and config.get("style") == "busybox":
        head = "\n"
    return crlf(f"{head}{hostname} login: ")


class Session:
    """One connection: telnet decoding, line editing and the login/shell conversation."""

    def __init__(self, ctx: core.Context, fs: shell.FileSystem, persona: shell.Persona,
                 failures: shell.Failures, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, peer: core.Peer) -> None:
        self.ctx, self.fs, self.persona, self.failures = ctx, fs, persona, failures
        self.reader, self.writer, self.peer = reader, writer, peer
        self.decoder = Decoder()
        self.editor = LineEditor()
        self.pending: list[str | None] = []

    async def readline(self) -> str | None:
        while not self.pending:
            chunk = await core.read_some(self.reader, 4096, self.ctx.idle_seconds)
            if not chunk:
                return None
            echo, lines = self.editor.feed(self.decoder.feed(chunk))
            if echo:
                await core.send(self.writer, echo)
            self.pending.extend(lines[:64])
        return self.pending.pop(0)

    async def run(self) -> None:
        config = self.ctx.config
        greeting = opening(config)
        if config.get("style") != "busybox":
            await core.send(self.writer, greeting)
            first = await core.read_some(self.reader, 4096, 10.0)
            self.decoder.feed(first)
            await core.send(self.writer, DEBIAN_ECHO)
            greeting = b""
        # BusyBox's options and first prompt leave in one segment: scanners fingerprint
        # the two together, and a prompt that trails the options under load reads as
        # a bare "telnet" to nmap -sV.
        user = await self.login(greeting)
        if user is not None:
            await self.shell(user)

    async def login(self, greeting: bytes = b"") -> str | None:
        config = self.ctx.config
        tries = max(1, min(int(config.get("maxAttempts") or 3), 10))
        for attempt in range(tries):
            head = greeting if attempt == 0 else b""
            await core.send(self.writer, head + login_prompt(config, self.persona.hostname,
                                                             attempt == 0))
            name = await self.readline()
            if name is None:
                return None
            name = name.strip()[:256]
            if not name:
                continue
            await core.send(self.writer, b"Password: ")
            self.editor.echo = False
            password = await self.readline()
            self.editor.echo = True
            if password is None:
                return None
            ok = shell.password_ok(config, name, password, self.failures.get(self.peer.ip))
            if not ok:
                self.failures.add(self.peer.ip)
            self.ctx.emit(events.AUTH, self.peer, "login attempt", username=name,
                          password=password, success=str(ok).lower(), mechanism="login")
            if ok:
                return name
            await asyncio.sleep(2.0)
            await core.send(self.writer, b"\r\nLogin incorrect\r\n")
        return None

    async def shell(self, user: str) -> None:
        local = self.writer.get_extra_info("sockname") or ("10.0.0.15", 0)
        persona = dataclasses.replace(self.persona, ip=str(local[0]))
        sh = shell.Shell(self.fs, persona, user, interactive=True, src_ip=self.peer.ip,
                         via="telnet")
        banner = sh.login_banner()
        await core.send(self.writer, crlf(banner))
        prompt = sh.prompt()
        for _ in range(10000):
            await core.send(self.writer, crlf(prompt))
            line = await self.readline()
            if line is None:
                return
            if sh.pending_password():
                self.ctx.emit(events.AUTH, self.peer, "sudo attempt", username=user,
                              password=line, success="false", mechanism="sudo")
                result = sh.run(line)
                await core.send(self.writer, b"\r\n")
            else:
                result = sh.run(line)
                if line.strip():
                    self.ctx.emit(events.COMMAND, self.peer, "command", command=line,
                                  username=user)
                    for url in result.urls[:8]:
                        self.ctx.emit(events.REQUEST, self.peer, "download attempt",
                                      method="GET", url=url, command=line)
            await core.send(self.writer, crlf(result.output))
            if result.exit:
                await core.send(self.writer, b"logout\r\n")
                return
            self.editor.echo = not result.password_prompt
            prompt = result.password_prompt or sh.prompt()


async def serve(ctx: core.Context) -> None:
    persona = shell.persona(ctx.config)
    if ctx.config.get("style") == "busybox":
        persona = dataclasses.replace(persona, busybox=True, kernel="4.9.37",
                                      kernel_version="#1 SMP Tue Jan 9 11:56:31 CST 2018",
                                      arch="armv7l")
    tree = shell.TreeCache(persona, str(ctx.config.get("filesRoot") or "/"))
    failures = shell.Failures()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await Session(ctx, tree.get(), persona, failures, r, w, p).run()

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
