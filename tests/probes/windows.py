"""Windows-family probes: SMB, RDP, VNC and LDAP with real clients.

smbclient (Debian) logs in over SMB2/3 with NTLMSSP; RDP uses a minimal client of
our own for X.224 and CredSSP framing (no Debian RDP client runs headless) with
impacket's NTLM client computing the NTLMv2 response; vncdotool is a real VNC
client; ldap3 binds and reads the rootDSE.
"""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess

from tests.probes import NMAP, Expect, Port, probe

NMAP["smb"] = (445, "tcp", "Microsoft Windows")
NMAP["rdp"] = (3389, "tcp", "Microsoft Terminal Services")
NMAP["vnc"] = (5900, "tcp", "VNC")
NMAP["ldap"] = (389, "tcp", "Active Directory")


@probe("smb")
def smb(host: str, port: Port) -> list[Expect]:
    done = subprocess.run(
        ["smbclient", "-L", f"//{host}", "-p", str(port(445)), "-U", "CORP\\alice%Passw0rd!",
         "-m", "SMB3"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert "NT_STATUS_LOGON_FAILURE" in done.stdout + done.stderr, done.stdout + done.stderr
    return [
        Expect("command", {"command": "NEGOTIATE 3.1.1"}),
        Expect("auth", {"username": "alice", "domain": "CORP", "hash_type": "netntlmv2"}),
    ]


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    size = bytes([n]) if n < 0x80 else bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + size + value


def _ts_request(token: bytes, version: int = 6) -> bytes:
    nego = _tlv(0x30, _tlv(0x30, _tlv(0xA0, _tlv(0x04, token))))
    return _tlv(0x30, _tlv(0xA0, _tlv(0x02, bytes([version]))) + _tlv(0xA1, nego))


def _read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        first = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, data[pos : pos + first], pos + first


def rdp_login(host: str, port: int, user: str, password: str, domain: str) -> tuple[bytes, bytes]:
    """X.224 with a cookie, TLS, then CredSSP with NTLM; (connection confirm, last TSRequest)."""
    from impacket import ntlm

    sock = socket.create_connection((host, port), timeout=15)
    cookie = f"Cookie: mstshash={user}\r\n".encode()
    neg = struct.pack("<BBHI", 1, 0, 8, 3)  # RDP_NEG_REQ: SSL | HYBRID
    x224 = bytes([6 + len(cookie) + len(neg), 0xE0, 0, 0, 0, 0, 0]) + cookie + neg
    sock.sendall(struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224)
    confirm = sock.recv(1024)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(sock) as tls:
        negotiate = ntlm.getNTLMSSPType1("", "", True, use_ntlmv2=True)
        tls.sendall(_ts_request(negotiate.getData()))
        _, body, _ = _read_tlv(tls.recv(16384))
        pos, token = 0, b""
        while pos < len(body):
            tag, value, pos = _read_tlv(body, pos)
            if tag == 0xA1:  # negoTokens: SEQUENCE OF SEQUENCE { [0] OCTET STRING }
                _, seq, _ = _read_tlv(value)
                _, item, _ = _read_tlv(seq)
                _, field, _ = _read_tlv(item)
                _, token, _ = _read_tlv(field)
        authenticate, _key = ntlm.getNTLMSSPType3(negotiate, token, user, password, domain,
                                                  use_ntlmv2=True)
        tls.sendall(_ts_request(authenticate.getData()))
        final = tls.recv(16384)
    return confirm, final


@probe("rdp")
def rdp(host: str, port: Port) -> list[Expect]:
    confirm, final = rdp_login(host, port(3389), "administrator", "Welcome1", "CORP")
    assert confirm[5] == 0xD0 and confirm[11] == 2, confirm.hex()  # CC, RDP_NEG_RSP
    assert final.endswith(bytes.fromhex("00c000006d")), final.hex()  # STATUS_LOGON_FAILURE
    return [
        Expect("auth", {"username": "administrator", "mechanism": "cookie"}),
        Expect("auth", {"username": "administrator", "domain": "CORP",
                        "hash_type": "netntlmv2", "mechanism": "CredSSP/NTLM"}),
    ]


@probe("vnc")
def vnc(host: str, port: Port) -> list[Expect]:
    from vncdotool import api

    refused = ""
    try:
        client = api.connect(f"{host}::{port(5900)}", password="hunter2", timeout=15)
        try:
            client.refreshScreen()
        finally:
            client.disconnect()
    except Exception as error:  # noqa: BLE001 - vncdotool reports the server's reason as this
        refused = str(error)
    # (no api.shutdown(): its reactor cannot be restarted within one process)
    assert "Authentication failed" in refused, refused
    return [Expect("request", {"version": "3.8"}),
            Expect("auth", {"hash_type": "vnc", "success": "false"})]


@probe("ldap")
def ldap(host: str, port: Port) -> list[Expect]:
    import ldap3

    server = ldap3.Server(host, port=port(389), get_info=ldap3.DSA, connect_timeout=10)
    anonymous = ldap3.Connection(server, auto_bind=True, receive_timeout=10)
    assert "3" in [str(v) for v in server.info.supported_ldap_versions]
    anonymous.unbind()
    conn = ldap3.Connection(server, user="CN=svc_backup,CN=Users,DC=corp,DC=local",
                            password="Backup#2024", receive_timeout=10)
    assert not conn.bind()
    assert conn.result["result"] == 49, conn.result
    return [
        Expect("query", {"base": "", "query": "(objectClass=*)"}),
        Expect("auth", {"username": "CN=svc_backup,CN=Users,DC=corp,DC=local",
                        "password": "Backup#2024", "mechanism": "simple"}),
    ]


def netntlmv2_matches(line: str, password: str) -> bool:
    """Whether a captured hashcat -m 5600 line is the NTLMv2 response for password.

    This is what cracking it offline does; impacket computes the NT hash (MD4).
    """
    import hashlib
    import hmac

    from impacket import ntlm

    user, _, domain, challenge, proof, blob = line.split(":")
    nt_hash = ntlm.compute_nthash(password)
    key = hmac.new(nt_hash, (user.upper() + domain).encode("utf-16-le"), hashlib.md5).digest()
    expected = hmac.new(key, bytes.fromhex(challenge + blob), hashlib.md5).hexdigest()
    return hmac.compare_digest(expected, proof)
