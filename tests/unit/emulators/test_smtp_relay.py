"""The open relay: the smtp state machine with relaying on."""

from __future__ import annotations

from decnet.emulators.services import smtp, smtp_relay


def test_relay_accepts_any_recipient_and_reports_the_attempt() -> None:
    s = smtp.Session(dict(smtp_relay.DEFAULTS))
    s.line(b"EHLO spammer")
    s.line(b"MAIL FROM:<promo@bulk.example>")
    assert s.line(b"RCPT TO:<victim@gmail.com>").reply == "250 2.1.5 Ok\r\n"
    assert s.line(b"RCPT TO:<other@yahoo.com>").reply == "250 2.1.5 Ok\r\n"
    step = s.message_done(42, "ab" * 32, b"Subject: WIN\r\n\r\n")
    assert step.reply.startswith("250 2.0.0 Ok: queued as ")
    note = step.notes[0]
    assert note.kind == "data" and note.message == "relay attempt"
    assert note.fields["rcpt_to"] == "victim@gmail.com,other@yahoo.com"
    assert note.fields["subject"] == "WIN" and note.fields["relay"] == "yes"


def test_relay_takes_any_password() -> None:
    s = smtp.Session(dict(smtp_relay.DEFAULTS))
    s.line(b"EHLO x")
    step = s.line(b"AUTH PLAIN AHVzZXIAcGFzcw==")
    assert step.reply.startswith("235") and step.notes[-1].fields["password"] == "pass"


def test_shares_ports_with_smtp() -> None:
    assert smtp_relay.PORTS == smtp.PORTS == [(25, "tcp")]
