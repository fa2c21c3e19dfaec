"""MQTT 3.1, 3.1.1 and 5 as a Mosquitto broker answers: CONNECT credentials, SUBSCRIBE, PUBLISH.

Written by hand: a broker's wire format is a one-byte type, a variable-length size and
a few length-prefixed strings; the packets scanners and IoT malware send (CONNECT,
SUBSCRIBE to `#` or `$SYS/#`, PUBLISH, PINGREQ) fit in a page without a broker
library. CONNECT is an `auth` event (client id, username, password); connections are
accepted as Mosquitto 2 would with a password file: known users (and anonymous ones
only when allowed). Accepted clients may subscribe (a `command` event; `$SYS/broker/
version` is answered from the config, as Mosquitto does) and publish (a `data` event
with the topic and a capped payload). Nothing is forwarded between clients.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from typing import Any

from .. import core, events

PORTS = [(1883, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "mosquitto version 2.0.11",
    "allowAnonymous": False,
    "users": {},  # username -> password accepted
    "acceptAll": False,
}
MAX_PACKET = 262144
MAX_PAYLOAD_SHOWN = 512
MAX_FILTERS = 32

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)
# CONNACK codes, 3.1.1 / 5
ACCEPTED = (0, 0x00)
BAD_CREDENTIALS = (4, 0x86)
NOT_AUTHORIZED = (5, 0x87)
BAD_PROTOCOL = (1, 0x84)


class Malformed(ValueError):
    """A packet that does not parse: the broker closes the connection."""


def encode_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def decode_length(data: bytes) -> tuple[int, int] | None:
    """(remaining length, bytes used) from the start of data; None if incomplete."""
    value, mult = 0, 1
    for i, byte in enumerate(data[:4]):
        value += (byte & 0x7F) * mult
        if not byte & 0x80:
            return value, i + 1
        mult *= 128
    if len(data) >= 4:
        raise Malformed("remaining length over 4 bytes")
    return None


def packet(ptype: int, body: bytes, flags: int = 0) -> bytes:
    return bytes([(ptype << 4) | flags]) + encode_length(len(body)) + body


class Reader:
    """Cursor over one packet's body."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise Malformed("short packet")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def binary(self) -> bytes:
        return self.take(self.u16())

    def string(self) -> str:
        return self.binary().decode("utf-8", "replace")

    def varint(self) -> int:
        got = decode_length(self.data[self.pos :])
        if got is None:
            raise Malformed("short varint")
        self.pos += got[1]
        return got[0]

    def skip_properties(self) -> None:
        self.take(self.varint())

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    def done(self) -> bool:
        return self.pos >= len(self.data)


@dataclasses.dataclass(frozen=True)
class Connect:
    protocol: str
    level: int
    client_id: str
    username: str | None
    password: bytes | None
    keepalive: int
    clean: bool
    will_topic: str | None


def parse_connect(body: bytes) -> Connect:
    r = Reader(body)
    protocol = r.string()
    level = r.u8()
    if protocol not in ("MQTT", "MQIsdp") or level not in (3, 4, 5):
        return Connect(protocol, level, "", None, None, 0, True, None)
    flags = r.u8()
    keepalive = r.u16()
    if level == 5:
        r.skip_properties()
    client_id = r.string()
    will_topic = None
    if flags & 0x04:
        if level == 5:
            r.skip_properties()
        will_topic = r.string()
        r.binary()
    username = r.string() if flags & 0x80 else None
    password = r.binary() if flags & 0x40 else None
    return Connect(protocol, level, client_id, username, password, keepalive,
                   bool(flags & 0x02), will_topic)


def connack(level: int, codes: tuple[int, int]) -> bytes:
    if level == 5:
        return packet(CONNACK, bytes([0, codes[1], 0]))
    return packet(CONNACK, bytes([0, codes[0]]))


