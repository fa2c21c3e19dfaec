"""SMTP as Postfix answers it: greeting, EHLO, AUTH capture, relay policy, DATA accounting."""

from __future__ import annotations

import base64
import json
from typing import Any

from decnet.emulators import core
from decnet.emulators.services import smtp


def session(**config: Any) -> smtp.Session:
    return smtp.Session(core.load_config(smtp.DEFAULTS, json.dumps(config)))


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


def test_greeting_and_ehlo_follow_the_config() -> None:
    s = session(hostname="mx1.corp.local")
    assert s.greeting() == "220 mx1.corp.local ESMTP Postfix (Debian/GNU)\r\n"
    assert session(banner="relay.corp ESMTP Exim 4.96").greeting() == \
        "220 relay.corp ESMTP Exim 4.96\r\n"
    step = s.line(b"EHLO attacker.example")
    assert step.reply.startswith("250-mx1.corp.local\r\n")
    assert "250-AUTH PLAIN LOGIN\r\n" in step.reply and step.reply.endswith("250 SMTPUTF8\r\n")
    assert "STARTTLS" not in step.reply  # not implemented, so never advertised
    assert step.notes[0].fields["helo"] == "attacker.example"


def test_envelope_commands_need_helo_first() -> None:
    s = session()
    assert s.line(b"MAIL FROM:<a@b.c>").reply.startswith("503 5.5.1 Error: send HELO/EHLO")
    assert s.line(b"HELO x").reply == "250 mail.example.com\r\n"
    assert s.line(b"RCPT TO:<root@example.com>").reply.startswith("503 5.5.1 Error: need MAIL")
    assert s.line(b"DATA").reply.startswith("503")


def test_foreign_recipients_are_refused_and_reported() -> None:
    s = session(domains=["corp.local"])
    s.line(b"EHLO x")
    s.line(b"MAIL FROM:<spam@bulk.example>")
    denied = s.line(b"RCPT TO:<victim@gmail.com>")
    assert denied.reply == "554 5.7.1 <victim@gmail.com>: Relay access denied\r\n"
    assert [n.fields.get("result") for n in denied.notes] == [None, "relay_denied"]
    assert denied.notes[1].fields["rcpt_to"] == "victim@gmail.com"
    assert s.line(b"RCPT TO:<ceo@corp.local>").reply == "250 2.1.5 Ok\r\n"
    assert s.line(b"DATA").data


def test_auth_login_and_plain_are_captured() -> None:
    s = session(users={"svc": "Winter2026!"})
    s.line(b"EHLO x")
    assert s.line(b"AUTH LOGIN").reply == "334 VXNlcm5hbWU6\r\n"
    assert s.line(b64("admin")).reply == "334 UGFzc3dvcmQ6\r\n"
    failed = s.line(b64("hunter2"))
    assert failed.reply.startswith("535 5.7.8 Error: authentication failed")
    auth = failed.notes[-1]
    assert (auth.kind, auth.fields["username"], auth.fields["password"],
            auth.fields["mechanism"]) == ("auth", "admin", "hunter2", "LOGIN")
    ok = s.line(b"AUTH PLAIN " + b64("\0svc\0Winter2026!"))
    assert ok.reply == "235 2.7.0 Authentication successful\r\n"
    assert ok.notes[0].fields["args"] == "PLAIN"  # the blob never lands in a command event
    assert ok.notes[-1].fields["result"] == "accepted"
    s.line(b"MAIL FROM:<svc@corp.local>")
    assert s.line(b"RCPT TO:<anyone@gmail.com>").reply == "250 2.1.5 Ok\r\n"  # SASL users relay


def test_auth_aborted_and_garbage() -> None:
    s = session()
    s.line(b"EHLO x")
    assert s.line(b"AUTH PLAIN").reply == "334 \r\n"
    assert s.line(b"*").reply.startswith("501 5.7.0 Authentication aborted")
    assert s.line(b"AUTH CRAM-MD5").reply.startswith("535")
    assert s.line(b"AUTH PLAIN !!!notbase64").reply.startswith("501")


def test_message_is_measured_not_kept() -> None:
    s = session()
    s.line(b"EHLO x")
    s.line(b"MAIL FROM:<a@x.org>")
    s.line(b"RCPT TO:<root@example.com>")
    digest = smtp.Digest()
    for line in (b"Subject: Invoice", b"  overdue", b"", b"..hidden dot", b"body"):
        digest.add(line)
    step = s.message_done(digest.size, digest.sha.hexdigest(), bytes(digest.head))
    assert step.reply.startswith("250 2.0.0 Ok: queued as ")
    data = step.notes[0].fields
    assert data["subject"] == "Invoice overdue"
    assert data["size"] == digest.size == len(b"Subject: Invoice\r\n  overdue\r\n\r\n.hidden dot\r\nbody\r\n")
    assert data["mail_from"] == "a@x.org" and data["rcpt_to"] == "root@example.com"
    assert s.mail_from is None and not s.rcpts  # a new transaction starts


