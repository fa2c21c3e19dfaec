"""HTTPS: the web service behind TLS, with the self-signed certificate of a fresh install.

Hand-written on top of the http service (same pages, same captures) and Python's
ssl module; the certificate is made at start by `tlscert` (CN and DNS name = the
configured hostname, or the host's own name), so it never exists before the
process runs and never outlives it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import core, tlscert
from . import http

PORTS = [(443, "tcp")]
DEFAULTS: dict[str, Any] = {**http.DEFAULTS, "hostname": ""}


async def serve(ctx: core.Context) -> None:
    tls = tlscert.server_context(str(ctx.config["hostname"]) or None, alpn=("http/1.1",))

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await http.handle(ctx, r, w, p)

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn, tls=tls)
