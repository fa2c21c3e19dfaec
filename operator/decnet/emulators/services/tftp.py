"""TFTP: a tftpd-hpa serving a small boot/config directory, uploads measured and dropped.

Written by hand: TFTP is five packet types over UDP (RFC 1350), so a library
would add nothing but memory. Reads (RRQ) of the fake files (`files` from the
config plus the lure files under `root` in the shared file tree) are served in
512-byte blocks, each sent when the previous one is acknowledged; anything else
gets tftpd-hpa's "File not found". Writes (WRQ) are acknowledged block by block,
hashed and dropped (`data` event with size and sha256). Replies come from port 69
itself rather than a fresh port; clients (tftp-hpa, busybox tftp, curl) accept it.
Like tftpd-hpa, the server stays silent on anything but a request or a packet of
a transfer in progress. Per-peer transfer state is bounded in count, size and age.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import struct
import time
from collections import OrderedDict
from typing import Any

from .. import core, events, shell

PORTS = [(69, "udp")]
DEFAULTS: dict[str, Any] = {
    "root": "/srv/tftp",
    "files": {
        "pxelinux.cfg/default": "DEFAULT debian\nLABEL debian\n  KERNEL debian-installer/amd64"
                                "/linux\n  APPEND vga=788 initrd=debian-installer/amd64/"
                                "initrd.gz --- quiet\n",
    },
    "hostname": "",
    "maxUpload": 16 * 1024 * 1024,
    "filesRoot": "/",
}
RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
BLOCK = 512
MAX_TRANSFERS = 256
TRANSFER_SECONDS = 60.0
ERR_UNDEFINED, ERR_NOT_FOUND, ERR_ACCESS, ERR_DISK_FULL, ERR_ILLEGAL, ERR_UNKNOWN_TID = \
    0, 1, 2, 3, 4, 5


# ---------------------------------------------------------------- pure packets

@dataclasses.dataclass(frozen=True)
class Request:
    opcode: int
    filename: str
    mode: str
    options: dict[str, str]


def parse_request(packet: bytes) -> Request | None:
    """An RRQ/WRQ: opcode, then NUL-terminated filename, mode and option pairs."""
    if len(packet) < 4:
        return None
    (opcode,) = struct.unpack("!H", packet[:2])
    if opcode not in (RRQ, WRQ):
        return None
    fields = packet[2:].split(b"\0")
    if len(fields) < 3:
        return None
    filename = fields[0].decode("latin-1")[:512]
    mode = fields[1].decode("latin-1").lower()[:16]
    rest = [f.decode("latin-1")[:64] for f in fields[2:-1]][:16]
    options = {rest[i].lower(): rest[i + 1] for i in range(0, len(rest) - 1, 2)}
    return Request(opcode, filename, mode, options)


def data_packet(block: int, payload: bytes) -> bytes:
    return struct.pack("!HH", DATA, block & 0xFFFF) + payload


def ack_packet(block: int) -> bytes:
    return struct.pack("!HH", ACK, block & 0xFFFF)


def error_packet(code: int, message: str) -> bytes:
    return struct.pack("!HH", ERROR, code) + message.encode("latin-1", "replace") + b"\0"


def block_of(content: bytes, block: int) -> bytes:
    """Block n (from 1) of a file; the block after the last full one is empty."""
    start = (block - 1) * BLOCK
    return content[start:start + BLOCK]


def netascii(content: bytes) -> bytes:
    return content.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def clean_name(filename: str) -> str:
    """A request path relative to the server root ("/srv/tftp/x" and "x" are the same)."""
    name = posixpath.normpath("/" + filename.replace("\\", "/")).lstrip("/")
    return name


# ---------------------------------------------------------------- transfers

@dataclasses.dataclass
class Transfer:
    kind: int
    filename: str
    started: float
    content: bytes = b""
    block: int = 0
    size: int = 0
    digest: Any = dataclasses.field(default_factory=hashlib.sha256)
    session: str = ""


class Server:
    """Packet in, packet out; holds the bounded table of transfers in progress."""

    def __init__(self, ctx: core.Context, tree: shell.TreeCache,
                 clock: Any = time.monotonic) -> None:
        self.ctx, self.tree, self.clock = ctx, tree, clock
        self.transfers: OrderedDict[tuple[str, int], Transfer] = OrderedDict()
        self.root = str(ctx.config.get("root") or "/srv/tftp")
        files = ctx.config.get("files") or {}
        self.files = {clean_name(str(k)): str(v).encode() for k, v in
                      list(files.items())[:64]} if isinstance(files, dict) else {}

    def lookup(self, filename: str) -> bytes | None:
        name = clean_name(filename)
        root = self.root.strip("/")
        if root and name.startswith(root + "/"):
            name = name[len(root) + 1:]
        if name in self.files:
            return self.files[name]
        _, node = self.tree.get().resolve(posixpath.join(self.root, name))
        if node is not None and node.kind == "f" and node.content:
            return node.content
        return None

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, t in self.transfers.items() if now - t.started > TRANSFER_SECONDS]:
            del self.transfers[key]
        while len(self.transfers) >= MAX_TRANSFERS:
            self.transfers.popitem(last=False)

    def handle(self, packet: bytes, peer: core.Peer) -> bytes | None:
        key = (peer.ip, peer.port)
        if len(packet) < 4:
            return None  # tftpd-hpa answers nothing that is not a request

        (opcode,) = struct.unpack("!H", packet[:2])
        if opcode in (RRQ, WRQ):
            return self.request(packet, key, peer)
        transfer = self.transfers.get(key)
        if opcode == ERROR:
            self.transfers.pop(key, None)
            return None
        if transfer is None:
            return None
        (block,) = struct.unpack("!H", packet[2:4])
        if opcode == ACK and transfer.kind == RRQ:
            return self.next_block(key, transfer, block)
        if opcode == DATA and transfer.kind == WRQ:
            return self.receive(key, transfer, block, packet[4:], peer)
        return error_packet(ERR_ILLEGAL, "Illegal TFTP operation")

    def request(self, packet: bytes, key: tuple[str, int], peer: core.Peer) -> bytes:
        req = parse_request(packet)
        if req is None:
            return error_packet(ERR_ILLEGAL, "Illegal TFTP operation")
        method = "RRQ" if req.opcode == RRQ else "WRQ"
        self.ctx.emit(events.REQUEST, peer, f"{method} {req.filename}", method=method,
                      path=req.filename, mode=req.mode,
                      options=",".join(f"{k}={v}" for k, v in req.options.items()) or None)
        if req.mode not in ("netascii", "octet", "mail"):
            return error_packet(ERR_ILLEGAL, "Unknown mode")
        self._expire()
        if req.opcode == WRQ:
            self.transfers[key] = Transfer(WRQ, req.filename, self.clock(), session=peer.session)
            return ack_packet(0)
        content = self.lookup(req.filename)
        if content is None:
            return error_packet(ERR_NOT_FOUND, "File not found")
        if req.mode == "netascii":
            content = netascii(content)
        transfer = Transfer(RRQ, req.filename, self.clock(), content, 1)
        self.transfers[key] = transfer
        return data_packet(1, block_of(content, 1))

    def next_block(self, key: tuple[str, int], transfer: Transfer, block: int) -> bytes | None:
        if block != transfer.block & 0xFFFF:
            return data_packet(transfer.block, block_of(transfer.content, transfer.block))
        if len(block_of(transfer.content, transfer.block)) < BLOCK:
            del self.transfers[key]  # the short block was acknowledged: done
            return None
        transfer.block += 1
        return data_packet(transfer.block, block_of(transfer.content, transfer.block))

    def receive(self, key: tuple[str, int], transfer: Transfer, block: int, payload: bytes,
                peer: core.Peer) -> bytes | None:
        expected = (transfer.block + 1) & 0xFFFF
        if block != expected:
            return ack_packet(transfer.block)  # a duplicate: acknowledge it again
        transfer.block += 1
        transfer.size += len(payload[:BLOCK])
        transfer.digest.update(payload[:BLOCK])
        limit = int(self.ctx.config.get("maxUpload") or 0)
        if transfer.size > limit:
            del self.transfers[key]
            self._uploaded(transfer, peer, truncated=True)
            return error_packet(ERR_DISK_FULL, "Disk full or allocation exceeded")
        if len(payload) < BLOCK:
            del self.transfers[key]
            self._uploaded(transfer, peer, truncated=False)
        return ack_packet(transfer.block)

    def _uploaded(self, transfer: Transfer, peer: core.Peer, truncated: bool) -> None:
        peer = dataclasses.replace(peer, session=transfer.session or peer.session)
        self.ctx.emit(events.DATA, peer, "upload discarded", method="WRQ",
                      path=transfer.filename, size=transfer.size,
                      sha256=transfer.digest.hexdigest(), truncated=str(truncated).lower())


async def serve(ctx: core.Context) -> None:
    persona = shell.persona(ctx.config)
    server = Server(ctx, shell.TreeCache(persona, str(ctx.config.get("filesRoot") or "/")))
    for port, _proto in PORTS:
        await core.serve_udp(ctx, port, server.handle)
