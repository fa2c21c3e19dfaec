"""A self-signed server certificate made at start, the way a fresh install has one.

A distribution's first boot makes a "snakeoil" certificate: RSA 2048, subject and
issuer both CN=<hostname>, the hostname as its only DNS name, ten years of validity.
The services that speak TLS present the same, so a scanner's certificate check sees
an ordinary, unconfigured server. The key lives in memory; Python's ssl module can
only load it from a file, so it passes through a private temporary directory that
is removed before the service accepts its first connection.

TLS runs over memory buffers rather than asyncio's own TLS transport so that a
client which fails the handshake still gets the alert a real server sends, and a
client speaking plain text gets the product's own complaint (both are what
scanners use to name the service).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from . import core


def certificate_pem(hostname: str, extra_names: tuple[str, ...] = (), alt_names: bool = True,
                    now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for a self-signed server certificate.

    alt_names=False leaves out the SubjectAlternativeName extension (some products'
    fallback certificates carry only a fixed common name)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "localhost")])
    start = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    dns = [hostname or "localhost", *(n for n in extra_names if n and n != hostname)]
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
    )
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns]), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                        critical=True)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_pem_isolated(hostname: str, extra_names: tuple[str, ...] = (),
                             alt_names: bool = True) -> tuple[bytes, bytes]:
    """certificate_pem() run in a short-lived child process, its output read from a pipe.

    The crypto library costs a service about 12 MB of resident memory for a job done
    once at start; a child pays that instead. Falls back to doing it here.
    """
    code = (f"import json, sys\nfrom {__package__} import tlscert\n"
            "cert, key = tlscert.certificate_pem(*json.loads(sys.argv[1]))\n"
            "sys.stdout.buffer.write(cert + b'\\0' + key)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    try:
        args = json.dumps([hostname, extra_names, alt_names])
        out = subprocess.run([sys.executable, "-c", code, args],
                             capture_output=True, timeout=120, env=env, check=True).stdout
        cert, sep, key = out.partition(b"\0")
        if sep and cert.startswith(b"-----BEGIN CERTIFICATE") and b"PRIVATE KEY" in key:
            return cert, key
    except (OSError, subprocess.SubprocessError):
        pass
    return certificate_pem(hostname, extra_names, alt_names)


def server_context(hostname: str | None = None, extra_names: tuple[str, ...] = (),
                   alpn: tuple[str, ...] = (), alt_names: bool = True) -> ssl.SSLContext:
    """A TLS server context holding a fresh self-signed certificate for `hostname`."""
    cert_pem, key_pem = certificate_pem_isolated(hostname or socket.gethostname(), extra_names,
                                                 alt_names)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    scratch = tempfile.mkdtemp()
    try:
        path = os.path.join(scratch, "server.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem + cert_pem)
        ctx.load_cert_chain(path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ctx


PlainAnswer = Callable[[bytes], bytes]
_TLS_BUFFER = 262144


class _TlsTransport(asyncio.Transport):
    """Carries the application's writes through the TLS object onto the raw connection."""

    def __init__(self, raw: asyncio.StreamWriter, obj: ssl.SSLObject, out: ssl.MemoryBIO,
                 protocol: asyncio.StreamReaderProtocol) -> None:
        super().__init__()
        self.raw, self.obj, self.out, self.protocol = raw, obj, out, protocol
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            return
        try:
            self.obj.write(bytes(data))
        except ssl.SSLError:
            self.close()
            return
        self.raw.write(self.out.read())

    def is_closing(self) -> bool:
        return self.closed or self.raw.is_closing()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.obj.unwrap()
        except (ssl.SSLError, ValueError):
            pass
        try:
            self.raw.write(self.out.read())
        except (OSError, RuntimeError):
            pass
        self.raw.close()
        self.protocol.connection_lost(None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self.obj
        return self.raw.get_extra_info(name, default)


class _TlsWriter(asyncio.StreamWriter):
    """A stream writer whose drain waits for the raw connection's buffer."""

    raw: asyncio.StreamWriter

    async def drain(self) -> None:
        if self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        await self.raw.drain()


async def _flush(raw: asyncio.StreamWriter, out: ssl.MemoryBIO) -> None:
    data = out.read()
    if data:
        raw.write(data)
        await raw.drain()


async def _handshake(raw_reader: asyncio.StreamReader, raw: asyncio.StreamWriter,
                     obj: ssl.SSLObject, inc: ssl.MemoryBIO, out: ssl.MemoryBIO,
                     timeout: float) -> bool:
    for _ in range(64):
        try:
            obj.do_handshake()
            await _flush(raw, out)
            return True
        except ssl.SSLWantReadError:
            await _flush(raw, out)
            data = await core.read_some(raw_reader, 65536, timeout)
            if not data:
                return False
            inc.write(data)
        except (ssl.SSLError, ValueError):
            await _flush(raw, out)  # the alert a real server sends (scanners key on it)
            return False
    return False


def _decrypt(obj: ssl.SSLObject, app: asyncio.StreamReader) -> bool:
    """Move what the TLS object can decrypt into the service's reader; False at close."""
    while True:
        try:
            chunk = obj.read(65536)
        except ssl.SSLWantReadError:
            return True
        if not chunk:
            return False
        app.feed_data(chunk)


async def _pump(raw_reader: asyncio.StreamReader, raw: asyncio.StreamWriter,
                obj: ssl.SSLObject, inc: ssl.MemoryBIO, out: ssl.MemoryBIO,
                app: asyncio.StreamReader) -> None:
    try:
        while _decrypt(obj, app):
            await _flush(raw, out)
            while len(getattr(app, "_buffer", b"")) > _TLS_BUFFER:
                await asyncio.sleep(0.05)  # the service has not read what it has: wait
            data = await raw_reader.read(65536)
            if not data:
                break
            inc.write(data)
    except (ssl.SSLError, ConnectionError, OSError):
        pass
    app.feed_eof()


async def run_tls(tls: ssl.SSLContext, raw_reader: asyncio.StreamReader,
                  raw: asyncio.StreamWriter, peer: core.Peer, handler: core.Handler,
                  first: bytes = b"", timeout: float = 30.0) -> None:
    """Handshake on an accepted connection (`first` = bytes already read from it), then
    run handler on the decrypted streams. Used directly by protocols that switch to TLS
    mid-stream (an SSLRequest, a STARTTLS)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    inc.write(first)
    obj = tls.wrap_bio(inc, out, server_side=True)
    if not await _handshake(raw_reader, raw, obj, inc, out, timeout):
        return
    loop = asyncio.get_running_loop()
    app = asyncio.StreamReader(limit=core.MAX_LINE, loop=loop)
    protocol = asyncio.StreamReaderProtocol(app, loop=loop)
    transport = _TlsTransport(raw, obj, out, protocol)
    writer = _TlsWriter(transport, protocol, app, loop)
    writer.raw = raw
    pump = asyncio.create_task(_pump(raw_reader, raw, obj, inc, out, app))
    try:
        await handler(app, writer, peer)
    finally:
        pump.cancel()
        transport.close()


async def serve_tls(ctx: core.Context, port: int, handler: core.Handler,
                    tls: ssl.SSLContext, plain: PlainAnswer | None = None) -> asyncio.Server:
    """A TLS service: handler gets decrypted streams. A client that speaks plain text
    gets `plain(first_bytes)` and is closed; a failed handshake gets the TLS alert."""

    async def on_conn(raw_reader: asyncio.StreamReader, raw: asyncio.StreamWriter,
                      peer: core.Peer) -> None:
        first = await core.read_some(raw_reader, 65536, ctx.idle_seconds)
        if not first:
            return
        if first[0] != 0x16:
            if plain is not None:
                await core.send(raw, plain(first))
            return
        await run_tls(tls, raw_reader, raw, peer, handler, first, min(ctx.idle_seconds, 30.0))

    return await core.serve_tcp(ctx, port, on_conn)
