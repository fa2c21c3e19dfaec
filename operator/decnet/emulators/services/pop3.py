"""POP3 as Dovecot answers it: USER/PASS, APOP and SASL captured, a small mailbox after login.

Written by hand: POP3 is a line protocol of a dozen verbs, and a state machine of a
hundred lines is all a mail client, a scanner or a password sprayer exercises. Logins
succeed only for the users in the config, who then see two ordinary messages (shared
with the imap service through mailproto); everyone else gets Dovecot's failure line.
Each login attempt is an `auth` event, each command after login a `command` event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import secrets
import time
from typing import Any

from .. import core, events, mailproto

PORTS = [(110, "tcp")]
DEFAULTS: dict[str, Any] = {
    "greeting": "Dovecot (Debian) ready.",
    "hostname": "mail.example.com",
    "domain": "example.com",
    "users": {},  # username -> password accepted for login
    "apop": False,  # offer APOP (a <timestamp> in the greeting), as auth_mechanisms=apop does
    "maxErrors": 10,
}


Note = mailproto.Note
Step = mailproto.Step


@dataclasses.dataclass
class Session:
    """One POP3 conversation; pure and fed line by line."""

    config: dict[str, Any]
    challenge: str = ""
    user: str = ""
    logged_in: str = ""
    sasl: str = ""  # pending SASL exchange: "PLAIN", "LOGIN-USER", "LOGIN-PASS"
    sasl_user: str = ""
    errors: int = 0
    deleted: set[int] = dataclasses.field(default_factory=set)
    messages: list[bytes] = dataclasses.field(default_factory=list)

    def greeting(self) -> str:
        text = f"+OK {self.config['greeting']}"
        if self.config["apop"]:
            self.challenge = self.challenge or apop_challenge(str(self.config["hostname"]))
            text += f" {self.challenge}"
        return text + "\r\n"

    def _bad(self, reply: str) -> Step:
        self.errors += 1
        if self.errors >= int(self.config["maxErrors"]):
            return Step("-ERR Too many invalid commands.\r\n", close=True)
        return Step(reply)

    def line(self, raw: bytes) -> Step:
        text = raw.decode("utf-8", "replace").strip()
        if self.sasl:
            return self._sasl_continue(text)
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        if verb == "QUIT":
            tail = ", messages deleted" if self.deleted else ""
            return Step(f"+OK Logging out{tail}.\r\n", close=True)
        if verb == "CAPA":
            return Step(self.capa())
        if verb == "NOOP" and self.logged_in:
            return Step("+OK\r\n")
        if not self.logged_in:
            return self._auth_state(verb, arg)
        step = self._transaction(verb, arg.strip())
        step.notes.insert(0, Note(events.COMMAND, f"{verb} {arg}".strip(),
                                  {"command": verb, "args": arg or None,
                                   "username": self.logged_in}))
        return step

    def capa(self) -> str:
        caps = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
        if not self.logged_in:
            caps += ["USER", "SASL PLAIN LOGIN"]
        return "+OK\r\n" + "".join(f"{c}\r\n" for c in ["CAPA", *caps]) + ".\r\n"

    def _auth_state(self, verb: str, arg: str) -> Step:
        if verb == "USER":
            if not arg:
                return self._bad("-ERR No username given.\r\n")
            self.user = arg
            return Step("+OK\r\n")
        if verb == "PASS":
            if not self.user:
                return self._bad("-ERR No username given.\r\n")
            return self._login(self.user, arg, "USER")
        if verb == "APOP":
            return self._apop(arg)
        if verb == "AUTH":
            return self._sasl_start(arg)
        return self._bad("-ERR Unknown command.\r\n")

    def _apop(self, arg: str) -> Step:
        user, _, digest = arg.strip().rpartition(" ")
        if not self.challenge or not user:
            return self._bad("-ERR Unknown command.\r\n")
        users = accepted(self.config)
        expected = hashlib.md5((self.challenge + users.get(user, "")).encode()).hexdigest()
        ok = user in users and secrets.compare_digest(expected, digest.lower())
        note = Note(events.AUTH, "login attempt", {
            "username": user, "password_hash": digest, "hash_type": "apop",
            "challenge": self.challenge, "mechanism": "APOP",
            "result": "accepted" if ok else "rejected"})
        return self._result(user, ok, note)

    def _sasl_start(self, arg: str) -> Step:
        mech, _, initial = arg.strip().partition(" ")
        mech = mech.upper()
        if not mech:
            return Step("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n")
        if mech == "PLAIN":
            if initial and initial != "=":
                return self._sasl_plain(initial)
            self.sasl = "PLAIN"
            return Step("+ \r\n")
        if mech == "LOGIN":
            self.sasl = "LOGIN-USER"
            return Step("+ VXNlcm5hbWU6\r\n")
        return self._bad("-ERR Unsupported authentication mechanism.\r\n")

    def _sasl_continue(self, text: str) -> Step:
        pending, self.sasl = self.sasl, ""
        if text == "*":
            return self._bad("-ERR Authentication aborted by client.\r\n")
        if pending == "PLAIN":
            return self._sasl_plain(text)
        decoded = mailproto.b64text(text)
        if decoded is None:
            return self._bad("-ERR Invalid base64 data in continued response\r\n")
        if pending == "LOGIN-USER":
            self.sasl_user, self.sasl = decoded, "LOGIN-PASS"
            return Step("+ UGFzc3dvcmQ6\r\n")
        return self._login(self.sasl_user, decoded, "LOGIN")

    def _sasl_plain(self, blob: str) -> Step:
        creds = mailproto.sasl_plain(blob)
        if creds is None:
            return self._bad("-ERR Invalid base64 data in initial response\r\n")
        return self._login(creds[0], creds[1], "PLAIN")

    def _login(self, user: str, password: str, mech: str) -> Step:
        users = accepted(self.config)
        ok = user in users and users[user] == password
        note = Note(events.AUTH, "login attempt", {
            "username": user, "password": password, "mechanism": mech,
            "result": "accepted" if ok else "rejected"})
        return self._result(user, ok, note)

    def _result(self, user: str, ok: bool, note: Note) -> Step:
        self.user = ""
        if not ok:
            step = self._bad("-ERR [AUTH] Authentication failed.\r\n")
            step.notes.append(note)
            return step
        self.logged_in = user
        self.messages = mailproto.mailbox(user, str(self.config["domain"]),
                                          str(self.config["hostname"]))
        return Step("+OK Logged in.\r\n", [note])

    def _message(self, arg: str) -> tuple[int, bytes] | str:
        try:
            n = int(arg.split()[0])
        except (ValueError, IndexError):
            return f"-ERR Invalid message number: {arg[:40]}\r\n"
        if n < 1 or n > len(self.messages) or n in self.deleted:
            return f"-ERR There's no message {n}.\r\n"
        return n, self.messages[n - 1]

    def _live(self) -> list[tuple[int, bytes]]:
        return [(i, m) for i, m in enumerate(self.messages, 1) if i not in self.deleted]

    def _transaction(self, verb: str, arg: str) -> Step:
        if verb == "STAT":
            live = self._live()
            return Step(f"+OK {len(live)} {sum(len(m) for _, m in live)}\r\n")
        if verb in ("LIST", "UIDL"):
            def item(i: int, m: bytes) -> str:
                return f"{i} {len(m)}" if verb == "LIST" else f"{i} {uid(m)}"
            if arg:
                found = self._message(arg)
                if isinstance(found, str):
                    return self._bad(found)
                return Step(f"+OK {item(*found)}\r\n")
            live = self._live()
            head = f"+OK {len(live)} messages:\r\n" if verb == "LIST" else "+OK\r\n"
            return Step(head + "".join(f"{item(i, m)}\r\n" for i, m in live) + ".\r\n")
        if verb in ("RETR", "TOP"):
            found = self._message(arg)
            if isinstance(found, str):
                return self._bad(found)
            _, msg = found
            if verb == "TOP":
                try:
                    lines = max(0, int(arg.split()[1]))
                except (ValueError, IndexError):
                    return self._bad("-ERR Invalid number of lines: " + arg[:40] + "\r\n")
                top, body = mailproto.split_message(msg)
                msg = top + b"\r\n".join(body.split(b"\r\n")[:lines])
            return Step(f"+OK {len(msg)} octets\r\n" + dot_stuff(msg) + ".\r\n")
        if verb == "DELE":
            found = self._message(arg)
            if isinstance(found, str):
                return self._bad(found)
            self.deleted.add(found[0])
            return Step("+OK Marked to be deleted.\r\n")
        if verb == "RSET":
            self.deleted.clear()
            return Step("+OK\r\n")
        return self._bad("-ERR Unknown command: " + verb[:32] + "\r\n")


def accepted(config: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(config["users"]).items()}


def apop_challenge(hostname: str) -> str:
    return f"<{os.getpid()}.{int(time.time())}.{secrets.token_hex(4)}@{hostname}>"


def uid(message: bytes) -> str:
    return hashlib.md5(message).hexdigest()[:24]


def dot_stuff(message: bytes) -> str:
    text = message.decode("utf-8", "replace")
    lines = text.split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    return "".join(("." + ln if ln.startswith(".") else ln) + "\r\n" for ln in lines)


async def handle(ctx: core.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: core.Peer) -> None:
    session = Session(ctx.config)
    await core.send(writer, session.greeting())
    for _ in range(10000):
        raw = await core.read_line(reader, ctx.idle_seconds)
        if raw is None:
            return
        step = session.line(raw)
        await mailproto.perform(ctx, writer, peer, step)
        if step.close:
            return


async def serve(ctx: core.Context) -> None:
    await core.serve_ports(ctx, PORTS, handle)
