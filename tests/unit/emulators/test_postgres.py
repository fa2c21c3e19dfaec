"""PostgreSQL wire pieces: startup parameters, errors a client and a scanner read."""

from __future__ import annotations

import struct

from decnet.emulators.services import postgres


def test_startup_parameters_are_parsed_and_bounded() -> None:
    body = b"user\0alice\0database\0hr\0application_name\0psql\0\0"
    assert postgres.parse_startup(body) == {"user": "alice", "database": "hr",
                                            "application_name": "psql"}
    many = b"".join(b"k%d\0v\0" % i for i in range(100)) + b"\0"
    assert len(postgres.parse_startup(many)) == 32


def test_auth_failure_is_fatal_28p01_naming_the_user() -> None:
    msg = postgres.auth_failed("postgres")
    assert msg[:1] == b"E" and struct.unpack("!I", msg[1:5])[0] == len(msg) - 1
    assert b"C28P01\0" in msg and b'password authentication failed for user "postgres"' in msg


def test_wrong_protocol_names_postmaster_line_of_the_configured_major() -> None:
    msg = postgres.unsupported_protocol("15.6 (Debian 15.6-0+deb12u1)", 0xFF534D42)
    assert b"unsupported frontend protocol 65363.19778" in msg
    assert b"Fpostmaster.c\0L2194\0RProcessStartupPacket\0\0" in msg
    assert b"L2138" in postgres.unsupported_protocol("14.10", 0xFF534D42)


def test_canned_rows_come_from_the_config() -> None:
    config = dict(postgres.DEFAULTS, version="13.14", databases=["crm"])
    assert b"PostgreSQL 13.14" in postgres.answer(config, "u", "d", "select version();")
    listing = postgres.answer(config, "u", "d", "SELECT d.datname FROM pg_catalog.pg_database d")
    assert b"crm" in listing and b"SELECT 1" in listing
    assert b"42501" in postgres.answer(config, "u", "d", "select * from salaries")
    assert postgres.answer(config, "u", "d", "SET x=1").startswith(b"C")
