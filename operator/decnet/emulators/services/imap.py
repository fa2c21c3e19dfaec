"""IMAP4rev1 as Dovecot answers it: LOGIN and AUTHENTICATE PLAIN captured, a small INBOX.

Written by hand: clients, scanners and sprayers use CAPABILITY, LOGIN or
AUTHENTICATE, then LIST, SELECT and a FETCH or two; a tokenizer that understands
quoted strings and {n} / {n+} literals (each capped) covers that without an IMAP
library. Logins succeed only for the users in the config, who see the same two
messages the pop3 service shows. Each login attempt is an `auth` event, every other
command a `command` event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

from .. import core, events, mailproto

PORTS = [(143, "tcp")]
DEFAULTS: dict[str, Any] = {
    # nmap 7.93 names Dovecot imapd by the upstream greeting, not by Debian's "(Debian)" one
    "greeting": "Dovecot ready.",
    "hostname": "mail.example.com",
    "domain": "example.com",
    "users": {},  # username -> password accepted for login
    "mailboxes": ["INBOX", "Drafts", "Sent", "Trash", "Junk"],
    "maxErrors": 20,
}
PRE_CAPS = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN"
POST_CAPS = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
             "THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL "
             "CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 "
             "CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS "
             "BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ "
             "NOTIFY SPECIAL-USE")
MAX_LITERAL = 8192
MAX_LITERALS = 8
UIDVALIDITY = 1764403200
INTERNALDATES = ("23-Nov-2026 08:14:03 +0000", "26-Nov-2026 16:41:55 +0000")
_LITERAL = re.compile(rb"\{(\d{1,10})(\+?)\}$")

Note = mailproto.Note
Step = mailproto.Step


def literal_tail(line: bytes) -> tuple[bytes, int, bool] | None:
    """(text before it, size, non-synchronizing) when a line ends with {n} or {n+}."""
    match = _LITERAL.search(line)
    if match is None:
        return None
    return line[: match.start()], int(match.group(1)), match.group(2) == b"+"


def tokenize(text: str) -> list[str]:
    """Atoms, quoted strings (unescaped) and parentheses as separate tokens."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n and len(out) < 256:
        c = text[i]
        if c == " ":
            i += 1
        elif c in "()":
            out.append(c)
            i += 1
        elif c == '"':
            i += 1
            buf = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            out.append("".join(buf))
            i += 1
        else:
            j = i
            depth = 0
            while j < n and (depth or text[j] not in " ()"):
                depth += {"[": 1, "]": -1}.get(text[j], 0)
                j += 1
            out.append(text[i:j])
            i = j
    return out


@dataclasses.dataclass(frozen=True)
class Command:
    tag: str
    name: str
    args: list[str]
    raw: str  # the text after the command name, literals replaced by their contents


def parse(parts: list[str | bytes]) -> Command | None:
    """A command from its text segments and the literals between them."""
    tokens: list[str] = []
    raw: list[str] = []
    for part in parts:
        if isinstance(part, bytes):
            text = part.decode("utf-8", "replace")
            tokens.append(text)
            raw.append(f'"{text}"')
        else:
            tokens.extend(tokenize(part))
            raw.append(part)
    if len(tokens) < 2:
        return None
    text = "".join(raw).strip()
    first_two = text.split(" ", 2)
    rest = first_two[2] if len(first_two) > 2 else ""
    return Command(tokens[0][:64], tokens[1].upper()[:32], tokens[2:], rest)


def list_match(pattern: str, name: str) -> bool:
    """LIST wildcards: `*` anything, `%` anything but the `/` separator; case-insensitive.

    Matched position by position (no regex), so a pattern of thousands of wildcards
    costs len(pattern) x len(name) steps, never a backtracking explosion.
    """
    p, n = pattern.upper()[:256], name.upper()
    reach = {0}
    for ch in p:
        if ch == "*":
            reach = set(range(min(reach), len(n) + 1))
        elif ch == "%":
            grown = set()
            for i in reach:
                grown.add(i)
                while i < len(n) and n[i] != "/":
                    i += 1
                    grown.add(i)
            reach = grown
        else:
            reach = {i + 1 for i in reach if i < len(n) and n[i] == ch}
        if not reach:
            return False
    return len(n) in reach


