"""Hostile input against the database and API emulators: they keep serving, memory bounded.

Per service: an oversized line, binary garbage, slowloris connections trickling
bytes while a real client (the service's probe) does its exchange, then 1,000
parallel connections; afterwards the real client still gets through and the
process's RSS stays under a fixed bound.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest
from tests import emulator_harness as h
from tests import probes

SERVICES = ["https", "docker-api", "k8s", "elasticsearch", "mysql", "postgres", "redis",
            "mongodb", "mssql"]
RSS_LIMIT_KIB = 120 * 1024
PARALLEL = 1000


def _blast(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(payload)
            s.settimeout(1)
            s.recv(65536)
        except (TimeoutError, ConnectionError, OSError):
            pass


def _slowloris(port: int, stop: threading.Event, sockets: int = 40) -> None:
    conns = []
    for _ in range(sockets):
        try:
            conns.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    for i, c in enumerate(conns):  # half of them start like a TLS hello, then stall
        if i % 2:
            try:
                c.send(b"\x16\x03\x01\x02\x00\x01")
            except OSError:
                pass
    while not stop.is_set():
        for c in conns:
            try:
                c.send(b"\x01")
            except OSError:
                pass
        time.sleep(0.5)
    for c in conns:
        c.close()


async def _parallel(port: int, n: int) -> int:
    async def one(i: int) -> bool:
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 30)
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(os.urandom(64) if i % 2 else b"*1\r\n$4\r\nPING\r\n")
            await asyncio.wait_for(writer.drain(), 10)
            await asyncio.sleep(1)
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()
        return True

    results = await asyncio.gather(*(one(i) for i in range(n)))
    return sum(results)


@pytest.mark.parametrize("service", SERVICES)
def test_hostile_clients_leave_it_serving_and_bounded(service: str) -> None:
    probe = probes.load_all()[service]
    with h.run(service) as emu:
        well_known = h.main.module(service).PORTS[0][0]
        port = emu.port(well_known)
        _blast(port, b"A" * 1_000_000)
        _blast(port, b"\x00\xff" * 200_000 + b"\r\n")
        for _ in range(20):
            _blast(port, os.urandom(4096))
            _blast(port, b"\x16\x03\x01\x00\x40" + os.urandom(64))  # a broken TLS hello
        stop = threading.Event()
        loris = threading.Thread(target=_slowloris, args=(port, stop), daemon=True)
        loris.start()
        try:
            time.sleep(1)
            for expect in probe("127.0.0.1", emu.port):  # a real client during slowloris
                emu.wait_event(expect.kind, timeout=30, **expect.fields)
        finally:
            stop.set()
            loris.join(10)
        opened = asyncio.run(_parallel(port, PARALLEL))
        assert opened >= PARALLEL * 0.9
        assert emu.alive()
        for expect in probe("127.0.0.1", emu.port):
            emu.wait_event(expect.kind, timeout=30, **expect.fields)
        rss = emu.rss_kib()
        print(f"{service}: rss after hostile run {rss} KiB")
        assert rss < RSS_LIMIT_KIB, rss
