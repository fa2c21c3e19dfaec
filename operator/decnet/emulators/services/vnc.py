"""VNC (RFB) on 5900: the version handshake and VNC authentication, responses captured.

Written by hand: up to authentication RFB is five fixed-size messages. A client
of version 3.3, 3.7 or 3.8 gets the matching security handshake, one security
type (2, VNC authentication) and a random 16-byte challenge; its DES response is
recorded as `password_hash` = challenge:response (hash_type "vnc", crackable
offline). The SecurityResult is "failed" with RealVNC's reason text, unless the
config holds a password the response matches: then the client gets a
ServerInit naming the configured desktop, as a real server would, and nothing
more (no framebuffer updates are ever sent).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import struct
from typing import Any

from .. import core, events

PORTS = [(5900, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "3.8",
    "desktopName": "",
    "password": "",
    "width": 1024,
    "height": 768,
    "failureReason": "Authentication failed",
}
VERSIONS = {"3.3": b"RFB 003.003\n", "3.7": b"RFB 003.007\n", "3.8": b"RFB 003.008\n"}
_CLIENT = re.compile(rb"^RFB (\d{3})\.(\d{3})\n$")
SEC_NONE, SEC_VNC = 1, 2


def server_version(config: dict[str, Any]) -> bytes:
    return VERSIONS.get(str(config["version"]), VERSIONS["3.8"])


def negotiate_minor(client: bytes, server: bytes) -> int | None:
    """The minor version both sides speak (3, 7 or 8); None for a non-RFB greeting."""
    match = _CLIENT.match(client)
    if match is None or match.group(1) != b"003":
        return None
    minor = int(match.group(2))
    server_minor = int(server[8:11])
    minor = min(minor, server_minor)
    if minor >= 8:
        return 8
    return 7 if minor == 7 else 3


def _des_key(password: str) -> bytes:
    """VNC's DES key: the password's first 8 bytes, each byte's bits mirrored."""
    raw = password.encode("latin-1", "replace")[:8].ljust(8, b"\0")
    return bytes(int(f"{b:08b}"[::-1], 2) for b in raw)


def vnc_response(password: str, challenge: bytes) -> bytes:
    """What a client that knows the password answers (DES-ECB of the challenge)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:  # cryptography < 43 (Debian bookworm's 38)
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    key = _des_key(password)
    enc = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return enc.update(challenge) + enc.finalize()


def security_result(minor: int, ok: bool, reason: str) -> bytes:
    if ok:
        return struct.pack(">I", 0)
    out = struct.pack(">I", 1)
    if minor >= 8:
        raw = reason.encode()[:256]
        out += struct.pack(">I", len(raw)) + raw
    return out


def server_init(config: dict[str, Any]) -> bytes:
    name = (str(config["desktopName"]) or socket.gethostname()).encode()[:256]
    width = max(1, min(int(config["width"]), 8192))
    height = max(1, min(int(config["height"]), 8192))
    pixel = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
    return struct.pack(">HH", width, height) + pixel + struct.pack(">I", len(name)) + name


async def handle(ctx: core.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: core.Peer) -> None:
    config = ctx.config
    server = server_version(config)
    await core.send(writer, server)
    greeting = await core.read_exactly(reader, 12, ctx.idle_seconds)
    if greeting is None:
        return
    minor = negotiate_minor(greeting, server)
    ctx.emit(events.REQUEST, peer, "protocol version", client=events.cap(greeting.strip(), 32),
             version=f"3.{minor}" if minor else None)
    if minor is None:
        return
    if minor == 3:
        await core.send(writer, struct.pack(">I", SEC_VNC))
    else:
        await core.send(writer, bytes([1, SEC_VNC]))
        chosen = await core.read_exactly(reader, 1, ctx.idle_seconds)
        if chosen is None:
            return
        if chosen[0] != SEC_VNC:
            ctx.emit(events.DATA, peer, "unsupported security type", security_type=chosen[0])
            await core.send(writer, security_result(minor, False, "Security type not supported"))
            return
    challenge = os.urandom(16)
    await core.send(writer, challenge)
    response = await core.read_exactly(reader, 16, ctx.idle_seconds)
    if response is None:
        return
    password = str(config["password"])
    accepted = bool(password) and response == vnc_response(password, challenge)
    ctx.emit(events.AUTH, peer, "login attempt",
             password_hash=f"{challenge.hex()}:{response.hex()}", hash_type="vnc",
             mechanism="VNC authentication",
             success="true" if accepted else "false")
    await core.send(writer, security_result(minor, accepted, str(config["failureReason"])))
    if not accepted:
        return
    shared = await core.read_exactly(reader, 1, ctx.idle_seconds)  # ClientInit
    if shared is None:
        return
    await core.send(writer, server_init(config))
    while await core.read_some(reader, 4096, ctx.idle_seconds):
        pass  # client messages (pixel format, update requests) are read and dropped


async def serve(ctx: core.Context) -> None:
    await core.serve_ports(ctx, PORTS, handle)
