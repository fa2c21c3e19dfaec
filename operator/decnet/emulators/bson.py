"""A minimal BSON encoder and a bounded decoder, for the document database's wire protocol.

Written here rather than taken from a driver: the image carries no BSON library,
and a decoder facing strangers must refuse what a driver would happily parse (deep
nesting, thousands of elements, lengths that point outside the buffer). Only the
types drivers send in handshakes and commands are decoded; anything else stops
the decode with BSONError.
"""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

MAX_DEPTH = 16
MAX_ELEMENTS = 2048
MAX_DOCUMENT = 1 << 20


class BSONError(ValueError):
    pass


class ObjectId(bytes):
    """12 raw bytes, kept apart from binary data so they round-trip."""


class Int64(int):
    """An integer that must be written as a 64-bit BSON integer."""


def _cstring(data: bytes, i: int) -> tuple[str, int]:
    end = data.find(b"\0", i)
    if end < 0:
        raise BSONError("unterminated key")
    return data[i:end].decode("utf-8", "replace"), end + 1


def decode(data: bytes, depth: int = 0) -> dict[str, Any]:
    """One document from the start of `data` (extra bytes after it are ignored)."""
    doc, _ = decode_at(data, 0, depth)
    return doc


def decode_at(data: bytes, start: int, depth: int = 0) -> tuple[dict[str, Any], int]:
    """(document, index after it) for the document at data[start:]."""
    if depth > MAX_DEPTH:
        raise BSONError("nesting too deep")
    if start + 5 > len(data):
        raise BSONError("short document")
    size = struct.unpack_from("<i", data, start)[0]
    end = start + size
    if size < 5 or size > MAX_DOCUMENT or end > len(data) or data[end - 1] != 0:
        raise BSONError("bad document length")
    i = start + 4
    out: dict[str, Any] = {}
    count = 0
    while i < end - 1:
        count += 1
        if count > MAX_ELEMENTS:
            raise BSONError("too many elements")
        kind = data[i]
        key, i = _cstring(data, i + 1)
        value, i = _value(data, kind, i, end, depth)
        out[key] = value
    return out, end


def _value(data: bytes, kind: int, i: int, end: int, depth: int) -> tuple[Any, int]:
    def need(n: int) -> None:
        if i + n > end:
            raise BSONError("value past end")

    if kind == 0x01:
        need(8)
        return struct.unpack_from("<d", data, i)[0], i + 8
    if kind in (0x02, 0x0D, 0x0E):
        need(4)
        n = struct.unpack_from("<i", data, i)[0]
        if n < 1 or i + 4 + n > end:
            raise BSONError("bad string length")
        return data[i + 4:i + 3 + n].decode("utf-8", "replace"), i + 4 + n
    if kind in (0x03, 0x04):
        doc, j = decode_at(data[:end], i, depth + 1)
        return (doc if kind == 0x03 else list(doc.values())), j
    if kind == 0x05:
        need(5)
        n = struct.unpack_from("<i", data, i)[0]
        if n < 0 or i + 5 + n > end:
            raise BSONError("bad binary length")
        return bytes(data[i + 5:i + 5 + n]), i + 5 + n
    if kind == 0x07:
        need(12)
        return ObjectId(data[i:i + 12]), i + 12
    if kind == 0x08:
        need(1)
        return data[i] != 0, i + 1
    if kind == 0x09:
        need(8)
        ms = struct.unpack_from("<q", data, i)[0]
        try:
            return dt.datetime.fromtimestamp(ms / 1000, dt.UTC), i + 8
        except (OverflowError, OSError, ValueError):
            return ms, i + 8
    if kind in (0x0A, 0x06, 0xFF, 0x7F):
        return None, i
    if kind == 0x0B:
        pattern, j = _cstring(data, i)
        flags, j = _cstring(data, j)
        return f"/{pattern}/{flags}", j
    if kind == 0x10:
        need(4)
        return struct.unpack_from("<i", data, i)[0], i + 4
    if kind in (0x11, 0x12):
        need(8)
        return Int64(struct.unpack_from("<q", data, i)[0]), i + 8
    if kind == 0x13:
        need(16)
        return bytes(data[i:i + 16]), i + 16
    raise BSONError(f"unsupported type 0x{kind:02x}")


def encode(doc: dict[str, Any]) -> bytes:
    body = b"".join(_element(str(k), v) for k, v in doc.items())
    return struct.pack("<i", len(body) + 5) + body + b"\0"


def _element(key: str, value: Any) -> bytes:
    name = key.encode().replace(b"\0", b"") + b"\0"
    if isinstance(value, bool):
        return b"\x08" + name + (b"\x01" if value else b"\x00")
    if isinstance(value, Int64):
        return b"\x12" + name + struct.pack("<q", value)
    if isinstance(value, int):
        if -(1 << 31) <= value < (1 << 31):
            return b"\x10" + name + struct.pack("<i", value)
        return b"\x12" + name + struct.pack("<q", value)
    if isinstance(value, float):
        return b"\x01" + name + struct.pack("<d", value)
    if isinstance(value, str):
        data = value.encode() + b"\0"
        return b"\x02" + name + struct.pack("<i", len(data)) + data
    if isinstance(value, dict):
        return b"\x03" + name + encode(value)
    if isinstance(value, (list, tuple)):
        return b"\x04" + name + encode({str(i): v for i, v in enumerate(value)})
    if isinstance(value, ObjectId):
        return b"\x07" + name + bytes(value)[:12].ljust(12, b"\0")
    if isinstance(value, bytes):
        return b"\x05" + name + struct.pack("<i", len(value)) + b"\x00" + value
    if isinstance(value, dt.datetime):
        return b"\x09" + name + struct.pack("<q", int(value.timestamp() * 1000))
    if value is None:
        return b"\x0a" + name
    raise BSONError(f"cannot encode {type(value).__name__}")
