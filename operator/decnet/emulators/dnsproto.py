"""The DNS message format (RFC 1035), shared by the dns and llmnr services.

LLMNR (RFC 4795) reuses DNS's header, question and resource-record encoding, so
both servers parse questions and build answers here. Parsing is defensive: every
name is bounded in labels, length and compression jumps, so a hostile packet costs
a few microseconds and never an exception that escapes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from collections.abc import Sequence

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41
IXFR, AXFR, ANY = 251, 252, 255
IN, CH = 1, 3
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
TYPES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", MX: "MX", TXT: "TXT",
         AAAA: "AAAA", SRV: "SRV", OPT: "OPT", IXFR: "IXFR", AXFR: "AXFR", ANY: "ANY",
         64: "SVCB", 65: "HTTPS", 43: "DS", 48: "DNSKEY", 46: "RRSIG", 99: "SPF", 13: "HINFO"}
BY_NAME = {v: k for k, v in TYPES.items()}
CLASSES = {IN: "IN", CH: "CH", 254: "NONE", 255: "ANY"}
MAX_JUMPS = 16


class BadMessage(ValueError):
    pass


def type_name(rtype: int) -> str:
    return TYPES.get(rtype, f"TYPE{rtype}")


def class_name(rclass: int) -> str:
    return CLASSES.get(rclass, f"CLASS{rclass}")


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """A (possibly compressed) name at pos, and the offset just after it."""
    labels: list[str] = []
    end = -1
    jumps = 0
    total = 0
    while True:
        if pos >= len(data):
            raise BadMessage("name runs past the end")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise BadMessage("truncated pointer")
            jumps += 1
            if jumps > MAX_JUMPS:
                raise BadMessage("compression loop")
            if end < 0:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            continue
        if length & 0xC0:
            raise BadMessage("bad label type")
        pos += 1
        if length == 0:
            break
        label = data[pos : pos + length]
        if len(label) != length:
            raise BadMessage("truncated label")
        total += length + 1
        if total > 255 or len(labels) >= 127:
            raise BadMessage("name too long")
        labels.append(label.decode("latin-1"))
        pos += length
    return ".".join(labels), (end if end >= 0 else pos)


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.strip(".").split("."):
        if not label:
            continue
        raw = label.encode("idna") if not label.isascii() else label.encode()
        out += bytes([min(len(raw), 63)]) + raw[:63]
    return bytes(out) + b"\0"


@dataclasses.dataclass(frozen=True)
class Query:
    id: int
    flags: int
    qname: str
    qtype: int
    qclass: int
    question: bytes  # the question section as the client wrote it (case kept)
    edns_size: int = 0  # 0: no OPT record in the query

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0x0F

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def rd(self) -> bool:
        return bool(self.flags & 0x0100)


def parse_query(data: bytes) -> Query:
    """The header, first question and EDNS size of a query; BadMessage if it is not one."""
    if len(data) < 12:
        raise BadMessage("short header")
    qid, flags, qd, an, ns, ar = struct.unpack("!6H", data[:12])
    if qd != 1:
        raise BadMessage("not exactly one question")
    qname, pos = read_name(data, 12)
    if pos + 4 > len(data):
        raise BadMessage("truncated question")
    qtype, qclass = struct.unpack("!HH", data[pos : pos + 4])
    question = data[12 : pos + 4]
    pos += 4
    edns = 0
    if ar and not an and not ns:
        try:
            _, p2 = read_name(data, pos)
            rtype, rclass = struct.unpack("!HH", data[p2 : p2 + 4])
            if rtype == OPT:
                edns = max(512, rclass)
        except (BadMessage, struct.error):
            pass
    return Query(qid, flags, qname, qtype, qclass, question, edns)


@dataclasses.dataclass(frozen=True)
class Record:
    name: str  # "" = the question's name (written as a pointer to it)
    rtype: int
    rdata: bytes
    ttl: int = 3600
    rclass: int = IN

    def encode(self) -> bytes:
        owner = b"\xc0\x0c" if not self.name else encode_name(self.name)
        return owner + struct.pack("!HHIH", self.rtype, self.rclass, self.ttl,
                                   len(self.rdata)) + self.rdata


def rdata_a(address: str) -> bytes:
    return ipaddress.IPv4Address(address).packed


def rdata_aaaa(address: str) -> bytes:
    return ipaddress.IPv6Address(address).packed


def rdata_txt(*texts: str) -> bytes:
    out = bytearray()
    for text in texts:
        raw = text.encode()
        for i in range(0, max(len(raw), 1), 255):
            chunk = raw[i : i + 255]
            out += bytes([len(chunk)]) + chunk
    return bytes(out)


def rdata_mx(preference: int, exchange: str) -> bytes:
    return struct.pack("!H", preference) + encode_name(exchange)


def rdata_soa(mname: str, rname: str, serial: int, refresh: int = 604800, retry: int = 86400,
              expire: int = 2419200, minimum: int = 86400) -> bytes:
    return encode_name(mname) + encode_name(rname) + struct.pack(
        "!IIIII", serial, refresh, retry, expire, minimum)


def response(query: Query, rcode: int, answers: Sequence[Record] = (),
             authority: Sequence[Record] = (), authoritative: bool = True,
             limit: int = 512, copy_rd: bool = True) -> bytes:
    """A response echoing the question; TC set (answers dropped) if over `limit` bytes.

    LLMNR reuses the RD bit as T (tentative), which a responder clears: copy_rd=False.
    """
    flags = 0x8000 | (query.opcode << 11) | (rcode & 0x0F)
    if copy_rd:
        flags |= query.flags & 0x0100
    if authoritative:
        flags |= 0x0400
    opt = b""
    if query.edns_size:
        opt = b"\0" + struct.pack("!HHIH", OPT, 1232, 0, 0)
    body = b"".join(r.encode() for r in answers) + b"".join(r.encode() for r in authority)
    header = struct.pack("!6H", query.id, flags, 1, len(answers), len(authority),
                         1 if opt else 0)
    message = header + query.question + body + opt
    if len(message) > limit:
        header = struct.pack("!6H", query.id, flags | 0x0200, 1, 0, 0, 1 if opt else 0)
        message = header + query.question + opt
    return message


def reverse_name(address: str) -> str:
    return ipaddress.ip_address(address).reverse_pointer
