"""SSH: an OpenSSH-looking server whose logins land in the emulated shell.

Built on asyncssh (the maintained SSH implementation for asyncio; Debian ships
it, so the image needs nothing from PyPI): the transport, key exchange and
authentication state machine are hard to get right by hand, and a scanner
compares them with OpenSSH's. Host keys are generated in memory at start and
never written, so every start shows new fingerprints, as a reinstalled host would.

What is captured: every password and keyboard-interactive attempt (`auth` with
username, password, success), every public key offered (`auth` with key type and
fingerprint, always refused), each shell line or exec command (`command`), URLs
a `wget`/`curl` line names and every forwarding or subsystem request (`request`,
always refused; asyncssh itself refuses `sftp` before we see it). Accepted logins
come from `users` (name -> password or list of passwords), optionally only after
`acceptAfter` failed attempts from the same address. Written against asyncssh 2.10
(Debian bookworm); also runs on 2.2x.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import asyncssh

from .. import core, events, shell

PORTS = [(22, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
    "hostname": "",
    "users": {"root": ["123456", "password", "toor"], "admin": ["admin", "admin123"]},
    "acceptAfter": 0,
    "hostKeys": ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"],
    "banner": "",
    "filesRoot": "/",
}
MAX_AUTH_ATTEMPTS = 6
KEY_TYPES = frozenset({"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-rsa"})


# ---------------------------------------------------------------- pure decisions

def software_version(config: dict[str, Any]) -> str:
    """The part of the identification string after `SSH-2.0-` (what asyncssh wants)."""
    text = str(config.get("version") or DEFAULTS["version"]).strip()
    for prefix in ("SSH-2.0-", "SSH-1.99-"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = "".join(c for c in text if 32 < ord(c) < 127 or c == " ")[:200]
    return text or "OpenSSH_9.2p1"


def scp_refusal(command: str) -> str | None:
    """The answer to an `scp -t`/`scp -f` exec: a protocol-level error, nothing stored."""
    parts = command.split()
    if parts and parts[0] == "scp" and any(p in ("-t", "-f") for p in parts[1:]):
        target = parts[-1] if len(parts) > 2 else "."
        return f"\x01scp: {target}: Permission denied\n"
    return None


# ---------------------------------------------------------------- the server edge

class State:
    """Process-wide: config, the file tree, the failure table and the connection count."""

    def __init__(self, ctx: core.Context) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.persona = shell.persona(ctx.config)
        self.tree = shell.TreeCache(self.persona, str(ctx.config.get("filesRoot") or "/"))
        self.failures = shell.Failures()
        self.active = 0


class Server(asyncssh.SSHServer):
    """One connection: its peer, the username being tried and how many attempts it made."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.peer = core.Peer("", 0, 22)
        self.conn: asyncssh.SSHServerConnection | None = None
        self.user = ""
        self.attempts = 0
        self.counted = False

    # -- connection

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        ip, port = (conn.get_extra_info("peername") or ("", 0))[:2]
        self.peer = core.Peer(str(ip), int(port), 22)
        if self.state.active >= self.state.ctx.max_connections:
            asyncio.get_running_loop().call_soon(conn.abort)
            return
        self.state.active += 1
        self.counted = True
        self.state.ctx.emit(events.CONNECT, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted:
            self.counted = False
            self.state.active -= 1
            self.state.ctx.emit(events.DISCONNECT, self.peer)

    def client(self) -> str | None:
        if self.conn is None:
            return None
        version = self.conn.get_extra_info("client_version")
        return str(version) if version else None

    # -- authentication

    def begin_auth(self, username: str) -> bool:
        self.user = username
        banner = str(self.state.config.get("banner") or "")
        if banner and self.conn is not None:
            self.conn.send_auth_banner(banner.rstrip("\n")[:2048] + "\n")
        return True

    def password_auth_supported(self) -> bool:
        return True

    def kbdint_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def _check(self, username: str, password: str, mechanism: str) -> bool:
        self.attempts += 1
        ok = self.attempts <= MAX_AUTH_ATTEMPTS and shell.password_ok(
            self.state.config, username, password, self.state.failures.get(self.peer.ip))
        if not ok:
            self.state.failures.add(self.peer.ip)
        self.user = username
        self.state.ctx.emit(events.AUTH, self.peer, "login attempt", username=username,
                            password=password, success=str(ok).lower(), mechanism=mechanism,
                            client=self.client())
        if self.attempts >= MAX_AUTH_ATTEMPTS and not ok and self.conn is not None:
            asyncio.get_running_loop().call_soon(self.conn.abort)
        return ok

    async def validate_password(self, username: str, password: str) -> bool:
        ok = self._check(username, password, "password")
        if not ok:
            await asyncio.sleep(2.0)  # sshd's PAM delay after a failure
        return ok

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str
                             ) -> tuple[str, str, str, list[tuple[str, bool]]]:
        return "", "", "", [("Password: ", False)]

    async def validate_kbdint_response(self, username: str, responses: Sequence[str]
                                       ) -> bool | tuple[str, str, str, list[tuple[str, bool]]]:
        ok = self._check(username, responses[0] if responses else "", "keyboard-interactive")
        if not ok:
            await asyncio.sleep(2.0)
        return ok

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        try:
            algorithm = key.get_algorithm()
            fingerprint = key.get_fingerprint("sha256")
        except (ValueError, asyncssh.Error):
            algorithm, fingerprint = "unknown", ""
        self.state.ctx.emit(events.AUTH, self.peer, "public key offered", username=username,
                            key_type=algorithm, fingerprint=fingerprint, success="false",
                            mechanism="publickey", client=self.client())
        return False

    # -- forwarding: every kind refused, every request reported

    def _refuse(self, method: str, **fields: object) -> bool:
        self.state.ctx.emit(events.REQUEST, self.peer, f"{method} refused", method=method,
                            username=self.user, **fields)
        return False

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> bool:
        return self._refuse("direct-tcpip", dest_host=dest_host, dest_port=dest_port)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return self._refuse("tcpip-forward", listen_host=listen_host, listen_port=listen_port)

    def unix_connection_requested(self, dest_path: str) -> bool:
        return self._refuse("direct-streamlocal", path=dest_path)

    def unix_server_requested(self, listen_path: str) -> bool:
        return self._refuse("streamlocal-forward", path=listen_path)


