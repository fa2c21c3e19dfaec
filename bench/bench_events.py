"""Attacker events: collection throughput per agent CPU-second, and latency to a TCP syslog sink.

The agent's own event path runs in this process, unchanged: the Docker log
followers (runtime.logs), the collector pipeline (parse, enrich, checkpoint), the
per-sink spool and delivery loop, and the surfaces' aggregation. A real container
on the real dockerd prints the lines (made with emulators.events.to_line); the
receiver is a separate process (an RFC 6587 octet-counting TCP syslog server), so
its CPU is not counted.

- throughput: a container prints N events at once; events per CPU-second of this
  process until the receiver has them all (target ≥ 2,000/s on one core);
- latency: a container prints 50 events every 100 ms (500/s) for LATENCY_SECONDS;
  per event, the receiver's arrival time minus Docker's own timestamp of the line
  (when dockerd read it from the container), p50/p99 (target p99 ≤ 2 s).
Writes bench/results/events.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

from decnet.agent import activity, collector, delivery, eventrecord, sinks, spool  # noqa: E402
from decnet.agent.runtime import logs as runtime_logs  # noqa: E402
from decnet.emulators import events  # noqa: E402

THROUGHPUT_EVENTS = int(os.environ.get("BENCH_EVENTS", "50000"))
LATENCY_SECONDS = float(os.environ.get("LATENCY_SECONDS", "30"))
IMAGE = "decnet-test/busybox:latest"

RECEIVER = r"""
import socket, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(8)
print(srv.getsockname()[1], flush=True)
out = open(sys.argv[1], "w", buffering=1)
conn, _ = srv.accept()
buf = b""
while True:
    data = conn.recv(1 << 20)
    if not data:
        conn, _ = srv.accept(); continue
    now = time.time()
    buf += data
    while True:
        sp = buf.find(b" ")
        if sp < 0: break
        n = int(buf[:sp]); end = sp + 1 + n
        if len(buf) < end: break
        msg = buf[sp + 1:end].decode(); buf = buf[end:]
        i = msg.find('id="')
        out.write(f"{now} {msg[i + 4:i + 36]}\n")
"""


def lines(count: int, tag: str) -> list[str]:
    when = dt.datetime.now(dt.UTC)
    return [
        events.to_line(
            events.Event(
                service="ssh",
                kind="auth",
                src_ip=f"198.51.100.{i % 250}",
                src_port=40000 + i % 20000,
                dst_port=22,
                session=f"{tag}{i}",
                time=when,
                fields={"username": "root", "password": f"guess-{i}"},
            )
        )
        for i in range(count)
    ]


class Harness:
    def __init__(self) -> None:
        import docker

        self.docker = docker.from_env()
        self.node = f"bench-{uuid.uuid4().hex[:6]}"
        self.state = Path(tempfile.mkdtemp(prefix="decnet-bench-events-"))
        self.received = self.state / "received.txt"
        self.receiver = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, str(self.received)], stdout=subprocess.PIPE, text=True
        )
        assert self.receiver.stdout is not None
        self.port = int(self.receiver.stdout.readline())
        self.stop = threading.Event()
        transport = sinks.Syslog(f"tcp://127.0.0.1:{self.port}", None, str(self.state))
        self.runner = delivery.Runner(
            "bench", "k", spool.Spool(self.state / "spool", 1 << 30), transport
        )
        self.activity, self.contacts = activity.Activity(), activity.Contacts()

        def deliver(records: list[eventrecord.Record]) -> None:
            self.runner.offer(records)
            now = time.monotonic()
            for r in records:
                self.activity.observe(r)
                self.contacts.observe(r, now)

        self.collector = collector.Collector(
            runtime_logs.Logs(self.node),
            self.state,
            self.origin,
            deliver,  # type: ignore[arg-type]
            self.stop,
            scan_seconds=0.2,
        )
        self.containers: list[Any] = []

    def origin(self, c: runtime_logs.ServiceContainer) -> eventrecord.Origin:
        return eventrecord.Origin("bench", "decky", self.node, "ssh", c.id, "linux-server", "lan")

    def start(self) -> None:
        self.runner.start()
        for target in (self.collector.scan_loop, self.collector.pipeline_loop):
            threading.Thread(target=target, daemon=True).start()

    def container(self, command: str, files: Path) -> Any:
        c = self.docker.containers.run(
            IMAGE,
            ["sh", "-c", command],
            detach=True,
            network_mode="none",
            volumes={str(files): {"bind": "/ev", "mode": "ro"}},
            labels={
                "app.kubernetes.io/managed-by": "decnet-operator",
                "decnet.io/agent-node": self.node,
                "decnet.io/role": "service",
                "decnet.io/namespace": "bench",
                "decnet.io/decky": "decky",
                "decnet.io/service": "ssh",
            },
        )
        self.containers.append(c)
        return c

    def arrivals(self) -> dict[str, float]:
        out = {}
        try:
            for line in self.received.read_text().splitlines():
                at, _, ident = line.partition(" ")
                out[ident] = float(at)
        except OSError:
            pass
        return out

    def close(self) -> None:
        self.stop.set()
        self.runner.close()
        for c in self.containers:
            c.remove(force=True)
        self.receiver.kill()
        self.receiver.wait()


def docker_ids(c: Any) -> dict[str, float]:
    """id -> Docker's timestamp (epoch seconds) of each event line the container printed."""
    from decnet.agent import checkpoint

    out = {}
    for raw in c.logs(stdout=True, stderr=False, timestamps=True).decode().splitlines():
        ts, _, line = raw.partition(" ")
        out[eventrecord.event_id(c.id, ts, line)] = checkpoint.docker_ns(ts) / 1e9
    return out


