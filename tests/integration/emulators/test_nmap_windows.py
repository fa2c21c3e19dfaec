"""What nmap -sV (and its NSE scripts) says about the Windows-family emulators on loopback."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from tests import emulator_harness as h
from tests import probes
from tests.support import require

probes.load_all()
SERVICES = ["smb", "rdp", "vnc", "ldap"]


def nmap(port: int, *args: str, udp: bool = False) -> str:
    require(shutil.which("nmap") is not None, "nmap is not installed")
    argv = ["nmap", "-Pn", "-n", "-sV", "-p", str(port), *args, "127.0.0.1"]
    if udp:
        argv.insert(1, "-sU")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def port_line(out: str, port: int) -> str:
    return next((line for line in out.splitlines() if line.startswith(f"{port}/")), out)


@pytest.mark.parametrize("service", SERVICES)
def test_nmap_names_the_product(service: str) -> None:
    well_known, _proto, word = probes.NMAP[service]
    with h.run(service) as emu:
        line = port_line(nmap(emu.port(well_known)), emu.port(well_known))
        assert word.lower() in line.lower(), line


def test_smb_fingerprint_carries_the_configured_workgroup_and_host() -> None:
    with h.run("smb", {"workgroup": "ACCOUNTING", "hostname": "ACC-FS1"}) as emu:
        out = nmap(emu.port(445), "--script", "+smb2-time,+smb2-security-mode",
                   "--script-args", f"smbport={emu.port(445)}")
        line = port_line(out, emu.port(445))
        assert "Microsoft Windows" in line and "workgroup: ACCOUNTING" in line, out
        assert "Host: ACC-FS1" in out
        assert "smb2-time" in out and "Message signing enabled but not required" in out


def test_rdp_ntlm_info_shows_the_configured_windows_host() -> None:
    config = {"hostname": "TS-07", "dnsDomain": "corp.example", "osVersion": "10.0.20348"}
    with h.run("rdp", config) as emu:
        out = nmap(emu.port(3389), "--script", "rdp-ntlm-info")
        assert "Microsoft Terminal Services" in port_line(out, emu.port(3389))
        assert "NetBIOS_Computer_Name: TS-07" in out
        assert "DNS_Domain_Name: corp.example" in out
        assert "Product_Version: 10.0.20348" in out


def test_vnc_info_lists_vnc_authentication() -> None:
    with h.run("vnc", {"version": "3.7"}) as emu:
        out = nmap(emu.port(5900), "--script", "vnc-info")
        assert "VNC (protocol 3.7)" in port_line(out, emu.port(5900))
        assert "VNC Authentication (2)" in out


def test_ldap_fingerprint_names_the_domain_and_site() -> None:
    with h.run("ldap", {"domain": "north.example", "site": "HQ"}) as emu:
        out = nmap(emu.port(389))
        line = port_line(out, emu.port(389))
        assert "Microsoft Windows Active Directory LDAP" in line
        assert "Domain: north.example, Site: HQ" in line
