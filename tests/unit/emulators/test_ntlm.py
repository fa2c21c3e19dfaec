"""NTLMSSP: impacket (a real client) reads our CHALLENGE and we read its AUTHENTICATE."""

from __future__ import annotations

import struct

from impacket import ntlm as client
from impacket.spnego import SPNEGO_NegTokenInit, SPNEGO_NegTokenResp, TypesMech
from tests.probes import windows

from decnet.emulators import ntlm

IDENT = ntlm.Identity(nb_domain="CORP", nb_computer="FS01", dns_domain="corp.example",
                      dns_computer="fs01.corp.example", os_version="6.3.9600")
CHALLENGE = bytes.fromhex("0123456789abcdef")


def _av(info: client.AV_PAIRS, key: int) -> str:
    return str(info[key][1].decode("utf-16-le"))


def test_challenge_tells_a_client_the_host_domain_and_windows_version() -> None:
    negotiate = client.getNTLMSSPType1("", "", True, use_ntlmv2=True)
    message = ntlm.challenge(IDENT, CHALLENGE, ntlm.negotiate_flags(negotiate.getData()))
    parsed = client.NTLMAuthChallenge(message)
    assert parsed["challenge"] == CHALLENGE
    info = client.AV_PAIRS(parsed["TargetInfoFields"])
    assert _av(info, client.NTLMSSP_AV_HOSTNAME) == "FS01"
    assert _av(info, client.NTLMSSP_AV_DOMAINNAME) == "CORP"
    assert _av(info, client.NTLMSSP_AV_DNS_DOMAINNAME) == "corp.example"
    assert _av(info, client.NTLMSSP_AV_DNS_HOSTNAME) == "fs01.corp.example"
    assert parsed["Version"][:4] == struct.pack("<BBH", 6, 3, 9600)
    assert parsed["flags"] & ntlm.NEGOTIATE_TARGET_INFO and parsed["flags"] & ntlm.TARGET_TYPE_DOMAIN


def test_workgroup_host_names_itself_as_its_dns_domain() -> None:
    lone = ntlm.Identity(nb_domain="WORKGROUP", nb_computer="PC7")
    info = client.AV_PAIRS(client.NTLMAuthChallenge(ntlm.challenge(lone, CHALLENGE, 0))
                           ["TargetInfoFields"])
    assert _av(info, client.NTLMSSP_AV_DNS_DOMAINNAME) == "PC7"
    assert _av(info, client.NTLMSSP_AV_DOMAINNAME) == "WORKGROUP"


def test_ntlmv2_authenticate_becomes_a_hashcat_line_that_cracks() -> None:
    negotiate = client.getNTLMSSPType1("WS7", "CORP", True, use_ntlmv2=True)
    chal = ntlm.challenge(IDENT, CHALLENGE, ntlm.negotiate_flags(negotiate.getData()))
    authenticate, _ = client.getNTLMSSPType3(negotiate, chal, "Alice", "Tr0ub4dor&3", "CORP",
                                             use_ntlmv2=True)
    auth = ntlm.parse_authenticate(authenticate.getData())
    assert auth is not None
    assert (auth.username, auth.domain, auth.hash_type()) == ("Alice", "CORP", "netntlmv2")
    line = auth.hashcat(CHALLENGE)
    assert line.startswith("Alice::CORP:0123456789abcdef:")
    assert windows.netntlmv2_matches(line, "Tr0ub4dor&3")


def test_ntlmv1_is_written_in_hashcat_5500_order() -> None:
    negotiate = client.getNTLMSSPType1("", "", False, use_ntlmv2=False)
    chal = ntlm.challenge(IDENT, CHALLENGE, 0)
    authenticate, _ = client.getNTLMSSPType3(negotiate, chal, "bob", "pw", "CORP",
                                             use_ntlmv2=False)
    auth = ntlm.parse_authenticate(authenticate.getData())
    assert auth is not None and auth.hash_type() == "netntlmv1"
    user, empty, domain, lm, nt, server = auth.hashcat(CHALLENGE).split(":")
    assert (user, empty, domain, server) == ("bob", "", "CORP", CHALLENGE.hex())
    assert len(bytes.fromhex(nt)) == 24 and len(bytes.fromhex(lm)) == 24


def test_spnego_tokens_offer_ntlmssp_and_wrap_the_challenge() -> None:
    init = SPNEGO_NegTokenInit(ntlm.neg_token_init())
    assert any(b"\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a" in m for m in init["MechTypes"])
    resp = SPNEGO_NegTokenResp(ntlm.neg_token_resp(1, b"NTLMSSP\x00\x02\x00\x00\x00"))
    assert resp["NegState"] == b"\x01"
    assert resp["ResponseToken"].startswith(b"NTLMSSP\x00\x02")


def test_a_wrapped_negotiate_is_found_inside_spnego() -> None:
    token = SPNEGO_NegTokenInit()
    token["MechTypes"] = [TypesMech["NTLMSSP - Microsoft NTLM Security Support Provider"]]
    token["MechToken"] = client.getNTLMSSPType1("", "", True).getData()
    found = ntlm.find(token.getData())
    assert ntlm.message_type(found) == ntlm.NEGOTIATE


def test_lying_offsets_give_empty_fields_not_errors() -> None:
    fields = struct.pack("<HHI", 200, 200, 10_000) * 6
    auth = ntlm.parse_authenticate(b"NTLMSSP\x00\x03\x00\x00\x00" + fields + b"\x01\x00\x00\x00")
    assert auth is not None and auth.username == "" and auth.hash_type() == ""
    assert ntlm.parse_authenticate(b"NTLMSSP\x00\x03\x00") is None
