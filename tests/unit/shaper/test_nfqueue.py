"""nfnetlink messages of the packet persona: bound, fail-open queue; verdicts; parsing."""

from __future__ import annotations

import struct

import pytest

from decnet.shaper import __main__ as shaper
from decnet.shaper import nfqueue


def attrs_of(message: bytes) -> dict[int, bytes]:
    found, at = {}, 20
    while at + 4 <= len(message):
        length, kind = struct.unpack_from("=HH", message, at)
        found[kind] = message[at + 4 : at + length]
        at += (length + 3) & ~3
    return found


def test_the_queue_is_bound_bounded_and_fails_open() -> None:
    bind, params = nfqueue.bind_messages(3, 256)
    assert struct.unpack_from("=I", bind)[0] == len(bind)
    assert struct.unpack_from("!H", bind, 18)[0] == 3  # the queue number, big-endian
    config = attrs_of(params)
    assert struct.unpack("!I", config[nfqueue.NFQA_CFG_QUEUE_MAXLEN])[0] == 256
    assert struct.unpack("!I", config[nfqueue.NFQA_CFG_FLAGS])[0] & nfqueue.NFQA_CFG_F_FAIL_OPEN
    assert config[nfqueue.NFQA_CFG_PARAMS][4] == nfqueue.NFQNL_COPY_PACKET


def test_a_verdict_accepts_with_or_without_a_new_packet() -> None:
    plain = attrs_of(nfqueue.verdict(0, 42, None))
    assert struct.unpack("!II", plain[nfqueue.NFQA_VERDICT_HDR]) == (nfqueue.NF_ACCEPT, 42)
    assert nfqueue.NFQA_PAYLOAD not in plain
    assert attrs_of(nfqueue.verdict(0, 42, b"\x45abc"))[nfqueue.NFQA_PAYLOAD] == b"\x45abc"


def packet_message(packet_id: int, payload: bytes) -> bytes:
    return nfqueue.message(
        nfqueue.NFQNL_MSG_PACKET, 0,
        nfqueue.attr(nfqueue.NFQA_PACKET_HDR, struct.pack("!IHB", packet_id, 0x0800, 3))
        + nfqueue.attr(nfqueue.NFQA_PAYLOAD, payload),
    )


def test_packets_are_parsed_from_one_datagram_and_errors_raise() -> None:
    data = packet_message(1, b"\x45" + bytes(19)) + packet_message(2, b"\x45" + bytes(23))
    assert [(i, len(p)) for _k, i, p in nfqueue.parse(data)] == [(1, 20), (2, 24)]
    error = struct.pack("=IHHII", 36, nfqueue.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -1) + bytes(16)
    with pytest.raises(OSError):
        list(nfqueue.parse(error))
    assert list(nfqueue.parse(data[:30])) == []  # a cut message is dropped, not misread


def test_only_the_packets_the_persona_rewrites_are_queued_and_the_queue_is_bypassed() -> None:
    for rule in shaper.rules(0):
        assert rule[-1] == "--queue-bypass"
    queued = [" ".join(rule[: rule.index("-j")]) for rule in shaper.rules(0)]
    assert queued == ["-p tcp --tcp-flags SYN,ACK SYN,ACK", "-p tcp --tcp-flags RST RST", "-p icmp"]
