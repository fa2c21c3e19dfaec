"""MySQL wire pieces: the greeting scanners read, the login record, the hash a cracker needs."""

from __future__ import annotations

import hashlib
import struct

from decnet.emulators.services import mysql


def _login(user: bytes, auth: bytes, db: bytes = b"", attrs: dict[bytes, bytes] | None = None
           ) -> bytes:
    caps = (mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH
            | mysql.CLIENT_CONNECT_ATTRS | (mysql.CLIENT_CONNECT_WITH_DB if db else 0))
    body = struct.pack("<IIB", caps, 1 << 24, 33) + b"\0" * 23 + user + b"\0"
    body += bytes([len(auth)]) + auth + (db + b"\0" if db else b"") + mysql.NATIVE + b"\0"
    packed = b"".join(bytes([len(k)]) + k + bytes([len(v)]) + v for k, v in (attrs or {}).items())
    return body + bytes([len(packed)]) + packed


def test_greeting_is_protocol_10_with_version_and_native_plugin() -> None:
    salt = b"A" * 20
    g = mysql.greeting("8.0.36-0+deb12u1", 42, salt)
    assert g[0] == 10 and g[1:].startswith(b"8.0.36-0+deb12u1\0")
    assert struct.unpack_from("<I", g, 18)[0] == 42
    assert g.endswith(b"mysql_native_password\0")
    assert salt[:8] in g and salt[8:] in g


def test_login_record_yields_user_database_and_client_attributes() -> None:
    data = _login(b"root", b"x" * 20, b"shop", {b"_client_name": b"libmariadb",
                                                 b"program_name": b"mysql"})
    login = mysql.parse_login(data)
    assert login["username"] == "root" and login["database"] == "shop"
    assert login["auth"] == b"x" * 20 and login["plugin"] == "mysql_native_password"
    assert login["attrs"] == {"_client_name": "libmariadb", "program_name": "mysql"}


def test_native_scramble_matches_the_published_algorithm() -> None:
    salt = bytes(range(20))
    sent = mysql.native_scramble("secret", salt)
    stage1 = hashlib.sha1(b"secret").digest()
    # the server-side check: SHA1(sent XOR SHA1(salt + SHA1(stage1))) == SHA1(stage1)
    mask = hashlib.sha1(salt + hashlib.sha1(stage1).digest()).digest()
    recovered = bytes(a ^ b for a, b in zip(sent, mask, strict=True))
    assert recovered == stage1 and mysql.native_scramble("", salt) == b""


def test_access_denied_is_error_1045_state_28000() -> None:
    p = mysql.access_denied(2, "root", "10.0.0.9", True)
    assert p[3] == 2 and p[4] == 0xFF and struct.unpack_from("<H", p, 5)[0] == 1045
    assert b"#28000Access denied for user 'root'@'10.0.0.9' (using password: YES)" in p


def test_garbage_login_records_raise_value_errors_only() -> None:
    for junk in (b"", b"\x00" * 8, b"\xff" * 40, _login(b"u", b"x")[:33]):
        try:
            mysql.parse_login(junk)
        except (ValueError, IndexError, struct.error):
            pass


def test_canned_answers_follow_the_config() -> None:
    config = dict(mysql.DEFAULTS, databases=["hr"], version="5.7.44-log")
    assert b"5.7.44-log" in mysql.answer_query(config, "u", "h", "", "SELECT @@version;")
    assert b"hr" in mysql.answer_query(config, "u", "h", "", "show databases")
    assert b"1146" not in mysql.answer_query(config, "u", "h", "", "select * from users")
    assert b"doesn't exist" in mysql.answer_query(config, "u", "h", "", "select * from nope")
