"""DNS (UDP and TCP) as an authoritative BIND server for one zone from the config.

Written by hand rather than with dnslib (which Debian ships): an authoritative server
for a handful of names is a question parser and an answer builder (see dnsproto),
and what attackers send (reconnaissance lookups, `version.bind`, AXFR attempts) needs
no resolver. Names of the zone are answered with AA set, unknown names in the zone get
NXDOMAIN with the SOA, anything outside the zone is REFUSED (no recursion, as a
well-configured BIND), zone transfers are REFUSED. Every query is a `query` event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from typing import Any

from .. import core, dnsproto, events

PORTS = [(53, "udp"), (53, "tcp")]
DEFAULTS: dict[str, Any] = {
    "zone": "example.com",
    # zone-file-like lines: NAME TYPE VALUE; "@" is the zone apex, relative names are in it
    "records": [
        "@ NS ns1",
        "@ A 192.0.2.10",
        "@ MX 10 mail",
        "@ TXT v=spf1 mx -all",
        "ns1 A 192.0.2.53",
        "www A 192.0.2.10",
        "mail A 192.0.2.25",
        "vpn A 192.0.2.30",
    ],
    "version": "9.18.28-1~deb12u2-Debian",
    "ttl": 3600,
    "serial": 2026112901,
    "nameserver": "ns1",
    "hostmaster": "hostmaster",
}
MAX_RECORDS = 256
MAX_TCP_QUERIES = 100


@dataclasses.dataclass(frozen=True)
class Zone:
    origin: str
    records: dict[tuple[str, int], list[bytes]]
    names: frozenset[str]
    soa: bytes
    ttl: int
    version: str

    def owns(self, name: str) -> bool:
        return name == self.origin or name.endswith("." + self.origin)


def _fqdn(name: str, origin: str) -> str:
    name = name.strip().lower()
    if name in ("@", ""):
        return origin
    if name.endswith("."):
        return name.rstrip(".")
    return f"{name}.{origin}"


def build_zone(config: dict[str, Any]) -> Zone:
    """The zone from the config; lines that do not parse are skipped."""
    origin = str(config["zone"]).strip(".").lower() or "example.com"
    records: dict[tuple[str, int], list[bytes]] = {}
    reverse: dict[str, str] = {}

    def add(name: str, rtype: int, rdata: bytes) -> None:
        records.setdefault((name, rtype), []).append(rdata)

    for line in list(config["records"])[:MAX_RECORDS]:
        parts = str(line).split(None, 2)
        if len(parts) < 3:
            continue
        owner, rtype, value = _fqdn(parts[0], origin), parts[1].upper(), parts[2].strip()
        try:
            if rtype == "A":
                add(owner, dnsproto.A, dnsproto.rdata_a(value))
                reverse.setdefault(dnsproto.reverse_name(value), owner)
            elif rtype == "AAAA":
                add(owner, dnsproto.AAAA, dnsproto.rdata_aaaa(value))
                reverse.setdefault(dnsproto.reverse_name(value), owner)
            elif rtype == "TXT":
                add(owner, dnsproto.TXT, dnsproto.rdata_txt(value.strip('"')))
            elif rtype == "MX":
                pref, _, host = value.partition(" ")
                add(owner, dnsproto.MX, dnsproto.rdata_mx(int(pref), _fqdn(host, origin)))
            elif rtype in ("NS", "CNAME", "PTR"):
                add(owner, dnsproto.BY_NAME[rtype], dnsproto.encode_name(_fqdn(value, origin)))
        except (ValueError, UnicodeError):
            continue
    for ptr, owner in reverse.items():  # one PTR per address: the first name that has it
        add(ptr, dnsproto.PTR, dnsproto.encode_name(owner))
    soa = dnsproto.rdata_soa(_fqdn(str(config["nameserver"]), origin),
                             _fqdn(str(config["hostmaster"]), origin), int(config["serial"]))
    add(origin, dnsproto.SOA, soa)
    names = frozenset(n for n, _ in records)
    return Zone(origin, records, names, soa, int(config["ttl"]), str(config["version"]))


def answer(zone: Zone, query: dnsproto.Query, limit: int) -> tuple[bytes, int]:
    """(response message, rcode) for a parsed query."""
    name = query.qname.lower().rstrip(".")
    if query.opcode != 0:
        return dnsproto.response(query, dnsproto.NOTIMP, authoritative=False), dnsproto.NOTIMP
    if query.qclass == dnsproto.CH:
        if name in ("version.bind", "version.server") and query.qtype in (dnsproto.TXT,
                                                                           dnsproto.ANY):
            txt = dnsproto.Record("", dnsproto.TXT, dnsproto.rdata_txt(zone.version), 0,
                                  dnsproto.CH)
            return dnsproto.response(query, dnsproto.NOERROR, [txt], limit=limit), 0
        return dnsproto.response(query, dnsproto.REFUSED, authoritative=False), dnsproto.REFUSED
    if query.qtype in (dnsproto.AXFR, dnsproto.IXFR):
        return dnsproto.response(query, dnsproto.REFUSED, authoritative=False), dnsproto.REFUSED
    reverse = (name, dnsproto.PTR) in zone.records
    if not zone.owns(name) and not reverse:
        return dnsproto.response(query, dnsproto.REFUSED, authoritative=False), dnsproto.REFUSED
    soa = [dnsproto.Record(zone.origin, dnsproto.SOA, zone.soa, zone.ttl)]
    if name not in zone.names:
        return dnsproto.response(query, dnsproto.NXDOMAIN, authority=soa,
                                 limit=limit), dnsproto.NXDOMAIN
    found: list[dnsproto.Record] = []
    for (owner, rtype), datas in zone.records.items():
        if owner != name:
            continue
        if rtype == query.qtype or query.qtype == dnsproto.ANY or rtype == dnsproto.CNAME:
            found += [dnsproto.Record("", rtype, d, zone.ttl) for d in datas]
    if not found:
        return dnsproto.response(query, dnsproto.NOERROR, authority=soa, limit=limit), 0
    return dnsproto.response(query, dnsproto.NOERROR, found, limit=limit), 0


def handle_message(ctx: core.Context, zone: Zone, data: bytes, peer: core.Peer,
                   limit: int | None) -> bytes | None:
    try:
        query = dnsproto.parse_query(data)
    except (dnsproto.BadMessage, struct.error, UnicodeError):
        return None
    if query.is_response:
        return None
    size = limit if limit is not None else (query.edns_size or 512)
    message, rcode = answer(zone, query, size)
    transfer = query.qtype in (dnsproto.AXFR, dnsproto.IXFR)
    ctx.emit(events.QUERY, peer, "zone transfer refused" if transfer else "query",
             qname=query.qname, qtype=dnsproto.type_name(query.qtype),
             qclass=dnsproto.class_name(query.qclass),
             rcode=RCODES.get(rcode, str(rcode)), recursion_desired="yes" if query.rd else None)
    return message


RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


async def handle_tcp(ctx: core.Context, zone: Zone, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, peer: core.Peer) -> None:
    for _ in range(MAX_TCP_QUERIES):
        head = await core.read_exactly(reader, 2, ctx.idle_seconds)
        if not head:
            return
        length = int.from_bytes(head, "big")
        data = await core.read_exactly(reader, length, ctx.idle_seconds) if length else b""
        if data is None:
            return
        message = handle_message(ctx, zone, data, peer, 65535)
        if message is None:
            return
        await core.send(writer, len(message).to_bytes(2, "big") + message)


async def serve(ctx: core.Context) -> None:
    zone = build_zone(ctx.config)

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await handle_tcp(ctx, zone, r, w, p)

    def on_datagram(data: bytes, peer: core.Peer) -> bytes | None:
        return handle_message(ctx, zone, data, peer, None)

    await core.serve_udp(ctx, 53, on_datagram)
    await core.serve_tcp(ctx, 53, on_conn)