def sequence(spec: str, count: int) -> list[int]:
    """Message numbers in a sequence set such as 1:*, 2, 1,3:4 (bounded by count)."""
    out: set[int] = set()
    for item in spec.split(",")[:64]:
        lo, _, hi = item.partition(":")
        try:
            a = count if lo == "*" else int(lo)
            b = a if not hi else (count if hi == "*" else int(hi))
        except ValueError:
            continue
        a, b = min(a, b), max(a, b)
        out.update(range(max(a, 1), min(b, count) + 1))
    return sorted(out)


def fetch_items(message: bytes, n: int, spec: str, uid_mode: bool) -> str:
    """The FETCH response data of one message for the requested items."""
    upper = spec.upper()
    if upper in ("ALL", "FAST", "FULL", "(ALL)", "(FAST)", "(FULL)"):
        upper = "FLAGS INTERNALDATE RFC822.SIZE"
    head, body = mailproto.split_message(message)
    items: list[str] = []
    if uid_mode or re.search(r"\bUID\b", upper):
        items.append(f"UID {n}")
    if "FLAGS" in upper:
        items.append("FLAGS (\\Seen)" if n == 1 else "FLAGS ()")
    if "INTERNALDATE" in upper:
        items.append(f'INTERNALDATE "{INTERNALDATES[(n - 1) % len(INTERNALDATES)]}"')
    if "RFC822.SIZE" in upper:
        items.append(f"RFC822.SIZE {len(message)}")

    def literal(name: str, data: bytes) -> None:
        items.append(f"{name} {{{len(data)}}}\r\n{data.decode('utf-8', 'replace')}")

    section = re.search(r"BODY(?:\.PEEK)?\[([^\]]*)\]", upper)
    if section is not None:
        part = section.group(1)
        if part.startswith("HEADER"):
            literal(f"BODY[{part}]", head)
        elif part == "TEXT":
            literal("BODY[TEXT]", body)
        else:
            literal(f"BODY[{part}]", message)
    elif re.search(r"\bRFC822\.HEADER\b", upper):
        literal("RFC822.HEADER", head)
    elif re.search(r"\bRFC822\.TEXT\b", upper):
        literal("RFC822.TEXT", body)
    elif re.search(r"\bRFC822(?![.\w])", upper):
        literal("RFC822", message)
    return f"* {n} FETCH ({' '.join(items)})\r\n"


