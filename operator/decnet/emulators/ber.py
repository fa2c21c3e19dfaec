"""Bounded BER (ASN.1 Basic Encoding Rules) for the LDAP, SNMP and SPNEGO services.

Written by hand because those services need only single-byte tags, definite
lengths, INTEGER, OCTET STRING, OID and constructed types, and a library decoder
would be a large dependency that hostile input can drive into deep recursion.
Every decode is bounded: a length may not run past its buffer, lengths longer
than four bytes and indefinite lengths are refused, nesting is capped, and a
failure is always `BerError` (never IndexError or a hang).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Iterator

from . import core

# Universal tags used here.
BOOLEAN = 0x01
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
ENUMERATED = 0x0A
SEQUENCE = 0x30
SET = 0x31
MAX_DEPTH = 16


class BerError(ValueError):
    """The bytes are not the BER this decoder accepts."""


@dataclasses.dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def children(self) -> list[Tlv]:
        return list(iter_tlvs(self.value))

    def as_int(self) -> int:
        return decode_int(self.value)

    def as_str(self) -> str:
        return self.value.decode("utf-8", "replace")


def read_tlv(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """One TLV at offset and the offset after it."""
    if offset + 2 > len(data):
        raise BerError("truncated header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise BerError("multi-byte tags are not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise BerError("indefinite or oversized length")
        if pos + count > len(data):
            raise BerError("truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise BerError("value runs past the buffer")
    return Tlv(tag, data[pos : pos + length]), pos + length


def frame_length(data: bytes) -> int | None:
    """Total size of the TLV starting data, once its header is complete (for stream framing)."""
    if len(data) < 2:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4:
        raise BerError("indefinite or oversized length")
    if len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def iter_tlvs(data: bytes) -> Iterator[Tlv]:
    pos = 0
    while pos < len(data):
        tlv, pos = read_tlv(data, pos)
        yield tlv


def decode(data: bytes) -> Tlv:
    """Exactly one TLV filling data."""
    tlv, end = read_tlv(data)
    if end != len(data):
        raise BerError("trailing bytes")
    return tlv


def decode_int(value: bytes) -> int:
    if not value or len(value) > 9:
        raise BerError("bad integer")
    return int.from_bytes(value, "big", signed=True)


def decode_oid(value: bytes) -> tuple[int, ...]:
    if not value or len(value) > 128:
        raise BerError("bad oid")
    arcs: list[int] = []
    acc = 0
    for byte in value:
        acc = (acc << 7) | (byte & 0x7F)
        if acc > 0xFFFFFFFF:
            raise BerError("oid arc too large")
        if not byte & 0x80:
            arcs.append(acc)
            acc = 0
    if value[-1] & 0x80:
        raise BerError("truncated oid")
    first = arcs[0]
    head = (min(first // 40, 2), first - 40 * min(first // 40, 2))
    return head + tuple(arcs[1:])


# Encoding ------------------------------------------------------------------------------

def length(n: int, long_form: bool = False) -> bytes:
    """A definite length; long_form always uses 0x84 + four bytes (as Active Directory does)."""
    if long_form:
        return b"\x84" + n.to_bytes(4, "big")
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, value: bytes, long_form: bool = False) -> bytes:
    return bytes([tag]) + length(len(value), long_form) + value


def seq(items: Iterable[bytes], tag: int = SEQUENCE, long_form: bool = False) -> bytes:
    return tlv(tag, b"".join(items), long_form)


def integer(n: int, tag: int = INTEGER) -> bytes:
    size = max(1, (n.bit_length() + 8) // 8)
    return tlv(tag, n.to_bytes(size, "big", signed=True))


def unsigned(n: int, tag: int) -> bytes:
    """An application-tagged unsigned integer (SNMP Counter/Gauge/TimeTicks)."""
    raw = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return tlv(tag, raw)


def octets(value: bytes | str, tag: int = OCTET_STRING) -> bytes:
    return tlv(tag, value.encode() if isinstance(value, str) else value)


def enumerated(n: int) -> bytes:
    return integer(n, ENUMERATED)


def null(tag: int = NULL) -> bytes:
    return bytes([tag, 0])


def boolean(value: bool) -> bytes:
    return tlv(BOOLEAN, b"\xff" if value else b"\x00")


def encode_oid_value(arcs: tuple[int, ...] | list[int]) -> bytes:
    if len(arcs) < 2:
        raise BerError("oid needs two arcs")
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def oid(arcs: tuple[int, ...] | list[int] | str) -> bytes:
    if isinstance(arcs, str):
        arcs = parse_oid(arcs)
    return tlv(OID, encode_oid_value(arcs))


def parse_oid(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.strip(".").split("."))


def oid_str(arcs: tuple[int, ...]) -> str:
    return ".".join(str(a) for a in arcs)


async def read_message(reader: asyncio.StreamReader, timeout: float, limit: int,
                       tag: int = SEQUENCE) -> bytes | None:
    """One whole TLV of `tag` from a stream (LDAP, CredSSP), None past `limit` bytes or at EOF."""
    head = await core.read_exactly(reader, 2, timeout)
    if head is None or head[0] != tag:
        return None
    extra = head[1] & 0x7F if head[1] & 0x80 else 0
    if extra > 4:
        return None
    more = await core.read_exactly(reader, extra, timeout) if extra else b""
    if more is None:
        return None
    try:
        total = frame_length(head + more)
    except BerError:
        return None
    if total is None or total > limit:
        return None
    rest = await core.read_exactly(reader, total - len(head) - len(more), timeout)
    return None if rest is None else head + more + rest
