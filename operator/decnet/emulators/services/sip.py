"""SIP (UDP and TCP) as an Asterisk PBX answers it: OPTIONS, REGISTER with Digest, INVITE.

Written by hand: VoIP scanners (sipvicious, nmap) send OPTIONS to fingerprint, then
REGISTER or INVITE to enumerate extensions and crack their Digest passwords. That is
a request line, a few headers copied into the answer and a Digest challenge, which
needs no SIP stack. Every request is a `request` event (method, from, to, user agent);
a Digest answer is an `auth` event with the response hash and everything needed to
crack it offline (realm, nonce, uri, method). Extensions in the config whose Digest
verifies are registered (200 OK); nothing else is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import secrets
from typing import Any

from .. import core, events

PORTS = [(5060, "udp"), (5060, "tcp")]
DEFAULTS: dict[str, Any] = {
    "userAgent": "Asterisk PBX 16.28.0",
    "realm": "asterisk",
    "allow": "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PUBLISH",
    "users": {},  # extension -> password whose Digest REGISTER is accepted
    "registerExpires": 120,
}
MAX_HEADERS = 64
MAX_BODY = 65536
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type", "k": "supported", "s": "subject"}
NO_DIALOG = {"BYE", "CANCEL"}
KNOWN = {"SUBSCRIBE", "NOTIFY", "MESSAGE", "INFO", "PUBLISH", "REFER", "UPDATE", "PRACK"}
_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    uri: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k == name), "")

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


def parse_head(head: bytes) -> Request | None:
    """The request line and headers of one SIP message (no body), or None if not SIP."""
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2].upper() != "SIP/2.0" or not parts[0].isalpha():
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip():
            break
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or len(headers) >= MAX_HEADERS:
            continue
        key = name.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    return Request(parts[0].upper()[:32], parts[1][:512], headers)


def parse(data: bytes) -> Request | None:
    """A whole datagram: head, then a body of Content-Length bytes."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    req = parse_head(head)
    if req is None:
        return None
    return dataclasses.replace(req, body=body[:content_length(req)])


def content_length(req: Request) -> int:
    try:
        return max(0, min(int(req.header("content-length") or 0), MAX_BODY))
    except ValueError:
        return 0


def uri_of(value: str) -> str:
    """`sip:100@pbx` from `"Bob" <sip:100@pbx>;tag=x` or `sip:100@pbx;tag=x`."""
    if "<" in value:
        inner = value.split("<", 1)[1]
        return inner.split(">", 1)[0]
    return value.split(";", 1)[0].strip()


