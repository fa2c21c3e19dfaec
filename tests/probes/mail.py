"""Mail-family probes: smtplib, poplib and imaplib against smtp, smtp-relay, pop3, imap."""

from __future__ import annotations

import imaplib
import poplib
import smtplib

from tests.probes import NMAP, Expect, Port, probe

NMAP["smtp"] = (25, "tcp", "Postfix")
NMAP["smtp-relay"] = (25, "tcp", "Postfix")
NMAP["pop3"] = (110, "tcp", "Dovecot")
NMAP["imap"] = (143, "tcp", "Dovecot")

MESSAGE = "From: it@example.com\r\nSubject: probe invoice 42\r\n\r\nplease pay\r\n"


@probe("smtp")
def smtp(host: str, port: Port) -> list[Expect]:
    with smtplib.SMTP(host, port(25), local_hostname="probe.example", timeout=20) as s:
        code, _ = s.ehlo("probe.example")
        assert code == 250 and s.has_extn("auth"), s.esmtp_features
        s.user, s.password = "admin", "Pr0be!pass"
        try:
            s.auth("LOGIN", s.auth_login, initial_response_ok=False)
            raise AssertionError("a guessed password was accepted")
        except smtplib.SMTPAuthenticationError as error:
            assert error.smtp_code == 535, error
        s.sendmail("it@example.com", ["root@example.com"], MESSAGE)
    return [
        Expect("command", {"command": "EHLO", "helo": "probe.example"}),
        Expect("auth", {"username": "admin", "password": "Pr0be!pass", "mechanism": "LOGIN"}),
        Expect("data", {"mail_from": "it@example.com", "rcpt_to": "root@example.com",
                        "subject": "probe invoice 42"}),
    ]


@probe("smtp-relay")
def smtp_relay(host: str, port: Port) -> list[Expect]:
    with smtplib.SMTP(host, port(25), local_hostname="bulk.example", timeout=20) as s:
        refused = s.sendmail("promo@bulk.example", ["victim@mail.example.org"], MESSAGE)
        assert refused == {}, refused
    return [Expect("data", {"mail_from": "promo@bulk.example",
                            "rcpt_to": "victim@mail.example.org",
                            "subject": "probe invoice 42", "relay": "yes"})]


@probe("pop3")
def pop3(host: str, port: Port) -> list[Expect]:
    client = poplib.POP3(host, port(110), timeout=20)
    try:
        assert client.getwelcome().startswith(b"+OK Dovecot"), client.getwelcome()
        client.user("mailadmin")
        try:
            client.pass_("Pop3-probe")
            raise AssertionError("a guessed password was accepted")
        except poplib.error_proto as error:
            assert b"Authentication failed" in error.args[0], error
    finally:
        client.quit()
    return [Expect("auth", {"username": "mailadmin", "password": "Pop3-probe",
                            "mechanism": "USER"})]


@probe("imap")
def imap(host: str, port: Port) -> list[Expect]:
    client = imaplib.IMAP4(host, port(143), timeout=20)
    try:
        assert "IMAP4REV1" in client.capabilities, client.capabilities
        try:
            client.login("jsmith", "Imap probe")
            raise AssertionError("a guessed password was accepted")
        except imaplib.IMAP4.error as error:
            assert "AUTHENTICATIONFAILED" in str(error), error
    finally:
        client.logout()
    return [Expect("auth", {"username": "jsmith", "password": "Imap probe",
                            "mechanism": "LOGIN"})]