def _last_login_from(local_ip: str) -> str:
    parts = local_ip.split(".")
    return ".".join([*parts[:3], "4"]) if len(parts) == 4 else "10.0.0.4"


async def _readline(process: asyncssh.SSHServerProcess[str], timeout: float) -> str | None:
    """One line, None at EOF/timeout; window-size changes and ^C give an empty line."""
    try:
        line = await asyncio.wait_for(process.stdin.readline(), timeout)
    except (asyncssh.TerminalSizeChanged, asyncssh.SignalReceived):
        return ""
    except asyncssh.BreakReceived:
        process.stdout.write("^C\n")
        return ""
    except (TimeoutError, asyncssh.Error, ConnectionError):
        return None
    if not line:
        return None
    return line.rstrip("\r\n")[:core.MAX_LINE]


def _report(state: State, server: Server, sh: shell.Shell, line: str, result: shell.Result,
            mode: str) -> None:
    state.ctx.emit(events.COMMAND, server.peer, "command", command=line, username=sh.user,
                   mode=mode)
    for url in result.urls[:8]:
        state.ctx.emit(events.REQUEST, server.peer, "download attempt", method="GET", url=url,
                       command=line)


async def _session(state: State, process: asyncssh.SSHServerProcess[str]) -> None:
    conn = process.get_extra_info("connection")
    server = conn.get_owner() if conn is not None else None
    if not isinstance(server, Server):
        process.exit(1)
        return
    local_ip = str((conn.get_extra_info("sockname") or ("10.0.0.15",))[0])
    person = dataclasses.replace(state.persona, ip=local_ip)
    user = server.user or "root"
    interactive = process.command is None and process.subsystem is None
    sh = shell.Shell(state.tree.get(), person, user, interactive=interactive,
                     src_ip=server.peer.ip)
    idle = state.ctx.idle_seconds
    if process.subsystem is not None:
        state.ctx.emit(events.REQUEST, server.peer, "subsystem refused", method="subsystem",
                       path=process.subsystem, username=user)
        process.stderr.write("subsystem request failed on channel 0\n")
        process.exit(1)
        return
    if process.command is not None:
        cmdline = process.command[:core.MAX_LINE]
        refusal = scp_refusal(cmdline)
        if refusal is not None:
            state.ctx.emit(events.COMMAND, server.peer, "command", command=cmdline, username=user,
                           mode="exec")
            process.stdout.write(refusal)
            process.exit(1)
            return
        result = sh.run(cmdline)
        _report(state, server, sh, cmdline, result, "exec")
        process.stdout.write(result.output)
        process.exit(sh.status)
        return
    pty = process.get_terminal_type() is not None
    process.stdout.write(sh.login_banner(_last_login_from(local_ip)))
    prompt: str = sh.prompt()
    for _ in range(10000):
        process.stdout.write(prompt)
        line = await _readline(process, idle)
        if line is None:
            if pty:
                process.stdout.write("logout\n")
            break
        if sh.pending_password():
            state.ctx.emit(events.AUTH, server.peer, "sudo attempt", username=sh.user,
                           password=line, success="false", mechanism="sudo")
            if pty:
                process.stdout.write("\n")
            result = sh.run(line)
        else:
            result = sh.run(line)
            if line.strip():
                _report(state, server, sh, line, result, "shell")
        process.stdout.write(result.output)
        if result.exit:
            process.stdout.write("logout\n")
            break
        _set_echo(process, not result.password_prompt)
        prompt = str(result.password_prompt or sh.prompt())
    process.exit(0)


