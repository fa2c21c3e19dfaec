"""SMB on 445 (and NetBIOS session service on 139): a Windows file server up to login.

Written by hand, not with impacket's smbserver: a server that answers NEGOTIATE and
SESSION_SETUP is a few hundred lines of structs, while impacket's server is heavy
to import, follows its own release cycle, and would need real share storage. What
we emulate:

- SMB1 NEGOTIATE offering SMB 2.x dialects gets an SMB2 NEGOTIATE response with
  dialect 0x02FF, as Windows does, and the client re-negotiates in SMB2; an
  SMB1-only client offering "NT LM 0.12" gets the SMB1 answer of a Windows 7-10
  host (with workgroup and name, what nmap's fingerprint reads), and its
  SESSION_SETUP_ANDX password responses are captured; a null session is let in
  and told the native OS and LAN Manager from the config (what nmap's
  smb-os-discovery reports), then refused every tree.
- SMB2 NEGOTIATE (2.0.2 - 3.1.1, capped by config) with a SPNEGO token offering
  NTLMSSP; SESSION_SETUP runs NTLMSSP: the CHALLENGE carries the workgroup,
  computer name, DNS names and the Windows version from the config, and the
  AUTHENTICATE is captured as a hashcat netntlmv2/v1 line. Every login then
  fails with STATUS_LOGON_FAILURE, as for a wrong password. An anonymous (null)
  session is let in, as Windows does: IPC$ connects and the srvsvc pipe lists
  the configured shares (../srvsvc.py), while every share itself is denied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import struct
import uuid
from typing import Any

from .. import core, events, ntlm, srvsvc

PORTS = [(445, "tcp"), (139, "tcp")]
DEFAULTS: dict[str, Any] = {
    "workgroup": "WORKGROUP",
    "hostname": "",
    "dnsDomain": "",
    "osVersion": "10.0.17763",
    "maxDialect": "3.1.1",
    "smb1": True,
    "nativeOs": "",  # "" = the Windows edition of osVersion's build
    "nativeLanMan": "",
    "shares": ["ADMIN$", "C$", "IPC$", "Users"],
}
MAX_FRAME = 65536
MAX_REQUESTS = 64

STATUS_SUCCESS = 0
STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016
STATUS_LOGON_FAILURE = 0xC000006D
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_NOT_SUPPORTED = 0xC00000BB
STATUS_USER_SESSION_DELETED = 0xC0000203
STATUS_BAD_NETWORK_NAME = 0xC00000CC
STATUS_END_OF_FILE = 0xC0000011

SMB1_MAGIC = b"\xffSMB"
SMB2_MAGIC = b"\xfeSMB"
NEGOTIATE, SESSION_SETUP, LOGOFF, TREE_CONNECT, TREE_DISCONNECT, CREATE, IOCTL, ECHO = (
    0, 1, 2, 3, 4, 5, 11, 13)
SESSION_FLAG_IS_NULL = 0x0002
IPC_TREE_ID = 1
READ, WRITE, CLOSE = 8, 9, 6
FSCTL_PIPE_TRANSCEIVE = 0x0011C017
SRVSVC_FILE_ID = b"\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00"
DIALECTS = {"2.0.2": 0x0202, "2.1": 0x0210, "3.0": 0x0300, "3.0.2": 0x0302, "3.1.1": 0x0311}
DIALECT_NAMES = {v: k for k, v in DIALECTS.items()}
WILDCARD = 0x02FF


@dataclasses.dataclass
class Server:
    """Per-process facts a Windows host keeps: its GUID (and boot time, which it hides)."""

    guid: bytes = dataclasses.field(default_factory=lambda: uuid.uuid4().bytes_le)
    started: int = 0  # Windows 8 / 2012 and later send no boot time


@dataclasses.dataclass
class Session:
    """Per-connection state: the dialect, the NTLM challenge, the session id."""

    dialect: int = 0
    challenge: bytes = dataclasses.field(default_factory=lambda: os.urandom(8))
    session_id: int = dataclasses.field(
        default_factory=lambda: int.from_bytes(os.urandom(8), "little") & 0x0000FFFFFFFFFFFF)
    spnego: bool = True
    smb1: bool = False
    null: bool = False  # an anonymous session was set up
    pipe: bool = False  # srvsvc is open on IPC$
    pending: bytes = b""  # the pipe's answer to the last WRITE, for the next READ


@dataclasses.dataclass(frozen=True)
class Header2:
    command: int
    message_id: int
    credits: int
    flags: int
    tree_id: int
    session_id: int
    process_id: int


def identity(config: dict[str, Any]) -> ntlm.Identity:
    host = netbios_name(str(config["hostname"]))
    domain = str(config["dnsDomain"]).lower()
    return ntlm.Identity(
        nb_domain=str(config["workgroup"]).upper()[:15] or "WORKGROUP",
        nb_computer=host,
        dns_domain=domain,
        dns_computer=f"{host.lower()}.{domain}" if domain else host,
        os_version=str(config["osVersion"]),
    )


def netbios_name(hostname: str) -> str:
    """The NetBIOS name for a host name ("" = this host's): first label, upper case, 15 chars."""
    return (hostname or socket.gethostname()).split(".")[0].upper()[:15] or "WIN-SRV01"


def allowed_dialects(config: dict[str, Any]) -> list[int]:
    cap = DIALECTS.get(str(config["maxDialect"]), 0x0311)
    return [d for d in DIALECTS.values() if d <= cap]


# SMB2 ------------------------------------------------------------------------------------

def parse_header2(data: bytes) -> Header2 | None:
    if len(data) < 64 or not data.startswith(SMB2_MAGIC):
        return None
    (command, credits, flags, _next, message_id, process_id, tree_id,
     session_id) = struct.unpack_from("<HHIIQIIQ", data, 12)
    return Header2(command, message_id, credits, flags, tree_id, session_id, process_id)


def header2(req: Header2 | None, command: int, status: int, session_id: int = 0,
            credits: int = 1) -> bytes:
    message_id = req.message_id if req else 0
    granted = max(credits, min(req.credits, 64) if req else 1)
    return (SMB2_MAGIC + struct.pack("<HHIHHII", 64, 0, status, command, granted, 0x1, 0)
            + struct.pack("<QIIQ", message_id, req.process_id if req else 0xFEFF,
                          req.tree_id if req else 0, session_id)
            + b"\x00" * 16)


def error2(req: Header2, status: int, session_id: int = 0) -> bytes:
    return header2(req, req.command, status, session_id) + struct.pack("<HBBI", 9, 0, 0, 0) + b"\0"


def parse_negotiate2(data: bytes) -> tuple[list[int], list[int]]:
    """The client's dialects and, for 3.1.1, the ciphers of its encryption context."""
    if len(data) < 64 + 36:
        return [], []
    count = struct.unpack_from("<H", data, 66)[0]
    count = min(count, 32)
    dialects = list(struct.unpack_from(f"<{count}H", data, 100)) if len(data) >= 100 + 2 * count \
        else []
    ciphers: list[int] = []
    ctx_offset, ctx_count = struct.unpack_from("<IH", data, 64 + 28)
    pos = ctx_offset
    for _ in range(min(ctx_count, 16)):
        if pos + 8 > len(data):
            break
        ctype, dlen = struct.unpack_from("<HH", data, pos)
        body = data[pos + 8 : pos + 8 + dlen]
        if ctype == 2 and len(body) >= 2:
            n = min(struct.unpack_from("<H", body)[0], (len(body) - 2) // 2)
            ciphers = list(struct.unpack_from(f"<{n}H", body, 2))
        pos += 8 + dlen
        pos += (-pos) % 8
    return dialects, ciphers


def choose_dialect(offered: list[int], allowed: list[int]) -> int:
    common = [d for d in offered if d in allowed]
    return max(common) if common else 0


def negotiate_contexts(ciphers: list[int]) -> list[bytes]:
    salt = os.urandom(32)
    preauth = struct.pack("<HHH", 1, 32, 1) + salt  # SHA-512
    cipher = 0x0002 if 0x0002 in ciphers else (ciphers[0] if ciphers else 0x0001)
    encryption = struct.pack("<HH", 1, cipher)
    return [struct.pack("<HHI", 1, len(preauth), 0) + preauth,
            struct.pack("<HHI", 2, len(encryption), 0) + encryption]


def negotiate_response2(server: Server, req: Header2 | None, dialect: int,
                        ciphers: list[int] | None = None, now: int | None = None,
                        client_caps: int = 0) -> bytes:
    token = ntlm.neg_token_init()
    # DFS; LEASING|LARGE_MTU from 2.1; from 3.0 MULTI_CHANNEL, DIRECTORY_LEASING (and
    # ENCRYPTION before 3.1.1 moved it to a context) when the client announced them
    caps = {0x0202: 0x01, 0x0210: 0x07, 0x0300: 0x6F, 0x0302: 0x6F, 0x0311: 0x2F}.get(dialect, 0x07)
    caps &= 0x07 | client_caps
    contexts = negotiate_contexts(ciphers or []) if dialect == 0x0311 else []
    sec_offset = 64 + 64
    ctx_offset = 0
    tail = token
    if contexts:
        pad = (-(sec_offset + len(token))) % 8
        ctx_offset = sec_offset + len(token) + pad
        tail += b"\0" * pad
        for i, ctx in enumerate(contexts):
            tail += ctx
            if i + 1 < len(contexts):
                tail += b"\0" * ((-len(ctx)) % 8)
    body = struct.pack(
        "<HHHH16sIIIIQQHHI", 65, 0x1, dialect, len(contexts), server.guid, caps,
        8388608, 8388608, 8388608, now if now is not None else ntlm.filetime(),
        server.started, sec_offset, len(token), ctx_offset,
    )
    return header2(req, NEGOTIATE, STATUS_SUCCESS) + body + tail


def security_buffer(data: bytes) -> bytes:
    """The security blob of an SMB2 SESSION_SETUP request."""
    if len(data) < 64 + 24:
        return b""
    offset, size = struct.unpack_from("<HH", data, 64 + 12)
    return data[offset : offset + min(size, MAX_FRAME)]


def session_setup_response(req: Header2, status: int, session_id: int, token: bytes,
                           flags: int = 0) -> bytes:
    body = struct.pack("<HHHH", 9, flags, 72 if token else 0, len(token))
    return header2(req, SESSION_SETUP, status, session_id) + body + token


def tree_path(data: bytes) -> str:
    """The UNC path of an SMB2 TREE_CONNECT (\\\\server\\share)."""
    if len(data) < 64 + 8:
        return ""
    offset, size = struct.unpack_from("<HH", data, 64 + 4)
    return data[offset : offset + min(size, 1024)].decode("utf-16-le", "replace")


def tree_connect(config: dict[str, Any], req: Header2, session: Session, path: str) -> bytes:
    """IPC$ for a null session (as Windows allows); configured shares deny it; others: none."""
    share = path.rsplit("\\", 1)[-1].upper()
    shares = {str(s).upper() for s in config["shares"]}
    if not session.null or req.session_id != session.session_id:
        return error2(req, STATUS_USER_SESSION_DELETED, req.session_id)
    if share == "IPC$":
        head = bytearray(header2(req, TREE_CONNECT, STATUS_SUCCESS, session.session_id))
        struct.pack_into("<I", head, 36, IPC_TREE_ID)
        return bytes(head) + struct.pack("<HBBIII", 16, 2, 0, 0x30, 0, 0x001F01FF)
    if share in shares:
        return error2(req, STATUS_ACCESS_DENIED, session.session_id)
    return error2(req, STATUS_BAD_NETWORK_NAME, session.session_id)


def create_response(req: Header2, session: Session) -> bytes:
    """The srvsvc pipe opened on IPC$."""
    body = struct.pack("<HBBIQQQQQQII16sII", 89, 0, 0, 1, 0, 0, 0, 0, 4096, 0, 0x80, 0,
                       SRVSVC_FILE_ID, 0, 0)
    return header2(req, CREATE, STATUS_SUCCESS, session.session_id) + body + b"\0"


def listed_shares(config: dict[str, Any]) -> list[str]:
    """The configured shares, and IPC$, which every Windows host has."""
    shares = [str(s)[:80] for s in config["shares"] if str(s)][:srvsvc.MAX_SHARES - 1]
    if "IPC$" not in {s.upper() for s in shares}:
        shares.append("IPC$")
    return shares


def pipe_io(config: dict[str, Any], req: Header2, session: Session, data: bytes) -> bytes:
    """DCE/RPC over the srvsvc pipe: WRITE then READ, or one IOCTL transceive."""
    sid = session.session_id
    shares = listed_shares(config)
    if req.command == WRITE and len(data) >= 64 + 48:
        offset, length = struct.unpack_from("<HI", data, 64 + 2)
        session.pending = srvsvc.respond(data[offset : offset + min(length, MAX_FRAME)], shares)
        return header2(req, WRITE, STATUS_SUCCESS, sid) + struct.pack("<HHIIHH", 17, 0, length,
                                                                        0, 0, 0)
    if req.command == READ:
        answer, session.pending = session.pending, b""
        if not answer:
            return error2(req, STATUS_END_OF_FILE, sid)
        return (header2(req, READ, STATUS_SUCCESS, sid)
                + struct.pack("<HBBIII", 17, 0x50, 0, len(answer), 0, 0) + answer)
    if req.command == IOCTL and len(data) >= 64 + 56:
        code, _file, in_offset, in_count = struct.unpack_from("<I16sII", data, 64 + 4)
        if code != FSCTL_PIPE_TRANSCEIVE:
            return error2(req, STATUS_NOT_SUPPORTED, sid)
        out = srvsvc.respond(data[in_offset : in_offset + min(in_count, MAX_FRAME)], shares)
        body = struct.pack("<HHI16sIIIIII", 49, 0, code, SRVSVC_FILE_ID, 112, 0, 112, len(out),
                           0, 0)
        return header2(req, IOCTL, STATUS_SUCCESS, sid) + body + out
    if req.command == CLOSE:
        session.pipe = False
        return header2(req, CLOSE, STATUS_SUCCESS, sid) + struct.pack("<HHI", 60, 0, 0) + \
            b"\0" * 52
    return error2(req, STATUS_NOT_SUPPORTED, sid)


def create_name(data: bytes) -> str:
    if len(data) < 64 + 48:
        return ""
    offset, size = struct.unpack_from("<HH", data, 64 + 44)
    return data[offset : offset + min(size, 1024)].decode("utf-16-le", "replace")


# SMB1 ------------------------------------------------------------------------------------

def smb1_dialects(data: bytes) -> list[str]:
    if len(data) < 35 or not data.startswith(SMB1_MAGIC) or data[4] != 0x72:
        return []
    wordcount = data[32]
    pos = 33 + 2 * wordcount
    if pos + 2 > len(data):
        return []
    size = struct.unpack_from("<H", data, pos)[0]
    blob = data[pos + 2 : pos + 2 + size]
    return [part[1:].decode("latin-1") for part in blob.split(b"\0") if part[:1] == b"\x02"][:64]


def smb1_header(req: bytes, command: int, status: int, flags2: int | None = None,
                uid: int = 0) -> bytes:
    tid, pid, _uid, mid = struct.unpack_from("<HHHH", req, 24)
    pid_high = struct.unpack_from("<H", req, 12)[0]
    if flags2 is None:  # Unicode only for a client that speaks it (nmap resends our header)
        flags2 = 0x4001 | (struct.unpack_from("<H", req, 10)[0] & 0x8000)
    return (SMB1_MAGIC + bytes([command]) + struct.pack("<I", status) + b"\x88"
            + struct.pack("<HH", flags2, pid_high) + b"\0" * 8 + b"\0\0"
            + struct.pack("<HHHH", tid, pid, uid, mid))


def smb1_negotiate_response(req: bytes, index: int, ident: ntlm.Identity, challenge: bytes,
                            now: int | None = None) -> bytes:
    """NT LM 0.12 without extended security, as a Windows 7-10 host with SMB1 answers."""
    words = struct.pack("<HBHHIIII", index, 0x03, 50, 1, 4356, 65536, 0, 0x0001E3FC)
    words += struct.pack("<QhB", now if now is not None else ntlm.filetime(), 0, 8)
    data = (challenge + (ident.nb_domain + "\0").encode("utf-16-le")
            + (ident.nb_computer + "\0").encode("utf-16-le"))
    return (smb1_header(req, 0x72, STATUS_SUCCESS, 0x4001) + bytes([17]) + words
            + struct.pack("<H", len(data)) + data)


def smb1_session_setup(req: bytes) -> tuple[ntlm.Auth, str] | None:
    """Credentials of a non-extended SESSION_SETUP_ANDX (LM/NT responses in the clear)."""
    if len(req) < 33 + 26 + 2 or req[4] != 0x73 or req[32] != 13:
        return None
    oem_len, uni_len = struct.unpack_from("<HH", req, 33 + 14)
    pos = 33 + 26 + 2
    lm = req[pos : pos + oem_len]
    nt = req[pos + oem_len : pos + oem_len + uni_len]
    pos += oem_len + uni_len
    flags2 = struct.unpack_from("<H", req, 10)[0]
    strings: list[str] = []
    if flags2 & 0x8000:
        pos += pos % 2
        rest = req[pos:]
        parts = [rest[i : i + 2] for i in range(0, len(rest) - 1, 2)]
        current = b""
        for unit in parts:
            if unit == b"\0\0":
                strings.append(current.decode("utf-16-le", "replace"))
                current = b""
                if len(strings) == 4:
                    break
            else:
                current += unit
    else:
        strings = [s.decode("latin-1") for s in req[pos:].split(b"\0")[:4]]
    strings += [""] * (4 - len(strings))
    auth = ntlm.Auth(domain=strings[1], username=strings[0], workstation="",
                     lm_response=lm, nt_response=nt, flags=0)
    return auth, strings[2]


SERVER_BUILDS = {7601: ("Windows Server 2008 R2 Standard", "6.1"),
                 9200: ("Windows Server 2012 Standard", "6.2"),
                 9600: ("Windows Server 2012 R2 Standard", "6.3"),
                 14393: ("Windows Server 2016 Standard", "6.3"),
                 17763: ("Windows Server 2019 Standard", "6.3"),
                 20348: ("Windows Server 2022 Standard", "6.3")}


def native_os(config: dict[str, Any]) -> tuple[str, str]:
    """SMB1's native OS and LAN Manager strings: configured, or the edition of the build."""
    major, minor, build = ntlm.parse_version(str(config["osVersion"]))
    if build in SERVER_BUILDS:
        edition, lanman = SERVER_BUILDS[build]
    elif major >= 10:
        edition, lanman = "Windows 10 Pro", "6.3"
    else:
        edition, lanman = "Windows 7 Professional", f"{major}.{minor}"
    suffix = " Service Pack 1" if build == 7601 else ""
    return (str(config["nativeOs"]) or f"{edition} {build}{suffix}",
            str(config["nativeLanMan"]) or f"{edition} {lanman}")


def smb1_session_accepted(req: bytes, config: dict[str, Any], ident: ntlm.Identity) -> bytes:
    """A null session's SESSION_SETUP_ANDX answer: the OS and LAN Manager a Windows host names."""
    flags2 = struct.unpack_from("<H", req, 10)[0]
    strings = [*native_os(config), ident.nb_domain]
    if flags2 & 0x8000:
        data = b"\0" + b"".join((t + "\0").encode("utf-16-le") for t in strings)
    else:
        data = b"".join((t + "\0").encode("latin-1", "replace") for t in strings)
    words = struct.pack("<BBHH", 0xFF, 0, 0, 0)
    return (smb1_header(req, 0x73, STATUS_SUCCESS, uid=0x0800) + bytes([3]) + words
            + struct.pack("<H", len(data)) + data)


def smb1_error(req: bytes, status: int) -> bytes:
    return smb1_header(req, req[4], status) + b"\0\0\0"


# Transport and state machine -------------------------------------------------------------

def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload) & 0xFFFFFF) + payload


