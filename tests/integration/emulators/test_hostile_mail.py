"""Hostile input per family (mail, messaging, names): the emulator keeps serving, memory bounded.

Oversized lines and packets, binary garbage, slowloris connections that dribble a byte
at a time, and 1,000 parallel connections to one service; after each storm a normal
client still gets a normal answer, the process is alive and its RSS stayed bounded.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import dns.message
import dns.query
import pytest
from tests import emulator_harness as h

from decnet.emulators import main

RSS_GROWTH_KIB = 40 * 1024  # what a storm may add to an idle emulator, at most
GARBAGE = [os.urandom(4096), b"\x00\xff" * 50000, b"A" * 1_000_000 + b"\r\n",
           b"\r\n" * 5000, "Ä€😀".encode() * 10000 + b"\r\n"]


def tcp_answer(port: int, send: bytes, expect: bytes, timeout: float = 20) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        got = b""
        if send:
            sock.sendall(send)
        deadline = time.monotonic() + timeout
        while expect not in got and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    assert expect in got, got[:300]


def udp_answer(port: int, send: bytes, expect: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        for _ in range(5):
            sock.sendto(send, ("127.0.0.1", port))
            try:
                got = sock.recv(65535)
            except TimeoutError:
                continue
            assert expect in got, got[:300]
            return
    raise AssertionError("no UDP answer")


def dns_query(name: str, flags: int | None = None) -> bytes:
    query = dns.message.make_query(name, "A")
    if flags is not None:
        query.flags = flags
    return query.to_wire()


SIP_OPTIONS = (b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9\r\n"
               b"From: <sip:a@b>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: 1\r\n"
               b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
MQTT_CONNECT = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x1e\x00\x04nmap"

# service -> (well-known tcp port or None, a normal exchange that must keep working)
Check = Callable[[h.Emulator], None]
CHECKS: dict[str, tuple[int | None, Check]] = {
    "smtp": (25, lambda e: tcp_answer(e.port(25), b"EHLO x\r\n", b"250 SMTPUTF8")),
    "pop3": (110, lambda e: tcp_answer(e.port(110), b"CAPA\r\n", b"\r\n.\r\n")),
    "imap": (143, lambda e: tcp_answer(e.port(143), b"a CAPABILITY\r\n", b"a OK")),
    "mqtt": (1883, lambda e: tcp_answer(e.port(1883), MQTT_CONNECT, b"\x20\x02\x00\x05")),
    "sip": (5060, lambda e: (tcp_answer(e.port(5060), SIP_OPTIONS, b"SIP/2.0 200 OK"),
                             udp_answer(e.port(5060), SIP_OPTIONS, b"SIP/2.0 200 OK"))),
    "dns": (53, lambda e: (udp_answer(e.port(53), dns_query("www.example.com"), b"\xc0\x0c"),
                           dns.query.tcp(dns.message.make_query("example.com", "MX"),
                                         "127.0.0.1", port=e.port(53), timeout=20))),
    "llmnr": (None, lambda e: udp_answer(e.port(5355), dns_query("ws-test", 0), b"\xc0\x0c")),
}
FAMILIES = {"mail": ["smtp", "pop3", "imap"], "messaging": ["mqtt", "sip"],
            "names": ["dns", "llmnr"]}
FLOOD = {"mail": "smtp", "messaging": "mqtt", "names": "dns"}


async def _garbage(port: int) -> None:
    for payload in GARBAGE:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 20)
            writer.write(payload)
            await asyncio.wait_for(writer.drain(), 20)
            await asyncio.wait_for(reader.read(65536), 5)
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except UnboundLocalError:
                pass


async def _slowloris(port: int, conns: int, seconds: float, check: Callable[[], None]) -> None:
    writers = []
    for _ in range(conns):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for writer in writers:
            writer.write(b"X")
        await asyncio.sleep(0.5)
    await asyncio.get_running_loop().run_in_executor(None, check)  # served meanwhile
    for writer in writers:
        writer.close()


async def _flood(port: int, conns: int) -> int:
    async def one() -> bool:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 30)
        except (TimeoutError, OSError):
            return False
        try:
            writer.write(b"\x10\xff\xff\xff\x7fHELO\r\n")  # an MQTT length of 256 MiB, a line
            await asyncio.wait_for(reader.read(256), 10)
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
        return True

    return sum(await asyncio.gather(*(one() for _ in range(conns))))


def _udp_garbage(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(3000):
            sock.sendto(os.urandom(1 + i % 1400), ("127.0.0.1", port))
        sock.sendto(b"\xff" * 65000, ("127.0.0.1", port))
        # a question whose name points at itself, and a truncated header
        sock.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
                    ("127.0.0.1", port))
        sock.sendto(b"\x12\x34", ("127.0.0.1", port))


def _serving_again(check: Any, within: float = 30.0) -> None:
    """Serving again once the flood's 1,000 connections are being closed: on a loaded
    machine the first new connection may still meet the emulator's connection cap."""
    deadline = time.monotonic() + within
    while True:
        try:
            check()
            return
        except (ConnectionError, TimeoutError, AssertionError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_hostile_clients_leave_the_family_serving(family: str) -> None:
    for service in FAMILIES[family]:
        tcp_port, check = CHECKS[service]
        with h.run(service) as emu:
            check(emu)
            idle = emu.rss_kib()
            if tcp_port is not None:
                asyncio.run(_garbage(emu.port(tcp_port)))
                check(emu)
                asyncio.run(_slowloris(emu.port(tcp_port), 200, 3, functools.partial(check, emu)))
            udp_ports = [p for p, proto in main.module(service).PORTS if proto == "udp"]
            for port in udp_ports:
                _udp_garbage(emu.port(port))
            check(emu)
            if FLOOD[family] == service:
                assert tcp_port is not None
                opened = asyncio.run(_flood(emu.port(tcp_port), 1000))
                assert opened >= 900, opened
                _serving_again(functools.partial(check, emu))
            peak = emu.rss_kib()
            print(f"{service}: idle RSS {idle} KiB, after the storm {peak} KiB")
            assert emu.alive()
            assert peak - idle < RSS_GROWTH_KIB, (service, idle, peak)
