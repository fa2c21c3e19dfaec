"""The srvsvc named pipe's share list (DCE/RPC NetrShareEnumAll), as `smbclient -L` reads it.

Written by hand: a bind, its acknowledgement and one response in NDR are all a
share listing needs, and the list comes from the service's config.
"""

from __future__ import annotations

import struct

NDR = bytes.fromhex("045d888aeb1cc9119fe808002b104860") + struct.pack("<I", 2)
SRVSVC = bytes.fromhex("c84f324b7016d30112785a47bf6ee188")
BIND, BIND_ACK, REQUEST, RESPONSE, FAULT = 11, 12, 0, 2, 3
SHARE_ENUM_ALL = 15
STYPE_DISKTREE, STYPE_IPC, STYPE_SPECIAL = 0, 3, 0x80000000
MAX_SHARES = 64


def _header(ptype: int, call_id: int, body: bytes, flags: int = 0x03) -> bytes:
    return (struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, b"\x10\x00\x00\x00",
                        16 + len(body), 0, call_id) + body)


def share_type(name: str) -> int:
    if name.upper() == "IPC$":
        return STYPE_IPC | STYPE_SPECIAL
    return STYPE_DISKTREE | (STYPE_SPECIAL if name.endswith("$") else 0)


def remark(name: str) -> str:
    return {"ADMIN$": "Remote Admin", "C$": "Default share", "IPC$": "Remote IPC",
            "PRINT$": "Printer Drivers"}.get(name.upper(), "")


def bind_ack(pdu: bytes) -> bytes:
    """Accept the NDR context of each srvsvc presentation item, refuse the rest."""
    call_id = struct.unpack_from("<I", pdu, 12)[0]
    count = pdu[24] if len(pdu) > 24 else 0
    results = b""
    pos = 28
    for _ in range(min(count, 8)):
        if pos + 4 > len(pdu):
            break
        n_syntax = pdu[pos + 2]
        abstract = pdu[pos + 4 : pos + 24]
        syntaxes = [pdu[pos + 24 + 20 * i : pos + 44 + 20 * i] for i in range(n_syntax)]
        if abstract[:16] == SRVSVC and NDR in syntaxes:
            results += struct.pack("<HH", 0, 0) + NDR
        elif syntaxes and syntaxes[0][:8] == bytes.fromhex("2c1cb76c12984045"):
            results += struct.pack("<HH", 3, 3) + b"\x00" * 20  # bind time features: ack
        else:
            results += struct.pack("<HH", 2, 2) + b"\x00" * 20  # provider rejection
        pos += 24 + 20 * n_syntax
    address = b"\\PIPE\\srvsvc\x00"
    body = struct.pack("<HHI", 4280, 4280, 0x1234) + struct.pack("<H", len(address)) + address
    body += b"\x00" * ((-len(body) - 16) % 4)
    body += struct.pack("<B3x", count) + results
    return _header(BIND_ACK, call_id, body)


def _string(text: str) -> bytes:
    raw = (text + "\x00").encode("utf-16-le")
    chars = len(raw) // 2
    out = struct.pack("<III", chars, 0, chars) + raw
    return out + b"\x00" * ((-len(out)) % 4)


def share_enum(shares: list[str], request_stub: bytes) -> bytes:
    """The NDR stub of NetrShareEnumAll's answer at level 1."""
    names = [s for s in shares if s][:MAX_SHARES]
    stub = struct.pack("<III", 1, 1, 0x20000)  # level, union switch, container pointer
    stub += struct.pack("<II", len(names), 0x20004 if names else 0)
    if names:
        stub += struct.pack("<I", len(names))
        ref = 0x20008
        for name in names:
            stub += struct.pack("<III", ref, share_type(name), ref + 4)
            ref += 8
        for name in names:
            stub += _string(name) + _string(remark(name))
    stub += struct.pack("<I", len(names))  # total entries
    stub += struct.pack("<II", 0x20008 + 8 * len(names), 0)  # resume handle, its own referent
    return stub + struct.pack("<I", 0)  # WERR_OK


def respond(pdu: bytes, shares: list[str]) -> bytes:
    """The answer to one DCE/RPC PDU written to the pipe (b"" when there is none)."""
    if len(pdu) < 16 or pdu[0] != 5:
        return b""
    ptype, call_id = pdu[2], struct.unpack_from("<I", pdu, 12)[0]
    if ptype == BIND:
        return bind_ack(pdu)
    if ptype == REQUEST and len(pdu) >= 24:
        opnum = struct.unpack_from("<H", pdu, 22)[0]
        if opnum == SHARE_ENUM_ALL:
            stub = share_enum(shares, pdu[24:])
            return _header(RESPONSE, call_id, struct.pack("<IHBB", len(stub), 0, 0, 0) + stub)
        fault = struct.pack("<IHBBII", 0, 0, 0, 0, 0x1C010002, 0)  # nca_s_op_rng_error
        return _header(FAULT, call_id, fault)
    return b""
