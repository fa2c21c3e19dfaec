"""vsftpd's replies, passive-mode addresses, chroot paths and listings."""

from __future__ import annotations

from decnet.emulators import shell
from decnet.emulators.services import ftp


def test_commands_are_parsed_and_bounded() -> None:
    assert ftp.parse_command(b"user anonymous\r\n") == ("USER", "anonymous")
    assert ftp.parse_command(b"PASV") == ("PASV", "")
    verb, arg = ftp.parse_command(b"X" * 100 + b" " + b"y" * 5000)
    assert len(verb) == 16 and len(arg) == 1024


def test_passive_replies() -> None:
    assert ftp.pasv_reply("10.20.0.15", 40001) == \
        "227 Entering Passive Mode (10,20,0,15,156,65)."
    assert ftp.epsv_reply(40001) == "229 Entering Extended Passive Mode (|||40001|)"
    assert ftp.feat_reply().startswith("211-Features:\r\n EPRT\r\n")
    assert ftp.feat_reply().endswith("211 End")


def test_anonymous_paths_stay_inside_the_chroot() -> None:
    root = "/srv/ftp"
    assert ftp.resolve("/", "../../etc/passwd", root) == "/srv/ftp/etc/passwd"
    assert ftp.resolve("/pub", "x", root) == "/srv/ftp/pub/x"
    assert ftp.visible("/srv/ftp/pub", root) == "/pub"
    assert ftp.resolve("/home/admin", "../../etc/passwd", "/") == "/etc/passwd"


def test_listing_shows_lures_with_numeric_ids() -> None:
    persona = shell.Persona(hostname="h", users=("admin",), boot_time=1_700_000_000.0)
    lure = shell.Node("f", 0o600, "", "", 1_700_000_000.0, b"secret\n")
    fs = shell.build_fs(persona, {"/home/admin/passwords.txt": lure})
    lines = ftp.list_lines(fs, persona, "/home/admin", False, 1_700_000_100.0)
    assert lines == ["-rw-------    1 1000     1000                7 Nov 14 22:13 passwords.txt"]
    assert ftp.list_lines(fs, persona, "/home/admin", True, 0) == ["passwords.txt"]
    assert ftp.list_lines(fs, persona, "/nope", False, 0) == []
