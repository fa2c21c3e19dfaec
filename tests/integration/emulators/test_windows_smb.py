"""SMB as smbclient, impacket and a NetBIOS client see it, and what the security team gets."""

from __future__ import annotations

import socket
import subprocess

from tests import emulator_harness as h
from tests.probes import windows


def _smbclient(port: int, user: str, *extra: str) -> str:
    login = ["-U", user] if user else []
    done = subprocess.run(["smbclient", "-L", "//127.0.0.1", "-p", str(port), *login, *extra],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout + done.stderr


def test_smbclient_login_is_refused_and_its_netntlmv2_hash_cracks_to_the_password() -> None:
    with h.run("smb") as emu:
        out = _smbclient(emu.port(445), "CORP\\alice%Passw0rd!")
        assert "NT_STATUS_LOGON_FAILURE" in out
        event = emu.wait_event("auth", username="alice")
        assert event.get("domain") == "CORP" and event.get("hash_type") == "netntlmv2"
        assert event.get("workstation")  # smbclient sends its host name
        line = event.get("password_hash")
        assert line.startswith("alice::CORP:") and "truncated" not in line
        assert windows.netntlmv2_matches(line, "Passw0rd!")
        assert not windows.netntlmv2_matches(line, "wrong")


def test_host_names_workgroup_and_windows_version_come_from_config() -> None:
    from impacket.smbconnection import SessionError, SMBConnection

    config = {"workgroup": "FINANCE", "hostname": "FS-02", "osVersion": "6.3.9600",
              "dnsDomain": "finance.example"}
    with h.run("smb", config) as emu:
        conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=emu.port(445), timeout=15)
        try:
            conn.login("guest", "")
        except SessionError as error:
            assert error.getErrorCode() == 0xC000006D
        assert conn.getServerName() == "FS-02"
        assert conn.getServerDomain() == "FINANCE"
        assert conn.getServerDNSDomainName() == "finance.example"
        assert "9600" in conn.getServerOS()
        assert conn.getDialect() == 0x0311


def test_max_dialect_caps_what_clients_negotiate() -> None:
    with h.run("smb", {"maxDialect": "2.1"}) as emu:
        out = _smbclient(emu.port(445), "bob%x", "-m", "SMB3")
        assert "NT_STATUS_LOGON_FAILURE" in out
        emu.wait_event("command", command="NEGOTIATE 2.1")


def test_smb1_client_gets_a_windows_answer_and_its_ntlm_response_is_captured() -> None:
    from impacket.smb import SMB_DIALECT
    from impacket.smbconnection import SessionError, SMBConnection

    with h.run("smb") as emu:
        conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=emu.port(445),
                             preferredDialect=SMB_DIALECT, timeout=15)
        assert conn.getDialect() == SMB_DIALECT
        try:
            conn.login("bob", "Summer2025", "CORP")
        except SessionError as error:
            assert error.getErrorCode() == 0xC000006D
        event = emu.wait_event("auth", username="bob")
        assert event.get("hash_type") in ("netntlmv1", "netntlmv2")
        assert event.get("mechanism") == "NTLM (SMB1)"
        emu.wait_event("command", command="NEGOTIATE NT LM 0.12")


def test_smb1_can_be_switched_off() -> None:
    from impacket.smb import SMB_DIALECT
    from impacket.smbconnection import SMBConnection

    with h.run("smb", {"smb1": False}) as emu:
        try:
            SMBConnection("127.0.0.1", "127.0.0.1", sess_port=emu.port(445),
                          preferredDialect=SMB_DIALECT, timeout=10)
        except Exception as error:  # noqa: BLE001 - impacket raises several types for a reset
            assert error is not None
        else:
            raise AssertionError("an SMB1-only client must be refused")
        emu.wait_event("data", command="SMB1 refused")


def test_netbios_session_service_on_139_answers_a_session_request() -> None:
    with h.run("smb") as emu:
        with socket.create_connection(("127.0.0.1", emu.port(139)), timeout=10) as s:
            called = b" " + b"CKFDENECFDEFFCFGEFFCCACACACACACA\x00"  # "*SMBSERVER"
            s.sendall(b"\x81\x00\x00\x44" + called + called)
            assert s.recv(4) == b"\x82\x00\x00\x00"


def test_smb1_null_session_reports_the_configured_native_os() -> None:
    from impacket.smb import SMB_DIALECT
    from impacket.smbconnection import SessionError, SMBConnection

    config = {"nativeOs": "Windows Server 2012 R2 Standard 9600",
              "nativeLanMan": "Windows Server 2012 R2 Standard 6.3"}
    with h.run("smb", config) as emu:
        conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=emu.port(445),
                             preferredDialect=SMB_DIALECT, timeout=15)
        conn.login("", "")
        assert conn.getServerOS() == "Windows Server 2012 R2 Standard 9600"
        try:
            conn.connectTree("C$")
        except SessionError as error:
            assert error.getErrorCode() == 0xC0000022  # access denied
        else:
            raise AssertionError("a null session must not reach a share")
        emu.wait_event("auth", username="anonymous", mechanism="NTLM (SMB1)")


def test_null_session_reaches_ipc_and_configured_shares_deny_it_while_others_do_not_exist() -> None:
    with h.run("smb", {"shares": ["Finance", "IPC$"]}) as emu:
        port = str(emu.port(445))
        denied = subprocess.run(["smbclient", "//127.0.0.1/Finance", "-p", port, "-N", "-c", "ls"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert "NT_STATUS_ACCESS_DENIED" in denied.stdout + denied.stderr
        missing = subprocess.run(["smbclient", "//127.0.0.1/Payroll", "-p", port, "-N", "-c",
                                  "ls"], capture_output=True, text=True, timeout=60, check=False)
        assert "NT_STATUS_BAD_NETWORK_NAME" in missing.stdout + missing.stderr
        emu.wait_event("request", command="TREE_CONNECT", path="\\\\127.0.0.1\\Finance")
        emu.wait_event("auth", username="anonymous")


def test_share_list_of_a_null_session_shows_the_configured_shares() -> None:
    from impacket.smbconnection import SMBConnection

    with h.run("smb", {"shares": ["ADMIN$", "C$", "Finance", "Scans"]}) as emu:
        out = _smbclient(emu.port(445), "", "-N")
        rows = {line.split()[0]: line.split()[1] for line in out.splitlines()
                if line.startswith("\t") and len(line.split()) >= 2}
        assert rows.get("Finance") == "Disk" and rows.get("Scans") == "Disk", out
        assert rows.get("IPC$") == "IPC" and rows.get("ADMIN$") == "Disk"
        conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=emu.port(445), timeout=15)
        conn.login("", "")
        names = [s["shi1_netname"][:-1] for s in conn.listShares()]
        assert names == ["ADMIN$", "C$", "Finance", "Scans", "IPC$"]
        emu.wait_event("request", command="CREATE", path="srvsvc")


def test_without_a_configured_name_the_host_calls_itself_by_its_own_hostname() -> None:
    from impacket.smbconnection import SessionError, SMBConnection

    with h.run("smb") as emu:
        conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=emu.port(445), timeout=15)
        try:
            conn.login("x", "y")
        except SessionError:
            pass
        assert conn.getServerName() == socket.gethostname().split(".")[0].upper()[:15]
