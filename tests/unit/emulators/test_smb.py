"""SMB messages as impacket's structures and nmap's fingerprints read them."""

from __future__ import annotations

import re
import struct
from typing import Any

from impacket import ntlm as client
from impacket import smb3structs as s3

from decnet.emulators.services import smb

CONFIG: dict[str, Any] = dict(smb.DEFAULTS)
# nmap-service-probes, SMBProgNeg: "Microsoft Windows 7 - 10 microsoft-ds (workgroup: $1)"
NMAP_WIN7_10 = re.compile(
    rb"^\xffSMBr\0\0\0\0\x88\x01@\0\0\0\0\0\0\0\0\0\0\0\0\0\0@\x06\0\0\x01\0\x11\x07\0.2\0\x01"
    rb"\0\x04\x11\0\0\0\0\x01\0\0\0\0\0\xfc\xe3\x01\0.{21}(.*)\0\0(.*)\0\0", re.S)
NMAP_PROBE = (b"\xffSMBr\0\0\0\0\x08\x01\x40\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x40\x06\0\0\x01\0\0\x81"
              b"\0\x02PC NETWORK PROGRAM 1.0\0\x02MICROSOFT NETWORKS 1.03\0\x02MICROSOFT NETWORKS"
              b" 3.0\0\x02LANMAN1.0\0\x02LM1.2X002\0\x02Samba\0\x02NT LANMAN 1.0\0\x02NT LM 0.12\0")


def _negotiate2(*dialects: int, message_id: int = 1) -> bytes:
    head = s3.SMB2Packet()
    head["Command"] = s3.SMB2_NEGOTIATE
    head["MessageID"] = message_id
    body = s3.SMB2Negotiate()
    body["SecurityMode"] = 1
    body["DialectCount"] = len(dialects)
    body["Dialects"] = list(dialects)
    head["Data"] = body
    return bytes(head.getData())


def _session_setup(token: bytes, message_id: int = 2) -> bytes:
    head = s3.SMB2Packet()
    head["Command"] = s3.SMB2_SESSION_SETUP
    head["MessageID"] = message_id
    body = s3.SMB2SessionSetup()
    body["SecurityBufferLength"] = len(token)
    body["SecurityBufferOffset"] = 0x58
    body["Buffer"] = token
    head["Data"] = body
    return bytes(head.getData())


def test_multi_protocol_negotiate_is_answered_in_smb2_with_the_wildcard_dialect() -> None:
    smb1 = (b"\xffSMBr" + b"\0" * 27 + b"\x00\x22\x00\x02NT LM 0.12\x00\x02SMB 2.002\x00"
            b"\x02SMB 2.???\x00")
    reply = smb.handle_message(CONFIG, smb.Server(), smb.Session(), smb1)
    packet = s3.SMB2Packet(reply.payloads[0])
    negotiated = s3.SMB2Negotiate_Response(packet["Data"])
    assert packet["Command"] == s3.SMB2_NEGOTIATE and negotiated["DialectRevision"] == 0x02FF


def test_smb2_negotiate_picks_the_best_dialect_the_config_allows() -> None:
    server = smb.Server()
    offered = _negotiate2(0x0202, 0x0210, 0x0300, 0x0302, 0x0311)
    for cap, expected in (("3.1.1", 0x0311), ("3.0", 0x0300), ("2.0.2", 0x0202)):
        reply = smb.handle_message({**CONFIG, "maxDialect": cap}, server, smb.Session(), offered)
        packet = s3.SMB2Packet(reply.payloads[0])
        response = s3.SMB2Negotiate_Response(packet["Data"])
        assert response["DialectRevision"] == expected
        assert response["ServerGuid"] == server.guid
        assert response["NegotiateContextCount"] == (2 if expected == 0x0311 else 0)
        token = packet.getData()[response["SecurityBufferOffset"]:][
            : response["SecurityBufferLength"]]
        assert token.startswith(b"\x60") and b"\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a" in token


def test_smb1_only_client_gets_what_nmap_fingerprints_as_windows() -> None:
    config = {**CONFIG, "workgroup": "SALES", "hostname": "SALES-PC"}
    reply = smb.handle_message(config, smb.Server(), smb.Session(), NMAP_PROBE)
    match = NMAP_WIN7_10.match(reply.payloads[0])
    assert match is not None
    assert match.group(1).decode("utf-16-le") == "SALES"
    assert match.group(2).decode("utf-16-le").rstrip("\0") == "SALES-PC"
    off = smb.handle_message({**CONFIG, "smb1": False}, smb.Server(), smb.Session(), NMAP_PROBE)
    assert off.close and not off.payloads