@dataclasses.dataclass
class Reply:
    payloads: list[bytes]
    close: bool = False
    auth: ntlm.Auth | None = None
    client: str = ""
    note: str = ""


def handle_message(config: dict[str, Any], server: Server, session: Session,
                   data: bytes) -> Reply:
    """One SMB message in, the answer out; pure but for the session's state."""
    ident = identity(config)
    if data.startswith(SMB1_MAGIC):
        return _handle_smb1(config, server, session, ident, data)
    hdr = parse_header2(data)
    if hdr is None:
        return Reply([], close=True, note="not smb")
    if hdr.command == NEGOTIATE:
        offered, ciphers = parse_negotiate2(data)
        dialect = choose_dialect(offered, allowed_dialects(config))
        if not dialect:
            return Reply([error2(hdr, STATUS_NOT_SUPPORTED)], close=True,
                         note="no common dialect")
        session.dialect = dialect
        client_caps = struct.unpack_from("<I", data, 64 + 8)[0] if len(data) >= 76 else 0
        return Reply([negotiate_response2(server, hdr, dialect, ciphers, client_caps=client_caps)],
                     note=f"NEGOTIATE {DIALECT_NAMES.get(dialect, hex(dialect))}")
    if hdr.command == SESSION_SETUP:
        blob = security_buffer(data)
        message = ntlm.find(blob)
        session.spnego = ntlm.is_spnego(blob)
        kind = ntlm.message_type(message)
        if kind == ntlm.NEGOTIATE:
            chal = ntlm.challenge(ident, session.challenge, ntlm.negotiate_flags(message))
            token = ntlm.neg_token_resp(1, chal) if session.spnego else chal
            return Reply([session_setup_response(hdr, STATUS_MORE_PROCESSING_REQUIRED,
                                                 session.session_id, token)])
        if kind == ntlm.AUTHENTICATE:
            auth = ntlm.parse_authenticate(message)
            if auth is not None and auth.anonymous:
                session.null = True
                done = ntlm.neg_token_resp(0, mech=False) if session.spnego else b""
                return Reply([session_setup_response(hdr, STATUS_SUCCESS, session.session_id,
                                                     done, SESSION_FLAG_IS_NULL)], auth=auth)
            return Reply([error2(hdr, STATUS_LOGON_FAILURE, session.session_id)], auth=auth)
        return Reply([error2(hdr, STATUS_LOGON_FAILURE, session.session_id)],
                     note="session setup without NTLMSSP")
    if hdr.command == TREE_CONNECT:
        path = tree_path(data)
        return Reply([tree_connect(config, hdr, session, path)], note=f"TREE_CONNECT {path}")
    if hdr.command == CREATE and session.null:
        name = create_name(data)
        if hdr.tree_id == IPC_TREE_ID and name.lower().lstrip("\\") == "srvsvc":
            session.pipe = True
            return Reply([create_response(hdr, session)], note=f"CREATE {name}")
        return Reply([error2(hdr, STATUS_ACCESS_DENIED, session.session_id)],
                     note=f"CREATE {name}")
    if hdr.command in (WRITE, READ, IOCTL, CLOSE) and session.pipe:
        return Reply([pipe_io(config, hdr, session, data)])
    if hdr.command == TREE_DISCONNECT and session.null:
        return Reply([header2(hdr, TREE_DISCONNECT, STATUS_SUCCESS, session.session_id)
                      + struct.pack("<HH", 4, 0)])
    if hdr.command == IOCTL and session.null:
        return Reply([error2(hdr, STATUS_NOT_SUPPORTED, session.session_id)])
    if hdr.command == ECHO:
        return Reply([header2(hdr, ECHO, STATUS_SUCCESS, hdr.session_id)
                      + struct.pack("<HH", 4, 0)])
    if hdr.command == LOGOFF:
        return Reply([header2(hdr, LOGOFF, STATUS_SUCCESS, hdr.session_id)
                      + struct.pack("<HH", 4, 0)])
    return Reply([error2(hdr, STATUS_USER_SESSION_DELETED, hdr.session_id)],
                 note=f"command {hdr.command}")


