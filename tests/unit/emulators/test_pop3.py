"""POP3 as Dovecot answers it: logins captured, a mailbox only for configured users."""

from __future__ import annotations

import base64
import hashlib

from decnet.emulators import core
from decnet.emulators.services import pop3


def session(**config: object) -> pop3.Session:
    merged = core.load_config(pop3.DEFAULTS)
    merged.update(config)
    return pop3.Session(merged)


def test_greeting_capa_and_failed_login() -> None:
    s = session()
    assert s.greeting() == "+OK Dovecot (Debian) ready.\r\n"
    capa = s.line(b"CAPA").reply
    assert capa.startswith("+OK\r\nCAPA\r\n") and "USER\r\n" in capa and capa.endswith(".\r\n")
    assert s.line(b"PASS x").reply == "-ERR No username given.\r\n"
    assert s.line(b"USER root").reply == "+OK\r\n"
    step = s.line(b"PASS toor")
    assert step.reply == "-ERR [AUTH] Authentication failed.\r\n"
    assert step.notes[0].fields == {"username": "root", "password": "toor", "mechanism": "USER",
                                    "result": "rejected"}
    assert s.line(b"STAT").reply == "-ERR Unknown command.\r\n"


def test_configured_user_sees_a_mailbox() -> None:
    s = session(users={"alice": "pw"}, domain="corp.local")
    s.line(b"USER alice")
    assert s.line(b"PASS pw").reply == "+OK Logged in.\r\n"
    count, size = s.line(b"STAT").reply.split()[1:]
    assert int(count) == 2 and int(size) == sum(len(m) for m in s.messages)
    listing = s.line(b"LIST").reply.split("\r\n")
    assert listing[0] == "+OK 2 messages:" and listing[-2] == "."
    retr = s.line(b"RETR 1")
    assert "To: alice@corp.local\r\n" in retr.reply and retr.reply.endswith("\r\n.\r\n")
    assert retr.notes[0].fields["command"] == "RETR"
    top = s.line(b"TOP 2 0").reply
    assert "Subject: Nightly backup report" in top and "Backup job" not in top
    assert s.line(b"RETR 9").reply == "-ERR There's no message 9.\r\n"
    assert s.line(b"DELE 1").reply == "+OK Marked to be deleted.\r\n"
    assert s.line(b"STAT").reply.startswith("+OK 1 ")
    assert s.line(b"UIDL 2").reply.startswith("+OK 2 ")
    quit_ = s.line(b"QUIT")
    assert quit_.close and quit_.reply == "+OK Logging out, messages deleted.\r\n"


def test_apop_digest_is_captured_and_verified() -> None:
    s = session(apop=True, users={"bob": "secret"})
    greeting = s.greeting()
    challenge = greeting.split()[-1]
    assert challenge.startswith("<") and challenge.endswith("@mail.example.com>")
    wrong = hashlib.md5((challenge + "guess").encode()).hexdigest()
    step = s.line(f"APOP bob {wrong}".encode())
    assert step.reply.startswith("-ERR")
    fields = step.notes[0].fields
    assert fields["password_hash"] == wrong and fields["hash_type"] == "apop"
    assert fields["challenge"] == challenge
    right = hashlib.md5((challenge + "secret").encode()).hexdigest()
    assert s.line(f"APOP bob {right}".encode()).reply == "+OK Logged in.\r\n"


def test_sasl_plain_and_login() -> None:
    s = session()
    assert s.line(b"AUTH PLAIN").reply == "+ \r\n"
    step = s.line(base64.b64encode(b"\0admin\0admin123"))
    assert step.notes[0].fields["password"] == "admin123"
    s.line(b"AUTH LOGIN")
    s.line(base64.b64encode(b"postmaster"))
    step = s.line(base64.b64encode(b"pass"))
    assert (step.notes[0].fields["username"], step.notes[0].fields["mechanism"]) == \
        ("postmaster", "LOGIN")


def test_too_many_bad_commands_disconnect() -> None:
    s = session(maxErrors=3)
    s.line(b"\x00\xff")
    s.line(b"HELLO")
    assert s.line(b"XYZZY").close


def test_dot_stuffing() -> None:
    assert pop3.dot_stuff(b"a\r\n.b\r\n") == "a\r\n..b\r\n"
