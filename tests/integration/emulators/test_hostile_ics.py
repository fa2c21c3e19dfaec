"""Hostile clients against SNMP and the controller: garbage, floods, oversized frames, 1,000 sockets."""

from __future__ import annotations

import os
import socket
import threading

from tests import emulator_harness as h
from tests.integration.emulators import test_ics_snmp
from tests.integration.emulators.test_hostile_windows import (
    RSS_LIMIT_KIB,
    _send,
    _still_serves,
    _trickle,
    drained,
    open_many,
    slowloris,  # noqa: F401 - the fixture
)

BER_BOMBS = [
    b"\x30\x84\xff\xff\xff\xff",
    b"\x30\x80" * 2000,
    b"\x30\x82\xff\xf0" + b"\x02\x01\x01" * 20,
    bytes.fromhex("302802010104067075626c6963a51b020400000001020100020300ffff300b300906052b060102010500"),
]


def _flood(port: int, datagrams: list[bytes], repeat: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(repeat):
            for d in datagrams:
                s.sendto(d, ("127.0.0.1", port))


def test_snmp_survives_garbage_floods_and_getbulk_amplification() -> None:
    with h.run("snmp") as emu:
        test_ics_snmp.ready(emu)
        before = emu.rss_kib()
        _flood(emu.port(161), [os.urandom(n) for n in (1, 64, 1400, 65000)] + BER_BOMBS, 500)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # max-repetitions 65535
            s.settimeout(3)
            answer = b""
            for _ in range(10):  # the flood may still fill the socket buffer: UDP drops
                s.sendto(BER_BOMBS[-1], ("127.0.0.1", emu.port(161)))
                try:
                    answer, _ = s.recvfrom(65535)
                    break
                except TimeoutError:
                    continue
            assert 0 < len(answer) < 8192  # answered, bounded: no amplification
        _still_serves("snmp", emu)
        assert emu.rss_kib() - before < 32 * 1024


def test_modbus_and_s7_survive_garbage_oversized_frames_and_slowloris(
        slowloris: list[socket.socket]) -> None:  # noqa: F811 - the fixture
    with h.run("conpot") as emu:
        for payload in (b"\x00\x01\x00\x00\xff\xff\x01" + os.urandom(512),  # MBAP length 65535
                        b"\x00\x01\x00\x00\x00\x01\x01",  # length 1: no function code
                        b"GET / HTTP/1.0\r\n\r\n", os.urandom(4096)):
            _send(emu.port(502), payload)
        for payload in (b"\x03\x00\xff\xff" + os.urandom(100),
                        bytes.fromhex("0300001611e00000001400c1020100c2020102c0010a")
                        + b"\x03\x00\x00\x1f\x02\xf0\x80\x32\x07" + os.urandom(22),
                        os.urandom(4096)):
            _send(emu.port(102), payload)
        trickle = threading.Thread(target=_trickle, args=(emu.port(502), 100, slowloris, 4))
        trickle.start()
        _still_serves("conpot", emu)
        trickle.join()


def test_a_thousand_parallel_modbus_connections_leave_it_serving() -> None:
    with h.run("conpot") as emu:
        conns = open_many(emu.port(502), 1000)
        try:
            assert len(conns) >= 900
            for s in conns[::10]:
                try:
                    s.sendall(b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x00\x00\x01")
                except OSError:
                    pass
        finally:
            for s in conns:
                s.close()
        drained(emu)
        _still_serves("conpot", emu)
        assert emu.rss_kib() < RSS_LIMIT_KIB