def _handle_smb1(config: dict[str, Any], server: Server, session: Session,
                 ident: ntlm.Identity, data: bytes) -> Reply:
    if len(data) < 33:
        return Reply([], close=True, note="short smb1")
    if data[4] == 0x72:
        dialects = smb1_dialects(data)
        if any(d == "SMB 2.???" for d in dialects) and allowed_dialects(config)[-1] > 0x0202:
            return Reply([negotiate_response2(server, None, WILDCARD)], note="NEGOTIATE 2.???")
        if "SMB 2.002" in dialects:
            session.dialect = 0x0202
            return Reply([negotiate_response2(server, None, 0x0202)], note="NEGOTIATE 2.002")
        if "NT LM 0.12" in dialects and config["smb1"]:
            session.smb1 = True
            index = dialects.index("NT LM 0.12")
            return Reply([smb1_negotiate_response(data, index, ident, session.challenge)],
                         note="NEGOTIATE NT LM 0.12")
        return Reply([], close=True, note="SMB1 refused")
    if data[4] == 0x73 and session.smb1:
        found = smb1_session_setup(data)
        if found is not None:
            auth, native_os = found
            if not auth.username and len(auth.nt_response) <= 1 and len(auth.lm_response) <= 1:
                return Reply([smb1_session_accepted(data, config, ident)], auth=auth,
                             client=native_os)
            return Reply([smb1_error(data, STATUS_LOGON_FAILURE)], auth=auth, client=native_os)
    if data[4] in (0x71, 0x74):  # TREE_DISCONNECT, LOGOFF_ANDX
        return Reply([smb1_header(data, data[4], STATUS_SUCCESS) + b"\0\0\0"])
    if data[4] == 0x75:  # TREE_CONNECT_ANDX: null sessions reach nothing
        return Reply([smb1_error(data, STATUS_ACCESS_DENIED)], note="smb1 tree connect")
    return Reply([smb1_error(data, STATUS_NOT_SUPPORTED)], note=f"smb1 command {data[4]}")


