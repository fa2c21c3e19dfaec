"""A minimal NFQUEUE client over nfnetlink (linux/netfilter/nfnetlink_queue.h).

Only what the persona needs: bind one queue, copy whole packets, a bounded kernel
queue that fails open (a slow or dead reader lets packets through unchanged rather
than dropping them), and an ACCEPT verdict with or without a new payload. Message
building and parsing are pure functions; `Queue` is the socket edge.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQA_CFG_MASK, NFQA_CFG_FLAGS = 4, 5
NFQA_CFG_F_FAIL_OPEN = 1
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_PACKET = 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
COPY_RANGE = 0xFFFF


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, value: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + bytes(_align(length) - length)


def message(msg: int, queue: int, attrs: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    """An nfnetlink message of the queue subsystem: nlmsghdr + nfgenmsg + attributes."""
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def bind_messages(queue: int, maxlen: int) -> list[bytes]:
    """Bind the queue, copy whole packets, cap its length, fail open when it is full."""
    flags = struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)
    return [
        message(NFQNL_MSG_CONFIG, queue,
                attr(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, socket.AF_INET)),
                NLM_F_REQUEST | NLM_F_ACK, 1),
        message(NFQNL_MSG_CONFIG, queue,
                attr(NFQA_CFG_PARAMS, struct.pack("!IB", COPY_RANGE, NFQNL_COPY_PACKET))
                + attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))
                + attr(NFQA_CFG_MASK, flags) + attr(NFQA_CFG_FLAGS, flags),
                NLM_F_REQUEST | NLM_F_ACK, 2),
    ]


def verdict(queue: int, packet_id: int, payload: bytes | None) -> bytes:
    """ACCEPT the packet, with a new payload when one is given."""
    attrs = attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))
    if payload is not None:
        attrs += attr(NFQA_PAYLOAD, payload)
    return message(NFQNL_MSG_VERDICT, queue, attrs)


def parse(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, packet id, payload) of each message in one datagram; errors raise."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16 or offset + length > len(data):
            return
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, offset + 16)
            if code:
                raise OSError(-code, os.strerror(-code))
        elif kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            packet_id, payload = -1, b""
            at = offset + 20
            while at + 4 <= offset + length:
                alen, atype = struct.unpack_from("=HH", data, at)
                if alen < 4:
                    break
                value = data[at + 4 : at + alen]
                if atype & 0x3FFF == NFQA_PACKET_HDR:
                    (packet_id,) = struct.unpack_from("!I", value)
                elif atype & 0x3FFF == NFQA_PAYLOAD:
                    payload = value
                at += _align(alen)
            if packet_id >= 0:
                yield NFQNL_MSG_PACKET, packet_id, payload
        offset += _align(length)


class Queue:
    """One bound queue on a netlink socket (needs CAP_NET_ADMIN in the netns)."""

    def __init__(self, queue: int, maxlen: int = 256) -> None:
        self.queue = queue
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        # ENOBUFS rather than an ever-growing backlog if the reader falls behind
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for msg in bind_messages(queue, maxlen):
            self.sock.send(msg)
            list(parse(self.sock.recv(8192)))

    def packets(self) -> Iterator[tuple[int, bytes]]:
        """(packet id, packet) forever; a lost burst (ENOBUFS) is skipped: those
        packets went through unchanged (fail-open) or time out in the kernel."""
        while True:
            try:
                data = self.sock.recv(COPY_RANGE + 4096)
            except OSError as error:
                if error.errno == 105:  # ENOBUFS
                    continue
                raise
            for _kind, packet_id, payload in parse(data):
                yield packet_id, payload

    def accept(self, packet_id: int, payload: bytes | None) -> None:
        self.sock.send(verdict(self.queue, packet_id, payload))

    def close(self) -> None:
        self.sock.close()