def test_oversized_message_is_refused() -> None:
    s = session(maxMessageSize=100)
    s.line(b"EHLO x")
    s.line(b"MAIL FROM:<a@x.org>")
    s.line(b"RCPT TO:<root@example.com>")
    step = s.message_done(5000, "0" * 64, b"")
    assert step.reply.startswith("552 5.3.4") and step.notes[0].fields["result"] == "too_big"


def test_vrfy_expn_and_too_many_errors() -> None:
    s = session(maxErrors=3)
    assert s.line(b"VRFY root").reply == "252 2.0.0 root\r\n"
    assert s.line(b"VRFY nobody").reply.startswith("550 5.1.1 <nobody>")
    assert s.line(b"EXPN staff").reply.startswith("502 5.5.2")
    last = s.line(b"BOGUS")
    assert last.close and "421 4.7.0 mail.example.com Error: too many errors" in last.reply
    assert s.line(b"QUIT").close


def test_auth_disabled_is_not_advertised() -> None:
    s = session(authMechanisms="")
    assert "AUTH" not in s.line(b"EHLO x").reply
    assert s.line(b"AUTH PLAIN AGEAYg==").reply == "503 5.5.1 Error: authentication not enabled\r\n"


def test_envelope_and_header_helpers() -> None:
    from decnet.emulators import mailproto

    assert mailproto.address("FROM:<a@b.c> SIZE=10") == "a@b.c"
    assert mailproto.address("TO: user@host") == "user@host"
    assert mailproto.address("FROM:<>") == ""
    assert mailproto.address("FROM:<unterminated") == "unterminated"
    assert mailproto.domain_of("x@Example.COM.") == "example.com" and mailproto.domain_of("x") == ""
    assert mailproto.header_value(b"From: a\r\n\r\nSubject: in body\r\n", "subject") == ""
    assert mailproto.sasl_plain(base64.b64encode(b"only-two\0parts")) is None
    assert mailproto.sasl_plain(base64.b64encode(b"authz\0\0pw")) == ("authz", "pw")


def test_relay_tricks_resolve_to_the_foreign_domain() -> None:
    s = session(hostname="mx.corp.local", domains=["corp.local"])
    s.local_ips.add("10.0.0.5")
    tricks = ["relaytest%nmap.scanme.org@[10.0.0.5]", "relaytest%nmap.scanme.org@corp.local",
              '"relaytest@nmap.scanme.org"', '"relaytest%nmap.scanme.org"',
              "relaytest@nmap.scanme.org@[10.0.0.5]", '"relaytest@nmap.scanme.org"@[10.0.0.5]',
              "relaytest@nmap.scanme.org@mx.corp.local", "@[10.0.0.5]:relaytest@nmap.scanme.org",
              "@mx.corp.local:relaytest@nmap.scanme.org", "nmap.scanme.org!relaytest",
              "nmap.scanme.org!relaytest@[10.0.0.5]", "nmap.scanme.org!relaytest@corp.local",
              "x@[8.8.8.8]"]
    for rcpt in tricks:
        assert smtp.destination(rcpt, s.local_domain) not in ("", "corp.local"), rcpt
    s.line(b"EHLO x")
    s.line(b"MAIL FROM:<a@b.c>")
    for rcpt in tricks:
        assert s.line(f"RCPT TO:<{rcpt}>".encode()).reply.startswith("554 5.7.1"), rcpt
        s.errors = 0
    for rcpt in ("postmaster", "root@[10.0.0.5]", "ceo@CORP.LOCAL.", "a%corp.local@corp.local"):
        assert s.line(f"RCPT TO:<{rcpt}>".encode()).reply == "250 2.1.5 Ok\r\n", rcpt


def test_data_of_any_line_length_is_measured_to_the_lone_dot() -> None:
    import asyncio
    import hashlib

    async def read(data: bytes) -> smtp.Digest | None:
        reader = asyncio.StreamReader(limit=8192)
        reader.feed_data(data)
        reader.feed_eof()
        return await smtp.read_message(reader, 5)

    long_line = b"<p>" + b"x" * 100_000 + b"</p>\r\n"
    body = b"Subject: html\r\n\r\n" + long_line + b"..dot\r\n.\r\nQUIT\r\n"
    digest = asyncio.run(read(body))
    assert digest is not None
    expected = b"Subject: html\r\n\r\n" + long_line + b".dot\r\n"
    assert digest.size == len(expected) and digest.sha.hexdigest() == \
        hashlib.sha256(expected).hexdigest()
    assert len(digest.head) == smtp.HEAD_KEEP
    assert asyncio.run(read(b"no terminator\r\n")) is None
