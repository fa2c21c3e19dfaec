"""SMTP as Postfix answers it: EHLO, AUTH PLAIN/LOGIN, the envelope and DATA, relay policy.

Written by hand rather than with aiosmtpd (which Debian ships): the subset a scanner,
a spammer or a credential sprayer uses is a dozen commands, and one hand-written state
machine costs less memory per container than a framework plus its API to track. The
same code serves `smtp` (a mail host for its own domains: mail to anyone else is refused
with Postfix's "Relay access denied") and `smtp-relay` (an open relay that queues
everything), so the relay module only changes the defaults.

Every command line is a `command` event; SASL credentials are one `auth` event; every
accepted message is one `data` event (envelope, subject, size, sha256). Message bodies
are measured and hashed while they stream past, never kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from .. import core, events, mailproto

PORTS = [(25, "tcp")]
DEFAULTS: dict[str, Any] = {
    "hostname": "mail.example.com",
    "banner": "",  # default: "<hostname> ESMTP Postfix (Debian/GNU)"
    "domains": ["example.com"],
    "mailboxes": ["root", "postmaster", "admin", "info", "webmaster"],
    "users": {},  # SASL username -> password that is accepted
    "acceptAllAuth": False,
    "relay": False,
    "maxMessageSize": 10240000,
    "authMechanisms": "PLAIN LOGIN",
    "maxErrors": 20,
}
MAX_RCPTS = 100
HEAD_KEEP = 16384  # bytes of a message kept (briefly) to read its Subject header


Note = mailproto.Note
Step = mailproto.Step


@dataclasses.dataclass
class Session:
    """One SMTP conversation: pure, fed line by line, so every branch is unit-tested."""

    config: dict[str, Any]
    helo: str = ""
    esmtp: bool = False
    mail_from: str | None = None
    rcpts: list[str] = dataclasses.field(default_factory=list)
    auth_user: str = ""
    auth_pending: str = ""  # "PLAIN", "LOGIN-USER", "LOGIN-PASS"
    login_user: str = ""
    errors: int = 0
    local_ips: set[str] = dataclasses.field(default_factory=set)

    @property
    def hostname(self) -> str:
        return str(self.config["hostname"])

    @property
    def relay(self) -> bool:
        return bool(self.config["relay"])

    def greeting(self) -> str:
        banner = str(self.config["banner"]) or f"{self.hostname} ESMTP Postfix (Debian/GNU)"
        return f"220 {banner}\r\n"

    def mechanisms(self) -> list[str]:
        return [m.upper() for m in str(self.config["authMechanisms"]).split() if m]

    def ehlo_lines(self) -> list[str]:
        caps = ["PIPELINING", f"SIZE {int(self.config['maxMessageSize'])}", "VRFY", "ETRN"]
        if self.mechanisms():
            caps.append("AUTH " + " ".join(self.mechanisms()))
        caps += ["ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8"]
        return [self.hostname, *caps]

    def _error(self, reply: str) -> Step:
        self.errors += 1
        if self.errors >= int(self.config["maxErrors"]):
            return Step(f"{reply}421 4.7.0 {self.hostname} Error: too many errors\r\n", close=True)
        return Step(reply)

    def line(self, raw: bytes) -> Step:
        text = raw.decode("utf-8", "replace")
        if self.auth_pending:
            return self._auth_continue(text.strip())
        verb, _, arg = text.strip().partition(" ")
        verb, arg = verb.upper(), arg.strip()
        shown = arg.split(" ", 1)[0] if verb == "AUTH" else arg  # the blob goes in `auth`
        note = Note(events.COMMAND, f"{verb} {shown}".strip(),
                    {"command": verb, "args": shown or None})
        if verb in ("HELO", "EHLO"):
            note.fields["helo"] = arg or None
        step = self._dispatch(verb, arg)
        step.notes.insert(0, note)
        return step

    def _dispatch(self, verb: str, arg: str) -> Step:
        if verb in ("HELO", "EHLO"):
            if not arg:
                return self._error(f"501 Syntax: {verb} hostname\r\n")
            self.helo, self.esmtp = arg, verb == "EHLO"
            self._reset()
            if verb == "HELO":
                return Step(f"250 {self.hostname}\r\n")
            lines = self.ehlo_lines()
            body = "".join(f"250-{x}\r\n" for x in lines[:-1]) + f"250 {lines[-1]}\r\n"
            return Step(body)
        if verb == "QUIT":
            return Step("221 2.0.0 Bye\r\n", close=True)
        if verb == "NOOP":
            return Step("250 2.0.0 Ok\r\n")
        if verb == "RSET":
            self._reset()
            return Step("250 2.0.0 Ok\r\n")
        if verb == "VRFY":
            return self._vrfy(arg)
        if verb == "EXPN":
            return self._error("502 5.5.2 Error: command not recognized\r\n")
        if verb == "STARTTLS":
            return self._error("502 5.5.1 Error: command not implemented\r\n")
        if verb == "ETRN":
            return Step("250 Queuing started\r\n") if arg else Step("500 Syntax: ETRN domain\r\n")
        if verb in ("AUTH", "MAIL", "RCPT", "DATA") and not self.helo:
            return self._error("503 5.5.1 Error: send HELO/EHLO first\r\n")
        if verb == "AUTH":
            return self._auth_start(arg)
        if verb == "MAIL":
            return self._mail(arg)
        if verb == "RCPT":
            return self._rcpt(arg)
        if verb == "DATA":
            if self.mail_from is None:
                return self._error("503 5.5.1 Error: need MAIL command\r\n")
            if not self.rcpts:
                return self._error("554 5.5.1 Error: no valid recipients\r\n")
            return Step("354 End data with <CR><LF>.<CR><LF>\r\n", data=True)
        return self._error("502 5.5.2 Error: command not recognized\r\n")

    def _reset(self) -> None:
        self.mail_from, self.rcpts = None, []

    def _vrfy(self, arg: str) -> Step:
        if not arg:
            return self._error("501 5.5.4 Syntax: VRFY address\r\n")
        local = arg.strip("<>").partition("@")[0].lower()
        if local in [str(m).lower() for m in self.config["mailboxes"]]:
            return Step(f"252 2.0.0 {local}\r\n")
        return self._error(f"550 5.1.1 <{arg.strip('<>')}>: Recipient address rejected: "
                           "User unknown in local recipient table\r\n")

    def _mail(self, arg: str) -> Step:
        if not arg.upper().startswith("FROM:"):
            return self._error("501 5.5.4 Syntax: MAIL FROM:<address>\r\n")
        if self.mail_from is not None:
            return self._error("503 5.5.1 Error: nested MAIL command\r\n")
        self.mail_from = mailproto.address(arg)
        return Step("250 2.1.0 Ok\r\n")

    def local_domain(self, domain: str) -> bool:
        """Ours: a configured domain, the hostname, or a literal of an address we listen on."""
        if domain.startswith("[") and domain.endswith("]"):
            return domain[1:-1].removeprefix("ipv6:") in self.local_ips
        local = {str(d).lower().rstrip(".") for d in self.config["domains"]}
        return domain in local or domain == self.hostname.lower()

    def _rcpt(self, arg: str) -> Step:
        if self.mail_from is None:
            return self._error("503 5.5.1 Error: need MAIL command\r\n")
        if not arg.upper().startswith("TO:"):
            return self._error("501 5.5.4 Syntax: RCPT TO:<address>\r\n")
        rcpt = mailproto.address(arg)
        domain = destination(rcpt, self.local_domain)
        if not self.relay and not self.auth_user and domain and not self.local_domain(domain):
            step = self._error(f"554 5.7.1 <{rcpt}>: Relay access denied\r\n")
            step.notes.append(Note(events.REQUEST, "relay denied", {
                "mail_from": self.mail_from, "rcpt_to": rcpt, "helo": self.helo,
                "result": "relay_denied"}))
            return step
        if len(self.rcpts) >= MAX_RCPTS:
            return self._error("452 4.5.3 Error: too many recipients\r\n")
        self.rcpts.append(rcpt)
        return Step("250 2.1.5 Ok\r\n")

    def _auth_start(self, arg: str) -> Step:
        mech, _, initial = arg.partition(" ")
        mech, initial = mech.upper(), initial.strip()
        if not self.mechanisms():
            return self._error("503 5.5.1 Error: authentication not enabled\r\n")
        if self.auth_user:
            return self._error("503 5.5.1 Error: already authenticated\r\n")
        if mech not in self.mechanisms():
            return self._error("535 5.7.8 Error: authentication failed: "
                               "Invalid authentication mechanism\r\n")
        if mech == "PLAIN":
            if initial and initial != "=":
                return self._auth_plain(initial)
            self.auth_pending = "PLAIN"
            return Step("334 \r\n")
        if mech == "LOGIN":
            if initial:
                self.login_user = mailproto.b64text(initial) or ""
                self.auth_pending = "LOGIN-PASS"
                return Step("334 UGFzc3dvcmQ6\r\n")
            self.auth_pending = "LOGIN-USER"
            return Step("334 VXNlcm5hbWU6\r\n")
        return self._error("535 5.7.8 Error: authentication failed: "
                           "Invalid authentication mechanism\r\n")

    def _auth_continue(self, text: str) -> Step:
        pending, self.auth_pending = self.auth_pending, ""
        if text == "*":
            return self._error("501 5.7.0 Authentication aborted\r\n")
        if pending == "PLAIN":
            return self._auth_plain(text)
        decoded = mailproto.b64text(text)
        if decoded is None:
            return self._error("501 5.5.2 Cannot decode response\r\n")
        if pending == "LOGIN-USER":
            self.login_user = decoded
            self.auth_pending = "LOGIN-PASS"
            return Step("334 UGFzc3dvcmQ6\r\n")
        return self._auth_result(self.login_user, decoded, "LOGIN")

    def _auth_plain(self, blob: str) -> Step:
        creds = mailproto.sasl_plain(blob)
        if creds is None:
            return self._error("501 5.5.2 Cannot decode response\r\n")
        return self._auth_result(creds[0], creds[1], "PLAIN")

    def _auth_result(self, user: str, password: str, mech: str) -> Step:
        users = {str(k): str(v) for k, v in dict(self.config["users"]).items()}
        ok = bool(self.config["acceptAllAuth"]) or (user in users and users[user] == password)
        note = Note(events.AUTH, "login attempt", {
            "username": user, "password": password, "mechanism": mech,
            "helo": self.helo or None, "result": "accepted" if ok else "rejected"})
        if ok:
            self.auth_user = user
            return Step("235 2.7.0 Authentication successful\r\n", [note])
        step = self._error("535 5.7.8 Error: authentication failed: authentication failure\r\n")
        step.notes.append(note)
        return step

    def message_done(self, size: int, digest: str, head: bytes) -> Step:
        """After the final "." of DATA: queue (or refuse an oversized) message."""
        subject = mailproto.header_value(head, "subject")
        fields: dict[str, object] = {
            "mail_from": self.mail_from or "", "rcpt_to": ",".join(self.rcpts),
            "rcpt_count": len(self.rcpts), "subject": subject, "size": size, "sha256": digest,
            "helo": self.helo or None, "relay": "yes" if self.relay else None,
            "username": self.auth_user or None,
        }
        self._reset()
        if size > int(self.config["maxMessageSize"]):
            fields["result"] = "too_big"
            return Step("552 5.3.4 Error: message file too big\r\n",
                        [Note(events.DATA, "message refused", fields)])
        queue_id = queue_id_new()
        fields["queue_id"] = queue_id
        note = Note(events.DATA, "relay attempt" if self.relay else "message", fields)
        return Step(f"250 2.0.0 Ok: queued as {queue_id}\r\n", [note])


def destination(addr: str, local: Callable[[str], bool], depth: int = 0) -> str:
    """The domain a recipient really goes to, as Postfix rewrites it ("" = a local user).

    Relay checkers hide a foreign domain behind ours: `user%foreign@ours` (percent
    hack), `foreign!user` (bang path), `@ours:user@foreign` (source route), quoted or
    doubled `@`. Postfix resolves all of these before its relay check; so does this.
    """
    a = addr.strip().replace('"', "")
    if a.startswith("@") and ":" in a:
        a = a.split(":", 1)[1]
    user, at, domain = a.rpartition("@")
    if not at:
        user, domain = a, ""
    domain = domain.lower().rstrip(".")
    if depth < 4 and (not domain or local(domain)):
        if "@" in user:
            return destination(user, local, depth + 1)
        if "%" in user:
            return destination(user.replace("%", "@"), local, depth + 1)
        if "!" in user:
            host, _, rest = user.partition("!")
            return destination(f"{rest}@{host}", local, depth + 1)
    return domain


def queue_id_new() -> str:
    """A Postfix short queue id: 10 to 11 uppercase hex digits."""
    return secrets.token_hex(5).upper()


class Digest:
    """Measures a message as it streams past: size, sha256, and only its first bytes."""

    def __init__(self) -> None:
        self.size = 0
        self.sha = hashlib.sha256()
        self.head = bytearray()

    def add(self, line: bytes) -> None:
        """One whole line without its terminator (tests and simple callers)."""
        self.part(line + b"\r\n", line_start=True)

    def part(self, chunk: bytes, line_start: bool) -> None:
        """Bytes of the message; a line's first part loses its stuffed dot (RFC 5321 4.5.2)."""
        if line_start and chunk.startswith(b"."):
            chunk = chunk[1:]
        self.size += len(chunk)
        self.sha.update(chunk)
        if len(self.head) < HEAD_KEEP:
            self.head += chunk[: HEAD_KEEP - len(self.head)]


