"""The packet persona's rewrite: Linux's headers in, a Windows 10 stack's out, checksums right."""

from __future__ import annotations

import struct

import pytest

from decnet.shaper import rewrite

SRC, DST = bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1])
MSS = bytes([2, 4, 0x05, 0xB4])
SACK_OK = bytes([4, 2])
TS = bytes([8, 10]) + struct.pack("!II", 1234, 5678)
WS7 = bytes([3, 3, 7])
NOP = bytes([1])


def ipv4(proto: int, payload: bytes, ident: int = 0, flags_frag: int = 0x4000) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_frag,
                         64, proto, 0, SRC, DST)
    header = header[:10] + struct.pack("!H", rewrite.checksum(header)) + header[12:]
    return header + payload


def tcp(flags: int, options: bytes = b"", seq: int = 1000, ack: int = 0, window: int = 64240,
        data: bytes = b"") -> bytes:
    offset = (20 + len(options)) // 4
    seg = struct.pack("!HHIIBBHHH", 80, 40000, seq, ack, offset << 4, flags, window, 0, 0)
    seg += options + data
    pseudo = SRC + DST + struct.pack("!BBH", 0, rewrite.TCP, len(seg))
    return seg[:16] + struct.pack("!H", rewrite.checksum(pseudo + seg)) + seg[18:]


def fields(packet: bytes) -> tuple[int, bytes]:
    """(TCP window, TCP options) of a rewritten packet, after checking both checksums."""
    assert rewrite.checksum(packet[:20]) == 0, "IP header checksum"
    seg = packet[20:]
    pseudo = SRC + DST + struct.pack("!BBH", 0, rewrite.TCP, len(seg))
    assert rewrite.checksum(pseudo + seg) == 0, "TCP checksum"
    offset = (seg[12] >> 4) * 4
    return struct.unpack("!H", seg[14:16])[0], seg[20:offset]


SYN_ACK = rewrite.SYN | rewrite.ACK


@pytest.mark.parametrize(
    ("linux", "windows"),
    [  # nmap's O1 (MSS, SACK, timestamps, WS), O3 (no SACK), ECN (no timestamps), O6 (no WS)
        (MSS + SACK_OK + TS + NOP + WS7, MSS + NOP + WS7 + SACK_OK + TS),
        (MSS + NOP + NOP + TS + NOP + WS7, MSS + NOP + WS7 + NOP + NOP + TS),
        (MSS + NOP + NOP + SACK_OK + NOP + WS7, MSS + NOP + WS7 + NOP + NOP + SACK_OK),
        (MSS + SACK_OK + TS, MSS + SACK_OK + TS),
    ],
)
def test_a_syn_ack_gets_windows_option_order_and_window(linux: bytes, windows: bytes) -> None:
    out = rewrite.shape(ipv4(rewrite.TCP, tcp(SYN_ACK, linux)), 0x1234)
    assert out is not None
    window, options = fields(out)
    assert options == windows and window == 0x2000
    assert struct.unpack("!H", out[4:6])[0] == 0x1234


def test_options_it_does_not_know_are_left_as_they_are() -> None:
    odd = MSS + bytes([30, 4, 0, 0]) + NOP + WS7  # an unknown kind 30
    out = rewrite.shape(ipv4(rewrite.TCP, tcp(SYN_ACK, odd)), 1)
    assert out is not None and fields(out)[1] == odd


def test_a_bare_rst_carries_a_nonzero_ack_field_and_an_rst_ack_keeps_its_own() -> None:
    out = rewrite.shape(ipv4(rewrite.TCP, tcp(rewrite.RST, seq=777, window=0)), 5)
    assert out is not None
    fields(out)
    assert struct.unpack("!I", out[28:32])[0] != 0
    rst_ack = ipv4(rewrite.TCP, tcp(rewrite.RST | rewrite.ACK, seq=0, ack=4321, window=0))
    out = rewrite.shape(rst_ack, 6)
    assert out is not None and out[20:] == rst_ack[20:]


def test_every_packet_takes_the_next_ip_id_and_keeps_a_valid_header() -> None:
    ids = []
    for i, packet in enumerate([ipv4(rewrite.TCP, tcp(SYN_ACK, MSS)), ipv4(rewrite.ICMP, bytes(8))]):
        out = rewrite.shape(packet, 100 + i)
        assert out is not None and rewrite.checksum(out[:20]) == 0
        ids.append(struct.unpack("!H", out[4:6])[0])
    assert ids == [100, 101]


def test_an_echo_reply_gets_code_zero_and_a_checksum_that_still_adds_up() -> None:
    body = struct.pack("!BBHHH", 0, 9, 0, 0x4242, 1) + b"x" * 150  # nmap's IE probe: code 9
    body = body[:2] + struct.pack("!H", rewrite.checksum(body)) + body[4:]
    out = rewrite.shape(ipv4(rewrite.ICMP, body, flags_frag=0), 7)
    assert out is not None
    assert out[21] == 0 and rewrite.checksum(out[20:]) == 0
    assert out[24:] == body[4:]


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x60" + bytes(39),  # IPv6
        ipv4(rewrite.TCP, tcp(SYN_ACK, MSS))[:30],  # truncated (a copy range cut it)
        ipv4(rewrite.TCP, tcp(SYN_ACK, MSS), flags_frag=0x2000),  # a fragment
    ],
)
def test_what_it_cannot_read_whole_passes_unchanged(packet: bytes) -> None:
    assert rewrite.shape(packet, 1) is None


def test_a_data_segment_is_never_touched_beyond_the_ip_id() -> None:
    data = ipv4(rewrite.TCP, tcp(rewrite.ACK | rewrite.PSH, data=b"\x00" * 64 + b"GET / HTTP/1.1"))
    out = rewrite.shape(data, 9)
    assert out is not None and out[20:] == data[20:]
