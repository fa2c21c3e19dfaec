"""LLMNR (RFC 4795, UDP 5355): answers for the host's own name, reports every query heard.

On a LAN, Windows hosts ask LLMNR for names DNS could not resolve, and poisoning
tools (Responder, Inveigh) answer them; scanners ask it for host names. Listening
on the multicast group 224.0.0.252 and on unicast, this service answers queries for
its own host name (and configured aliases) with its address, as a Windows host
does, and reports every query, answered or not, as a `query` event: a host that
asks LLMNR for a name a poisoner then claims is exactly what a security team wants
to see. Hand-written on the shared DNS wire format (dnsproto); no library needed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from typing import Any

from .. import core, dnsproto, events

PORTS = [(5355, "udp")]
GROUP = "224.0.0.252"
DEFAULTS: dict[str, Any] = {
    "hostname": "",  # default: the host's name
    "aliases": [],  # further names answered, e.g. "fileserver"
    "address": "",  # IPv4 answered; default: the address this host reaches the LAN with
    "address6": "",  # IPv6 answered for AAAA, if any
    "ttl": 30,
}


def names(config: dict[str, Any], hostname: str) -> set[str]:
    """Lower-case names this host answers for: its name, its first label, its aliases."""
    own = str(config["hostname"]) or hostname
    out = {own.lower().rstrip("."), own.lower().split(".")[0]}
    out.update(str(a).lower().rstrip(".") for a in list(config["aliases"])[:32])
    return {n for n in out if n}


def answer(query: dnsproto.Query, ours: set[str], address: str, address6: str,
           ttl: int, host: str = "") -> bytes | None:
    """The unicast response for a query, or None: LLMNR stays silent for other names.

    The reverse name of our own address is ours too: Windows answers those PTR queries
    with its host name (`host`, default the shortest of our names).
    """
    if query.is_response or query.opcode != 0 or query.qclass not in (dnsproto.IN, 255):
        return None
    name = query.qname.lower().rstrip(".")
    found: list[dnsproto.Record] = []
    reverse = {dnsproto.reverse_name(a) for a in (address, address6) if a}
    if name in reverse:
        if query.qtype in (dnsproto.PTR, dnsproto.ANY):
            ptr = dnsproto.encode_name(host or min(ours, key=len))
            found.append(dnsproto.Record("", dnsproto.PTR, ptr, ttl))
        return dnsproto.response(query, dnsproto.NOERROR, found, authoritative=False,
                                 limit=512, copy_rd=False)
    if name not in ours:
        return None
    if query.qtype in (dnsproto.A, dnsproto.ANY) and address:
        found.append(dnsproto.Record("", dnsproto.A, dnsproto.rdata_a(address), ttl))
    if query.qtype in (dnsproto.AAAA, dnsproto.ANY) and address6:
        found.append(dnsproto.Record("", dnsproto.AAAA, dnsproto.rdata_aaaa(address6), ttl))
    # LLMNR flags: QR set, C/TC/T clear, RD unused; authoritative for our own name
    return dnsproto.response(query, dnsproto.NOERROR, found, authoritative=False, limit=512,
                             copy_rd=False)


def own_address(bind_host: str) -> str:
    """The IPv4 address this host would use on its LAN (no packet is sent)."""
    try:
        if bind_host not in ("", "0.0.0.0") and ipaddress.ip_address(bind_host).version == 4:
            return bind_host
    except ValueError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((GROUP, 5355))
            found = str(s.getsockname()[0])
        except OSError:
            found = ""
    if found in ("", "0.0.0.0"):
        try:  # a container's /etc/hosts maps its own name to its address
            found = socket.gethostbyname(socket.gethostname())
        except OSError:
            found = ""
    return "" if found.startswith("127.") or found == "0.0.0.0" else found


def join_group(transport: asyncio.DatagramTransport) -> bool:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton("0.0.0.0"))
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    except OSError:
        return False  # no multicast route (a bare loopback): unicast still works
    return True


async def serve(ctx: core.Context) -> None:
    ours = names(ctx.config, ctx.emitter.hostname)
    host = (str(ctx.config["hostname"]) or ctx.emitter.hostname).split(".")[0]
    address = str(ctx.config["address"]) or own_address(ctx.host)
    address6 = str(ctx.config["address6"])
    ttl = int(ctx.config["ttl"])

    def on_datagram(data: bytes, peer: core.Peer) -> bytes | None:
        try:
            query = dnsproto.parse_query(data)
        except (dnsproto.BadMessage, struct.error, UnicodeError):
            return None
        if query.is_response:
            return None
        reply = answer(query, ours, address, address6, ttl, host)
        ctx.emit(events.QUERY, peer, "name query", qname=query.qname,
                 qtype=dnsproto.type_name(query.qtype), answered="yes" if reply else "no")
        return reply

    transport = await core.serve_udp(ctx, 5355, on_datagram)
    join_group(transport)