async def read_message(reader: asyncio.StreamReader, timeout: float) -> Digest | None:
    """The message up to the lone ".", lines of any length (HTML mail has long ones)."""
    digest = Digest()
    line_start = True
    while True:
        try:
            chunk = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
        except asyncio.LimitOverrunError as over:
            chunk = await asyncio.wait_for(reader.read(max(over.consumed, 1)), timeout)
            if not chunk:
                return None
            digest.part(chunk, line_start)
            line_start = False
            continue
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, ValueError):
            return None
        if line_start and chunk.rstrip(b"\r\n") == b".":
            return digest
        digest.part(chunk, line_start)
        line_start = True


async def handle(ctx: core.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: core.Peer) -> None:
    session = Session(ctx.config)
    sockname = writer.get_extra_info("sockname")
    if sockname:
        session.local_ips.add(str(sockname[0]))
    await core.send(writer, session.greeting())
    for _ in range(10000):
        raw = await core.read_line(reader, ctx.idle_seconds)
        if raw is None:
            return
        step = session.line(raw)
        await mailproto.perform(ctx, writer, peer, step)
        if step.close:
            return
        if step.data:
            digest = await read_message(reader, ctx.idle_seconds)
            if digest is None:
                return
            done = session.message_done(digest.size, digest.sha.hexdigest(), bytes(digest.head))
            await mailproto.perform(ctx, writer, peer, done)


async def serve(ctx: core.Context) -> None:
    await core.serve_ports(ctx, PORTS, handle)
