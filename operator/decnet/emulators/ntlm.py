"""NTLMSSP server side and its SPNEGO wrapping, shared by SMB and RDP (CredSSP).

Written by hand: the server half of NTLM is three small messages (MS-NLMP), and
what we want from it is not authentication but what a Windows host shows before
it (its names and version in the CHALLENGE's target info) and what the client
sends in AUTHENTICATE: domain, user, workstation and the challenge-response,
written out in hashcat's formats (5600 netntlmv2, 5500 netntlmv1).
"""

from __future__ import annotations

import dataclasses
import struct
import time

from . import ber

SIGNATURE = b"NTLMSSP\x00"
NEGOTIATE, CHALLENGE, AUTHENTICATE = 1, 2, 3
OID_NTLMSSP = "1.3.6.1.4.1.311.2.2.10"
OID_SPNEGO = "1.3.6.1.5.5.2"

NEGOTIATE_UNICODE = 0x00000001
NEGOTIATE_OEM = 0x00000002
REQUEST_TARGET = 0x00000004
NEGOTIATE_SIGN = 0x00000010
NEGOTIATE_SEAL = 0x00000020
NEGOTIATE_NTLM = 0x00000200
NEGOTIATE_ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
TARGET_TYPE_SERVER = 0x00020000
EXTENDED_SESSIONSECURITY = 0x00080000
NEGOTIATE_TARGET_INFO = 0x00800000
NEGOTIATE_VERSION = 0x02000000
NEGOTIATE_128 = 0x20000000
NEGOTIATE_KEY_EXCH = 0x40000000
NEGOTIATE_56 = 0x80000000
# Flags a Windows server echoes when the client asks for them.
_ECHOED = (NEGOTIATE_SIGN | NEGOTIATE_SEAL | NEGOTIATE_ALWAYS_SIGN | EXTENDED_SESSIONSECURITY
           | NEGOTIATE_128 | NEGOTIATE_KEY_EXCH | NEGOTIATE_56)

AV_EOL, AV_NB_COMPUTER, AV_NB_DOMAIN, AV_DNS_COMPUTER, AV_DNS_DOMAIN, AV_DNS_TREE = 0, 1, 2, 3, 4, 5
AV_TIMESTAMP = 7
MAX_FIELD = 4096


@dataclasses.dataclass(frozen=True)
class Identity:
    """What a Windows host says about itself in a CHALLENGE."""

    nb_domain: str = "WORKGROUP"
    nb_computer: str = "WIN-SRV01"
    dns_domain: str = ""
    dns_computer: str = ""
    os_version: str = "10.0.17763"  # major.minor.build, in the VERSION field

    def version_bytes(self) -> bytes:
        major, minor, build = parse_version(self.os_version)
        return struct.pack("<BBH3xB", major, minor, build, 15)


def parse_version(text: str) -> tuple[int, int, int]:
    parts = [p for p in str(text).replace("-", ".").split(".") if p.isdigit()]
    nums = [int(p) for p in parts[:3]] + [0, 0, 0]
    return min(nums[0], 255), min(nums[1], 255), min(nums[2], 65535)


@dataclasses.dataclass(frozen=True)
class Auth:
    """The interesting part of an AUTHENTICATE message."""

    domain: str
    username: str
    workstation: str
    lm_response: bytes
    nt_response: bytes
    flags: int

    @property
    def anonymous(self) -> bool:
        return not self.username and len(self.nt_response) == 0

    def hash_type(self) -> str:
        if len(self.nt_response) > 24:
            return "netntlmv2"
        if self.nt_response:
            return "netntlmv1"
        return ""

    def hashcat(self, server_challenge: bytes) -> str:
        """The response as hashcat reads it (-m 5600 for v2, -m 5500 for v1)."""
        nt = self.nt_response
        if len(nt) > 24:
            return (f"{self.username}::{self.domain}:{server_challenge.hex()}:"
                    f"{nt[:16].hex()}:{nt[16:].hex()}")
        if nt:
            return (f"{self.username}::{self.domain}:{self.lm_response.hex()}:{nt.hex()}:"
                    f"{server_challenge.hex()}")
        return ""


def message_type(data: bytes) -> int:
    if len(data) < 12 or not data.startswith(SIGNATURE):
        return 0
    return int(struct.unpack_from("<I", data, 8)[0])


def find(blob: bytes) -> bytes:
    """The NTLMSSP message inside a raw, GSS-API or SPNEGO-wrapped token (b"" if none).

    Offsets in an NTLM message are relative to its signature and bounded by the
    buffer, so the rest of the token after the signature is a safe view of it.
    """
    at = blob.find(SIGNATURE)
    return blob[at:] if at >= 0 else b""