def decide(config: dict[str, Any], conn: Connect) -> tuple[int, int]:
    """Mosquitto 2 with a password file: known users in, anonymous only when allowed."""
    if conn.protocol not in ("MQTT", "MQIsdp") or conn.level not in (3, 4, 5):
        return BAD_PROTOCOL
    if config["acceptAll"]:
        return ACCEPTED
    if conn.username is None:
        return ACCEPTED if config["allowAnonymous"] else NOT_AUTHORIZED
    users = {str(k): str(v) for k, v in dict(config["users"]).items()}
    password = (conn.password or b"").decode("utf-8", "replace")
    if conn.username in users and users[conn.username] == password:
        return ACCEPTED
    return BAD_CREDENTIALS


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT filter matching: `+` one level, `#` the rest; wildcards skip `$` topics."""
    if topic.startswith("$") and pattern[:1] in ("+", "#"):
        return False
    p, t = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(p) == len(t)


def parse_subscribe(body: bytes, level: int) -> tuple[int, list[tuple[str, int]]]:
    r = Reader(body)
    packet_id = r.u16()
    if level == 5:
        r.skip_properties()
    filters: list[tuple[str, int]] = []
    while not r.done() and len(filters) < MAX_FILTERS:
        topic = r.string()
        filters.append((topic, r.u8() & 0x03))
    return packet_id, filters


def parse_publish(flags: int, body: bytes, level: int) -> tuple[str, int, int, bytes]:
    """(topic, qos, packet id, payload)."""
    r = Reader(body)
    topic = r.string()
    qos = (flags >> 1) & 0x03
    packet_id = r.u16() if qos else 0
    if level == 5:
        r.skip_properties()
    return topic, qos, packet_id, r.rest()


def publish(topic: str, payload: bytes, level: int, retain: bool = True) -> bytes:
    name = topic.encode()
    props = b"\x00" if level == 5 else b""
    return packet(PUBLISH, len(name).to_bytes(2, "big") + name + props + payload,
                  flags=1 if retain else 0)


def retained(config: dict[str, Any]) -> dict[str, bytes]:
    """What the broker publishes about itself under $SYS, like Mosquitto."""
    return {"$SYS/broker/version": str(config["version"]).encode()}


@dataclasses.dataclass
class Session:
    """One client after CONNECT; pure: packets in, packets and events out."""

    config: dict[str, Any]
    level: int = 4
    client_id: str = ""
    username: str | None = None

    def packet(self, ptype: int, flags: int, body: bytes
               ) -> tuple[list[bytes], list[tuple[str, str, dict[str, object]]], bool]:
        """(answers, events, close) for one packet."""
        if ptype == PINGREQ:
            return [packet(PINGRESP, b"")], [], False
        if ptype == DISCONNECT:
            return [], [], True
        if ptype == SUBSCRIBE:
            packet_id, filters = parse_subscribe(body, self.level)
            props = b"\x00" if self.level == 5 else b""
            granted = bytes(min(q, 2) for _, q in filters)
            out = [packet(SUBACK, packet_id.to_bytes(2, "big") + props + granted)]
            for topic, payload in retained(self.config).items():
                if any(topic_matches(f, topic) for f, _ in filters):
                    out.append(publish(topic, payload, self.level))
            notes: list[tuple[str, str, dict[str, object]]] = [(events.COMMAND, "subscribe", {
                "command": "SUBSCRIBE", "topic": ",".join(f for f, _ in filters),
                "client_id": self.client_id, "username": self.username})]
            return out, notes, False
        if ptype == UNSUBSCRIBE:
            r = Reader(body)
            pid = r.u16()
            props = b"\x00" if self.level == 5 else b""
            return [packet(UNSUBACK, pid.to_bytes(2, "big") + props)], [], False
        if ptype == PUBLISH:
            topic, qos, pid, payload = parse_publish(flags, body, self.level)
            note = (events.DATA, "publish", {
                "topic": topic, "payload": payload[:MAX_PAYLOAD_SHOWN], "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(), "qos": qos,
                "retain": "yes" if flags & 1 else None, "client_id": self.client_id,
                "username": self.username})
            out = []
            if qos == 1:
                out.append(packet(PUBACK, pid.to_bytes(2, "big")))
            elif qos == 2:
                out.append(packet(PUBREC, pid.to_bytes(2, "big")))
            return out, [note], False
        if ptype == PUBREL:
            return [packet(PUBCOMP, body[:2])], [], False
        if ptype in (PUBACK, PUBREC, PUBCOMP):
            return ([packet(PUBREL, body[:2], flags=2)] if ptype == PUBREC else []), [], False
        return [], [], True  # CONNECT twice, AUTH, reserved: protocol error, close


async def read_packet(reader: asyncio.StreamReader, timeout: float
                      ) -> tuple[int, int, bytes] | None:
    first = await core.read_exactly(reader, 1, timeout)
    if not first:
        return None
    size_bytes = b""
    while True:
        b = await core.read_exactly(reader, 1, timeout)
        if not b:
            return None
        size_bytes += b
        got = decode_length(size_bytes)
        if got is not None:
            break
    length = got[0]
    if length > MAX_PACKET:
        raise Malformed("packet too large")
    body = await core.read_exactly(reader, length, timeout) if length else b""
    if body is None:
        return None
    return first[0] >> 4, first[0] & 0x0F, body


async def handle(ctx: core.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: core.Peer) -> None:
    try:
        first = await read_packet(reader, ctx.idle_seconds)
        if first is None or first[0] != CONNECT:
            return
        conn = parse_connect(first[2])
    except Malformed:
        return
    codes = decide(ctx.config, conn)
    ctx.emit(events.AUTH, peer, "connect", client_id=conn.client_id, username=conn.username,
             password=None if conn.password is None else conn.password,
             protocol=f"{conn.protocol}/{conn.level}", keepalive=conn.keepalive,
             will_topic=conn.will_topic,
             result="accepted" if codes == ACCEPTED else "rejected")
    await core.send(writer, connack(conn.level, codes))
    if codes != ACCEPTED:
        return
    session = Session(ctx.config, conn.level, conn.client_id, conn.username)
    keepalive = conn.keepalive * 1.5 if conn.keepalive else ctx.idle_seconds
    for _ in range(100000):
        try:
            got = await read_packet(reader, min(keepalive, ctx.idle_seconds))
            if got is None:
                return
            answers, notes, close = session.packet(*got)
        except Malformed:
            return
        for kind, message, fields in notes:
            ctx.emit(kind, peer, message, **fields)
        if answers:
            await core.send(writer, b"".join(answers))
        if close:
            return


async def serve(ctx: core.Context) -> None:
    await core.serve_ports(ctx, PORTS, handle)