def digest_params(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    out: dict[str, str] = {}
    for m in _PARAM.finditer(rest):
        if len(out) < 16:
            out[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3)
    return out


def digest_ok(params: dict[str, str], method: str, password: str) -> bool:
    """RFC 2617 MD5 Digest (with or without qop=auth) for a known password."""
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{params.get('username', '')}:{params.get('realm', '')}:{password}")
    ha2 = md5(f"{method}:{params.get('uri', '')}")
    if params.get("qop"):
        expected = md5(f"{ha1}:{params.get('nonce', '')}:{params.get('nc', '')}:"
                       f"{params.get('cnonce', '')}:{params.get('qop')}:{ha2}")
    else:
        expected = md5(f"{ha1}:{params.get('nonce', '')}:{ha2}")
    return secrets.compare_digest(expected, params.get("response", "").lower())


@dataclasses.dataclass(frozen=True)
class Answer:
    response: bytes | None
    notes: list[tuple[str, str, dict[str, object]]]


def _via(values: list[str], ip: str, port: int) -> list[str]:
    """Via headers for the answer: the top one gets received= and rport= (RFC 3581)."""
    if not values:
        return []
    top = values[0]
    if re.search(r";rport(?=;|$)", top):
        top = re.sub(r";rport(?=;|$)", f";rport={port}", top)
    if "received=" not in top:
        top += f";received={ip}"
    return [top, *values[1:]]


def build(config: dict[str, Any], req: Request, code: int, reason: str, ip: str, port: int,
          extra: list[tuple[str, str]] | None = None) -> bytes:
    to = req.header("to")
    if to and ";tag=" not in to and code != 100:
        to += f";tag=as{secrets.token_hex(4)}"
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {v}" for v in _via(req.all("via"), ip, port)]
    lines += [f"From: {req.header('from')}", f"To: {to}", f"Call-ID: {req.header('call-id')}",
              f"CSeq: {req.header('cseq')}", f"Server: {config['userAgent']}",
              f"Allow: {config['allow']}", "Supported: replaces, timer"]
    lines += [f"{k}: {v}" for k, v in extra or []]
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")


def respond(config: dict[str, Any], req: Request, ip: str, port: int) -> Answer:
    """What the PBX answers to one request, and the events it makes."""
    seen: dict[str, object] = {
        "method": req.method, "uri": req.uri, "from": uri_of(req.header("from")),
        "to": uri_of(req.header("to")), "user_agent": req.header("user-agent") or None,
        "call_id": req.header("call-id") or None,
    }
    notes: list[tuple[str, str, dict[str, object]]] = [
        (events.REQUEST, f"{req.method} {req.uri}", seen)]
    realm = str(config["realm"])
    contact_host = req.uri.split("@")[-1].split(";")[0].removeprefix("sip:")

    def reply(code: int, reason: str, extra: list[tuple[str, str]] | None = None) -> Answer:
        return Answer(build(config, req, code, reason, ip, port, extra), notes)

    if req.method == "ACK":
        return Answer(None, notes)
    if req.method == "OPTIONS":
        return reply(200, "OK", [("Contact", f"<sip:{contact_host}>"),
                                 ("Accept", "application/sdp")])
    if req.method in ("REGISTER", "INVITE"):
        register = req.method == "REGISTER"
        given = req.header("authorization" if register else "proxy-authorization")
        params = digest_params(given)
        if not params:
            challenge = f'Digest algorithm=MD5, realm="{realm}", nonce="{secrets.token_hex(4)}"'
            if register:
                return reply(401, "Unauthorized", [("WWW-Authenticate", challenge)])
            return reply(407, "Proxy Authentication Required",
                         [("Proxy-Authenticate", challenge)])
        users = {str(k): str(v) for k, v in dict(config["users"]).items()}
        user = params.get("username", "")
        ok = user in users and digest_ok(params, req.method, users[user])
        notes.append((events.AUTH, "digest login attempt", {
            "username": user, "realm": params.get("realm"),
            "password_hash": params.get("response", ""), "hash_type": "sip-digest",
            "nonce": params.get("nonce"), "uri": params.get("uri"), "method": req.method,
            "qop": params.get("qop"), "cnonce": params.get("cnonce"), "nc": params.get("nc"),
            "algorithm": params.get("algorithm"), "result": "accepted" if ok else "rejected"}))
        if not ok:
            return reply(403, "Forbidden")
        if register:
            contact = req.header("contact") or f"<sip:{user}@{ip}:{port}>"
            expires = str(int(config["registerExpires"]))
            return reply(200, "OK", [("Expires", expires),
                                     ("Contact", f"{contact};expires={expires}")])
        return reply(486, "Busy Here")
    if req.method in NO_DIALOG:
        return reply(481, "Call/Transaction Does Not Exist")
    if req.method in KNOWN:
        return reply(405, "Method Not Allowed")
    return reply(501, "Not Implemented")


def emit(ctx: core.Context, peer: core.Peer, answer: Answer) -> None:
    for kind, message, fields in answer.notes:
        ctx.emit(kind, peer, message, **fields)


async def handle(ctx: core.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: core.Peer) -> None:
    for _ in range(1000):
        lines: list[bytes] = []
        while len(lines) <= MAX_HEADERS + 1:
            line = await core.read_line(reader, ctx.idle_seconds)
            if line is None:
                return
            if not line and not lines:
                continue  # keep-alive CRLFs between messages
            if not line:
                break
            lines.append(line)
        req = parse_head(b"\r\n".join(lines))
        if req is None:
            return
        length = content_length(req)
        body = await core.read_exactly(reader, length, ctx.idle_seconds) if length else b""
        if body is None:
            return
        answer = respond(ctx.config, dataclasses.replace(req, body=body), peer.ip, peer.port)
        emit(ctx, peer, answer)
        if answer.response:
            await core.send(writer, answer.response)


async def serve(ctx: core.Context) -> None:
    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await handle(ctx, r, w, p)

    def on_datagram(data: bytes, peer: core.Peer) -> bytes | None:
        req = parse(data)
        if req is None:
            return None
        answer = respond(ctx.config, req, peer.ip, peer.port)
        emit(ctx, peer, answer)
        return answer.response

    await core.serve_udp(ctx, 5060, on_datagram)
    await core.serve_tcp(ctx, 5060, on_conn)