def test_ntlmssp_session_setup_challenges_then_fails_the_login_and_keeps_the_response() -> None:
    session = smb.Session()
    negotiate = client.getNTLMSSPType1("", "", True, use_ntlmv2=True)
    first = smb.handle_message(CONFIG, smb.Server(), session, _session_setup(negotiate.getData()))
    packet = s3.SMB2Packet(first.payloads[0])
    assert packet["Status"] == smb.STATUS_MORE_PROCESSING_REQUIRED
    assert packet["SessionID"] == session.session_id
    chal = first.payloads[0][first.payloads[0].find(b"NTLMSSP\x00"):]
    assert client.NTLMAuthChallenge(chal)["challenge"] == session.challenge
    authenticate, _ = client.getNTLMSSPType3(negotiate, chal, "eve", "x", "LAB", use_ntlmv2=True)
    second = smb.handle_message(CONFIG, smb.Server(), session,
                                _session_setup(authenticate.getData(), 3))
    assert s3.SMB2Packet(second.payloads[0])["Status"] == smb.STATUS_LOGON_FAILURE
    assert second.auth is not None and second.auth.username == "eve"


def test_non_smb_bytes_close_the_connection() -> None:
    reply = smb.handle_message(CONFIG, smb.Server(), smb.Session(), b"GET / HTTP/1.1\r\n\r\n")
    assert reply.close and not reply.payloads
    assert smb.frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert struct.unpack(">I", smb.frame(b"x" * 70000)[:4])[0] == 70000


def test_native_os_follows_the_windows_build_unless_configured() -> None:
    assert smb.native_os({**CONFIG, "osVersion": "10.0.17763"}) == (
        "Windows Server 2019 Standard 17763", "Windows Server 2019 Standard 6.3")
    assert smb.native_os({**CONFIG, "osVersion": "10.0.19045"})[0] == "Windows 10 Pro 19045"
    assert smb.native_os({**CONFIG, "osVersion": "6.1.7601"})[0] == \
        "Windows Server 2008 R2 Standard 7601 Service Pack 1"
    assert smb.native_os({**CONFIG, "nativeOs": "X", "nativeLanMan": "Y"}) == ("X", "Y")


def test_srvsvc_bind_and_share_enum_are_what_impacket_decodes() -> None:
    from impacket.dcerpc.v5 import rpcrt, srvs
    from impacket.uuid import uuidtup_to_bin

    from decnet.emulators import srvsvc

    bind = rpcrt.MSRPCBind()
    item = rpcrt.CtxItem()
    item["AbstractSyntax"] = srvs.MSRPC_UUID_SRVS
    item["TransferSyntax"] = uuidtup_to_bin(("8a885d04-1ceb-11c9-9fe8-08002b104860", "2.0"))
    item["ContextID"] = 0
    item["TransItems"] = 1
    bind.addCtxItem(item)
    packet = rpcrt.MSRPCHeader()
    packet["type"] = rpcrt.MSRPC_BIND
    packet["pduData"] = bind.getData()
    packet["call_id"] = 7
    ack = rpcrt.MSRPCBindAck(srvsvc.respond(packet.getData(), ["Finance"]))
    assert ack["call_id"] == 7 and ack["ctx_num"] == 1
    assert rpcrt.CtxItemResult(ack["ctx_items"])["Result"] == 0  # acceptance

    request = srvs.NetrShareEnum()  # opnum 15, Samba's NetShareEnumAll
    request["ServerName"] = "\x00"
    request["ResumeHandle"] = 0
    request["InfoStruct"]["Level"] = 1
    request["InfoStruct"]["ShareInfo"]["tag"] = 1
    request["InfoStruct"]["ShareInfo"]["Level1"]["Buffer"] = srvs.NULL
    request["PreferedMaximumLength"] = 0xFFFFFFFF
    call = rpcrt.MSRPCRequestHeader()
    call["op_num"] = srvsvc.SHARE_ENUM_ALL
    call["pduData"] = request.getData()
    call["call_id"] = 8
    response = rpcrt.MSRPCRespHeader(srvsvc.respond(call.getData(), ["ADMIN$", "Finance", "IPC$"]))
    shares = srvs.NetrShareEnumResponse(response["pduData"])
    entries = shares["InfoStruct"]["ShareInfo"]["Level1"]["Buffer"]
    assert [(e["shi1_netname"][:-1], e["shi1_type"], e["shi1_remark"][:-1]) for e in entries] == [
        ("ADMIN$", 0x80000000, "Remote Admin"), ("Finance", 0, ""), ("IPC$", 0x80000003,
                                                                      "Remote IPC")]
    assert shares["ErrorCode"] == 0 and shares["TotalEntries"] == 3
