"""Authoritative DNS: answers from the configured zone, BIND's version, refusals."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from decnet.emulators import core, dnsproto
from decnet.emulators.services import dns as dnssvc


def ask(name: str, rtype: str = "A", rclass: str = "IN", **config: object) -> dns.message.Message:
    merged = core.load_config(dnssvc.DEFAULTS)
    merged.update(config)
    zone = dnssvc.build_zone(merged)
    query = dns.message.make_query(name, rtype, rclass)
    parsed = dnsproto.parse_query(query.to_wire())
    wire, _ = dnssvc.answer(zone, parsed, 512)
    return dns.message.from_wire(wire)


def test_zone_names_are_answered_authoritatively() -> None:
    r = ask("www.example.com")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert [rr.to_text() for rr in r.answer[0]] == ["192.0.2.10"]
    assert ask("example.com", "MX").answer[0][0].to_text() == "10 mail.example.com."
    assert ask("example.com", "TXT").answer[0][0].to_text() == '"v=spf1 mx -all"'
    assert ask("example.com", "NS").answer[0][0].to_text() == "ns1.example.com."
    assert ask("example.com", "SOA").answer[0][0].serial == 2026112901
    assert ask("10.2.0.192.in-addr.arpa", "PTR").answer[0][0].to_text() == "example.com."
    assert len(ask("example.com", "ANY").answer) == 5


def test_unknown_and_foreign_names() -> None:
    missing = ask("secret.example.com")
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority[0].rdtype == 6
    nodata = ask("www.example.com", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.authority
    assert ask("google.com").rcode() == dns.rcode.REFUSED
    assert ask("example.com", "AXFR").rcode() == dns.rcode.REFUSED


def test_version_bind_from_config() -> None:
    r = ask("version.bind", "TXT", "CH", version="9.11.5-P4-5.1+deb10u9-Debian")
    assert r.answer[0][0].to_text() == '"9.11.5-P4-5.1+deb10u9-Debian"'
    assert r.answer[0].rdclass == dns.rdataclass.CH
    assert ask("hostname.bind", "TXT", "CH").rcode() == dns.rcode.REFUSED


def test_config_changes_the_zone() -> None:
    r = ask("fs01.corp.local", zone="corp.local", records=["fs01 A 10.1.2.3", "bad line",
                                                          "x A not-an-ip", "@ AAAA 2001:db8::1"])
    assert r.answer[0][0].to_text() == "10.1.2.3"
    assert ask("corp.local", "AAAA", zone="corp.local",
               records=["@ AAAA 2001:db8::1"]).answer[0][0].to_text() == "2001:db8::1"


def test_large_answers_set_truncation() -> None:
    records = [f"@ TXT {'x' * 200} {i}" for i in range(5)]
    r = ask("example.com", "TXT", records=records)
    assert r.flags & dns.flags.TC and not r.answer


def test_hostile_names_raise_bad_message() -> None:
    header = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for body in (b"\xc0\x0c\x00\x01\x00\x01",  # pointer to itself
                 b"\x3fabc",  # label longer than the packet
                 b"\x01a" * 200 + b"\x00\x00\x01\x00\x01",  # name over 255 bytes
                 b"\x80x"):  # reserved label type
        with pytest.raises(dnsproto.BadMessage):
            dnsproto.parse_query(header + body)
    with pytest.raises(dnsproto.BadMessage):
        dnsproto.parse_query(b"\x00" * 11)


def test_type_names() -> None:
    assert dnsproto.type_name(dns.rdatatype.AXFR) == "AXFR" and dnsproto.type_name(999) == "TYPE999"


def test_edns_queries_get_an_opt_record() -> None:
    merged = core.load_config(dnssvc.DEFAULTS)
    zone = dnssvc.build_zone(merged)
    query = dns.message.make_query("www.example.com", "A", use_edns=0, payload=4096)
    parsed = dnsproto.parse_query(query.to_wire())
    assert parsed.edns_size == 4096
    reply = dns.message.from_wire(dnssvc.answer(zone, parsed, parsed.edns_size)[0])
    assert reply.edns == 0 and reply.payload == 1232 and reply.answer
