"""The request loop shared by the JSON-over-HTTP services (container engine, cluster
API, search engine): keep-alive, a bounded body (plain or chunked), one answer per
request.

Each of those services is a pure function from (request, body) to a response; this
module is the only I/O around it. It reuses the web service's request reader and
response record so every HTTP-speaking service parses the same way.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
from collections.abc import Callable
from typing import Any

from . import core, events
from .services import http

MAX_BODY = 65536
MAX_REQUESTS = 100

Answer = Callable[[http.Request, bytes, core.Peer], http.Response]
# What Go's HTTP server (container engine, cluster API) writes for an unparsable request.
GO_BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  b"Connection: close\r\n\r\n400 Bad Request")


def http_date() -> str:
    return email.utils.formatdate(usegmt=True)


def reason(status: int) -> str:
    return {
        200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
        405: "Method Not Allowed", 409: "Conflict", 500: "Internal Server Error",
    }.get(status, "OK")


def json_bytes(value: Any, pretty: bool = False) -> bytes:
    if pretty:
        return (json.dumps(value, indent=2, separators=(",", " : ")) + "\n").encode()
    return (json.dumps(value, separators=(",", ":")) + "\n").encode()


def parse_json(body: bytes) -> Any:
    """The JSON a client sent, or None when it is not JSON (never raises)."""
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None


async def read_body(reader: asyncio.StreamReader, req: http.Request, timeout: float
                    ) -> tuple[bytes, bool]:
    """(body, complete): at most MAX_BODY bytes; complete=False means the rest was not read."""
    if req.header("transfer-encoding").lower() == "chunked":
        body = b""
        for _ in range(1024):
            size_line = await core.read_line(reader, timeout, 64)
            if size_line is None:
                return body, False
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                return body, False
            if size == 0:
                await core.read_line(reader, timeout)
                return body, True
            if size < 0 or len(body) + size > MAX_BODY:
                return body, False
            chunk = await core.read_exactly(reader, size + 2, timeout)
            if chunk is None:
                return body, False
            body += chunk[:-2]
        return body, False
    try:
        length = int(req.header("content-length") or 0)
    except ValueError:
        return b"", False
    if length <= 0:
        return b"", True
    if length > MAX_BODY:
        return await core.read_exactly(reader, MAX_BODY, timeout) or b"", False
    data = await core.read_exactly(reader, length, timeout)
    return (data, True) if data is not None else (b"", False)


async def serve_requests(ctx: core.Context, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, peer: core.Peer, answer: Answer,
                         bad_request: bytes | None = None) -> None:
    """Read requests until the client stops; each gets answer(req, body, peer)."""
    for _ in range(MAX_REQUESTS):
        req = await http.read_request(reader, ctx.idle_seconds)
        if req is None:
            return
        if req.method == "INVALID":
            ctx.emit(events.REQUEST, peer, "malformed request", raw=req.target)
            bad = http.Response(400, "Bad Request", [("Content-Type", "text/plain; charset=utf-8"),
                                ("Connection", "close")], b"400 Bad Request")
            await core.send(writer, bad_request if bad_request is not None else bad.encode())
            return
        body, complete = await read_body(reader, req, ctx.idle_seconds)
        response = answer(req, body, peer)
        version = "HTTP/1.0" if req.version == "HTTP/1.0" else "HTTP/1.1"
        await core.send(writer, response.encode(head_only=req.method == "HEAD", version=version))
        if not complete or req.header("connection").lower() == "close" or (
            version == "HTTP/1.0" and req.header("connection").lower() != "keep-alive"
        ):
            return
