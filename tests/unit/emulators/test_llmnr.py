"""LLMNR: answer only for our own names, unicast, with the T bit clear."""

from __future__ import annotations

import dns.message

from decnet.emulators import core, dnsproto
from decnet.emulators.services import llmnr


def query(name: str, rtype: str = "A") -> dnsproto.Query:
    return dnsproto.parse_query(dns.message.make_query(name, rtype).to_wire())


def test_names_include_host_first_label_and_aliases() -> None:
    config = core.load_config(llmnr.DEFAULTS, '{"aliases": ["FileServer"]}')
    assert llmnr.names(config, "WS-01.corp.local") == {"ws-01.corp.local", "ws-01", "fileserver"}
    config = core.load_config(llmnr.DEFAULTS, '{"hostname": "DC01"}')
    assert llmnr.names(config, "ignored") == {"dc01"}


def test_own_name_is_answered_others_are_not() -> None:
    ours = {"ws-01"}
    wire = llmnr.answer(query("WS-01"), ours, "10.0.0.7", "", 30)
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.answer[0][0].to_text() == "10.0.0.7" and reply.answer[0].ttl == 30
    assert reply.flags == 0x8000  # QR only: no C, TC or T
    assert llmnr.answer(query("wpad"), ours, "10.0.0.7", "", 30) is None
    empty = llmnr.answer(query("ws-01", "AAAA"), ours, "10.0.0.7", "", 30)
    assert empty is not None and not dns.message.from_wire(empty).answer
    six = llmnr.answer(query("ws-01", "AAAA"), ours, "10.0.0.7", "fe80::1", 30)
    assert six is not None and dns.message.from_wire(six).answer[0][0].to_text() == "fe80::1"


def test_own_address_prefers_the_bind_address() -> None:
    assert llmnr.own_address("10.1.1.1") == "10.1.1.1"


def test_reverse_name_of_our_address_gives_the_host_name() -> None:
    ours = {"ws-01.corp.local", "ws-01", "fileserver"}
    wire = llmnr.answer(query("7.0.0.10.in-addr.arpa", "PTR"), ours, "10.0.0.7", "", 30, "WS-01")
    assert wire is not None
    assert dns.message.from_wire(wire).answer[0][0].to_text() == "WS-01."
    assert llmnr.answer(query("8.0.0.10.in-addr.arpa", "PTR"), ours, "10.0.0.7", "", 30) is None
