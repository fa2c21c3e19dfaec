"""SNMP PDUs as net-snmp's tools encode them, answered from the configured MIB."""

from __future__ import annotations

from typing import Any

from decnet.emulators import ber
from decnet.emulators.services import snmp

CONFIG: dict[str, Any] = {**snmp.DEFAULTS, "sysName": "core-sw1", "interfaces": ["lo", "eth0"]}
SYS = (1, 3, 6, 1, 2, 1, 1)


def _request(pdu: int, oids: list[tuple[int, ...]], version: int = 1, community: bytes = b"public",
             a: int = 0, b: int = 0) -> bytes:
    binds = ber.seq([ber.seq([ber.oid(o), ber.null()]) for o in oids])
    body = ber.seq([ber.integer(77), ber.integer(a), ber.integer(b), binds], tag=pdu)
    return ber.seq([ber.integer(version), ber.octets(community), body])


def _answer(data: bytes) -> tuple[int, int, list[tuple[tuple[int, ...], ber.Tlv]]]:
    req = snmp.parse(data)
    assert req is not None
    reply = ber.decode(snmp.respond(snmp.build_mib(CONFIG, 4200), req)).children()
    pdu = reply[2]
    assert pdu.tag == snmp.RESPONSE
    request_id, status, index, binds = pdu.children()
    assert request_id.as_int() == 77
    out = [(ber.decode_oid(b.children()[0].value), b.children()[1]) for b in binds.children()]
    return status.as_int(), index.as_int(), out


def test_get_answers_the_configured_system_group() -> None:
    status, _, binds = _answer(_request(snmp.GET, [SYS + (5, 0), SYS + (3, 0), SYS + (2, 0)]))
    assert status == snmp.NO_ERROR
    assert binds[0][1].value == b"core-sw1"
    assert binds[1][1].tag == snmp.TIMETICKS and int.from_bytes(binds[1][1].value, "big") == 4200
    assert ber.decode_oid(binds[2][1].value) == (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10)


def test_missing_objects_follow_v1_and_v2c_rules() -> None:
    status, index, _ = _answer(_request(snmp.GET, [SYS + (5, 0), SYS + (99, 0)], version=0))
    assert (status, index) == (snmp.NO_SUCH_NAME, 2)
    _, _, binds = _answer(_request(snmp.GET, [SYS + (99, 0), SYS + (5, 1)]))
    assert [b[1].tag for b in binds] == [snmp.NO_SUCH_OBJECT, snmp.NO_SUCH_INSTANCE]
    _, _, binds = _answer(_request(snmp.GETNEXT, [(1, 3, 6, 1, 9)]))
    assert binds[0][1].tag == snmp.END_OF_MIB


def test_walk_order_and_getbulk_repetitions() -> None:
    _, _, binds = _answer(_request(snmp.GETNEXT, [(1, 3, 6, 1, 2, 1)]))
    assert binds[0][0] == SYS + (1, 0)
    _, _, binds = _answer(_request(snmp.GETBULK, [SYS + (7, 0)], a=0, b=3))
    assert [o for o, _ in binds] == [(1, 3, 6, 1, 2, 1, 2, 1, 0), (1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 1),
                                     (1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 2)]
    _, _, binds = _answer(_request(snmp.GETBULK, [(1, 3, 6)], a=0, b=10_000))
    assert len(binds) <= snmp.MAX_REPETITIONS


def test_set_is_refused() -> None:
    assert _answer(_request(snmp.SET, [SYS + (5, 0)]))[0] == snmp.NO_ACCESS
    assert _answer(_request(snmp.SET, [SYS + (5, 0)], version=0))[0] == snmp.READ_ONLY


def test_v3_discovery_report_carries_the_vendor_engine_id() -> None:
    discovery = bytes.fromhex("303a020103300f02024a69020300ffe30401040201030410300e04000201000201"
                              "00040004000400301204000400a00c020237f00201000201003000")  # nmap's
    req = snmp.parse_v3(discovery)
    assert req is not None and req.engine_id == b""
    report = ber.decode(snmp.report_v3({**CONFIG, "sysObjectID": "1.3.6.1.4.1.9.1.1"}, req, 1, 5,
                                       1))
    version, header, usm, scoped = report.children()
    assert version.as_int() == 3 and header.children()[0].as_int() == 0x4A69
    engine = ber.decode(usm.value).children()[0].value
    assert engine.startswith(b"\x80\x00\x00\x09")  # enterprise 9 = Cisco
    varbind = scoped.children()[2].children()[3].children()[0].children()
    assert ber.decode_oid(varbind[0].value) == snmp.USM_UNKNOWN_ENGINE_IDS


def test_garbage_and_v3_are_not_v1_requests() -> None:
    assert snmp.parse(b"\x30\x03\x02\x01\x03") is None
    assert snmp.parse(b"\xff" * 40) is None
    assert snmp.parse_v3(b"\x30\x80") is None
