"""HTTPS: the web service behind TLS, with the self-signed certificate of a fresh install.

Hand-written on top of the http service (same pages, same captures) and Python's
ssl module; the certificate is made at start by `tlscert` (CN and DNS name = the
configured hostname, or the host's own name), so it never exists before the
process runs and never outlives it.
"""

from __future__ import annotations

import asyncio
import functools
import html
from typing import Any

from .. import core, tlscert
from . import http

PORTS = [(443, "tcp")]
DEFAULTS: dict[str, Any] = {**http.DEFAULTS, "hostname": ""}


def plain_http_answer(config: dict[str, Any], hostname: str, port: int, _first: bytes = b""
                      ) -> bytes:
    """What Apache's TLS module answers a client speaking plain HTTP (no status line)."""
    server = str(config["serverHeader"])
    if not server.startswith("Apache"):
        return b""
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
        "<title>400 Bad Request</title>\n</head><body>\n<h1>Bad Request</h1>\n"
        "<p>Your browser sent a request that this server could not understand.<br />\n"
        "Reason: You're speaking plain HTTP to an SSL-enabled server port.<br />\n"
        " Instead use the HTTPS scheme to access this URL, please.<br />\n</p>\n<hr>\n"
        f"<address>{html.escape(server)} Server at {html.escape(hostname)} Port {port}"
        "</address>\n</body></html>\n"
    ).encode()


async def serve(ctx: core.Context) -> None:
    hostname = str(ctx.config["hostname"]) or ctx.emitter.hostname
    tls = tlscert.server_context(hostname, alpn=("http/1.1",))

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await http.handle(ctx, r, w, p)

    for port, _proto in PORTS:
        plain = functools.partial(plain_http_answer, ctx.config, hostname, port)
        await tlscert.serve_tls(ctx, port, on_conn, tls, plain=plain)
