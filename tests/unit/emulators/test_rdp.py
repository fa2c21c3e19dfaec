"""RDP's X.224 negotiation and CredSSP framing as clients and nmap's fingerprint read them."""

from __future__ import annotations

import re
import socket
import struct

from decnet.emulators import ber
from decnet.emulators.services import rdp

# nmap-service-probes, TerminalServerCookie: "Microsoft Terminal Services"
NMAP_COOKIE_PROBE = b"\x03\0\0*%\xe0\0\0\0\0\0Cookie: mstshash=nmap\r\n\x01\0\x08\0\x03\0\0\0"
NMAP_MS_TS = re.compile(rb"^\x03\0\0\x13\x0e\xd0\0\0\x124\0\x02\x1f\x08\0\x02\0\0\0")
NMAP_MS_TS_BARE = re.compile(rb"^\x03\0\0\x0b\x06\xd0\0\0\x12.\0$", re.S)


def test_nmap_cookie_probe_is_parsed_and_answered_as_windows_does() -> None:
    cr = rdp.parse_connection_request(NMAP_COOKIE_PROBE)
    assert cr == rdp.ConnectionRequest("nmap", 3)
    selected, failure = rdp.select(cr.requested, nla=True)
    assert NMAP_MS_TS.match(rdp.connection_confirm(cr.requested, selected, failure))


def test_a_request_without_negotiation_gets_a_bare_confirm() -> None:
    cr = rdp.parse_connection_request(b"\x03\0\0\x0b\x06\xe0\0\0\0\0\0")
    assert cr == rdp.ConnectionRequest("", None)
    assert NMAP_MS_TS_BARE.match(rdp.connection_confirm(None, *rdp.select(None, True)))


def test_protocol_selection_follows_what_the_client_offers_and_nla() -> None:
    assert rdp.select(0b1011, nla=True) == (rdp.PROTOCOL_HYBRID, 0)
    assert rdp.select(rdp.PROTOCOL_SSL, nla=True) == (-1, rdp.HYBRID_REQUIRED_BY_SERVER)
    assert rdp.select(rdp.PROTOCOL_SSL, nla=False) == (rdp.PROTOCOL_SSL, 0)
    assert rdp.select(rdp.PROTOCOL_RDP, nla=False) == (-1, rdp.SSL_REQUIRED_BY_SERVER)
    failure = rdp.connection_confirm(0, -1, rdp.SSL_REQUIRED_BY_SERVER)
    assert failure[11] == 3 and struct.unpack("<I", failure[15:19])[0] == 1


def test_cookie_is_bounded_and_garbage_is_no_request() -> None:
    long_user = b"Cookie: mstshash=" + b"A" * 200 + b"\r\n"
    x224 = bytes([6 + len(long_user)]) + b"\xe0\0\0\0\0\0" + long_user
    cr = rdp.parse_connection_request(b"\x03\0" + struct.pack(">H", 4 + len(x224)) + x224)
    assert cr is not None and len(cr.cookie) <= 128
    assert rdp.parse_connection_request(b"\x16\x03\x01\x00\x10" + b"\0" * 20) is None


def test_ts_requests_round_trip() -> None:
    token = b"NTLMSSP\x00\x01\x00\x00\x00" + b"\0" * 20
    parsed = rdp.parse_ts_request(rdp.ts_request(6, token))
    assert (parsed.version, parsed.token, parsed.pub_key_auth) == (6, token, False)
    error = ber.decode(rdp.ts_request(6, error=rdp.STATUS_LOGON_FAILURE)).children()[1]
    assert error.tag == 0xA4 and ber.decode(error.value).as_int() == 0xC000006D


def test_certificate_name_follows_the_host_and_domain() -> None:
    assert rdp.common_name(dict(rdp.DEFAULTS)) == socket.gethostname().split(".")[0].upper()[:15]
    assert rdp.common_name({**rdp.DEFAULTS, "hostname": "ts1", "dnsDomain": "ad.example"}) == \
        "TS1.AD.EXAMPLE"
