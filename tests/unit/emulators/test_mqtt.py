"""MQTT as Mosquitto answers it: CONNECT parsing for 3.1.1 and 5, CONNACK policy, topics."""

from __future__ import annotations

import pytest

from decnet.emulators import core
from decnet.emulators.services import mqtt


def string(s: str) -> bytes:
    return len(s.encode()).to_bytes(2, "big") + s.encode()


def connect_body(level: int, client: str, user: str | None = None, password: str | None = None,
                 will: bool = False) -> bytes:
    flags = 0x02 | (0x80 if user is not None else 0) | (0x40 if password is not None else 0)
    flags |= 0x04 if will else 0
    body = string("MQTT") + bytes([level, flags]) + (60).to_bytes(2, "big")
    props = b"\x00" if level == 5 else b""
    body += props + string(client)
    if will:
        body += props + string("last/will") + string("bye")
    if user is not None:
        body += string(user)
    if password is not None:
        body += string(password)
    return body


def config(**overrides: object) -> dict[str, object]:
    merged = core.load_config(mqtt.DEFAULTS)
    merged.update(overrides)
    return merged


def test_remaining_length_round_trip_and_bounds() -> None:
    for n in (0, 127, 128, 16383, 16384, 268435455):
        encoded = mqtt.encode_length(n)
        assert mqtt.decode_length(encoded + b"rest") == (n, len(encoded))
    assert mqtt.decode_length(b"\x80") is None
    with pytest.raises(mqtt.Malformed):
        mqtt.decode_length(b"\xff\xff\xff\xff\x01")


def test_connect_v311_and_v5_credentials() -> None:
    c = mqtt.parse_connect(connect_body(4, "sensor-1", "admin", "public", will=True))
    assert (c.level, c.client_id, c.username, c.password, c.will_topic) == \
        (4, "sensor-1", "admin", b"public", "last/will")
    c5 = mqtt.parse_connect(connect_body(5, "x", "u", "p", will=True))
    assert (c5.level, c5.username, c5.password) == (5, "u", b"p")
    with pytest.raises(mqtt.Malformed):
        mqtt.parse_connect(connect_body(4, "x", "u", "p")[:-3])


def test_connack_policy_like_mosquitto_with_a_password_file() -> None:
    anon = mqtt.parse_connect(connect_body(4, "nmap"))
    assert mqtt.decide(config(), anon) == mqtt.NOT_AUTHORIZED
    assert mqtt.connack(4, mqtt.decide(config(), anon)) == b"\x20\x02\x00\x05"
    assert mqtt.decide(config(allowAnonymous=True), anon) == mqtt.ACCEPTED
    bad = mqtt.parse_connect(connect_body(5, "x", "root", "root"))
    assert mqtt.connack(5, mqtt.decide(config(), bad)) == b"\x20\x03\x00\x86\x00"
    good = mqtt.parse_connect(connect_body(4, "x", "iot", "s3cret"))
    assert mqtt.decide(config(users={"iot": "s3cret"}), good) == mqtt.ACCEPTED
    odd = mqtt.parse_connect(string("HTTP") + b"\x04\x02\x00\x00")
    assert mqtt.decide(config(), odd) == mqtt.BAD_PROTOCOL


def test_topic_filters() -> None:
    assert mqtt.topic_matches("#", "a/b")
    assert mqtt.topic_matches("a/+/c", "a/b/c") and not mqtt.topic_matches("a/+", "a/b/c")
    assert mqtt.topic_matches("$SYS/#", "$SYS/broker/version")
    assert not mqtt.topic_matches("#", "$SYS/broker/version")


def test_subscribe_publish_and_ping() -> None:
    s = mqtt.Session(config(version="mosquitto version 1.6.9"), 4, "c1", "iot")
    sub = (7).to_bytes(2, "big") + string("$SYS/#") + b"\x01"
    out, notes, close = s.packet(mqtt.SUBSCRIBE, 2, sub)
    assert out[0] == b"\x90\x03\x00\x07\x01" and not close
    assert out[1].endswith(b"$SYS/broker/version" + b"mosquitto version 1.6.9")
    assert notes[0][2]["topic"] == "$SYS/#"
    pub = string("cmd/exec") + (9).to_bytes(2, "big") + b"A" * 2000
    out, notes, _ = s.packet(mqtt.PUBLISH, 0x02, pub)
    assert out == [b"\x40\x02\x00\x09"]
    fields = notes[0][2]
    assert fields["topic"] == "cmd/exec" and fields["size"] == 2000
    assert len(fields["payload"]) == mqtt.MAX_PAYLOAD_SHOWN  # type: ignore[arg-type]
    assert s.packet(mqtt.PINGREQ, 0, b"")[0] == [b"\xd0\x00"]
    assert s.packet(mqtt.DISCONNECT, 0, b"")[2]
    assert s.packet(mqtt.CONNECT, 0, b"")[2]  # a second CONNECT is a protocol error
