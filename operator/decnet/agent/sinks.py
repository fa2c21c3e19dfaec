"""Sink transports: syslog over UDP, TCP (RFC 6587 octet counting), TLS (RFC 5425); webhook.

Framing and bodies are pure functions; the classes own one connection each.
Plain syslog has no acknowledgement, so a TCP/TLS batch counts as delivered only
when the connection is seen alive *after* it was written (`confirm`): a receiver
that went away meanwhile shows up as EOF or a reset, and the batch is sent again
on a new connection. That turns "written into a dead socket" into a duplicate
instead of a loss. UDP cannot know; it is documented as best effort.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import select
import socket
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence

CONNECT_TIMEOUT = 5.0
SEND_TIMEOUT = 10.0


class SinkError(Exception):
    """The sink did not take the batch; retry later."""


@dataclasses.dataclass(frozen=True)
class TLSMaterial:
    """PEM bytes read from Secrets (never written to status or logs)."""

    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    server_name: str | None = None


def octet_frame(message: str) -> bytes:
    """RFC 6587 octet counting: `<length> <message>`, the length in bytes."""
    data = message.encode("utf-8")
    return str(len(data)).encode() + b" " + data


def webhook_body(records: Sequence[Mapping[str, object]]) -> bytes:
    return json.dumps({"events": list(records)}, separators=(",", ":")).encode()


def parse_address(address: str) -> tuple[str, str, int]:
    """`tls://host:port` -> ("tls", host, port); ValueError when malformed."""
    parsed = urllib.parse.urlsplit(address)
    if parsed.scheme not in ("udp", "tcp", "tls") or not parsed.hostname or not parsed.port:
        raise ValueError(f"not a syslog address: {address!r}")
    return parsed.scheme, parsed.hostname, parsed.port


def ssl_context(material: TLSMaterial, tmpdir: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if material.ca_pem:
        ctx.load_verify_locations(cadata=material.ca_pem.decode())
    if material.cert_pem and material.key_pem:
        # load_cert_chain only takes files: written 0600 into the agent's own state dir.
        import os
        import tempfile

        fd, path = tempfile.mkstemp(dir=tmpdir, suffix=".pem")
        try:
            os.write(fd, material.cert_pem + b"\n" + material.key_pem)
            os.close(fd)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
    return ctx


class Syslog:
    """One syslog receiver; `send` writes a batch, `confirm` says the previous one landed."""

    def __init__(self, address: str, material: TLSMaterial | None, tmpdir: str) -> None:
        self.scheme, self.host, self.port = parse_address(address)
        self.material = material or TLSMaterial()
        self.tmpdir = tmpdir
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self.scheme == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect((self.host, self.port))
            return sock
        raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        raw.settimeout(SEND_TIMEOUT)
        if self.scheme == "tcp":
            return raw
        ctx = ssl_context(self.material, self.tmpdir)
        try:
            return ctx.wrap_socket(raw, server_hostname=self.material.server_name or self.host)
        except (OSError, ssl.SSLError):
            raw.close()
            raise

    def send(self, lines: Sequence[str]) -> None:
        try:
            if self._sock is None:
                self._sock = self._connect()
            elif not self.alive():
                self.close()
                raise SinkError("the receiver closed the connection")
            if self.scheme == "udp":
                for line in lines:
                    self._sock.send(line.encode("utf-8")[:65000])
            else:
                self._sock.sendall(b"".join(octet_frame(line) for line in lines))
        except (OSError, ssl.SSLError) as error:
            self.close()
            raise SinkError(f"{self.scheme}://{self.host}:{self.port}: {error}") from error

    def alive(self) -> bool:
        """No EOF, reset or unread junk on the connection (receivers never talk back)."""
        sock = self._sock
        if sock is None:
            return False
        if self.scheme == "udp":
            return True
        try:
            readable, _, errored = select.select([sock], [], [sock], 0)
            if errored:
                return False
            if readable:
                if isinstance(sock, ssl.SSLSocket):
                    sock.setblocking(False)
                    try:
                        data = sock.recv(1)
                    except ssl.SSLWantReadError:
                        return True
                    finally:
                        sock.setblocking(True)
                        sock.settimeout(SEND_TIMEOUT)
                else:
                    data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                return bool(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    def confirm(self) -> bool:
        if not self.alive():
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None


class Webhook:
    """HTTPS POST of {"events": [...]}; a 2xx answer is the acknowledgement."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        material: TLSMaterial | None,
        tmpdir: str,
    ) -> None:
        self.url = urllib.parse.urlsplit(url)
        self.headers = dict(headers)
        self.material = material or TLSMaterial()
        self.tmpdir = tmpdir
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        host = self.url.hostname or ""
        if self.url.scheme == "https":
            ctx = ssl_context(self.material, self.tmpdir)
            return http.client.HTTPSConnection(
                host, self.url.port or 443, timeout=SEND_TIMEOUT, context=ctx
            )
        return http.client.HTTPConnection(host, self.url.port or 80, timeout=SEND_TIMEOUT)

    def send(self, records: Sequence[Mapping[str, object]]) -> None:
        body = webhook_body(records)
        path = self.url.path or "/"
        if self.url.query:
            path += "?" + self.url.query
        headers = {"Content-Type": "application/json", **self.headers}
        for attempt in (1, 2):  # a kept-alive connection the server closed: one fresh try
            try:
                if self._conn is None:
                    self._conn = self._connect()
                self._conn.request("POST", path, body=body, headers=headers)
                response = self._conn.getresponse()
                response.read()
                if 200 <= response.status < 300:
                    return
                self.close()
                raise SinkError(f"webhook answered {response.status} {response.reason}")
            except (OSError, http.client.HTTPException, ssl.SSLError) as error:
                self.close()
                if attempt == 2:
                    where = (
                        f"{self.url.scheme}://{self.url.netloc.rpartition('@')[2]}{self.url.path}"
                    )
                    raise SinkError(f"webhook {where}: {error}") from error

    def confirm(self) -> bool:
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
