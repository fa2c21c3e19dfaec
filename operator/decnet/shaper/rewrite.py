"""The header rewrite, a pure function of one IPv4 packet and the next IP ID.

Windows 10 answers a SYN with its TCP options in the order MSS, NOP+WS, then SACK
and timestamps (`M5B4NW8ST11` in nmap's notation) where Linux sends MSS, SACK,
timestamps, NOP+WS (`M5B4ST11NW7`); both layouts are the same length, so the
options are re-laid out in place. The values are the kernel's own (a window scale
changed here would corrupt the connection; the base's tcp_rmem sysctl makes the
kernel choose Windows' 8). The SYN-ACK window becomes Windows' 8192, smaller than
the kernel's real one, so no peer ever sends more than the kernel accepts.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

TCP = 6
ICMP = 1
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
ECHO_REPLY = 0

OPT_END, OPT_NOP, OPT_MSS, OPT_WS, OPT_SACK_OK, OPT_TS = 0, 1, 2, 3, 4, 8


class Profile(NamedTuple):
    """What the persona changes; the defaults are a Windows 10 stack. (A NamedTuple:
    python3-minimal, all the base image has, lacks dataclasses.)"""

    syn_ack_window: int = 0x2000
    windows_option_order: bool = True
    incremental_ip_id: bool = True
    echo_reply_code_zero: bool = True
    rst_ack_field_nonzero: bool = True


WINDOWS = Profile()


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _options(raw: bytes) -> dict[int, bytes] | None:
    """kind -> option bytes (kind and length included); None when malformed."""
    found: dict[int, bytes] = {}
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == OPT_END:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            return None
        found[kind] = raw[i : i + raw[i + 1]]
        i += raw[i + 1]
    return found


def windows_options(raw: bytes) -> bytes:
    """The SYN-ACK options re-laid out in Windows' order; unchanged when anything is
    unexpected (an unknown option, a different length)."""
    found = _options(raw)
    if found is None or set(found) - {OPT_MSS, OPT_WS, OPT_SACK_OK, OPT_TS}:
        return raw
    out = found.get(OPT_MSS, b"")
    if OPT_WS in found:
        out += bytes([OPT_NOP]) + found[OPT_WS]
    if OPT_SACK_OK in found and OPT_TS in found:
        out += found[OPT_SACK_OK] + found[OPT_TS]
    elif OPT_SACK_OK in found:
        out += bytes([OPT_NOP, OPT_NOP]) + found[OPT_SACK_OK]
    elif OPT_TS in found:
        out += bytes([OPT_NOP, OPT_NOP]) + found[OPT_TS]
    if len(out) > len(raw):
        return raw
    return out + bytes(len(raw) - len(out))  # END padding: nothing follows


def _tcp(packet: bytearray, ihl: int, profile: Profile) -> bool:
    """Rewrites the TCP header in place; True when anything changed."""
    seg = packet[ihl:]
    if len(seg) < 20:
        return False
    offset = (seg[12] >> 4) * 4
    if offset < 20 or offset > len(seg):
        return False
    flags = seg[13]
    changed = False
    if flags & (SYN | ACK) == SYN | ACK:
        if profile.windows_option_order and offset > 20:
            options = windows_options(bytes(seg[20:offset]))
            if options != seg[20:offset]:
                packet[ihl + 20 : ihl + offset] = options
                changed = True
        if profile.syn_ack_window and seg[14:16] != struct.pack("!H", profile.syn_ack_window):
            packet[ihl + 14 : ihl + 16] = struct.pack("!H", profile.syn_ack_window)
            changed = True
    elif flags & RST and not flags & ACK and profile.rst_ack_field_nonzero:
        # A bare RST's ack field means nothing; Linux sends 0, Windows whatever it held.
        if seg[8:12] == b"\0\0\0\0":
            packet[ihl + 8 : ihl + 12] = seg[4:8] if seg[4:8] != b"\0\0\0\0" else b"\0\0\0\1"
            changed = True
    if changed:
        pseudo = bytes(packet[12:20]) + struct.pack("!BBH", 0, TCP, len(seg))
        packet[ihl + 16 : ihl + 18] = b"\0\0"
        packet[ihl + 16 : ihl + 18] = struct.pack("!H", checksum(pseudo + bytes(packet[ihl:])))
    return changed


def _icmp(packet: bytearray, ihl: int, profile: Profile) -> bool:
    """An echo reply's code becomes 0 (Linux echoes the request's); the checksum is
    updated incrementally (RFC 1624) so a large payload is never read."""
    if len(packet) < ihl + 4 or not profile.echo_reply_code_zero:
        return False
    kind, code = packet[ihl], packet[ihl + 1]
    if kind != ECHO_REPLY or code == 0:
        return False
    old = (kind << 8) | code
    new = kind << 8
    (check,) = struct.unpack("!H", packet[ihl + 2 : ihl + 4])
    total = (~check & 0xFFFF) + (~old & 0xFFFF) + new
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    packet[ihl + 1] = 0
    packet[ihl + 2 : ihl + 4] = struct.pack("!H", ~total & 0xFFFF)
    return True


def shape(packet: bytes, ip_id: int, profile: Profile = WINDOWS) -> bytes | None:
    """The rewritten packet, or None to pass it unchanged (not IPv4, malformed, a
    fragment). `ip_id` is the next value of the persona's one IP ID counter."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    (total,) = struct.unpack("!H", packet[2:4])
    if ihl < 20 or total != len(packet) or ihl > total:
        return None
    (frag,) = struct.unpack("!H", packet[6:8])
    if frag & 0x3FFF:  # a fragment: its transport header may be elsewhere
        return None
    out = bytearray(packet)
    if out[9] == TCP:
        _tcp(out, ihl, profile)
    elif out[9] == ICMP:
        _icmp(out, ihl, profile)
    if profile.incremental_ip_id:
        out[4:6] = struct.pack("!H", ip_id & 0xFFFF)
    if out == packet:
        return None
    out[10:12] = b"\0\0"
    out[10:12] = struct.pack("!H", checksum(bytes(out[:ihl])))
    return bytes(out)