def throughput(h: Harness, files: Path) -> dict[str, Any]:
    (files / "burst.txt").write_text("\n".join(lines(THROUGHPUT_EVENTS, "t")) + "\n")
    cpu0, wall0 = time.process_time(), time.monotonic()
    c = h.container("cat /ev/burst.txt; exec sleep 3600", files)
    deadline = time.monotonic() + 600
    while len(h.arrivals()) < THROUGHPUT_EVENTS and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    got = len(h.arrivals())
    c.remove(force=True)
    h.containers.remove(c)
    return {
        "events": THROUGHPUT_EVENTS,
        "delivered": got,
        "wall_seconds": round(wall, 3),
        "agent_cpu_seconds": round(cpu, 3),
        "events_per_cpu_second": round(got / cpu, 1) if cpu else None,
    }


def latency(h: Harness, files: Path) -> dict[str, Any]:
    (files / "tick.txt").write_text("\n".join(lines(50, "l")) + "\n")
    rounds = int(LATENCY_SECONDS * 10)
    before = set(h.arrivals())
    c = h.container(
        f"for i in $(seq {rounds}); do cat /ev/tick.txt; usleep 100000; done; exec sleep 3600",
        files,
    )
    time.sleep(LATENCY_SECONDS + 1)
    deadline = time.monotonic() + 60
    emitted: dict[str, float] = {}
    while time.monotonic() < deadline:
        emitted = docker_ids(c)
        if set(emitted) <= set(h.arrivals()):
            break
        time.sleep(0.5)
    arrived = h.arrivals()
    delays = sorted(arrived[i] - t for i, t in emitted.items() if i in arrived and i not in before)
    missing = len([i for i in emitted if i not in arrived])

    def pct(p: float) -> float | None:
        return round(delays[min(len(delays) - 1, int(p * len(delays)))], 4) if delays else None

    return {
        "rate_per_second": 500,
        "seconds": LATENCY_SECONDS,
        "events": len(emitted),
        "missing": missing,
        "p50_seconds": pct(0.50),
        "p99_seconds": pct(0.99),
        "max_seconds": round(delays[-1], 4) if delays else None,
    }


def main() -> None:
    h = Harness()
    files = Path(tempfile.mkdtemp(prefix="decnet-bench-lines-"))
    try:
        h.start()
        result = {
            "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "throughput": throughput(h, files),
            "latency": latency(h, files),
        }
    finally:
        h.close()
    out = ROOT / "bench" / "results" / "events.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
