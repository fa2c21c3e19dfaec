"""HTTP/1.1: a web server's default page, basic-auth and form logins captured.

Written by hand: a request line, bounded headers and a small body are all a
scanner or a browser needs, and a full framework would cost memory per decky.
Each request is one `request` event (method, path, user agent); credentials in
an Authorization header or a login form are one `auth` event.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import email.utils
import html
import urllib.parse
from typing import Any

from .. import core, events

PORTS = [(80, "tcp")]
DEFAULTS: dict[str, Any] = {
    "serverHeader": "Apache/2.4.57 (Debian)",
    "title": "It works!",
    "body": "",
    "realm": "",
    "loginPath": "/login",
}
MAX_HEADERS = 64
MAX_BODY = 65536


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path or "/"

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    length_header: str = "Content-Length"  # some servers (Netty) write it in lower case

    def encode(self, head_only: bool = False, version: str = "HTTP/1.1") -> bytes:
        lines = [f"{version} {self.status} {self.reason}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        lines.append(f"{self.length_header}: {len(self.body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        return raw if head_only else raw + self.body


def parse_request_line(line: bytes) -> tuple[str, str, str] | None:
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    return parts[0][:16], parts[1], parts[2][:16]


def parse_header(line: bytes) -> tuple[str, str] | None:
    name, sep, value = line.decode("latin-1").partition(":")
    if not sep or not name.strip():
        return None
    return name.strip().lower(), value.strip()


def basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):
        return None
    return user, password


def form_credentials(body: bytes) -> tuple[str, str] | None:
    fields = urllib.parse.parse_qs(body.decode("latin-1"), max_num_fields=32)
    for user_key in ("username", "user", "login", "email", "log"):
        if user_key in fields:
            password = next(
                (fields[k][0] for k in ("password", "pass", "pwd", "passwd") if k in fields), ""
            )
            return fields[user_key][0], password
    return None


def now_http() -> str:
    return email.utils.formatdate(usegmt=True)


def page(config: dict[str, Any]) -> bytes:
    if config["body"]:
        return str(config["body"]).encode()
    title = html.escape(str(config["title"]))
    return (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n"
        f"<body><h1>{title}</h1>\n<p>This is the default web page for this server.</p>\n"
        "</body></html>\n"
    ).encode()


def not_found(config: dict[str, Any], path: str) -> bytes:
    return (
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n"
        "<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n"
        f"<p>The requested URL {html.escape(path)} was not found on this server.</p>\n"
        "</body></html>\n"
    ).encode()


def respond(config: dict[str, Any], req: Request, authorized: bool) -> Response:
    """The answer to one request; pure, so scanners' probes are unit-tested."""
    base = [("Date", now_http()), ("Server", str(config["serverHeader"]))]
    html_type = ("Content-Type", "text/html; charset=UTF-8")
    if config["realm"] and not authorized:
        challenge = ("WWW-Authenticate", f'Basic realm="{config["realm"]}"')
        return Response(401, "Unauthorized", [*base, challenge, html_type], b"Unauthorized\n")
    if req.method not in ("GET", "HEAD", "POST", "OPTIONS"):
        return Response(405, "Method Not Allowed", [*base, ("Allow", "GET, HEAD, POST, OPTIONS"),
                        html_type], b"")
    if req.method == "OPTIONS":
        return Response(200, "OK", [*base, ("Allow", "GET, HEAD, POST, OPTIONS")], b"")
    if req.path in ("/", "/index.html", str(config["loginPath"])):
        return Response(200, "OK", [*base, html_type], page(config))
    return Response(404, "Not Found", [*base, html_type], not_found(config, req.path))


async def read_request(reader: asyncio.StreamReader, timeout: float) -> Request | None:
    first = await core.read_line(reader, timeout)
    if not first:
        return None
    parsed = parse_request_line(first)
    if parsed is None:
        return Request("INVALID", events.cap(first, 256), "HTTP/1.0", {})
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await core.read_line(reader, timeout)
        if line is None:
            return None
        if not line:
            break
        header = parse_header(line)
        if header is not None and len(headers) < MAX_HEADERS:
            headers[header[0]] = header[1]
    return Request(*parsed, headers)


async def handle(ctx: core.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: core.Peer) -> None:
    for _ in range(100):  # keep-alive, bounded
        req = await read_request(reader, ctx.idle_seconds)
        if req is None:
            return
        if req.method == "INVALID":
            ctx.emit(events.REQUEST, peer, "malformed request", raw=req.target)
            bad = Response(400, "Bad Request", [("Server", str(ctx.config["serverHeader"]))], b"")
            await core.send(writer, bad.encode())
            return
        body = b""
        try:
            length = min(int(req.header("content-length") or 0), MAX_BODY)
        except ValueError:
            length = 0
        if length > 0:
            body = await core.read_exactly(reader, length, ctx.idle_seconds) or b""
        ctx.emit(
            events.REQUEST, peer, f"{req.method} {req.path}",
            method=req.method, path=req.target, version=req.version,
            user_agent=req.header("user-agent") or None, host=req.header("host") or None,
        )
        creds = basic_credentials(req.header("authorization"))
        if creds is None and req.method == "POST" and body:
            creds = form_credentials(body)
        if creds is not None:
            ctx.emit(events.AUTH, peer, "login attempt", username=creds[0], password=creds[1],
                     path=req.path)
        response = respond(ctx.config, req, authorized=False)
        await core.send(writer, response.encode(head_only=req.method == "HEAD"))
        if req.header("connection").lower() == "close" or req.version == "HTTP/1.0":
            return


async def serve(ctx: core.Context) -> None:
    await core.serve_ports(ctx, PORTS, handle)