@dataclasses.dataclass
class Session:
    """One IMAP conversation; pure: commands in, replies and events out."""

    config: dict[str, Any]
    user: str = ""
    selected: str = ""
    messages: list[bytes] = dataclasses.field(default_factory=list)
    pending: tuple[str, str] | None = None  # (tag, "PLAIN" | "LOGIN-USER" | "LOGIN-PASS")
    sasl_user: str = ""
    errors: int = 0

    def greeting(self) -> str:
        return f"* OK [CAPABILITY {PRE_CAPS}] {self.config['greeting']}\r\n"

    def _bad(self, reply: str) -> Step:
        self.errors += 1
        if self.errors >= int(self.config["maxErrors"]):
            return Step(reply + "* BYE Too many invalid IMAP commands.\r\n", close=True)
        return Step(reply)

    def continuation(self, raw: bytes) -> Step:
        """A line answering a `+` of AUTHENTICATE."""
        assert self.pending is not None
        (tag, state), self.pending = self.pending, None
        text = raw.decode("utf-8", "replace").strip()
        if text == "*":
            return self._bad(f"{tag} BAD Authentication aborted by client.\r\n")
        if state == "PLAIN":
            return self._plain(tag, text)
        decoded = mailproto.b64text(text)
        if decoded is None:
            return self._bad(f"{tag} BAD Invalid base64 data in continued response\r\n")
        if state == "LOGIN-USER":
            self.sasl_user, self.pending = decoded, (tag, "LOGIN-PASS")
            return Step("+ UGFzc3dvcmQ6\r\n")
        return self._login(tag, self.sasl_user, decoded, "LOGIN")

    def command(self, cmd: Command) -> Step:
        step = self._dispatch(cmd)
        if cmd.name not in ("LOGIN", "AUTHENTICATE"):
            step.notes.insert(0, Note(events.COMMAND, f"{cmd.name} {cmd.raw}".strip(), {
                "command": cmd.name, "args": cmd.raw or None, "username": self.user or None}))
        return step

    def _dispatch(self, cmd: Command) -> Step:
        tag, name, args = cmd.tag, cmd.name, cmd.args
        if name == "CAPABILITY":
            caps = POST_CAPS if self.user else PRE_CAPS
            return Step(f"* CAPABILITY {caps}\r\n{tag} OK Pre-login capabilities listed, "
                        "post-login capabilities have more.\r\n")
        if name == "NOOP":
            return Step(f"{tag} OK NOOP completed.\r\n")
        if name == "LOGOUT":
            return Step(f"* BYE Logging out\r\n{tag} OK Logout completed.\r\n", close=True)
        if name == "ID":
            return Step(f'* ID ("name" "Dovecot")\r\n{tag} OK ID completed.\r\n')
        if name == "STARTTLS":
            return self._bad(f"{tag} BAD TLS support isn't enabled.\r\n")
        if name == "LOGIN":
            if self.user:
                return self._bad(f"{tag} BAD Already logged in.\r\n")
            if len(args) < 2:
                return self._bad(f"{tag} BAD Missing arguments.\r\n")
            return self._login(tag, args[0], args[1], "LOGIN-CMD")
        if name == "AUTHENTICATE":
            return self._authenticate(tag, args)
        if not self.user:
            return self._bad(f"{tag} BAD Error in IMAP command {name[:32]}: "
                             "Unknown command.\r\n" if name not in AUTHED else
                             f"{tag} NO Please log in first.\r\n")
        return self._authed(cmd)

    def _authenticate(self, tag: str, args: list[str]) -> Step:
        if self.user:
            return self._bad(f"{tag} BAD Already logged in.\r\n")
        mech = args[0].upper() if args else ""
        if mech == "PLAIN":
            if len(args) > 1 and args[1] != "=":
                return self._plain(tag, args[1])
            self.pending = (tag, "PLAIN")
            return Step("+ \r\n")
        if mech == "LOGIN":
            self.pending = (tag, "LOGIN-USER")
            return Step("+ VXNlcm5hbWU6\r\n")
        return self._bad(f"{tag} NO Unsupported authentication mechanism.\r\n")

    def _plain(self, tag: str, blob: str) -> Step:
        creds = mailproto.sasl_plain(blob)
        if creds is None:
            return self._bad(f"{tag} BAD Invalid base64 data in initial response\r\n")
        return self._login(tag, creds[0], creds[1], "PLAIN")

    def _login(self, tag: str, user: str, password: str, mech: str) -> Step:
        users = {str(k): str(v) for k, v in dict(self.config["users"]).items()}
        ok = user in users and users[user] == password
        note = Note(events.AUTH, "login attempt", {
            "username": user, "password": password,
            "mechanism": "LOGIN" if mech == "LOGIN-CMD" else f"AUTHENTICATE {mech}",
            "result": "accepted" if ok else "rejected"})
        if not ok:
            step = self._bad(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
            step.notes.append(note)
            return step
        self.user = user
        self.messages = mailproto.mailbox(user, str(self.config["domain"]),
                                          str(self.config["hostname"]))
        return Step(f"{tag} OK [CAPABILITY {POST_CAPS}] Logged in\r\n", [note])

    def _mailboxes(self) -> list[str]:
        return [str(m) for m in self.config["mailboxes"]][:64] or ["INBOX"]

    def _authed(self, cmd: Command) -> Step:
        tag, name, args = cmd.tag, cmd.name, cmd.args
        if name in ("LIST", "LSUB"):
            if len(args) >= 2 and args[1] == "":
                return Step(f'* {name} (\\Noselect) "/" ""\r\n{tag} OK {name} completed.\r\n')
            pattern = args[1] if len(args) >= 2 else "*"
            lines = "".join(f'* {name} (\\HasNoChildren) "/" {m}\r\n'
                            for m in self._mailboxes() if list_match(pattern, m))
            return Step(f"{lines}{tag} OK {name} completed (0.001 + 0.000 secs).\r\n")
        if name in ("SELECT", "EXAMINE"):
            box = args[0] if args else ""
            if box.upper() not in [m.upper() for m in self._mailboxes()]:
                return self._bad(f"{tag} NO Mailbox doesn't exist: {box[:64]}\r\n")
            self.selected = box
            count = len(self.messages) if box.upper() == "INBOX" else 0
            mode = "READ-ONLY" if name == "EXAMINE" else "READ-WRITE"
            return Step(
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
                "Flags permitted.\r\n"
                f"* {count} EXISTS\r\n* 0 RECENT\r\n"
                f"* OK [UIDVALIDITY {UIDVALIDITY}] UIDs valid\r\n"
                f"* OK [UIDNEXT {count + 1}] Predicted next UID\r\n"
                f"{tag} OK [{mode}] Select completed (0.001 + 0.000 secs).\r\n")
        if name == "STATUS":
            box = args[0] if args else "INBOX"
            count = len(self.messages) if box.upper() == "INBOX" else 0
            return Step(f"* STATUS {box[:64]} (MESSAGES {count} UNSEEN {max(count - 1, 0)})\r\n"
                        f"{tag} OK Status completed.\r\n")
        if name in ("FETCH", "UID"):
            return self._fetch(cmd)
        if name == "SEARCH":
            nums = " ".join(str(i) for i in range(1, len(self.messages) + 1))
            return Step(f"* SEARCH {nums}\r\n{tag} OK Search completed.\r\n")
        if name in ("CLOSE", "UNSELECT"):
            self.selected = ""
            return Step(f"{tag} OK {name.capitalize()} completed.\r\n")
        if name in ("EXPUNGE", "CHECK", "STORE", "SUBSCRIBE", "UNSUBSCRIBE", "ENABLE"):
            return Step(f"{tag} OK {name.capitalize()} completed.\r\n")
        if name == "NAMESPACE":
            return Step(f'* NAMESPACE (("" "/")) NIL NIL\r\n{tag} OK Namespace completed.\r\n')
        return self._bad(f"{tag} BAD Error in IMAP command {name[:32]}: Unknown command.\r\n")

    def _fetch(self, cmd: Command) -> Step:
        tag, rest, uid_mode = cmd.tag, cmd.raw, False
        if cmd.name == "UID":
            sub, _, rest = rest.partition(" ")
            if sub.upper() != "FETCH":
                if sub.upper() == "SEARCH":
                    nums = " ".join(str(i) for i in range(1, len(self.messages) + 1))
                    return Step(f"* SEARCH {nums}\r\n{tag} OK Search completed.\r\n")
                return Step(f"{tag} OK {sub.capitalize()[:32]} completed.\r\n")
            uid_mode = True
        if not self.selected:
            return self._bad(f"{tag} BAD No mailbox selected.\r\n")
        spec, _, items = rest.strip().partition(" ")
        msgs = self.messages if self.selected.upper() == "INBOX" else []
        out = "".join(fetch_items(msgs[n - 1], n, items.strip(), uid_mode)
                      for n in sequence(spec, len(msgs)))
        word = "UID fetch" if uid_mode else "Fetch"
        return Step(f"{out}{tag} OK {word} completed (0.001 + 0.000 secs).\r\n")


AUTHED = {"SELECT", "EXAMINE", "LIST", "LSUB", "STATUS", "FETCH", "UID", "SEARCH", "CLOSE",
          "EXPUNGE", "STORE", "CHECK", "UNSELECT", "SUBSCRIBE", "UNSUBSCRIBE", "NAMESPACE",
          "ENABLE", "APPEND", "CREATE", "DELETE", "RENAME", "COPY", "MOVE", "IDLE"}


async def read_command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       timeout: float) -> list[str | bytes] | str | None:
    """One command's segments and literals; a str is a fatal error to send; None at EOF."""
    parts: list[str | bytes] = []
    total = 0
    while True:
        line = await core.read_line(reader, timeout)
        if line is None:
            return None
        tail = literal_tail(line)
        if tail is None:
            parts.append(line.decode("utf-8", "replace"))
            return parts
        text, size, nonsync = tail
        parts.append(text.decode("utf-8", "replace"))
        total += size
        if size > MAX_LITERAL or total > MAX_LITERAL * 2 or len(parts) > MAX_LITERALS * 2:
            return "* BYE Too long argument.\r\n"
        if not nonsync:
            await core.send(writer, "+ OK\r\n")
        literal = await core.read_exactly(reader, size, timeout)
        if literal is None:
            return None
        parts.append(literal)


async def handle(ctx: core.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: core.Peer) -> None:
    session = Session(ctx.config)
    await core.send(writer, session.greeting())
    for _ in range(10000):
        if session.pending is not None:
            raw = await core.read_line(reader, ctx.idle_seconds)
            if raw is None:
                return
            step = session.continuation(raw)
        else:
            parts = await read_command(reader, writer, ctx.idle_seconds)
            if parts is None:
                return
            if isinstance(parts, str):
                await core.send(writer, parts)
                return
            cmd = parse(parts)
            if cmd is None:
                if "".join(p for p in parts if isinstance(p, str)).strip():
                    await core.send(writer, "* BAD Error in IMAP command received by server.\r\n")
                continue
            step = session.command(cmd)
        await mailproto.perform(ctx, writer, peer, step)
        if step.close:
            return


async def serve(ctx: core.Context) -> None:
    await core.serve_ports(ctx, PORTS, handle)
