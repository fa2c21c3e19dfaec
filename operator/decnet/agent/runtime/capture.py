"""Raw capture on one of this agent's LAN bridges: an AF_PACKET socket with a BPF filter.

The socket is opened with protocol 0 (it receives nothing), gets the classic BPF program
from agent/scans.py (only ARP requests, TCP SYN, UDP and ICMP echo, cut to a few header
bytes), and only then is bound to the bridge: no unfiltered frame is ever queued to it.
The bridge is put in promiscuous mode through a packet membership (the kernel drops it
when the socket closes), so frames between two deckies' ports reach the socket too, not
only those for the node. Needs CAP_NET_RAW in the host's network namespace.

Nothing here interprets a frame: bytes go to the pure parser, which never executes or
stores what it reads beyond a few integers.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Sequence

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_STATISTICS = 6
PACKET_MR_PROMISC = 1
SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003
RCVBUF = 1 << 20


class CaptureError(Exception):
    """The bridge cannot be watched (gone, or no CAP_NET_RAW)."""


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def exists(interface: str) -> bool:
    try:
        socket.if_nametoindex(interface)
    except OSError:
        return False
    return True


class Capture:
    """A non-blocking packet socket on one interface; `read` returns the waiting frames."""

    def __init__(self, interface: str, program: Sequence[tuple[int, int, int, int]], snap: int):
        self.interface = interface
        self.snap = snap
        try:
            index = socket.if_nametoindex(interface)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError as error:
            raise CaptureError(f"{interface}: {error}") from error
        try:
            insns = (_SockFilter * len(program))(*(_SockFilter(*i) for i in program))
            prog = _SockFprog(len(program), insns)
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(prog))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.bind((interface, ETH_P_ALL))
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            raise CaptureError(f"{interface}: {error}") from error
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self, limit: int) -> list[bytes]:
        """Up to `limit` frames that are waiting (none when nothing is)."""
        frames: list[bytes] = []
        recv = self.sock.recv
        try:
            while len(frames) < limit:
                frames.append(recv(self.snap))
        except BlockingIOError:
            pass
        except OSError as error:
            raise CaptureError(f"{self.interface}: {error}") from error
        return frames

    def drops(self) -> int:
        """Frames the kernel dropped for want of buffer since the last call (a flood)."""
        try:
            raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except OSError:
            return 0
        _packets, dropped = struct.unpack("II", raw)
        return int(dropped)

    def close(self) -> None:
        self.sock.close()
