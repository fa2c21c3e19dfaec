"""SNMP as net-snmp's command-line tools see it, and what the security team gets."""

from __future__ import annotations

import socket
import subprocess
import time

from tests import emulator_harness as h

SYSTEM = "1.3.6.1.2.1.1"


def ready(emu: h.Emulator, port: int = 161, timeout: float = 15) -> None:
    """Wait until the agent reads datagrams (the harness only waits for TCP ports)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while time.monotonic() < deadline:
            s.sendto(b"\x00", ("127.0.0.1", emu.port(port)))
            if emu.find("data", size="1"):
                return
            time.sleep(0.1)
    raise AssertionError("the agent did not read a datagram")


def _snmp(tool: str, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool, "-t", "2", "-r", "1", "-On", *args[:-1], f"127.0.0.1:{port}",
                           *args[-1:]], capture_output=True, text=True, timeout=60, check=False)


def test_walk_of_the_system_group_shows_the_configured_device() -> None:
    config = {"sysDescr": "HP ETHERNET MULTI-ENVIRONMENT", "sysName": "PRN-3F-01",
              "sysLocation": "3rd floor copy room", "community": "printer"}
    with h.run("snmp", config) as emu:
        ready(emu)
        done = _snmp("snmpwalk", emu.port(161), "-v2c", "-c", "printer", SYSTEM)
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert f'{SYSTEM}.1.0 = STRING: "HP ETHERNET MULTI-ENVIRONMENT"' in out
        assert f'{SYSTEM}.5.0 = STRING: "PRN-3F-01"' in out
        assert f'{SYSTEM}.6.0 = STRING: "3rd floor copy room"' in out
        assert f"{SYSTEM}.3.0 = Timeticks:" in out
        event = emu.wait_event("auth", password="printer")
        assert event.get("success") == "true" and event.proto == "udp"
        emu.wait_event("query", command="getnext", version="2c")


def test_wrong_community_gets_no_answer_but_is_captured() -> None:
    with h.run("snmp") as emu:
        ready(emu)
        done = _snmp("snmpget", emu.port(161), "-v1", "-c", "private", f"{SYSTEM}.5.0")
        assert done.returncode != 0 and "Timeout" in done.stderr
        event = emu.wait_event("auth", password="private")
        assert event.get("success") == "false" and event.get("version") == "1"


def test_bulk_walk_lists_the_configured_interfaces() -> None:
    with h.run("snmp", {"interfaces": ["lo", "ens192", "ens224"]}) as emu:
        ready(emu)
        done = _snmp("snmpbulkwalk", emu.port(161), "-v2c", "-c", "public",
                     "1.3.6.1.2.1.2.2.1.2")
        assert done.returncode == 0, done.stderr
        assert [line.split('"')[1] for line in done.stdout.splitlines()] == [
            "lo", "ens192", "ens224"]
        emu.wait_event("query", command="getbulk")
        count = _snmp("snmpget", emu.port(161), "-v2c", "-c", "public", "1.3.6.1.2.1.2.1.0")
        assert "INTEGER: 3" in count.stdout


def test_set_is_refused_and_reported_as_a_command() -> None:
    with h.run("snmp") as emu:
        ready(emu)
        done = subprocess.run(["snmpset", "-t", "2", "-r", "1", "-v2c", "-c", "public",
                               f"127.0.0.1:{emu.port(161)}", f"{SYSTEM}.5.0", "s", "pwned"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert "noAccess" in done.stderr + done.stdout
        emu.wait_event("command", command="set", query=f"{SYSTEM}.5.0")


def test_v3_discovery_is_answered_and_an_unknown_user_reported() -> None:
    with h.run("snmp") as emu:
        ready(emu)
        done = subprocess.run(["snmpget", "-t", "2", "-r", "0", "-v3", "-l", "authNoPriv", "-u",
                               "netadmin", "-a", "SHA", "-A", "Secret123!",
                               f"127.0.0.1:{emu.port(161)}", f"{SYSTEM}.5.0"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert "Unknown user name" in done.stderr, done.stderr
        emu.wait_event("query", version="3", username="netadmin")
