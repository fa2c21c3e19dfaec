"""MongoDB: the BSON codec under hostile input, OP_MSG framing, the command answers."""

from __future__ import annotations

import struct

import pytest

from decnet.emulators import bson
from decnet.emulators.services import mongodb


def test_bson_round_trip_of_the_types_drivers_send() -> None:
    doc = {"a": 1, "b": bson.Int64(1 << 40), "c": 1.5, "d": "x", "e": True, "f": None,
           "g": [1, "two"], "h": {"i": b"\x01\x02"}, "j": bson.ObjectId(b"\x01" * 12)}
    assert bson.decode(bson.encode(doc)) == doc


@pytest.mark.parametrize("junk", [b"", b"\x05\0\0\0", b"\xff\xff\xff\x7f\0", b"\x10\0\0\0\x02a\0"
                                  b"\xff\xff\xff\x7f\0\0", b"\x08\0\0\0\x99a\0\0"])
def test_bson_decoder_refuses_broken_documents(junk: bytes) -> None:
    with pytest.raises(bson.BSONError):
        bson.decode(junk)


def test_bson_decoder_refuses_deep_nesting() -> None:
    doc: dict[str, object] = {"x": 1}
    for _ in range(bson.MAX_DEPTH + 2):
        doc = {"x": doc}
    with pytest.raises(bson.BSONError):
        bson.decode(bson.encode(doc))


def test_op_msg_body_and_document_sequence_are_read() -> None:
    seq_docs = bson.encode({"_id": 1}) + bson.encode({"_id": 2})
    seq = b"\x01" + struct.pack("<i", 4 + len(b"documents\0") + len(seq_docs)) + b"documents\0"
    body = struct.pack("<I", 0) + b"\x00" + bson.encode({"insert": "users", "$db": "shop"})
    cmd = mongodb.parse_msg(body + seq + seq_docs)
    assert cmd["insert"] == "users" and cmd["documents"] == [{"_id": 1}, {"_id": 2}]


def test_build_info_and_server_status_carry_the_configured_version() -> None:
    server = mongodb.Server(dict(mongodb.DEFAULTS, version="4.4.29"), "db-01")
    reply, kind, _ = server.handle({"buildInfo": 1, "$db": "admin"}, 1)
    assert reply["version"] == "4.4.29" and reply["versionArray"] == [4, 4, 29, 0]
    reply, _, _ = server.handle({"serverStatus": 1}, 1)
    raw = bson.encode(reply)
    assert b"version\0\x07\0\0\0" + b"4.4.29\0" in raw  # what nmap's MongoDB match reads


def test_sasl_start_records_user_and_plain_password_then_fails() -> None:
    server = mongodb.Server(dict(mongodb.DEFAULTS), "db-01")
    reply, kind, fields = server.handle({"saslStart": 1, "mechanism": "SCRAM-SHA-256",
                                         "payload": b"n,,n=ad=2Cmin,r=abc", "$db": "admin"}, 1)
    assert kind == "auth" and fields["username"] == "ad,min" and reply["code"] == 18
    _, kind, fields = server.handle({"saslStart": 1, "mechanism": "PLAIN",
                                     "payload": b"\0bob\0hunter2"}, 1)
    assert fields["password"] == "hunter2"


def test_require_auth_config_refuses_listing() -> None:
    server = mongodb.Server(dict(mongodb.DEFAULTS, requireAuth=True), "db-01")
    reply, _, _ = server.handle({"listDatabases": 1}, 1)
    assert reply["code"] == 13 and reply["ok"] == 0.0
