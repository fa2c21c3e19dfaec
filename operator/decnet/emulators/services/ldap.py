"""LDAPv3 on 389: an Active Directory domain controller as clients and scanners meet it.

Written by hand on a bounded BER codec (../ber.py): the protocol messages a DC
answers before anyone has authenticated are few (bind, rootDSE search, unbind,
StartTLS), and a hand-written decoder lets us refuse oversized or deeply nested
input before allocating for it. What we emulate:

- The rootDSE (base "" scope base) answered with AD's attributes from the config
  (naming contexts, dnsHostName, ldapServiceName, dsServiceName, AD capability
  OIDs) and AD's encoding habit (constructed lengths as 0x84 + four bytes), which
  is what nmap's fingerprint keys on.
- Simple binds captured (DN + password) and refused with AD's
  invalidCredentials text (data 52e); anonymous binds succeed as on AD.
- SASL binds: the mechanism is logged; NTLM inside GSS-SPNEGO and ldap3's
  "Sicily" NTLM bind get a CHALLENGE naming the domain and their AUTHENTICATE is
  captured like SMB's (hashcat netntlmv2).
- Every other search needs a bind: operationsError with AD's 000004DC text.
- LDAPS on 636: the same over TLS, with a self-signed certificate for the DC's
  DNS name (../tlscert_win.py, TLS over memory buffers by ../tlscert.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import socket
from typing import Any

from .. import ber, core, events, ntlm

PORTS = [(389, "tcp"), (636, "tcp")]
DEFAULTS: dict[str, Any] = {
    "domain": "corp.local",
    "hostname": "",
    "site": "Default-First-Site-Name",
    "osVersion": "10.0.17763",
    "functionalLevel": 7,
}
MAX_MESSAGE = 65536
MAX_REQUESTS = 256
MAX_FILTER_DEPTH = 8

BIND_REQ, BIND_RESP, UNBIND, SEARCH_REQ, SEARCH_ENTRY, SEARCH_DONE = (
    0x60, 0x61, 0x42, 0x63, 0x64, 0x65)
MODIFY_REQ, ADD_REQ, DEL_REQ, MODDN_REQ, COMPARE_REQ, ABANDON, EXT_REQ, EXT_RESP = (
    0x66, 0x68, 0x4A, 0x6C, 0x6E, 0x50, 0x77, 0x78)
RESPONSES = {0x66: 0x67, 0x68: 0x69, 0x4A: 0x6B, 0x6C: 0x6D, 0x6E: 0x6F}
SUCCESS, OPERATIONS_ERROR, PROTOCOL_ERROR, SASL_BIND_IN_PROGRESS = 0, 1, 2, 14
AUTH_METHOD_NOT_SUPPORTED, INVALID_CREDENTIALS, INSUFFICIENT_ACCESS, UNAVAILABLE = 7, 49, 50, 52
UNWILLING = 53
STARTTLS = "1.3.6.1.4.1.1466.20037"

AD_INVALID_CREDENTIALS = ("80090308: LdapErr: DSID-0C090569, comment: AcceptSecurityContext "
                          "error, data 52e, v4563\0")
AD_NEED_BIND = ("000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this "
                "operation a successful bind must be completed on the connection., data 0, "
                "v4563\0")
AD_INSUFFICIENT = ("00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), "
                   "data 0\n\0")
AD_STARTTLS = "00000000: LdapErr: DSID-0C09128A, comment: Error initializing SSL/TLS, data 0\0"
AD_CAPABILITIES = ["1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670",
                   "1.2.840.113556.1.4.1791", "1.2.840.113556.1.4.1935",
                   "1.2.840.113556.1.4.2080", "1.2.840.113556.1.4.2237"]
AD_CONTROLS = ["1.2.840.113556.1.4.319", "1.2.840.113556.1.4.801", "1.2.840.113556.1.4.473",
               "1.2.840.113556.1.4.528", "1.2.840.113556.1.4.417", "1.2.840.113556.1.4.619",
               "1.2.840.113556.1.4.841", "1.2.840.113556.1.4.529", "1.2.840.113556.1.4.805",
               "1.2.840.113556.1.4.521", "1.2.840.113556.1.4.970", "1.2.840.113556.1.4.1338",
               "1.2.840.113556.1.4.474", "1.2.840.113556.1.4.1339", "1.2.840.113556.1.4.1340",
               "1.2.840.113556.1.4.1413", "2.16.840.1.113730.3.4.9", "2.16.840.1.113730.3.4.10",
               "1.2.840.113556.1.4.1504", "1.2.840.113556.1.4.1852", "1.2.840.113556.1.4.802",
               "1.2.840.113556.1.4.1907", "1.2.840.113556.1.4.1948", "1.2.840.113556.1.4.1974",
               "1.2.840.113556.1.4.1341", "1.2.840.113556.1.4.2026", "1.2.840.113556.1.4.2064",
               "1.2.840.113556.1.4.2065", "1.2.840.113556.1.4.2066", "1.2.840.113556.1.4.2090",
               "1.2.840.113556.1.4.2205", "1.2.840.113556.1.4.2204", "1.2.840.113556.1.4.2206",
               "1.2.840.113556.1.4.2211", "1.2.840.113556.1.4.2239", "1.2.840.113556.1.4.2255",
               "1.2.840.113556.1.4.2256", "1.2.840.113556.1.4.2309"]
AD_POLICIES = ["MaxPoolThreads", "MaxPercentDirSyncRequests", "MaxDatagramRecv",
               "MaxReceiveBuffer", "InitRecvTimeout", "MaxConnections", "MaxConnIdleTime",
               "MaxPageSize", "MaxBatchReturnMessages", "MaxQueryDuration",
               "MaxDirSyncDuration", "MaxTempTableSize", "MaxResultSetSize", "MinResultSets",
               "MaxResultSetsPerConn", "MaxNotificationPerConn", "MaxValRange",
               "MaxValRangeTransitive", "ThreadMemoryLimit", "SystemMemoryLimitPercent"]


@dataclasses.dataclass(frozen=True)
class Message:
    message_id: int
    op: int
    body: ber.Tlv


@dataclasses.dataclass(frozen=True)
class Bind:
    version: int
    name: str
    method: str  # simple | sasl | sicily-discovery | sicily-negotiate | sicily-response
    password: str = ""
    mechanism: str = ""
    credentials: bytes = b""


@dataclasses.dataclass(frozen=True)
class Search:
    base: str
    scope: int
    filter: str
    attributes: list[str]


@dataclasses.dataclass
class Session:
    challenge: bytes = dataclasses.field(default_factory=lambda: os.urandom(8))
    bound: bool = False


def parse_message(data: bytes) -> Message:
    top = ber.decode(data)
    if top.tag != ber.SEQUENCE:
        raise ber.BerError("not an LDAPMessage")
    parts = top.children()
    if len(parts) < 2 or parts[0].tag != ber.INTEGER:
        raise ber.BerError("no message id")
    return Message(parts[0].as_int(), parts[1].tag, parts[1])


def parse_bind(op: ber.Tlv) -> Bind:
    parts = op.children()
    if len(parts) < 3:
        raise ber.BerError("short bind")
    version, name, auth = parts[0].as_int(), parts[1].as_str(), parts[2]
    if auth.tag == 0x80:
        return Bind(version, name, "simple", password=auth.as_str())
    if auth.tag == 0xA3:
        sasl = auth.children()
        mech = sasl[0].as_str() if sasl else ""
        creds = sasl[1].value if len(sasl) > 1 else b""
        return Bind(version, name, "sasl", mechanism=mech, credentials=creds)
    if auth.tag == 0x89:
        return Bind(version, name, "sicily-discovery", mechanism="NTLM")
    if auth.tag == 0x8A:
        return Bind(version, name, "sicily-negotiate", mechanism="NTLM", credentials=auth.value)
    if auth.tag == 0x8B:
        return Bind(version, name, "sicily-response", mechanism="NTLM", credentials=auth.value)
    return Bind(version, name, f"unknown-{auth.tag:#x}")


def render_filter(tlv: ber.Tlv, depth: int = 0) -> str:
    """RFC 4515 text for a search filter (what the event's `query` shows)."""
    if depth > MAX_FILTER_DEPTH:
        raise ber.BerError("filter nested too deep")
    tag = tlv.tag
    if tag in (0xA0, 0xA1):
        inner = "".join(render_filter(c, depth + 1) for c in tlv.children()[:32])
        return f"({'&' if tag == 0xA0 else '|'}{inner})"
    if tag == 0xA2:
        kids = tlv.children()
        return f"(!{render_filter(kids[0], depth + 1)})" if kids else "(!)"
    if tag == 0x87:
        return f"({tlv.as_str()}=*)"
    if tag in (0xA3, 0xA5, 0xA6, 0xA8):
        kids = tlv.children()
        if len(kids) < 2:
            raise ber.BerError("short assertion")
        op = {0xA3: "=", 0xA5: ">=", 0xA6: "<=", 0xA8: "~="}[tag]
        return f"({kids[0].as_str()}{op}{_escape(kids[1].value)})"
    if tag == 0xA4:
        kids = tlv.children()
        if len(kids) < 2:
            raise ber.BerError("short substrings")
        initial, anys, final = "", [], ""
        for sub in kids[1].children()[:16]:
            if sub.tag == 0x80:
                initial = _escape(sub.value)
            elif sub.tag == 0x81:
                anys.append(_escape(sub.value))
            elif sub.tag == 0x82:
                final = _escape(sub.value)
        return f"({kids[0].as_str()}={initial}*{''.join(a + '*' for a in anys)}{final})"
    if tag == 0xA9:
        parts = {c.tag: c for c in tlv.children()}
        attr = parts[0x82].as_str() if 0x82 in parts else ""
        rule = f":{parts[0x81].as_str()}" if 0x81 in parts else ""
        value = _escape(parts[0x83].value) if 0x83 in parts else ""
        return f"({attr}{rule}:={value})"
    return f"(?{tag:#x})"


def _escape(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return "".join(f"\\{ord(c):02x}" if c in "*()\\\0" else c for c in text)


def parse_search(op: ber.Tlv) -> Search:
    parts = op.children()
    if len(parts) < 8:
        raise ber.BerError("short search")
    attrs = [a.as_str() for a in parts[7].children()[:64]]
    return Search(parts[0].as_str(), parts[1].as_int(), render_filter(parts[6]), attrs)


# Responses -------------------------------------------------------------------------------

def envelope(message_id: int, op: bytes) -> bytes:
    return ber.seq([ber.integer(message_id), op], long_form=True)


def result(message_id: int, tag: int, code: int, diagnostic: str = "", matched: bytes = b"",
           extra: bytes = b"") -> bytes:
    body = ber.enumerated(code) + ber.octets(matched) + ber.octets(diagnostic) + extra
    return envelope(message_id, ber.tlv(tag, body, long_form=True))


def names(config: dict[str, Any]) -> dict[str, str]:
    domain = str(config["domain"]).strip(".").lower() or "corp.local"
    host = (str(config["hostname"]) or socket.gethostname()).split(".")[0].upper() or "DC01"
    base = ",".join(f"DC={p}" for p in domain.split("."))
    conf = f"CN=Configuration,{base}"
    server = f"CN={host},CN=Servers,CN={config['site']},CN=Sites,{conf}"
    return {
        "domain": domain, "host": host, "base": base, "config": conf,
        "schema": f"CN=Schema,{conf}", "server": server,
        "ntds": f"CN=NTDS Settings,{server}",
        "fqdn": f"{host}.{domain}",
        "service": f"{domain}:{host.lower()}$@{domain.upper()}",
    }


def root_dse(config: dict[str, Any], now: dt.datetime | None = None) -> list[tuple[str, list[str]]]:
    n = names(config)
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M%S.0Z")
    level = str(config["functionalLevel"])
    return [
        ("currentTime", [when]),
        ("subschemaSubentry", [f"CN=Aggregate,{n['schema']}"]),
        ("dsServiceName", [n["ntds"]]),
        ("namingContexts", [n["base"], n["config"], n["schema"], f"DC=DomainDnsZones,{n['base']}",
                            f"DC=ForestDnsZones,{n['base']}"]),
        ("defaultNamingContext", [n["base"]]),
        ("schemaNamingContext", [n["schema"]]),
        ("configurationNamingContext", [n["config"]]),
        ("rootDomainNamingContext", [n["base"]]),
        ("supportedControl", AD_CONTROLS),
        ("supportedLDAPVersion", ["3", "2"]),
        ("supportedLDAPPolicies", AD_POLICIES),
        ("highestCommittedUSN", ["41017"]),
        ("supportedSASLMechanisms", ["GSSAPI", "GSS-SPNEGO", "EXTERNAL", "DIGEST-MD5"]),
        ("dnsHostName", [n["fqdn"]]),
        ("ldapServiceName", [n["service"]]),
        ("serverName", [n["server"]]),
        ("supportedCapabilities", AD_CAPABILITIES),
        ("isSynchronized", ["TRUE"]),
        ("isGlobalCatalogReady", ["TRUE"]),
        ("domainFunctionality", [level]),
        ("forestFunctionality", [level]),
        ("domainControllerFunctionality", [level]),
    ]


def select(attrs: list[tuple[str, list[str]]], wanted: list[str]) -> list[tuple[str, list[str]]]:
    lowered = {w.lower() for w in wanted}
    if not wanted or "*" in lowered or "+" in lowered:
        return attrs
    if lowered == {"1.1"}:
        return []
    return [(k, v) for k, v in attrs if k.lower() in lowered]


def search_entry(message_id: int, dn: str, attrs: list[tuple[str, list[str]]],
                 types_only: bool = False) -> bytes:
    encoded = []
    for name, values in attrs:
        vals = [] if types_only else [ber.octets(v) for v in values]
        encoded.append(ber.seq([ber.octets(name), ber.seq(vals, ber.SET, long_form=True)],
                               long_form=True))
    body = ber.octets(dn) + ber.seq(encoded, long_form=True)
    return envelope(message_id, ber.tlv(SEARCH_ENTRY, body, long_form=True))


@dataclasses.dataclass
class Reply:
    payloads: list[bytes]
    close: bool = False
    event: tuple[str, str, dict[str, object]] | None = None


def respond(config: dict[str, Any], session: Session, msg: Message) -> Reply:
    """The answer to one LDAPMessage, and what to report about it."""
    mid = msg.message_id
    if msg.op == BIND_REQ:
        return _bind(config, session, mid, parse_bind(msg.body))
    if msg.op == SEARCH_REQ:
        search = parse_search(msg.body)
        event = (events.QUERY, f"search {search.base!r} {search.filter}",
                 {"query": search.filter, "base": search.base, "scope": search.scope,
                  "attributes": ",".join(search.attributes) or None})
        if search.base == "" and search.scope == 0:
            types_only = msg.body.children()[5].value not in (b"", b"\x00")
            attrs = select(root_dse(config), search.attributes)
            return Reply([search_entry(mid, "", attrs, types_only),
                          result(mid, SEARCH_DONE, SUCCESS)], event=event)
        code, text = (INSUFFICIENT_ACCESS, AD_INSUFFICIENT) if session.bound else (
            OPERATIONS_ERROR, AD_NEED_BIND)
        return Reply([result(mid, SEARCH_DONE, code, text)], event=event)
    if msg.op == UNBIND:
        return Reply([], close=True, event=(events.COMMAND, "unbind", {"command": "unbind"}))
    if msg.op == ABANDON:
        return Reply([])
    if msg.op == EXT_REQ:
        kids = msg.body.children()
        name = kids[0].as_str() if kids else ""
        if name == STARTTLS:
            resp = result(mid, EXT_RESP, UNAVAILABLE, AD_STARTTLS)
        else:
            resp = result(mid, EXT_RESP, PROTOCOL_ERROR, "")
        return Reply([resp], event=(events.COMMAND, f"extended {name}",
                                    {"command": "extended", "oid": name}))
    if msg.op in RESPONSES:
        code, text = (INSUFFICIENT_ACCESS, AD_INSUFFICIENT) if session.bound else (
            OPERATIONS_ERROR, AD_NEED_BIND)
        return Reply([result(mid, RESPONSES[msg.op], code, text)],
                     event=(events.COMMAND, f"operation {msg.op:#x}",
                            {"command": f"op-{msg.op:#x}"}))
    return Reply([], close=True)


def _bind(config: dict[str, Any], session: Session, mid: int, bind: Bind) -> Reply:
    if bind.method == "simple":
        if not bind.name and not bind.password:
            session.bound = False
            return Reply([result(mid, BIND_RESP, SUCCESS)],
                         event=(events.AUTH, "anonymous bind",
                                {"username": "", "mechanism": "anonymous"}))
        fields: dict[str, object] = {"username": bind.name, "password": bind.password,
                                     "mechanism": "simple"}
        if not bind.password:
            return Reply([result(mid, BIND_RESP, UNWILLING,
                                 "00002028: LdapErr: DSID-0C090202, comment: The server "
                                 "requires binds to turn on integrity checking if SSL\\TLS are "
                                 "not already active on the connection, data 0, v4563\0")],
                         event=(events.AUTH, "login attempt", fields))
        return Reply([result(mid, BIND_RESP, INVALID_CREDENTIALS, AD_INVALID_CREDENTIALS)],
                     event=(events.AUTH, "login attempt", fields))
    ident = _identity(config)
    if bind.method == "sicily-discovery":
        return Reply([result(mid, BIND_RESP, SUCCESS, matched=b"NTLM")])
    message = ntlm.find(bind.credentials)
    kind = ntlm.message_type(message)
    if kind == ntlm.NEGOTIATE:
        chal = ntlm.challenge(ident, session.challenge, ntlm.negotiate_flags(message))
        if bind.method == "sicily-negotiate":
            return Reply([result(mid, BIND_RESP, SUCCESS, matched=chal)])
        token = ntlm.neg_token_resp(1, chal) if ntlm.is_spnego(bind.credentials) else chal
        return Reply([result(mid, BIND_RESP, SASL_BIND_IN_PROGRESS,
                             extra=ber.octets(token, 0x87))])
    if kind == ntlm.AUTHENTICATE:
        auth = ntlm.parse_authenticate(message)
        fields = {"username": bind.name or "", "mechanism": bind.mechanism or "NTLM"}
        if auth is not None:
            fields.update(username=auth.username, domain=auth.domain,
                          workstation=auth.workstation or None,
                          password_hash=auth.hashcat(session.challenge) or None,
                          hash_type=auth.hash_type() or None)
        return Reply([result(mid, BIND_RESP, INVALID_CREDENTIALS, AD_INVALID_CREDENTIALS)],
                     event=(events.AUTH, "login attempt", fields))
    fields = {"username": bind.name, "mechanism": bind.mechanism or bind.method}
    code = INVALID_CREDENTIALS if bind.method == "sasl" else AUTH_METHOD_NOT_SUPPORTED
    return Reply([result(mid, BIND_RESP, code, AD_INVALID_CREDENTIALS)],
                 event=(events.AUTH, f"sasl bind {bind.mechanism}", fields))


def _identity(config: dict[str, Any]) -> ntlm.Identity:
    n = names(config)
    return ntlm.Identity(nb_domain=n["domain"].split(".")[0].upper()[:15],
                         nb_computer=n["host"][:15], dns_domain=n["domain"],
                         dns_computer=n["fqdn"].lower(), os_version=str(config["osVersion"]))


async def handle(ctx: core.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: core.Peer) -> None:
    session = Session()
    for _ in range(MAX_REQUESTS):
        data = await ber.read_message(reader, ctx.idle_seconds, MAX_MESSAGE)
        if data is None:
            return
        try:
            reply = respond(ctx.config, session, parse_message(data))
        except (ber.BerError, IndexError, UnicodeError) as error:
            ctx.emit(events.DATA, peer, "malformed message", error=str(error), size=len(data))
            await core.send(writer, result(0, 0x78, PROTOCOL_ERROR, "malformed request"))
            return
        if reply.event is not None:
            kind, message, fields = reply.event
            ctx.emit(kind, peer, message, **fields)
        for payload in reply.payloads:
            await core.send(writer, payload)
        if reply.close:
            return


async def serve(ctx: core.Context) -> None:
    from .. import tlscert, tlscert_win

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await handle(ctx, r, w, p)

    # the certificate (and the cryptography import) waits for the first LDAPS client
    tls = tlscert_win.Lazy(names(ctx.config)["fqdn"].lower())
    await core.serve_tcp(ctx, 389, on_conn)
    await tlscert.serve_tls(ctx, 636, on_conn, tls)  # type: ignore[arg-type]
