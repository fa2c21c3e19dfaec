"""Telnet option stripping, the line discipline and the bytes scanners fingerprint."""

from __future__ import annotations

from decnet.emulators.services import telnet as t


def test_debian_style_opens_like_linux_telnetd() -> None:
    assert t.opening(t.DEFAULTS) == b"\xff\xfd\x18\xff\xfd \xff\xfd#\xff\xfd'"
    busybox = {**t.DEFAULTS, "style": "busybox"}
    assert t.opening(busybox).startswith(b"\xff\xfd\x01\xff\xfd\x1f\xff\xfd!\xff\xfb\x01")


def test_login_prompt_shows_issue_then_hostname() -> None:
    assert t.login_prompt(t.DEFAULTS, "web-01", True) == b"\r\nDebian GNU/Linux 12\r\nweb-01 login: "
    assert t.login_prompt(t.DEFAULTS, "web-01", False) == b"web-01 login: "
    custom = {**t.DEFAULTS, "issue": "Ubuntu 22.04.4 LTS"}
    assert b"Ubuntu 22.04.4 LTS" in t.login_prompt(custom, "h", True)


def test_decoder_strips_negotiation_across_packet_boundaries() -> None:
    d = t.Decoder()
    out = d.feed(b"ro\xff\xfb\x18\xff")  # WILL TTYPE, then a split IAC
    out += d.feed(b"\xfa\x18\x00xterm\xff\xf0ot\xff\xff\r\n")  # SB TTYPE IS xterm SE, IAC IAC
    assert out == b"root\xff\r\n"
    assert (t.WILL, t.TTYPE) in d.options


def test_decoder_bounds_an_endless_subnegotiation() -> None:
    d = t.Decoder()
    d.feed(b"\xff\xfa" + b"A" * (t.MAX_SUBNEGOTIATION + 10))
    assert d.feed(b"ls\r\n") == b"ls\r\n"


def test_line_editor_echo_backspace_and_endings() -> None:
    e = t.LineEditor()
    echo, lines = e.feed(b"lx\x7fs\r\x00pwd\r\n")
    assert lines == ["ls", "pwd"]
    assert echo == b"lx\b \bs\r\npwd\r\n"
    e.echo = False
    echo, lines = e.feed(b"secret\r\n")
    assert lines == ["secret"] and echo == b"\r\n"
    assert e.feed(b"\x04")[1] == [None]
    _, lines = e.feed(b"x" * (t.MAX_TELNET_LINE + 500) + b"\n")
    assert len(lines[0] or "") == t.MAX_TELNET_LINE


def test_crlf_output() -> None:
    assert t.crlf("a\nb\r\nc") == b"a\r\nb\r\nc"
