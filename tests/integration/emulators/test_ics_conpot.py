"""The industrial controller as pymodbus, an S7 client and snmpget see it."""

from __future__ import annotations

import socket
import struct
import subprocess

from tests import emulator_harness as h
from tests.integration.emulators import test_ics_snmp

# What an S7 client (nmap's s7-info, snap7, plcscan) sends, byte for byte.
COTP_CR = bytes.fromhex("0300001611e00000001400c1020100c2020102c0010a")
SETUP = bytes.fromhex("0300001902f08032010000000000080000f0000001000101e0")
SZL = "0300002102f080320700000000000800080001120411440100ff090004{:04x}0001"


def _recv_tpkt(s: socket.socket) -> bytes:
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    size = struct.unpack(">H", head[2:])[0]
    body = b""
    while len(body) < size - 4:
        chunk = s.recv(size - 4 - len(body))
        assert chunk
        body += chunk
    return head + body


def _cstr(raw: bytes) -> str:
    return raw.split(b"\x00")[0].decode()


def test_modbus_reads_writes_and_identification_follow_the_config() -> None:
    from pymodbus.client import ModbusTcpClient

    config = {"holdingRegisters": [11, 22, 33, 44], "coils": [1, 0, 1], "vendor": "Schneider Electric",
              "productCode": "BMX P34 2020", "revision": "v2.8"}
    with h.run("conpot", config) as emu:
        client = ModbusTcpClient("127.0.0.1", port=emu.port(502), timeout=10)
        assert client.connect()
        try:
            assert client.read_holding_registers(0, count=4).registers == [11, 22, 33, 44]
            assert client.read_coils(0, count=3).bits[:3] == [True, False, True]
            assert not client.write_registers(1, [500, 600]).isError()
            assert client.read_holding_registers(0, count=4).registers == [11, 500, 600, 44]
            assert not client.write_coil(1, True).isError()
            refused = client.read_holding_registers(3, count=10)
            assert refused.isError() and refused.exception_code == 2  # illegal data address
            info = client.read_device_information().information
            assert info == {0: b"Schneider Electric", 1: b"BMX P34 2020", 2: b"v2.8"}
        finally:
            client.close()
        write = emu.wait_event("command", command="write_multiple_registers")
        assert write.get("address") == "1" and write.get("values") == "500,600"
        assert write.get("function") == "16" and write.dst_port == 502
        emu.wait_event("command", command="write_single_coil", address="1", values="1")
        emu.wait_event("request", command="read_device_identification")


def test_s7_module_and_component_identification_come_from_the_config() -> None:
    config = {"serialNumber": "S C-X4U421302009", "systemName": "Pump Station 4",
              "plantId": "WTP-NORTH", "productCode": "6ES7 151-8AB01-0AB0", "revision": "V3.2.8"}
    with h.run("conpot", config) as emu:
        with socket.create_connection(("127.0.0.1", emu.port(102)), timeout=10) as s:
            s.sendall(COTP_CR)
            assert _recv_tpkt(s)[5] == 0xD0  # connection confirm
            s.sendall(SETUP)
            setup = _recv_tpkt(s)
            assert setup[7] == 0x32 and setup[8] == 3
            assert struct.unpack(">H", setup[-2:])[0] == 240  # negotiated PDU size
            s.sendall(bytes.fromhex(SZL.format(0x0011)))
            module = _recv_tpkt(s)
            assert _cstr(module[43:63]) == "6ES7 151-8AB01-0AB0"
            assert tuple(module[122:125]) == (3, 2, 8)
            s.sendall(bytes.fromhex(SZL.format(0x001C)))
            component = _recv_tpkt(s)
            assert _cstr(component[43:75]) == "Pump Station 4"
            assert _cstr(component[111:143]) == "WTP-NORTH"
            assert _cstr(component[179:211]) == "S C-X4U421302009"
        emu.wait_event("request", command="read szl 0x001c", dst_port="102")


def test_snmp_on_the_controller_describes_the_plc() -> None:
    with h.run("conpot", {"sysDescr": "Siemens, SIMATIC, S7-1200"}) as emu:
        test_ics_snmp.ready(emu)
        done = subprocess.run(["snmpget", "-t", "2", "-r", "1", "-v2c", "-c", "public",
                               f"127.0.0.1:{emu.port(161)}", "1.3.6.1.2.1.1.1.0"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert '"Siemens, SIMATIC, S7-1200"' in done.stdout, done.stderr
        emu.wait_event("auth", password="public", dst_port="161")


def test_with_snmp_off_conpot_leaves_161_udp_to_the_snmp_service() -> None:
    """The agent sets snmp: false when a decky also runs the snmp service (one UDP port)."""
    import socket as _socket

    with h.run("conpot", {"snmp": False}) as emu:
        with _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", emu.port(161)))  # fails with EADDRINUSE if conpot held it
        assert emu.alive()
