"""Remote Desktop on 3389: X.224 negotiation, TLS, and CredSSP (NLA) up to the NTLM login.

Written by hand: what a client and a scanner see of an NLA-enabled Windows host
before any desktop exists is a TPKT/X.224 exchange, a TLS handshake with the
host's self-signed certificate, and CredSSP TSRequests carrying NTLM. We:

- read the X.224 Connection Request; its "Cookie: mstshash=USER" is the user
  name the client typed (an `auth` event), its RDP_NEG_REQ the protocols offered;
- answer a Connection Confirm with RDP_NEG_RSP selecting HYBRID (CredSSP) or SSL
  as offered, with the flags Windows Server sets (what nmap fingerprints), or an
  RDP_NEG_FAILURE when the client offers neither and NLA is required;
- start TLS with a self-signed certificate whose CN is the host name (../tlscert_win.py);
- run CredSSP: the NTLM CHALLENGE names the host and domain like SMB's (shared
  ../ntlm.py), the AUTHENTICATE is captured (hashcat netntlmv2), and the answer
  is a TSRequest with errorCode STATUS_LOGON_FAILURE.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import socket
import ssl
import struct
from typing import Any

from .. import ber, core, events, ntlm, tlscert_win

PORTS = [(3389, "tcp")]
DEFAULTS: dict[str, Any] = {
    "hostname": "",
    "workgroup": "WORKGROUP",
    "dnsDomain": "",
    "osVersion": "10.0.17763",
    "nla": True,
}
MAX_PDU = 16384
PROTOCOL_RDP, PROTOCOL_SSL, PROTOCOL_HYBRID, PROTOCOL_HYBRID_EX = 0, 1, 2, 8
SSL_REQUIRED_BY_SERVER, HYBRID_REQUIRED_BY_SERVER = 1, 5
NEG_RSP_FLAGS = 0x1F
STATUS_LOGON_FAILURE = 0xC000006D
_COOKIE = re.compile(rb"Cookie: mstshash=([^\r\n]{0,128})\r\n")


@dataclasses.dataclass(frozen=True)
class ConnectionRequest:
    cookie: str
    requested: int | None  # None: no RDP_NEG_REQ (a pre-XP client or a bare probe)


@dataclasses.dataclass(frozen=True)
class TsRequest:
    version: int
    token: bytes
    pub_key_auth: bool


def parse_connection_request(tpkt: bytes) -> ConnectionRequest | None:
    """The X.224 CR inside one TPKT."""
    if len(tpkt) < 11 or tpkt[0] != 3 or tpkt[5] & 0xF0 != 0xE0:
        return None
    li = tpkt[4]
    body = tpkt[11 : 5 + li]
    cookie = ""
    match = _COOKIE.match(body)
    if match:
        cookie = match.group(1).decode("latin-1")
        body = body[match.end() :]
    elif body.startswith(b"Cookie:") or body[:1].isalpha():
        end = body.find(b"\r\n")
        body = body[end + 2 :] if end >= 0 else b""
    requested = None
    if len(body) >= 8 and body[0] == 1:
        requested = struct.unpack_from("<I", body, 4)[0]
    return ConnectionRequest(cookie, requested)


def select(requested: int | None, nla: bool) -> tuple[int, int]:
    """(selected protocol, 0) or (-1, failure code) for what the client offered."""
    if requested is None:
        return PROTOCOL_RDP, 0
    if requested & (PROTOCOL_HYBRID | PROTOCOL_HYBRID_EX):
        return PROTOCOL_HYBRID, 0
    if nla:
        return -1, HYBRID_REQUIRED_BY_SERVER
    if requested & PROTOCOL_SSL:
        return PROTOCOL_SSL, 0
    return -1, SSL_REQUIRED_BY_SERVER


def connection_confirm(requested: int | None, selected: int, failure: int) -> bytes:
    if requested is None:
        neg = b""
    elif selected < 0:
        neg = struct.pack("<BBHI", 3, 0, 8, failure)
    else:
        neg = struct.pack("<BBHI", 2, NEG_RSP_FLAGS, 8, selected)
    x224 = struct.pack(">BBHHB", 6 + len(neg), 0xD0, 0, 0x1234, 0) + neg
    return struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224


def parse_ts_request(data: bytes) -> TsRequest:
    top = ber.decode(data)
    version, token, pub = 0, b"", False
    for field in top.children():
        if field.tag == 0xA0:
            version = ber.decode(field.value).as_int()
        elif field.tag == 0xA1:
            for item in ber.decode(field.value).children()[:4]:
                for part in item.children():
                    if part.tag == 0xA0:
                        token = ber.decode(part.value).value
        elif field.tag == 0xA3:
            pub = True
    return TsRequest(version, token, pub)


def ts_request(version: int, token: bytes = b"", error: int | None = None) -> bytes:
    items = [ber.tlv(0xA0, ber.integer(version))]
    if token:
        items.append(ber.tlv(0xA1, ber.seq([ber.seq([ber.tlv(0xA0, ber.octets(token))])])))
    if error is not None:
        items.append(ber.tlv(0xA4, ber.integer(error)))
    return ber.seq(items)


def identity(config: dict[str, Any]) -> ntlm.Identity:
    host = (str(config["hostname"]) or socket.gethostname()).split(".")[0].upper()[:15] \
        or "WIN-SRV01"
    domain = str(config["dnsDomain"]).lower()
    nb_domain = (domain.split(".")[0] if domain else str(config["workgroup"])).upper()[:15]
    return ntlm.Identity(nb_domain=nb_domain, nb_computer=host, dns_domain=domain,
                         dns_computer=f"{host.lower()}.{domain}" if domain else host,
                         os_version=str(config["osVersion"]))


def common_name(config: dict[str, Any]) -> str:
    ident = identity(config)
    return ident.dns_computer.upper() if ident.dns_domain else ident.nb_computer


async def read_tpkt(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    head = await core.read_exactly(reader, 4, timeout)
    if head is None or head[0] != 3:
        return None
    size = struct.unpack(">H", head[2:])[0]
    if size < 4 or size > MAX_PDU:
        return None
    rest = await core.read_exactly(reader, size - 4, timeout)
    return None if rest is None else head + rest


async def credssp(ctx: core.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  peer: core.Peer) -> None:
    ident = identity(ctx.config)
    challenge = os.urandom(8)
    for _ in range(4):
        data = await ber.read_message(reader, ctx.idle_seconds, MAX_PDU)
        if data is None:
            return
        try:
            req = parse_ts_request(data)
        except ber.BerError:
            ctx.emit(events.DATA, peer, "malformed TSRequest", size=len(data))
            return
        version = max(2, min(req.version, 6))
        message = ntlm.find(req.token)
        kind = ntlm.message_type(message)
        if kind == ntlm.NEGOTIATE:
            chal = ntlm.challenge(ident, challenge, ntlm.negotiate_flags(message))
            token = ntlm.neg_token_resp(1, chal) if ntlm.is_spnego(req.token) else chal
            await core.send(writer, ts_request(version, token))
            continue
        if kind == ntlm.AUTHENTICATE:
            auth = ntlm.parse_authenticate(message)
            if auth is not None:
                ctx.emit(events.AUTH, peer, "login attempt", username=auth.username,
                         domain=auth.domain, workstation=auth.workstation or None,
                         password_hash=auth.hashcat(challenge) or None,
                         hash_type=auth.hash_type() or None, mechanism="CredSSP/NTLM")
            if version >= 3:
                await core.send(writer, ts_request(version, error=STATUS_LOGON_FAILURE))
            return
        ctx.emit(events.DATA, peer, "TSRequest without NTLM", size=len(data))
        return


async def handle(ctx: core.Context, tls: tlscert_win.Lazy, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, peer: core.Peer) -> None:
    tpkt = await read_tpkt(reader, ctx.idle_seconds)
    if tpkt is None:
        return
    cr = parse_connection_request(tpkt)
    if cr is None:
        ctx.emit(events.DATA, peer, "not an X.224 connection request", size=len(tpkt))
        return
    selected, failure = select(cr.requested, bool(ctx.config["nla"]))
    ctx.emit(events.REQUEST, peer, "connection request", cookie=cr.cookie or None,
             requested_protocols=cr.requested, selected_protocol=selected)
    if cr.cookie:
        ctx.emit(events.AUTH, peer, "mstshash cookie", username=cr.cookie, mechanism="cookie")
    confirm = connection_confirm(cr.requested, selected, failure)
    if selected not in (PROTOCOL_SSL, PROTOCOL_HYBRID):
        await core.send(writer, confirm)
        await core.read_some(reader, 4096, min(ctx.idle_seconds, 10))
        return
    context = tls.context()  # the first client waits for the key, before the confirm
    # No await between the confirm and start_tls: the stream must not read the
    # ClientHello into its own buffer before the TLS protocol takes over.
    writer.write(confirm)
    await writer.start_tls(context, ssl_handshake_timeout=30)
    if selected == PROTOCOL_HYBRID:
        await credssp(ctx, reader, writer, peer)
        return
    first = await read_tpkt(reader, ctx.idle_seconds)  # MCS Connect Initial: not served
    if first is not None:
        ctx.emit(events.DATA, peer, "MCS connect initial", size=len(first))


async def serve(ctx: core.Context) -> None:
    tls = tlscert_win.Lazy(common_name(ctx.config))

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        try:
            await handle(ctx, tls, r, w, p)
        except ssl.SSLError:
            pass

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
