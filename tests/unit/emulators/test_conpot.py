"""Modbus and S7comm answers, as pymodbus and nmap's s7-info / fingerprints read them."""

from __future__ import annotations

import re
import struct
from typing import Any

from decnet.emulators.services import conpot

CONFIG: dict[str, Any] = dict(conpot.DEFAULTS)
NMAP_MODBUS_GET = re.compile(rb"^GET [\0/]\x03H\xd4[\x01-\x03]")  # nmap-service-probes


def _regs() -> conpot.Registers:
    return conpot.Registers.from_config(CONFIG)


def test_reads_answer_from_the_register_map() -> None:
    regs = _regs()
    assert conpot.modbus(CONFIG, regs, b"\x03\x00\x01\x00\x02").pdu == \
        b"\x03\x04" + struct.pack(">HH", *CONFIG["holdingRegisters"][1:3])
    assert conpot.modbus(CONFIG, regs, b"\x01\x00\x00\x00\x04").pdu == b"\x01\x01\x0d"
    assert conpot.modbus(CONFIG, regs, b"\x04\x00\x00\x00\x01").pdu == b"\x04\x02\x00\xd7"


def test_writes_change_the_map_and_are_reported() -> None:
    regs = _regs()
    out = conpot.modbus(CONFIG, regs, b"\x10\x00\x02\x00\x02\x04\x01\x00\x02\x00")
    assert out.pdu == b"\x10\x00\x02\x00\x02" and out.write == ("write_multiple_registers", 2,
                                                                 [256, 512])
    assert regs.holding[2:4] == [256, 512]
    coil = conpot.modbus(CONFIG, regs, b"\x05\x00\x01\xff\x00")
    assert coil.pdu == b"\x05\x00\x01\xff\x00" and regs.coils[1] == 1
    assert conpot.modbus(CONFIG, regs, b"\x05\x00\x01\x12\x34").pdu == b"\x85\x03"


def test_exceptions_for_bad_addresses_counts_and_functions() -> None:
    regs = _regs()
    assert conpot.modbus(CONFIG, regs, b"\x03\x00\x08\x00\x10").pdu == b"\x83\x02"
    assert conpot.modbus(CONFIG, regs, b"\x03\x00\x00\x00\x00").pdu == b"\x83\x03"
    assert conpot.modbus(CONFIG, regs, b"\x03\x00\x00\x00\x7e").pdu == b"\x83\x03"  # > 125
    assert conpot.modbus(CONFIG, regs, b"\x08\x00\x00").pdu == b"\x88\x01"
    out = conpot.modbus(CONFIG, regs, b"\x06\x27\x10\x00\x01")
    assert out.pdu == b"\x86\x02" and out.write is not None  # the attempt is still reported
    size = len(regs.holding)
    conpot.modbus(CONFIG, regs, b"\x10\x00\x00\x00\x7b\xf6" + b"\x00" * 246)
    assert len(regs.holding) == size  # writes never grow the tables


def test_device_identification_and_server_id_from_config() -> None:
    config = {**CONFIG, "vendor": "ACME", "productCode": "PLC-9", "revision": "1.2"}
    pdu = conpot.modbus(config, _regs(), b"\x2b\x0e\x01\x00").pdu
    assert pdu[:7] == b"\x2b\x0e\x01\x01\x00\x00\x03"
    assert pdu[7:] == b"\x00\x04ACME\x01\x05PLC-9\x02\x031.2"
    assert conpot.modbus(config, _regs(), b"\x2b\x0e\x04\x01").pdu.endswith(b"\x01\x05PLC-9")
    assert b"ACME" in conpot.modbus(config, _regs(), b"\x11").pdu


def test_text_probes_are_echoed_as_a_plc_does_for_nmap() -> None:
    probe = b"GET / HTTP/1.0\r\n\r\n"
    head = conpot.mbap(probe[:7])
    answer = conpot.frame(head, conpot.modbus(CONFIG, _regs(), probe[7:8]).pdu)
    assert NMAP_MODBUS_GET.match(answer)


def test_s7_answers_what_s7_info_reads() -> None:
    cr = bytes.fromhex("0300001611e00000001400c1020100c2020102c0010a")
    cc = conpot.cotp_confirm(cr)
    assert cc[5] == 0xD0 and cc[6:8] == b"\x00\x14" and b"\xc1\x02\x01\x00" in cc
    setup, _ = conpot.s7(CONFIG, bytes.fromhex("32010000000000080000f0000001000101e0"))
    assert setup is not None and setup[1] == 3 and setup[-2:] == b"\x00\xf0"  # 240, as a 300
    for szl, checks in ((0x0011, {43: CONFIG["productCode"]}),
                        (0x001C, {43: CONFIG["systemName"], 77: CONFIG["moduleName"],
                                  179: CONFIG["serialNumber"]})):
        req = bytes.fromhex(f"320700000000000800080001120411440100ff090004{szl:04x}0001")
        answer, name = conpot.s7(CONFIG, req)
        assert answer is not None and name == f"read szl {szl:#06x}"
        full = conpot.tpkt(b"\x02\xf0\x80" + answer)
        for offset, text in checks.items():
            assert full[offset:].split(b"\x00")[0].decode() == text.rstrip()
    unknown, _ = conpot.s7(CONFIG, bytes.fromhex("320700000000000800080001120411440100ff0900040999"
                                                 "0001"))
    assert unknown is not None and unknown.endswith(b"\x0a\x00\x00\x00")