def negotiate_flags(data: bytes) -> int:
    if message_type(data) != NEGOTIATE or len(data) < 16:
        return 0
    return int(struct.unpack_from("<I", data, 12)[0])


def _field(data: bytes, offset: int) -> bytes:
    if offset + 8 > len(data):
        return b""
    size, _max, where = struct.unpack_from("<HHI", data, offset)
    if size > MAX_FIELD or where + size > len(data):
        return b""
    return data[where : where + size]


def _text(raw: bytes, unicode: bool) -> str:
    if unicode:
        return raw.decode("utf-16-le", "replace")
    return raw.decode("latin-1")


def parse_authenticate(data: bytes) -> Auth | None:
    if message_type(data) != AUTHENTICATE or len(data) < 64:
        return None
    flags = int(struct.unpack_from("<I", data, 60)[0])
    unicode = bool(flags & NEGOTIATE_UNICODE)
    return Auth(
        lm_response=_field(data, 12),
        nt_response=_field(data, 20),
        domain=_text(_field(data, 28), unicode),
        username=_text(_field(data, 36), unicode),
        workstation=_text(_field(data, 44), unicode),
        flags=flags,
    )


def filetime(now: float | None = None) -> int:
    return int(((time.time() if now is None else now) + 11644473600) * 10_000_000)


def target_info(ident: Identity, now: float | None = None) -> bytes:
    pairs = [
        (AV_NB_DOMAIN, ident.nb_domain),
        (AV_NB_COMPUTER, ident.nb_computer),
        # a host outside a domain names itself as its DNS domain, as Windows does
        (AV_DNS_DOMAIN, ident.dns_domain or ident.nb_computer),
        (AV_DNS_COMPUTER, ident.dns_computer or ident.nb_computer),
    ]
    if ident.dns_domain:
        pairs.append((AV_DNS_TREE, ident.dns_domain))
    out = b""
    for av_id, text in pairs:
        raw = text.encode("utf-16-le")[:MAX_FIELD]
        out += struct.pack("<HH", av_id, len(raw)) + raw
    out += struct.pack("<HHQ", AV_TIMESTAMP, 8, filetime(now))
    return out + struct.pack("<HH", AV_EOL, 0)


def challenge(ident: Identity, server_challenge: bytes, client_flags: int,
              now: float | None = None) -> bytes:
    """The CHALLENGE message a Windows host answers a NEGOTIATE with."""
    flags = (NEGOTIATE_UNICODE | REQUEST_TARGET | NEGOTIATE_NTLM | NEGOTIATE_TARGET_INFO
             | NEGOTIATE_VERSION | (client_flags & _ECHOED))
    flags |= TARGET_TYPE_DOMAIN if ident.dns_domain else TARGET_TYPE_SERVER
    flags |= NEGOTIATE_ALWAYS_SIGN
    name = (ident.nb_domain if ident.dns_domain else ident.nb_computer).encode("utf-16-le")
    info = target_info(ident, now)
    head = 56
    return (
        SIGNATURE
        + struct.pack("<I", CHALLENGE)
        + struct.pack("<HHI", len(name), len(name), head)
        + struct.pack("<I", flags)
        + server_challenge[:8].ljust(8, b"\x00")
        + b"\x00" * 8
        + struct.pack("<HHI", len(info), len(info), head + len(name))
        + ident.version_bytes()
        + name
        + info
    )


# SPNEGO (RFC 4178) ---------------------------------------------------------------------

def neg_token_init(hint: str = "not_defined_in_RFC4178@please_ignore") -> bytes:
    """The GSS-API token a server offers first (SMB2 NEGOTIATE's security buffer)."""
    mech_types = ber.tlv(0xA0, ber.seq([ber.oid(OID_NTLMSSP)]))
    hints = ber.tlv(0xA3, ber.seq([ber.tlv(0xA0, ber.octets(hint, 0x1B))]))
    init = ber.tlv(0xA0, ber.seq([mech_types, hints]))
    return ber.tlv(0x60, ber.oid(OID_SPNEGO) + init)


def neg_token_resp(state: int, token: bytes = b"", mech: bool = True) -> bytes:
    """NegTokenResp: state 1 accept-incomplete (with the CHALLENGE), 2 reject."""
    items = [ber.tlv(0xA0, ber.enumerated(state))]
    if mech:
        items.append(ber.tlv(0xA1, ber.oid(OID_NTLMSSP)))
    if token:
        items.append(ber.tlv(0xA2, ber.octets(token)))
    return ber.tlv(0xA1, ber.seq(items))


def is_spnego(blob: bytes) -> bool:
    return bool(blob) and blob[0] in (0x60, 0xA0, 0xA1)
