"""Microsoft SQL Server on 1433: TDS pre-login, the LOGIN7 record read, then Login failed.

Hand-written: TDS up to a failed login is two exchanges. The pre-login answer
carries the version from the config (scanners read the product and build from
it) and declines encryption, so the client's LOGIN7 arrives in the clear. LOGIN7
hides the password only by swapping each byte's nibbles and XOR-ing it with 0xA5;
undone here, it becomes an `auth` event with the user, the client's workstation
name, application and the database it asked for. The answer is error 18456,
"Login failed for user '...'", as the real server sends it; nothing else is
served. Clients that insist on encryption (recent ODBC drivers by default) stop
at the pre-login answer, as they would against an old server without TLS.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from .. import core, events

PORTS = [(1433, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "15.0.2000",
    "serverName": "",
}
PRELOGIN, LOGIN7, SSPI, TABULAR = 0x12, 0x10, 0x11, 0x04
ENCRYPT_NOT_SUP = 0x02
MAX_MESSAGE = 65536


def packet(kind: int, payload: bytes, packet_id: int = 1) -> bytes:
    return struct.pack(">BBHHBB", kind, 0x01, len(payload) + 8, 0, packet_id, 0) + payload


def version_bytes(version: str) -> bytes:
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")]
    parts += [0] * (4 - len(parts))
    return struct.pack(">BBHH", parts[0] & 0xFF, parts[1] & 0xFF, parts[2] & 0xFFFF,
                       parts[3] & 0xFFFF)


def prelogin_response(version: str) -> bytes:
    """VERSION, ENCRYPTION (not supported), INSTOPT and THREADID, as a default instance."""
    options = [(0x00, version_bytes(version)), (0x01, bytes([ENCRYPT_NOT_SUP])),
               (0x02, b"\x00"), (0x03, b"")]
    offset = len(options) * 5 + 1
    head, data = b"", b""
    for token, value in options:
        head += struct.pack(">BHH", token, offset + len(data), len(value))
        data += value
    return packet(TABULAR, head + b"\xff" + data)


def parse_prelogin(payload: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 0
    while i + 5 <= len(payload) and payload[i] != 0xFF and len(out) < 16:
        token, offset, length = struct.unpack_from(">BHH", payload, i)
        out[token] = payload[offset:offset + length]
        i += 5
    return out


def deobfuscate(data: bytes) -> str:
    """LOGIN7's password: XOR 0xA5, then swap the nibbles back; UTF-16LE."""
    plain = bytes((((b ^ 0xA5) & 0x0F) << 4) | ((b ^ 0xA5) >> 4) for b in data)
    return plain.decode("utf-16-le", "replace")


def obfuscate(password: str) -> bytes:
    raw = password.encode("utf-16-le")
    return bytes(((((b & 0x0F) << 4) | (b >> 4)) ^ 0xA5) for b in raw)


def parse_login7(data: bytes) -> dict[str, Any]:
    """The fields of a LOGIN7 record the security team wants."""
    if len(data) < 94:
        raise ValueError("short LOGIN7")
    tds_version = struct.unpack_from("<I", data, 4)[0]
    client_pid = struct.unpack_from("<I", data, 16)[0]

    def text(slot: int, raw: bool = False) -> Any:
        offset, length = struct.unpack_from("<HH", data, 36 + slot * 4)
        chunk = data[offset:offset + length * 2]
        return chunk if raw else chunk.decode("utf-16-le", "replace")

    sspi_len = struct.unpack_from("<H", data, 80)[0]  # cbSSPI, after ClientID and ibSSPI
    return {
        "workstation": text(0), "username": text(1), "password": deobfuscate(text(2, True)),
        "application": text(3), "server": text(4), "library": text(6),
        "language": text(7), "database": text(8), "tds_version": f"0x{tds_version:08x}",
        "client_pid": client_pid, "sspi": sspi_len > 0,
    }


def login_failed(user: str, server: str) -> bytes:
    """ERROR 18456 (state 1, class 14) and DONE with the error bit."""
    message = f"Login failed for user '{user[:128]}'.".encode("utf-16-le")
    name = server.encode("utf-16-le")
    body = (struct.pack("<IBB", 18456, 1, 14) + struct.pack("<H", len(message) // 2) + message
            + bytes([len(name) // 2]) + name + b"\x00" + struct.pack("<I", 1))
    token = b"\xaa" + struct.pack("<H", len(body)) + body
    done = b"\xfd" + struct.pack("<HHQ", 0x0002, 0, 0)
    return packet(TABULAR, token + done)


async def read_message(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bytes] | None:
    """One TDS message (its packets joined); None at EOF or when it is too large."""
    kind, data = -1, b""
    for _ in range(64):
        head = await core.read_exactly(reader, 8, timeout)
        if head is None:
            return None
        kind, status, length = struct.unpack_from(">BBH", head)
        if length < 8 or len(data) + length > MAX_MESSAGE:
            return None
        body = await core.read_exactly(reader, length - 8, timeout)
        if body is None:
            return None
        data += body
        if status & 0x01:
            return kind, data
    return None


async def serve(ctx: core.Context) -> None:
    server = str(ctx.config["serverName"]) or ctx.emitter.hostname.upper()[:15]

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        for _ in range(8):
            got = await read_message(r, ctx.idle_seconds)
            if got is None:
                return
            kind, data = got
            if kind == PRELOGIN:
                options = parse_prelogin(data)
                ctx.emit(events.DATA, p, "prelogin",
                         client_version=options.get(0, b"").hex() or None,
                         encryption=options[1][0] if options.get(1) else None)
                await core.send(w, prelogin_response(str(ctx.config["version"])))
            elif kind == LOGIN7:
                try:
                    login = parse_login7(data)
                except (ValueError, struct.error):
                    ctx.emit(events.DATA, p, "malformed login", size=len(data))
                    return
                ctx.emit(events.AUTH, p, "login attempt", username=login["username"],
                         password=login["password"] if not login["sspi"] else None,
                         mechanism="ntlm" if login["sspi"] else "sql",
                         workstation=login["workstation"] or None,
                         client=login["application"] or None,
                         library=login["library"] or None,
                         database=login["database"] or None,
                         server=login["server"] or None, tds_version=login["tds_version"])
                await core.send(w, login_failed(login["username"], server))
                return
            else:
                ctx.emit(events.DATA, p, "unexpected packet", packet_type=kind, size=len(data))
                return

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