def _set_echo(process: asyncssh.SSHServerProcess[str], echo: bool) -> None:
    setter = getattr(process.channel, "set_echo", None)
    if setter is not None:
        try:
            setter(echo)
        except (AttributeError, asyncssh.Error):
            pass


def _host_keys(config: dict[str, Any]) -> list[asyncssh.SSHKey]:
    keys = []
    for name in config.get("hostKeys") or DEFAULTS["hostKeys"]:
        if name not in KEY_TYPES:
            continue
        if name == "ssh-rsa":
            keys.append(asyncssh.generate_private_key("ssh-rsa", key_size=3072))
        else:
            keys.append(asyncssh.generate_private_key(name))
    return keys or [asyncssh.generate_private_key("ssh-ed25519")]


def _release_startup_memory() -> None:
    """Hand the heap freed after imports and key generation back to the kernel (glibc only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


async def serve(ctx: core.Context) -> None:
    logging.getLogger("asyncssh").setLevel(logging.CRITICAL)
    state = State(ctx)
    keys = await asyncio.get_running_loop().run_in_executor(None, _host_keys, ctx.config)

    async def process(proc: asyncssh.SSHServerProcess[str]) -> None:
        try:
            await asyncio.wait_for(_session(state, proc), ctx.session_seconds)
        except (TimeoutError, asyncssh.Error, ConnectionError, OSError):
            proc.exit(0)

    await asyncssh.create_server(
        lambda: Server(state), ctx.host, ctx.port(22),
        server_host_keys=keys, server_version=software_version(ctx.config),
        process_factory=process, login_timeout=min(ctx.idle_seconds, 120.0),
        allow_scp=False, sftp_factory=None, agent_forwarding=False, x11_forwarding=False,
        encoding="utf-8", errors="replace", line_editor=True, line_history=0,
        max_line_length=core.MAX_LINE, reuse_address=True, keepalive_interval=0,
    )
    _release_startup_memory()