async def read_frame(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bytes] | None:
    head = await core.read_exactly(reader, 4, timeout)
    if head is None:
        return None
    size = int.from_bytes(head[1:], "big")
    if size > MAX_FRAME:
        return None
    body = await core.read_exactly(reader, size, timeout) if size else b""
    if body is None:
        return None
    return head[0], body


async def handle(ctx: core.Context, server: Server, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, peer: core.Peer) -> None:
    session = Session()
    for _ in range(MAX_REQUESTS):
        got = await read_frame(reader, ctx.idle_seconds)
        if got is None:
            return
        kind, body = got
        if kind == 0x81:  # NetBIOS session request on 139: positive response
            await core.send(writer, b"\x82\x00\x00\x00")
            continue
        if kind != 0x00:
            continue
        reply = handle_message(ctx.config, server, session, body)
        if reply.note.startswith("NEGOTIATE"):
            ctx.emit(events.COMMAND, peer, reply.note, command=reply.note)
        elif reply.note.startswith(("TREE_CONNECT ", "CREATE ")):
            command, _, path = reply.note.partition(" ")
            ctx.emit(events.REQUEST, peer, reply.note, command=command, path=path)
        elif reply.note:
            ctx.emit(events.DATA, peer, reply.note, command=reply.note, size=len(body))
        if reply.auth is not None:
            _emit_auth(ctx, peer, session, reply.auth, reply.client)
        for payload in reply.payloads:
            await core.send(writer, frame(payload))
        if reply.close:
            return


def _emit_auth(ctx: core.Context, peer: core.Peer, session: Session, auth: ntlm.Auth,
               client: str) -> None:
    hash_type = auth.hash_type()
    ctx.emit(
        events.AUTH, peer, "login attempt",
        username=auth.username or "anonymous",
        domain=auth.domain,
        workstation=auth.workstation or None,
        password_hash=auth.hashcat(session.challenge) or None,
        hash_type=hash_type or None,
        mechanism="NTLMSSP" if not session.smb1 else "NTLM (SMB1)",
        client=client or None,
    )


async def serve(ctx: core.Context) -> None:
    server = Server()

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: core.Peer) -> None:
        await handle(ctx, server, r, w, p)

    for port, _proto in PORTS:
        await core.serve_tcp(ctx, port, on_conn)
