"""RDP as a Remote Desktop client and a TLS client see it, and what the security team gets."""

from __future__ import annotations

import socket
import ssl
import struct

from cryptography import x509
from cryptography.x509.oid import NameOID
from tests import emulator_harness as h
from tests.probes import windows


def _confirm(port: int, requested: int | None) -> bytes:
    neg = b"" if requested is None else struct.pack("<BBHI", 1, 0, 8, requested)
    x224 = bytes([6 + len(neg), 0xE0, 0, 0, 0, 0, 0]) + neg
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224)
        return s.recv(1024)


def test_nla_login_captures_cookie_user_and_a_crackable_ntlmv2_response() -> None:
    with h.run("rdp") as emu:
        confirm, final = windows.rdp_login("127.0.0.1", emu.port(3389), "jdoe", "Spring2025!",
                                           "ACME")
        assert confirm[11:13] == b"\x02\x1f" and confirm[15] == 2  # RDP_NEG_RSP: HYBRID
        assert final.endswith(bytes.fromhex("00c000006d"))  # errorCode STATUS_LOGON_FAILURE
        emu.wait_event("auth", mechanism="cookie", username="jdoe")
        event = emu.wait_event("auth", mechanism="CredSSP/NTLM")
        assert event.get("username") == "jdoe" and event.get("domain") == "ACME"
        assert windows.netntlmv2_matches(event.get("password_hash"), "Spring2025!")
        request = emu.wait_event("request", cookie="jdoe")
        assert request.get("requested_protocols") == "3"


def test_certificate_is_self_signed_for_the_configured_host() -> None:
    with h.run("rdp", {"hostname": "TS-01", "dnsDomain": "acme.local"}) as emu:
        port = emu.port(3389)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            neg = struct.pack("<BBHI", 1, 0, 8, 3)
            x224 = bytes([6 + len(neg), 0xE0, 0, 0, 0, 0, 0]) + neg
            s.sendall(struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224)
            s.recv(1024)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with ctx.wrap_socket(s) as tls:
                der = tls.getpeercert(binary_form=True)
                assert tls.version() == "TLSv1.2"
        assert der is not None
        cert = x509.load_der_x509_certificate(der)
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == "TS-01.ACME.LOCAL"
        assert cert.issuer == cert.subject


def test_ntlm_challenge_names_the_configured_host_and_domain() -> None:
    from impacket import ntlm

    with h.run("rdp", {"hostname": "TS-01", "dnsDomain": "acme.local", "osVersion": "10.0.20348"}
               ) as emu:
        port = emu.port(3389)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            neg = struct.pack("<BBHI", 1, 0, 8, 3)
            x224 = bytes([6 + len(neg), 0xE0, 0, 0, 0, 0, 0]) + neg
            s.sendall(struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224)
            s.recv(1024)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with ctx.wrap_socket(s) as tls:
                tls.sendall(windows._ts_request(ntlm.getNTLMSSPType1("", "", True).getData()))
                answer = tls.recv(16384)
        raw = answer[answer.find(b"NTLMSSP\x00"):]
        challenge = ntlm.NTLMAuthChallenge(raw)
        info = ntlm.AV_PAIRS(challenge["TargetInfoFields"])
        assert info[ntlm.NTLMSSP_AV_HOSTNAME][1].decode("utf-16-le") == "TS-01"
        assert info[ntlm.NTLMSSP_AV_DOMAINNAME][1].decode("utf-16-le") == "ACME"
        assert info[ntlm.NTLMSSP_AV_DNS_DOMAINNAME][1].decode("utf-16-le") == "acme.local"
        assert info[ntlm.NTLMSSP_AV_DNS_HOSTNAME][1].decode("utf-16-le") == "ts-01.acme.local"
        assert challenge["Version"][:4] == struct.pack("<BBH", 10, 0, 20348)


def test_clients_without_nla_are_told_it_is_required_unless_config_allows_tls() -> None:
    with h.run("rdp") as emu:
        failure = _confirm(emu.port(3389), 1)  # SSL only
        assert failure[11] == 3 and struct.unpack("<I", failure[15:19])[0] == 5
        legacy = _confirm(emu.port(3389), None)  # no negotiation: a bare confirm
        assert legacy == bytes.fromhex("0300000b06d00000123400")
    with h.run("rdp", {"nla": False}) as emu:
        selected = _confirm(emu.port(3389), 1)
        assert selected[11] == 2 and struct.unpack("<I", selected[15:19])[0] == 1
