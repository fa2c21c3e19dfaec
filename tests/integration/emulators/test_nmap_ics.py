"""What nmap -sV (and its ICS scripts) says about the SNMP and controller emulators on loopback."""

from __future__ import annotations

import socket

from tests import emulator_harness as h
from tests import probes
from tests.integration.emulators import test_ics_snmp
from tests.integration.emulators.test_nmap_windows import nmap, port_line

probes.load_all()


def test_nmap_names_snmp() -> None:
    port, proto, word = probes.NMAP["snmp"]
    assert proto == "udp"
    with h.run("snmp") as emu:
        test_ics_snmp.ready(emu)
        out = nmap(emu.port(port), "--script", "snmp-sysdescr", udp=True)
        assert word.lower() in port_line(out, emu.port(port)).lower(), out
        assert f"Linux {socket.gethostname()} 5.10" in out  # sysDescr names this host


def test_nmap_names_modbus_and_reads_the_device_identification() -> None:
    port, _proto, word = probes.NMAP["conpot"]
    with h.run("conpot", {"vendor": "Siemens", "productCode": "6ES7 214-1AG40-0XB0"}) as emu:
        out = nmap(emu.port(port), "--script", "+modbus-discover")
        assert word.lower() in port_line(out, emu.port(port)).lower(), out
        assert "Device identification: Siemens 6ES7 214-1AG40-0XB0" in out


def test_nmap_s7_info_sees_a_siemens_plc() -> None:
    with h.run("conpot", {"serialNumber": "S C-J7TS12345678"}) as emu:
        out = nmap(emu.port(102), "--script", "+s7-info")
        assert "Siemens S7 PLC" in port_line(out, emu.port(102)), out
        assert "Serial Number: S C-J7TS12345678" in out
        assert "Module Type: CPU 315-2 PN/DP" in out
