"""Hostile clients against the Windows-family emulators: they keep serving, memory stays bounded.

Per service: binary garbage, length fields announcing huge messages, nested
BER, slowloris connections trickling bytes, and (for SMB, the one a worm would
hammer) 1,000 parallel connections; afterwards the real client of tests/probes
still completes its exchange and the process RSS has not run away.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from tests import emulator_harness as h
from tests import probes

probes.load_all()
RSS_LIMIT_KIB = 96 * 1024

HOSTILE: dict[str, tuple[int, list[bytes]]] = {
    "smb": (445, [
        b"\x00\xff\xff\xff" + b"A" * 4096,  # NetBIOS length 16 MiB, never sent
        b"\x00\x00\x00\x40\xfeSMB" + b"\xff" * 60,  # SMB2 header of garbage
        b"\x00\x00\x00\x23\xffSMBr" + b"\x00" * 27,  # SMB1 negotiate with no dialects
        b"\x00\x00\x01\x00\xfeSMB" + b"\x40\x00" + b"\x00" * 10 + b"\x01\x00" + b"\x00" * 48
        + b"\x19\x00" + b"\x00" * 10 + b"\xff\xff\xff\xff" + b"\x00" * 178,  # setup, bad offsets
    ]),
    "ldap": (389, [
        b"\x30\x84\xff\xff\xff\xff" + b"\x00" * 100,  # 4 GiB message
        b"\x30\x89" + b"\xff" * 9,  # length of length 9
        b"\x30\x80" + b"\x30\x80" * 1000,  # indefinite lengths, nested
        bytes.fromhex("3082012c020101") + b"\x63\x82\x01\x25" + b"\x04\x00\x0a\x01\x00\x0a\x01\x00"
        + b"\x02\x01\x00\x02\x01\x00\x01\x01\x00" + b"\xa0\x82\x01\x08" + b"\xa0\x02" * 132,
    ]),
    "rdp": (3389, [
        b"\x03\x00\xff\xff" + b"\xe0" * 200,  # TPKT of 64 KiB, never sent
        b"\x03\x00\x00\x0b\x06\xe0\x00\x00\x00\x00\x00",  # bare CR, then silence
        b"\x16\x03\x01\x02\x00" + os.urandom(512),  # TLS where X.224 belongs
    ]),
    "vnc": (5900, [
        b"RFB 003.008\n\x02" + os.urandom(16) + os.urandom(4096),
        b"RFB 999.999\n",
        os.urandom(8192),
    ]),
}


def _send(port: int, payload: bytes, wait: float = 2.0) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(payload)
            s.settimeout(wait)
            while s.recv(65536):
                pass
        except (TimeoutError, ConnectionError):
            pass


@pytest.fixture
def slowloris() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for s in held:
        s.close()


def _trickle(port: int, count: int, held: list[socket.socket], seconds: float) -> None:
    for _ in range(count):
        held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for s in held:
            try:
                s.send(b"\x00")
            except OSError:
                pass
        time.sleep(0.5)


def drained(emu: h.Emulator, timeout: float = 60) -> None:
    """Wait until every connection the service accepted has been closed on its side too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(emu.find("disconnect")) >= len(emu.find("connect")):
            return
        time.sleep(0.2)
    raise AssertionError("connections were not closed")


def _still_serves(service: str, emu: h.Emulator) -> None:
    for expect in probes.PROBES[service]("127.0.0.1", emu.port):
        emu.wait_event(expect.kind, timeout=30, **expect.fields)
    assert emu.alive()
    assert emu.rss_kib() < RSS_LIMIT_KIB, emu.rss_kib()


@pytest.mark.parametrize("service", sorted(HOSTILE))
def test_garbage_oversized_and_slowloris_leave_it_serving(
        service: str, slowloris: list[socket.socket]) -> None:
    port, payloads = HOSTILE[service]
    with h.run(service) as emu:
        for payload in payloads:
            _send(emu.port(port), payload)
        for _ in range(20):
            _send(emu.port(port), os.urandom(2048), wait=0.2)
        trickle = threading.Thread(target=_trickle, args=(emu.port(port), 100, slowloris, 4))
        trickle.start()
        time.sleep(1)
        _still_serves(service, emu)  # while the slow clients hold their connections
        trickle.join()


def open_many(port: int, count: int) -> list[socket.socket]:
    opened: list[socket.socket] = []
    for _ in range(count):
        s = socket.socket()
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        opened.append(s)
    return opened


def test_a_thousand_parallel_smb_connections_leave_it_serving_with_bounded_memory() -> None:
    with h.run("smb") as emu:
        before = emu.rss_kib()
        conns = open_many(emu.port(445), 1000)
        try:
            assert len(conns) >= 900
            for s in conns[:1000:10]:
                try:
                    s.sendall(b"\x00\x00\x00\x10" + os.urandom(8))
                except OSError:
                    pass
            peak = emu.rss_kib()
        finally:
            for s in conns:
                s.close()
        drained(emu)
        _still_serves("smb", emu)
        assert peak - before < 48 * 1024, (before, peak)
