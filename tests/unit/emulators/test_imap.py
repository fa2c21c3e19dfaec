"""IMAP as Dovecot answers it: tokens and literals, logins captured, a small INBOX."""

from __future__ import annotations

import base64

from decnet.emulators import core
from decnet.emulators.services import imap


def session(**config: object) -> imap.Session:
    merged = core.load_config(imap.DEFAULTS)
    merged.update(config)
    return imap.Session(merged)


def cmd(text: str) -> imap.Command:
    parsed = imap.parse([text])
    assert parsed is not None
    return parsed


def test_tokenizer_handles_quotes_escapes_and_sections() -> None:
    assert imap.tokenize('a1 LOGIN "jo \\"x\\"" "p w"') == ["a1", "LOGIN", 'jo "x"', "p w"]
    assert imap.tokenize("a FETCH 1 (BODY[HEADER.FIELDS (FROM)])") == \
        ["a", "FETCH", "1", "(", "BODY[HEADER.FIELDS (FROM)]", ")"]
    assert len(imap.tokenize("x " * 10000)) == 256


def test_literals_are_recognised_and_joined() -> None:
    assert imap.literal_tail(b"a LOGIN {5}") == (b"a LOGIN ", 5, False)
    assert imap.literal_tail(b"a LOGIN bob {12+}") == (b"a LOGIN bob ", 12, True)
    assert imap.literal_tail(b"a NOOP") is None
    parsed = imap.parse(["a LOGIN ", b"root", " ", b"p@ss word", ""])
    assert parsed is not None and parsed.args == ["root", "p@ss word"]


def test_greeting_and_failed_login() -> None:
    s = session()
    assert s.greeting().startswith("* OK [CAPABILITY IMAP4rev1 ") and \
        s.greeting().endswith("] Dovecot ready.\r\n")
    step = s.command(cmd('a1 LOGIN admin "Summer2026"'))
    assert step.reply == "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    assert step.notes == [imap.Note("auth", "login attempt", {
        "username": "admin", "password": "Summer2026", "mechanism": "LOGIN",
        "result": "rejected"})]
    assert s.command(cmd("a2 SELECT INBOX")).reply == "a2 NO Please log in first.\r\n"


def test_authenticate_plain_with_continuation() -> None:
    s = session(users={"bob": "pw"})
    assert s.command(cmd("a AUTHENTICATE PLAIN")).reply == "+ \r\n"
    step = s.continuation(base64.b64encode(b"\0bob\0pw"))
    assert step.reply.startswith("a OK [CAPABILITY ") and s.user == "bob"
    assert step.notes[0].fields["mechanism"] == "AUTHENTICATE PLAIN"


def test_logged_in_user_lists_selects_and_fetches() -> None:
    s = session(users={"bob": "pw"})
    s.command(cmd("a LOGIN bob pw"))
    listing = s.command(cmd('b LIST "" "*"')).reply
    assert '* LIST (\\HasNoChildren) "/" INBOX\r\n' in listing
    select = s.command(cmd("c SELECT INBOX")).reply
    assert "* 2 EXISTS\r\n" in select and select.endswith("c OK [READ-WRITE] Select completed "
                                                          "(0.001 + 0.000 secs).\r\n")
    fetch = s.command(cmd("d FETCH 1:* (FLAGS RFC822.SIZE)")).reply
    assert fetch.startswith("* 1 FETCH (FLAGS (\\Seen) RFC822.SIZE ")
    body = s.command(cmd("e UID FETCH 2 (BODY.PEEK[])")).reply
    size = len(s.messages[1])
    assert f"* 2 FETCH (UID 2 BODY[] {{{size}}}\r\n" in body and "Backup job" in body
    note = s.command(cmd("f SELECT Archive"))
    assert note.reply.startswith("f NO Mailbox doesn't exist")
    assert note.notes[0].fields["username"] == "bob"


def test_sequence_sets_are_bounded() -> None:
    assert imap.sequence("1:*", 2) == [1, 2]
    assert imap.sequence("2,1,9", 2) == [1, 2]
    assert imap.sequence("*:1", 3) == [1, 2, 3]
    assert imap.sequence("1:4294967295", 2) == [1, 2]
    assert imap.sequence("x", 2) == []


def test_logout_and_error_limit() -> None:
    s = session(maxErrors=2)
    assert s.command(cmd("a BOGUS")).close is False
    assert s.command(cmd("b BOGUS")).close
    assert session().command(cmd("z LOGOUT")).close


def test_list_wildcards_without_backtracking() -> None:
    import time

    assert imap.list_match("*", "INBOX") and imap.list_match("in%", "INBOX")
    assert imap.list_match("%", "Archive/2026") is False and imap.list_match("*", "Archive/2026")
    assert imap.list_match("Arch%/%", "Archive/2026") and not imap.list_match("Sent", "Trash")
    start = time.monotonic()
    assert not imap.list_match("*a" * 4000 + "Z", "INBOXaaaaaaaaaaaaaaaa")
    assert time.monotonic() - start < 1.0
