"""SMTP, the open relay, POP3 and IMAP as real mail clients see them, and what gets reported."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket

import pytest
from tests import emulator_harness as h


def test_smtp_banner_relay_policy_and_capture() -> None:
    with h.run("smtp", {"hostname": "mx.corp.local", "domains": ["corp.local"]}) as emu:
        with smtplib.SMTP("127.0.0.1", emu.port(25), timeout=20) as s:
            code, banner = s.ehlo("evil.example")
            assert code == 250 and banner.startswith(b"mx.corp.local\n")
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                s.sendmail("a@evil.example", ["victim@gmail.com"], "Subject: x\r\n\r\nhi\r\n")
            assert refused.value.recipients["victim@gmail.com"][0] == 554
            s.sendmail("a@evil.example", ["ceo@corp.local"],
                       "Subject: Urgent wire\r\n\r\nsecret body text\r\n")
        emu.wait_event("request", result="relay_denied", rcpt_to="victim@gmail.com")
        data = emu.wait_event("data", rcpt_to="ceo@corp.local")
        assert data.get("subject") == "Urgent wire" and data.get("helo") == "evil.example"
        assert int(data.get("size")) == len(b"Subject: Urgent wire\r\n\r\nsecret body text\r\n")
        assert not any("secret body text" in line for line in emu.lines)  # bodies never kept


def test_smtp_banner_from_config_is_the_greeting() -> None:
    with h.run("smtp", {"banner": "gw.corp.local ESMTP Sendmail 8.17.1/8.17.1"}) as emu:
        with socket.create_connection(("127.0.0.1", emu.port(25)), timeout=20) as sock:
            assert sock.recv(512) == b"220 gw.corp.local ESMTP Sendmail 8.17.1/8.17.1\r\n"


def test_open_relay_queues_foreign_mail() -> None:
    with h.run("smtp-relay") as emu:
        with smtplib.SMTP("127.0.0.1", emu.port(25), timeout=20) as s:
            s.login("anyone", "anything")
            assert s.sendmail("x@bulk.example", ["a@gmail.com", "b@yahoo.com"],
                              "Subject: cheap pills\r\n\r\nbuy\r\n") == {}
            html = "Subject: newsletter\r\n\r\n<p>" + "y" * 50_000 + "</p>\r\n"
            assert s.sendmail("x@bulk.example", ["c@gmail.com"], html) == {}  # long lines pass
        data = emu.wait_event("data", subject="cheap pills")
        assert data.get("rcpt_to") == "a@gmail.com,b@yahoo.com" and data.get("relay") == "yes"
        assert int(emu.wait_event("data", subject="newsletter").get("size")) == len(html)
        assert emu.wait_event("auth", username="anyone").get("result") == "accepted"


def test_pop3_user_reads_the_mailbox_and_apop_is_captured() -> None:
    config = {"users": {"alice": "Spring2026"}, "apop": True, "domain": "corp.local"}
    with h.run("pop3", config) as emu:
        client = poplib.POP3("127.0.0.1", emu.port(110), timeout=20)
        client.user("alice")
        assert client.pass_("Spring2026").startswith(b"+OK Logged in")
        count, _ = client.stat()
        _, lines, _ = client.retr(1)
        assert count == 2 and b"To: alice@corp.local" in lines
        client.quit()
        emu.wait_event("command", command="RETR", username="alice")
        apop = poplib.POP3("127.0.0.1", emu.port(110), timeout=20)
        with pytest.raises(poplib.error_proto):
            apop.apop("alice", "wrong")
        apop.close()
        event = emu.wait_event("auth", mechanism="APOP")
        assert event.get("hash_type") == "apop" and len(event.get("password_hash")) == 32


def test_imap_login_select_fetch() -> None:
    with h.run("imap", {"users": {"bob": "pw"}}) as emu:
        client = imaplib.IMAP4("127.0.0.1", emu.port(143), timeout=20)
        client.login("bob", "pw")
        assert client.select("INBOX") == ("OK", [b"2"])
        typ, data = client.fetch("2", "(BODY.PEEK[HEADER])")
        assert typ == "OK" and b"Subject: Nightly backup report" in data[0][1]  # type: ignore[index]
        client.logout()
        emu.wait_event("auth", username="bob", result="accepted")
        emu.wait_event("command", command="FETCH", username="bob")


def test_imap_literals_are_read_and_capped() -> None:
    with h.run("imap") as emu:
        with socket.create_connection(("127.0.0.1", emu.port(143)), timeout=20) as sock:
            f = sock.makefile("rwb")
            f.readline()
            f.write(b"a1 LOGIN {5}\r\n")
            f.flush()
            assert f.readline() == b"+ OK\r\n"
            f.write(b"admin {10+}\r\nP@ss w\"rd!\r\n")  # 10 bytes, then the end of the line
            f.flush()
            assert f.readline().startswith(b"a1 NO [AUTHENTICATIONFAILED]")
            f.write(b"a2 LOGIN {999999}\r\n")
            f.flush()
            assert f.readline() == b"* BYE Too long argument.\r\n"
        assert emu.wait_event("auth", username="admin").get("password") == 'P@ss w"rd!'
