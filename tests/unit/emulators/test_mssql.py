"""SQL Server: the pre-login answer nmap reads, LOGIN7 de-obfuscation, the 18456 error."""

from __future__ import annotations

import struct

from decnet.emulators.services import mssql


def test_prelogin_answer_has_the_configured_version_and_no_encryption() -> None:
    p = mssql.prelogin_response("15.0.2000")
    assert p.startswith(b"\x04\x01\x00\x25\x00\x00\x01\x00")
    assert p[8:29] == (b"\x00\x00\x15\x00\x06\x01\x00\x1b\x00\x01\x02\x00\x1c\x00\x01"
                       b"\x03\x00\x1d\x00\x00\xff")
    assert p[29:35] == b"\x0f\x00\x07\xd0\x00\x00" and p[35] == mssql.ENCRYPT_NOT_SUP


def test_password_obfuscation_round_trips() -> None:
    assert mssql.deobfuscate(mssql.obfuscate("P@ssw0rd!€")) == "P@ssw0rd!€"
    assert mssql.obfuscate("a")[:2] == bytes([0xB3, 0xA5])  # 'a' = 0x61 -> swap 0x16 ^ 0xA5


def _login7(user: str, password: str, host: str = "WS1", app: str = "sqlcmd") -> bytes:
    fields = [host, user, "", app, "srv", "", "ODBC", "", "master"]
    data, offset = b"", 94
    slots = b""
    for i, value in enumerate(fields):
        raw = mssql.obfuscate(password) if i == 2 else value.encode("utf-16-le")
        slots += struct.pack("<HH", offset + len(data), len(raw) // 2)
        data += raw
    fixed = struct.pack("<IIIIII", 94 + len(data), 0x74000004, 4096, 7, 1234, 0) + b"\0" * 12
    tail = b"\0" * 6 + struct.pack("<HH", 0, 0) + b"\0" * 8 + struct.pack("<I", 0)
    return fixed + slots + tail + data


def test_login7_yields_user_password_workstation_and_app() -> None:
    login = mssql.parse_login7(_login7("sa", "Secr3t!"))
    assert (login["username"], login["password"], login["workstation"],
            login["application"], login["database"]) == ("sa", "Secr3t!", "WS1", "sqlcmd",
                                                         "master")
    assert login["sspi"] is False and login["client_pid"] == 1234


def test_login_failed_is_error_18456() -> None:
    p = mssql.login_failed("sa", "DB01")
    assert p[0] == mssql.TABULAR and p[8] == 0xAA
    assert struct.unpack_from("<I", p, 11)[0] == 18456
    assert "Login failed for user 'sa'.".encode("utf-16-le") in p
    assert p[-13] == 0xFD  # DONE with the error bit


def test_encryption_answer_follows_the_client_like_a_server_with_a_certificate() -> None:
    assert mssql.encryption_answer(mssql.ENCRYPT_OFF, True) == mssql.ENCRYPT_OFF
    assert mssql.encryption_answer(mssql.ENCRYPT_REQ, True) == mssql.ENCRYPT_ON
    assert mssql.encryption_answer(mssql.ENCRYPT_NOT_SUP, True) == mssql.ENCRYPT_NOT_SUP
    assert mssql.encryption_answer(mssql.ENCRYPT_ON, False) == mssql.ENCRYPT_NOT_SUP


def test_login_failed_uses_the_narrow_layout_for_tds_7_1_clients() -> None:
    wide = mssql.login_failed("sa", "DB01", 0x74000004)
    narrow = mssql.login_failed("sa", "DB01", 0x71000001)
    assert len(wide) - len(narrow) == 2 + 4  # line number and row count widened in 7.2
    assert narrow[-9] == 0xFD
