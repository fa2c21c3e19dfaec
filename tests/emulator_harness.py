"""Runs one service emulator as a local process on loopback and reads its events.

Protocol tests start the emulator exactly as the image does (`python3 -m
<package> SERVICE`), with its well-known ports remapped to free loopback ports,
then talk to it with a real client and look for the event lines it printed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from decnet.emulators import events, main

ROOT = Path(__file__).resolve().parent.parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_both() -> int:
    """A port free for TCP and UDP at once (services such as dns and sip bind both)."""
    for _ in range(100):
        port = free_port(socket.SOCK_STREAM)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free for both TCP and UDP")


class Emulator:
    """A running emulator: `port(22)` is where its port 22 listens; `events` what it wrote."""

    def __init__(self, service: str, config: dict[str, Any] | None, proc: subprocess.Popen[str],
                 ports: dict[int, int]) -> None:
        self.service, self.config, self.proc, self.ports = service, config, proc, ports
        self.lines: list[str] = []
        self.events: list[events.Event] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = events.parse_line(line)
            with self._lock:
                self.lines.append(line.rstrip("\n"))
                if event is not None:
                    self.events.append(event)

    def port(self, well_known: int) -> int:
        return self.ports[well_known]

    def find(self, kind: str | None = None, **fields: str) -> list[events.Event]:
        with self._lock:
            found = list(self.events)
        out = []
        for e in found:
            if kind is not None and e.kind != kind:
                continue
            params = e.params()
            if all(params.get(k) == v for k, v in fields.items()):
                out.append(e)
        return out

    def wait_event(self, kind: str | None = None, timeout: float = 10, **fields: str
                   ) -> events.Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = self.find(kind, **fields)
            if hits:
                return hits[-1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with self._lock:
            tail = "\n".join(self.lines[-30:])
        raise AssertionError(
            f"{self.service}: no event kind={kind} {fields} within {timeout} s "
            f"(exit={self.proc.poll()}); last lines:\n{tail}\nstderr:\n{self.stderr()}"
        )

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()[-4000:]

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def alive(self) -> bool:
        return self.proc.poll() is None


def _wait_listening(ports: dict[int, int], protos: dict[int, str], proc: subprocess.Popen[str],
                    timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    tcp = [actual for well, actual in ports.items() if protos[well] == "tcp"]
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"emulator exited with {proc.returncode}:\n{err[-4000:]}")
        pending = []
        for port in tcp:
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    pending.append(port)
        if not pending:
            time.sleep(0.2 if len(tcp) < len(ports) else 0)  # UDP binds with the TCP ones
            return
        time.sleep(0.1)
    raise AssertionError(f"emulator did not listen on {tcp} within {timeout} s")


def _free_ports(declared: Any) -> tuple[dict[int, int], dict[int, str]]:
    """A free loopback port for each of the service's ports (the same one for tcp+udp)."""
    ports: dict[int, int] = {}
    protos: dict[int, str] = {}
    both = {p for p, pr in declared if pr == "tcp"} & {p for p, pr in declared if pr == "udp"}
    for port, proto in declared:
        if port not in ports:
            if port in both:
                ports[port] = free_port_both()
            else:
                ports[port] = free_port(socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
        protos[port] = "tcp" if proto == "tcp" or protos.get(port) == "tcp" else proto
    return ports, protos


@contextmanager
def run(service: str, config: dict[str, Any] | None = None, hostname: str = "ws-test",
        env: dict[str, str] | None = None) -> Iterator[Emulator]:
    """Start SERVICE on loopback; stop it (by its pid) on exit."""
    import json

    mod = main.module(service)
    child_env = dict(os.environ)
    child_env["PYTHONPATH"] = f"{ROOT / 'operator'}:{child_env.get('PYTHONPATH', '')}"
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env["SVC_CONFIG"] = json.dumps(config or {})
    child_env.update(env or {})
    # A free port can be taken by another test process between our probe and the
    # emulator's bind: then start again on new ports (a race of the harness, not a
    # behaviour of the emulator under test).
    for attempt in range(3):
        ports, protos = _free_ports(mod.PORTS)
        mapping = ",".join(f"{k}={v}" for k, v in ports.items())
        argv = [sys.executable, "-m", "decnet.emulators", service, "--bind", "127.0.0.1",
                "--port-map", mapping, "--hostname", hostname]
        proc = subprocess.Popen(argv, env=child_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            _wait_listening(ports, protos, proc)
            break
        except AssertionError as error:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            if "address already in use" not in str(error) or attempt == 2:
                raise
    try:
        yield Emulator(service, config, proc, ports)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
