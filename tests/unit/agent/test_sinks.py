"""Syslog transports over loopback sockets: framing on the wire, and no silent loss."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from decnet.agent import delivery, sinks, spool


def _tcp_server() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    return srv, srv.getsockname()[1]


def test_tcp_sends_octet_counted_messages(tmp_path: Path) -> None:
    srv, port = _tcp_server()
    with srv:
        transport = sinks.Syslog(f"tcp://127.0.0.1:{port}", None, str(tmp_path))
        transport.send(["<133>1 a", "<133>1 bé"])
        conn, _ = srv.accept()
        conn.settimeout(5)
        data = b""
        while len(data) < len(b"8 <133>1 a10 <133>1 b\xc3\xa9"):
            data += conn.recv(100)
        assert data == b"8 <133>1 a10 <133>1 b\xc3\xa9"
        assert transport.confirm()
        conn.close()
        time.sleep(0.1)
        assert not transport.confirm()  # the receiver went away: the batch is not confirmed
        transport.close()


def test_udp_sends_one_datagram_per_message(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.settimeout(5)
        transport = sinks.Syslog(f"udp://127.0.0.1:{srv.getsockname()[1]}", None, str(tmp_path))
        transport.send(["<133>1 one", "<133>1 two"])
        assert [srv.recv(100), srv.recv(100)] == [b"<133>1 one", b"<133>1 two"]
        transport.close()


def test_an_unreachable_sink_raises_and_keeps_the_spool(tmp_path: Path) -> None:
    srv, port = _tcp_server()
    srv.close()  # nobody listens there now
    transport = sinks.Syslog(f"tcp://127.0.0.1:{port}", None, str(tmp_path))
    with pytest.raises(sinks.SinkError):
        transport.send(["<133>1 x"])


def test_a_runner_delivers_everything_once_the_receiver_comes_back(tmp_path: Path) -> None:
    srv, port = _tcp_server()
    srv.close()
    q = spool.Spool(tmp_path / "spool", 1 << 20)
    runner = delivery.Runner(
        "t", "k", q, sinks.Syslog(f"tcp://127.0.0.1:{port}", None, str(tmp_path))
    )
    q.append([f"<133>1 m{i}" for i in range(20)])
    runner.start()
    try:
        time.sleep(1.5)
        assert runner.stats.failed >= 1 and not runner.stats.ready and q.backlog == 20
        received = b""
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
            again.listen(1)
            again.settimeout(40)
            conn, _ = again.accept()
            conn.settimeout(5)
            deadline = time.monotonic() + 10
            while b"m19" not in received and time.monotonic() < deadline:
                received += conn.recv(4096)
            time.sleep(0.3)
            for i in range(20):
                assert f"<133>1 m{i}".encode() in received
            deadline = time.monotonic() + 5
            while q.backlog and time.monotonic() < deadline:
                time.sleep(0.05)
            assert q.backlog == 0 and runner.stats.delivered == 20 and runner.stats.ready
            conn.close()
    finally:
        runner.close()
        runner.thread.join(timeout=10)
