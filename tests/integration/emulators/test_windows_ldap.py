"""LDAP as ldapsearch, ldap3 and an NTLM (Sicily) client see it, and what the security team gets."""

from __future__ import annotations

import socket
import subprocess

from tests import emulator_harness as h
from tests.probes import windows


def _ldapsearch(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ldapsearch", "-H", f"ldap://127.0.0.1:{port}", "-o", "nettimeout=10",
                           *args], capture_output=True, text=True, timeout=60, check=False)


def test_root_dse_describes_the_configured_domain_controller() -> None:
    with h.run("ldap", {"domain": "acme.example.org", "hostname": "ADDC02"}) as emu:
        done = _ldapsearch(emu.port(389), "-x", "-LLL", "-b", "", "-s", "base",
                           "(objectClass=*)", "defaultNamingContext", "dnsHostName",
                           "ldapServiceName", "supportedCapabilities", "supportedLDAPVersion")
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert "defaultNamingContext: DC=acme,DC=example,DC=org" in out
        assert "dnsHostName: ADDC02.acme.example.org" in out
        assert "ldapServiceName: acme.example.org:addc02$@ACME.EXAMPLE.ORG" in out
        assert "supportedCapabilities: 1.2.840.113556.1.4.800" in out  # Active Directory
        assert "namingContexts" not in out  # only what was asked for
        emu.wait_event("query", base="", query="(objectClass=*)")


def test_simple_bind_is_captured_and_refused_with_the_ad_error() -> None:
    with h.run("ldap") as emu:
        done = _ldapsearch(emu.port(389), "-x", "-D", "CORP\\helpdesk", "-w", "Password1",
                           "-b", "DC=corp,DC=local", "(cn=*)")
        assert done.returncode == 49, done.stdout + done.stderr
        assert "AcceptSecurityContext error, data 52e" in done.stderr
        event = emu.wait_event("auth", username="CORP\\helpdesk")
        assert event.get("password") == "Password1" and event.get("mechanism") == "simple"


def test_searches_without_a_bind_are_refused_and_their_filters_reported() -> None:
    with h.run("ldap") as emu:
        done = _ldapsearch(emu.port(389), "-x", "-b", "CN=Users,DC=corp,DC=local",
                           "(&(objectClass=user)(|(sAMAccountName=adm*)(adminCount>=1)))",
                           "sAMAccountName", "memberOf")
        assert "Operations error" in done.stdout + done.stderr
        assert "a successful bind must be completed" in done.stdout
        event = emu.wait_event("query", base="CN=Users,DC=corp,DC=local")
        assert event.get("query") == "(&(objectClass=user)(|(sAMAccountName=adm*)(adminCount>=1)))"
        assert event.get("attributes") == "sAMAccountName,memberOf"


def test_sasl_mechanism_is_logged() -> None:
    with h.run("ldap") as emu:
        done = _ldapsearch(emu.port(389), "-Y", "DIGEST-MD5", "-U", "bob", "-w", "x",
                           "-b", "", "-s", "base")
        assert done.returncode != 0
        emu.wait_event("auth", mechanism="DIGEST-MD5")


def test_ldap3_reads_the_server_info_and_its_bind_is_captured() -> None:
    import ldap3

    with h.run("ldap", {"domain": "corp.local"}) as emu:
        server = ldap3.Server("127.0.0.1", port=emu.port(389), get_info=ldap3.ALL,
                              connect_timeout=10)
        ldap3.Connection(server, auto_bind=True, receive_timeout=10).unbind()  # anonymous
        assert server.info is not None
        assert "DC=corp,DC=local" in server.info.naming_contexts
        assert "GSS-SPNEGO" in server.info.supported_sasl_mechanisms
        conn = ldap3.Connection(server, user="svc_sql@corp.local", password="SqlSvc!2023",
                                receive_timeout=10)
        assert not conn.bind()
        assert conn.result["description"] == "invalidCredentials"
        emu.wait_event("auth", username="svc_sql@corp.local", password="SqlSvc!2023")


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    return bytes([tag]) + (bytes([n]) if n < 128 else b"\x82" + n.to_bytes(2, "big")) + value


def _bind(message_id: int, choice: int, payload: bytes) -> bytes:
    op = _tlv(0x60, _tlv(0x02, b"\x03") + _tlv(0x04, b"") + _tlv(choice, payload))
    return _tlv(0x30, _tlv(0x02, bytes([message_id])) + op)


def test_ntlm_bind_is_captured_as_a_crackable_netntlmv2_hash() -> None:
    """The "Sicily" NTLM bind (what ldap3's NTLM and impacket's LDAP login send)."""
    from impacket import ntlm

    with h.run("ldap", {"domain": "corp.local", "hostname": "DC01"}) as emu:
        with socket.create_connection(("127.0.0.1", emu.port(389)), timeout=10) as s:
            negotiate = ntlm.getNTLMSSPType1("", "", True, use_ntlmv2=True)
            s.sendall(_bind(1, 0x8A, negotiate.getData()))
            answer = s.recv(65536)
            challenge = answer[answer.find(b"NTLMSSP\x00"):]
            parsed = ntlm.NTLMAuthChallenge(challenge)
            info = ntlm.AV_PAIRS(parsed["TargetInfoFields"])
            assert info[ntlm.NTLMSSP_AV_DNS_HOSTNAME][1].decode("utf-16-le") == "dc01.corp.local"
            authenticate, _ = ntlm.getNTLMSSPType3(negotiate, challenge, "jsmith", "Autumn#99",
                                                   "CORP", use_ntlmv2=True)
            s.sendall(_bind(2, 0x8B, authenticate.getData()))
            assert b"data 52e" in s.recv(65536)
        event = emu.wait_event("auth", username="jsmith")
        assert event.get("domain") == "CORP" and event.get("hash_type") == "netntlmv2"
        assert windows.netntlmv2_matches(event.get("password_hash"), "Autumn#99")


def test_ldaps_serves_the_same_directory_with_the_dc_certificate() -> None:
    import os
    import ssl

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    with h.run("ldap", {"domain": "corp.local", "hostname": "DC02"}) as emu:
        done = subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-H", f"ldaps://127.0.0.1:{emu.port(636)}", "-D",
             "CORP\\backup", "-w", "Backup!1", "-b", "", "-s", "base", "dnsHostName"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "LDAPTLS_REQCERT": "never"})
        assert done.returncode == 49 and "data 52e" in done.stderr, done.stderr
        event = emu.wait_event("auth", username="CORP\\backup", dst_port="636")
        assert event.get("password") == "Backup!1"
        pem = ssl.get_server_certificate(("127.0.0.1", emu.port(636)), timeout=10)
        cert = x509.load_pem_x509_certificate(pem.encode())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
            "dc02.corp.local"
