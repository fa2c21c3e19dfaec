"""SNMP and industrial-control probes: net-snmp's snmpget and pymodbus."""

from __future__ import annotations

import subprocess

from tests.probes import NMAP, Expect, Port, probe

NMAP["snmp"] = (161, "udp", "SNMP")
NMAP["conpot"] = (502, "tcp", "Modbus")
SYS_DESCR = "1.3.6.1.2.1.1.1.0"


@probe("snmp")
def snmp(host: str, port: Port) -> list[Expect]:
    done = subprocess.run(
        ["snmpget", "-v2c", "-c", "public", "-t", "5", "-r", "2", f"{host}:{port(161)}",
         SYS_DESCR, "1.3.6.1.2.1.1.5.0"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0 and "STRING" in done.stdout, done.stdout + done.stderr
    return [
        Expect("auth", {"password": "public", "success": "true", "proto": "udp"}),
        Expect("query", {"command": "get", "query": f"{SYS_DESCR},1.3.6.1.2.1.1.5.0"}),
    ]


@probe("conpot")
def conpot(host: str, port: Port) -> list[Expect]:
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient(host, port=port(502), timeout=10)
    assert client.connect()
    try:
        read = client.read_holding_registers(0, count=4)
        assert not read.isError() and len(read.registers) == 4
        write = client.write_register(3, 999)
        assert not write.isError()
        ident = client.read_device_information()
        assert not ident.isError() and ident.information.get(0)
    finally:
        client.close()
    return [
        Expect("request", {"command": "read_holding_registers", "address": "0"}),
        Expect("command", {"command": "write_single_register", "address": "3", "values": "999"}),
    ]
