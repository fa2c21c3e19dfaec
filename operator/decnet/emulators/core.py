"""Sockets, limits, configuration and the event emitter shared by every service.

A service module declares `PORTS`, `DEFAULTS` and `async def serve(ctx)`; it keeps
protocol logic in pure functions and uses the helpers here for everything that
touches the network, so every service gets the same protections against hostile
clients: a cap on concurrent connections, idle and total session timeouts, bounded
reads, and a cap on what a single event may carry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TextIO

from . import events

CONFIG_ENV = "SVC_CONFIG"
MAX_CONNECTIONS = 512
IDLE_SECONDS = 120.0
SESSION_SECONDS = 1800.0
MAX_LINE = 8192


def load_config(defaults: Mapping[str, Any], raw: str | None = None) -> dict[str, Any]:
    """Defaults overlaid by the JSON object in $SVC_CONFIG: unknown keys dropped, types coerced.

    A broken or hostile value never stops the service: it falls back to the default.
    """
    text = os.environ.get(CONFIG_ENV, "") if raw is None else raw
    try:
        given = json.loads(text) if text.strip() else {}
    except ValueError:
        given = {}
    if not isinstance(given, dict):
        given = {}
    merged = dict(defaults)
    for key, default in defaults.items():
        if key in given:
            merged[key] = _coerce(given[key], default)
    return merged


def _coerce(value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
        if isinstance(default, list):
            return list(value) if isinstance(value, list) else default
        if isinstance(default, dict):
            return dict(value) if isinstance(value, dict) else default
    except (TypeError, ValueError):
        return default
    return value


def new_session() -> str:
    return secrets.token_hex(6)


class Emitter:
    """Writes events as RFC 5424 lines to one stream (stdout in a container)."""

    def __init__(self, service: str, hostname: str | None = None, out: TextIO | None = None):
        self.service = service
        self.hostname = hostname or socket.gethostname()
        self.out = out or sys.stdout
        self.pid = os.getpid()

    def emit(
        self,
        kind: str,
        peer: Peer,
        message: str = "",
        **fields: object,
    ) -> events.Event:
        event = events.Event(
            service=self.service,
            kind=kind,
            src_ip=peer.ip,
            src_port=peer.port,
            dst_port=peer.local_port,
            session=peer.session,
            time=dt.datetime.now(dt.UTC),
            proto=peer.proto,
            hostname=self.hostname,
            fields={k: events.cap(v) for k, v in fields.items() if v is not None},
            message=message,
        )
        try:
            self.out.write(events.to_line(event, self.pid) + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass  # a closed stdout must not take the service down
        return event


@dataclasses.dataclass
class Peer:
    """Who is talking to us, on which of our ports, in which session."""

    ip: str
    port: int
    local_port: int
    session: str = dataclasses.field(default_factory=new_session)
    proto: str = "tcp"

    @classmethod
    def of(cls, writer: asyncio.StreamWriter, local_port: int) -> Peer:
        peer = writer.get_extra_info("peername") or ("", 0)
        return cls(ip=str(peer[0]), port=int(peer[1]), local_port=local_port)


@dataclasses.dataclass
class Context:
    """What a service's serve() gets: its config, where to listen, how to report."""

    service: str
    config: dict[str, Any]
    emitter: Emitter
    host: str = "0.0.0.0"
    port_map: dict[int, int] = dataclasses.field(default_factory=dict)
    max_connections: int = MAX_CONNECTIONS
    idle_seconds: float = IDLE_SECONDS
    session_seconds: float = SESSION_SECONDS
    _active: int = 0

    def port(self, port: int) -> int:
        """The port to bind for a protocol's well-known port (tests remap them)."""
        return self.port_map.get(port, port)

    def emit(self, kind: str, peer: Peer, message: str = "", **fields: object) -> events.Event:
        return self.emitter.emit(kind, peer, message, **fields)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Peer], Awaitable[None]]


async def serve_tcp(
    ctx: Context, port: int, handler: Handler, *, log_connect: bool = True
) -> asyncio.Server:
    """Listen on a (remapped) port; each connection gets a Peer, limits and connect events."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer.of(writer, port)
        if ctx._active >= ctx.max_connections:
            writer.close()
            return
        ctx._active += 1
        if log_connect:
            ctx.emit(events.CONNECT, peer)
        try:
            await asyncio.wait_for(handler(reader, writer, peer), ctx.session_seconds)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.LimitOverrunError:
            pass
        except ValueError:
            pass  # StreamReader raises ValueError when a line exceeds its limit
        finally:
            ctx._active -= 1
            if log_connect:
                ctx.emit(events.DISCONNECT, peer)
            await close(writer)

    return await asyncio.start_server(
        on_connect, ctx.host, ctx.port(port), limit=MAX_LINE, reuse_address=True
    )


SessionHandler = Callable[
    [Context, asyncio.StreamReader, asyncio.StreamWriter, Peer], Awaitable[None]
]


async def serve_ports(ctx: Context, ports: list[tuple[int, str]], handle: SessionHandler) -> None:
    """Serve `handle(ctx, reader, writer, peer)` on every TCP port of a service."""

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: Peer) -> None:
        await handle(ctx, r, w, p)

    for port, proto in ports:
        if proto == "tcp":
            await serve_tcp(ctx, port, on_conn)


async def close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 2)
    except (TimeoutError, ConnectionError, OSError):
        pass


async def read_line(
    reader: asyncio.StreamReader, timeout: float = IDLE_SECONDS, limit: int = MAX_LINE
) -> bytes | None:
    """One line without its terminator; None at EOF, idle timeout or an over-long line."""
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    except asyncio.IncompleteReadError as partial:
        return None if not partial.partial else partial.partial[:limit]
    except (TimeoutError, asyncio.LimitOverrunError, ValueError, ConnectionError):
        return None
    return line.rstrip(b"\r\n")[:limit]


async def read_exactly(
    reader: asyncio.StreamReader, n: int, timeout: float = IDLE_SECONDS
) -> bytes | None:
    """Exactly n bytes, or None at EOF / timeout."""
    if n < 0 or n > 16 * 1024 * 1024:
        return None
    try:
        return await asyncio.wait_for(reader.readexactly(n), timeout)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        return None


async def read_some(
    reader: asyncio.StreamReader, n: int = 65536, timeout: float = IDLE_SECONDS
) -> bytes:
    """Up to n bytes; b"" at EOF or timeout."""
    try:
        return await asyncio.wait_for(reader.read(n), timeout)
    except (TimeoutError, ConnectionError):
        return b""


async def send(writer: asyncio.StreamWriter, data: bytes | str) -> None:
    writer.write(data.encode() if isinstance(data, str) else data)
    await asyncio.wait_for(writer.drain(), IDLE_SECONDS)


UdpHandler = Callable[[bytes, Peer], bytes | None]


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self, port: int, handler: UdpHandler) -> None:
        self.port, self.handler = port, handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not subclass DatagramTransport
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        peer = Peer(ip=str(addr[0]), port=int(addr[1]), local_port=self.port, proto="udp")
        try:
            answer = self.handler(data[:65535], peer)
        except Exception:  # noqa: BLE001 - one bad datagram never stops the service
            answer = None
        if answer and self.transport is not None:
            self.transport.sendto(answer, addr)


async def serve_udp(ctx: Context, port: int, handler: UdpHandler) -> asyncio.DatagramTransport:
    """A datagram service: handler(data, peer) returns the reply (or None)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Datagram(port, handler), local_addr=(ctx.host, ctx.port(port))
    )
    return transport
