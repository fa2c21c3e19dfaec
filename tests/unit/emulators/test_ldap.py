"""LDAP messages as ldap3 encodes them and nmap's Active Directory fingerprint reads them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from ldap3.operation.search import search_operation
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from pyasn1.codec.ber import encoder

from decnet.emulators import ber
from decnet.emulators.services import ldap

CONFIG: dict[str, Any] = dict(ldap.DEFAULTS)
# nmap-service-probes: the LDAPSearchReq probe and its Active Directory match
NMAP_AD = re.compile(
    rb"^0\x84\0\0..\x02\x01.*dsServiceName1\x84\0\0\0.\x04.CN=NTDS\x20Settings,CN=([^,]+),"
    rb"CN=Servers,CN=([^,]+),CN=Sites,CN=Configuration,DC=([^,]+),DC=([^,]+)0\x84\0", re.S)


def _ldap3_search(base: str, filter_text: str, attributes: list[str]) -> bytes:
    op = search_operation(base, filter_text, "SUBTREE", "NEVER", attributes, 0, 0, False,
                          None, True)
    message = LDAPMessage()
    message["messageID"] = MessageID(5)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", op)
    return bytes(encoder.encode(message))


def _all(payloads: list[bytes]) -> list[ber.Tlv]:
    return [ber.decode(p) for p in payloads]


def test_nmap_probe_gets_the_active_directory_root_dse() -> None:
    probe = bytes.fromhex("30840000002d02010763840000002404000a01000a0100020100020164010100"
                          "870b6f626a656374436c617373308400000000")  # nmap's LDAPSearchReq
    config = {**CONFIG, "domain": "emea.contoso", "hostname": "EMEADC1", "site": "London"}
    reply = ldap.respond(config, ldap.Session(), ldap.parse_message(probe))
    match = NMAP_AD.match(reply.payloads[0])
    assert match is not None
    assert match.groups() == (b"EMEADC1", b"London", b"emea", b"contoso")
    done = _all(reply.payloads)[1].children()[1]
    assert done.tag == ldap.SEARCH_DONE and done.children()[0].as_int() == ldap.SUCCESS


def test_ldap3_filters_are_reported_as_rfc4515_text() -> None:
    text = "(&(objectClass=user)(!(cn=adm\\2a))(|(sn=Sm*th*)(uid>=100)(mail=*)))"
    message = ldap.parse_message(_ldap3_search("DC=corp,DC=local", text, ["cn", "mail"]))
    search = ldap.parse_search(message.body)
    assert search.filter == text
    assert (search.base, search.scope, search.attributes) == ("DC=corp,DC=local", 2,
                                                              ["cn", "mail"])
    reply = ldap.respond(CONFIG, ldap.Session(), message)
    result = _all(reply.payloads)[0].children()[1].children()
    assert result[0].as_int() == ldap.OPERATIONS_ERROR and b"000004DC" in result[2].value


def test_simple_bind_is_refused_like_ad_and_anonymous_is_let_in() -> None:
    def bind(name: bytes, password: bytes) -> ldap.Reply:
        op = ber.tlv(0x60, ber.integer(3) + ber.octets(name) + ber.octets(password, 0x80))
        return ldap.respond(CONFIG, ldap.Session(), ldap.parse_message(
            ber.seq([ber.integer(1), op])))

    refused = bind(b"CN=Admin,DC=corp,DC=local", b"hunter2")
    code = _all(refused.payloads)[0].children()[1].children()[0].as_int()
    assert code == ldap.INVALID_CREDENTIALS
    assert refused.event is not None and refused.event[2]["password"] == "hunter2"
    anonymous = bind(b"", b"")
    assert _all(anonymous.payloads)[0].children()[1].children()[0].as_int() == ldap.SUCCESS


def test_root_dse_attribute_selection() -> None:
    attrs = ldap.root_dse(CONFIG)
    assert [k for k, _ in ldap.select(attrs, ["DNSHOSTNAME"])] == ["dnsHostName"]
    assert ldap.select(attrs, ["1.1"]) == []
    assert len(ldap.select(attrs, ["*"])) == len(attrs)


def test_deeply_nested_filters_are_refused() -> None:
    nested = ber.tlv(0x87, b"cn")
    for _ in range(ldap.MAX_FILTER_DEPTH + 2):
        nested = ber.tlv(0xA2, nested)
    with pytest.raises(ber.BerError):
        ldap.render_filter(ber.decode(nested))
