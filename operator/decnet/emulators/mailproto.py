"""Pieces the mail services share: SASL decoding, header peeking, a small fake mailbox.

SMTP, POP3 and IMAP all carry SASL PLAIN/LOGIN credentials base64-encoded, and POP3
and IMAP both show a logged-in client a mailbox; keeping these pure helpers in one
place makes the three servers agree with each other, as one real mail host would.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import email.utils
import hashlib

from . import core

MAX_HEADER_BYTES = 65536


@dataclasses.dataclass
class Note:
    """An event a protocol step wants emitted: kind, human message, fields."""

    kind: str
    message: str
    fields: dict[str, object]


@dataclasses.dataclass
class Step:
    """What a server does after one client line: reply, events, and what comes next."""

    reply: str = ""
    notes: list[Note] = dataclasses.field(default_factory=list)
    close: bool = False
    data: bool = False  # SMTP: the client now sends the message, up to "."


async def perform(
    ctx: core.Context, writer: asyncio.StreamWriter, peer: core.Peer, step: Step
) -> None:
    """The one I/O edge of a step: emit its events, then send its reply."""
    for note in step.notes:
        ctx.emit(note.kind, peer, note.message, **note.fields)
    await core.send(writer, step.reply)


def b64decode(text: str | bytes) -> bytes | None:
    """Strict base64, or None for anything a client garbled."""
    try:
        raw = text.encode("ascii") if isinstance(text, str) else text
        return base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def b64text(text: str | bytes) -> str | None:
    raw = b64decode(text)
    return None if raw is None else raw.decode("utf-8", "replace")


def b64encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def sasl_plain(blob: str | bytes) -> tuple[str, str] | None:
    """(username, password) from a SASL PLAIN response `authzid NUL authcid NUL passwd`."""
    raw = b64decode(blob)
    if raw is None:
        return None
    parts = raw.split(b"\0")
    if len(parts) != 3:
        return None
    authzid, authcid, password = (p.decode("utf-8", "replace") for p in parts)
    return (authcid or authzid), password


def header_value(head: bytes, name: str) -> str:
    """The first header `name` in a message head (folded lines joined), or ""."""
    wanted = name.lower().encode() + b":"
    lines = head[:MAX_HEADER_BYTES].split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip(b"\r"):
            break
        if line.lower().startswith(wanted):
            value = line[len(wanted):].strip()
            for cont in lines[i + 1 :]:
                if cont[:1] not in (b" ", b"\t"):
                    break
                value += b" " + cont.strip()
            return value.decode("utf-8", "replace")
    return ""


def address(arg: str) -> str:
    """The address inside `FROM:<a@b> SIZE=1` / `TO:<a@b>`, without brackets."""
    _, _, rest = arg.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        end = rest.find(">")
        return rest[1:end] if end > 0 else rest[1:]
    return rest.split(" ", 1)[0] if rest else ""


def domain_of(addr: str) -> str:
    return addr.rpartition("@")[2].lower().rstrip(".") if "@" in addr else ""


def mailbox(user: str, domain: str, hostname: str) -> list[bytes]:
    """Two ordinary messages for a logged-in user: what a mailbox looks like, nothing more."""
    to = f"{user}@{domain}" if "@" not in user else user
    dates = ("Mon, 23 Nov 2026 08:14:03 +0000", "Thu, 26 Nov 2026 16:41:55 +0000")
    bodies = (
        ("it-support", "Password expiry notice",
         "Hello,\r\n\r\nYour mailbox password expires in 5 days. Please change it from the\r\n"
         "webmail settings page before it expires.\r\n\r\nIT Support\r\n"),
        ("backup", "Nightly backup report",
         "Backup job finished.\r\n\r\nFiles: 18231  Size: 41.7 GB  Errors: 0\r\n"),
    )
    out = []
    for i, ((sender, subject, body), date) in enumerate(zip(bodies, dates, strict=True)):
        msgid = hashlib.sha1(f"{domain}{i}".encode()).hexdigest()[:16]
        head = (
            f"Return-Path: <{sender}@{domain}>\r\n"
            f"Received: from localhost by {hostname} (Postfix) with ESMTP; {date}\r\n"
            f"From: {sender}@{domain}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\nMessage-ID: <{msgid}@{hostname}>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
        )
        out.append((head + body).encode())
    return out


def split_message(message: bytes) -> tuple[bytes, bytes]:
    """(header block including the blank line, body)."""
    head, sep, body = message.partition(b"\r\n\r\n")
    return head + sep, body


def now_rfc2822() -> str:
    return email.utils.formatdate(localtime=False)
