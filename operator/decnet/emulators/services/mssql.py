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
import ssl
import struct
from typing import Any

from .. import core, events, tlscert

PORTS = [(1433, "tcp")]
DEFAULTS: dict[str, Any] = {
    "version": "15.0.2000",
    "serverName": "",
    "encryption": True,
}
PRELOGIN, LOGIN7, SSPI, TABULAR = 0x12, 0x10, 0x11, 0x04
ENCRYPT_OFF, ENCRYPT_ON, ENCRYPT_NOT_SUP, ENCRYPT_REQ = 0x00, 0x01, 0x02, 0x03
# The certificate SQL Server makes for itself at start when none is configured.
FALLBACK_CN = "SSL_Self_Signed_Fallback"
MAX_MESSAGE = 65536


def packet(kind: int, payload: bytes, packet_id: int = 1) -> bytes:
    return struct.pack(">BBHHBB", kind, 0x01, len(payload) + 8, 0, packet_id, 0) + payload


def version_bytes(version: str) -> bytes:
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")]
    parts += [0] * (4 - len(parts))
    return struct.pack(">BBHH", parts[0] & 0xFF, parts[1] & 0xFF, parts[2] & 0xFFFF,
                       parts[3] & 0xFFFF)


def encryption_answer(client: int | None, tls_available: bool) -> int:
    """The server's ENCRYPTION option for the client's: a server with a certificate and
    without "force encryption" encrypts the login only (OFF) unless asked for more."""
    if not tls_available or client == ENCRYPT_NOT_SUP:
        return ENCRYPT_NOT_SUP
    return ENCRYPT_ON if client in (ENCRYPT_ON, ENCRYPT_REQ) else ENCRYPT_OFF


def prelogin_response(version: str, encryption: int = ENCRYPT_NOT_SUP) -> bytes:
    """VERSION, ENCRYPTION, INSTOPT and THREADID, as a default instance."""
    options = [(0x00, version_bytes(version)), (0x01, bytes([encryption])),
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
        "tds": tds_version,
        "client_pid": client_pid, "sspi": sspi_len > 0,
    }


def login_failed(user: str, server: str, tds_version: int = 0x74000004) -> bytes:
    """ERROR 18456 (state 1, class 14) and DONE with the error bit, in the layout of the
    client's TDS version (7.2 widened the line number and the row count)."""
    wide = tds_version >= 0x72000000
    message = f"Login failed for user '{user[:128]}'.".encode("utf-16-le")
    name = server.encode("utf-16-le")
    body = (struct.pack("<IBB", 18456, 1, 14) + struct.pack("<H", len(message) // 2) + message
            + bytes([len(name) // 2]) + name + b"\x00"
            + (struct.pack("<I", 1) if wide else struct.pack("<H", 1)))
    token = b"\xaa" + struct.pack("<H", len(body)) + body
    done = b"\xfd" + (struct.pack("<HHQ", 0x0002, 0, 0) if wide else
                      struct.pack("<HHI", 0x0002, 0, 0))
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


class TdsTls:
    """TLS the TDS way: handshake records travel inside PRELOGIN packets, then records
    flow bare. Memory buffers only; the service decides what goes through it."""

    def __init__(self, tls: ssl.SSLContext, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, timeout: float) -> None:
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = tls.wrap_bio(self.inc, self.out, server_side=True)
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.plain = b""

    async def _feed(self) -> bool:
        """One TDS-wrapped or bare TLS record into the TLS object."""
        first = await core.read_exactly(self.reader, 1, self.timeout)
        if first is None:
            return False
        if first[0] == PRELOGIN:
            head = await core.read_exactly(self.reader, 7, self.timeout)
            if head is None:
                return False
            length = struct.unpack_from(">H", head, 1)[0]
            data = await core.read_exactly(self.reader, max(length - 8, 0), self.timeout)
        elif first[0] in (0x14, 0x15, 0x16, 0x17):
            head = await core.read_exactly(self.reader, 4, self.timeout)
            if head is None:
                return False
            body = await core.read_exactly(self.reader, struct.unpack_from(">H", head, 2)[0],
                                           self.timeout)
            data = None if body is None else first + head + body
        else:
            return False
        if data is None:
            return False
        self.inc.write(data)
        return True

    async def handshake(self) -> bool:
        for _ in range(32):
            try:
                self.obj.do_handshake()
                await self._send(wrap=True)
                return True
            except ssl.SSLWantReadError:
                await self._send(wrap=True)
                if not await self._feed():
                    return False
            except (ssl.SSLError, ValueError):
                await self._send(wrap=True)
                return False
        return False

    async def _send(self, wrap: bool) -> None:
        data = self.out.read()
        if data:
            await core.send(self.writer, packet(PRELOGIN, data) if wrap else data)

    async def read_message(self) -> tuple[int, bytes] | None:
        """One TDS message from inside the TLS stream."""
        kind, payload = -1, b""
        for _ in range(256):
            while len(self.plain) >= 8:
                length = struct.unpack_from(">H", self.plain, 2)[0]
                if length < 8 or len(payload) + length > MAX_MESSAGE:
                    return None
                if len(self.plain) < length:
                    break
                kind, status = self.plain[0], self.plain[1]
                payload += self.plain[8:length]
                self.plain = self.plain[length:]
                if status & 0x01:
                    return kind, payload
            try:
                self.plain += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return None
            if not await self._feed():
                return None
        return None

    async def write(self, data: bytes) -> None:
        self.obj.write(data)
        await self._send(wrap=False)


async def serve(ctx: core.Context) -> None:
    server = str(ctx.config["serverName"]) or ctx.emitter.hostname.upper()[:15]
    tls = tlscert.server_context(FALLBACK_CN, alt_names=False) if ctx.config["encryption"] \
        else None
    if tls is not None:
        tls.maximum_version = ssl.TLSVersion.TLSv1_2  # SQL Server 2019 stops at TLS 1.2
        tls.num_tickets = 0

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        mode = ENCRYPT_NOT_SUP
        channel: TdsTls | None = None
        for _ in range(8):
            got = await (channel.read_message() if channel is not None else
                         read_message(r, ctx.idle_seconds))
            if got is None:
                return
            kind, data = got
            if kind == PRELOGIN and channel is None:
                options = parse_prelogin(data)
                asked = options[1][0] if options.get(1) else None
                mode = encryption_answer(asked, tls is not None)
                ctx.emit(events.DATA, p, "prelogin",
                         client_version=options.get(0, b"").hex() or None, encryption=asked)
                await core.send(w, prelogin_response(str(ctx.config["version"]), mode))
                if mode != ENCRYPT_NOT_SUP and tls is not None:
                    channel = TdsTls(tls, r, w, ctx.idle_seconds)
                    if not await channel.handshake():
                        ctx.emit(events.DATA, p, "TLS handshake failed")
                        return
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
                         server=login["server"] or None, tds_version=login["tds_version"],
                         encrypted="true" if channel is not None else "false")
                answer = login_failed(login["username"], server, login["tds"])
                if channel is not None and mode == ENCRYPT_ON:
                    await channel.write(answer)
                else:  # encryption OFF covers the login record only
                    await core.send(w, answer)
                return
            else:
                ctx.emit(events.DATA, p, "unexpected packet", packet_type=kind, size=len(data))
                return

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
