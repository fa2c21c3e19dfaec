"""Helpers for end-to-end tests: our processes (stopped only by pid) and a kubectl/Docker view."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A decnet process we started; stopped only by its own pid."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log = logdir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.popen = subprocess.Popen(
            self.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT
        )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up code of the process runs."""
        if self.popen is not None and self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen is not None and self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def env_for(kubeconfig: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig
    env["PYTHONPATH"] = f"{ROOT / 'operator'}:{env.get('PYTHONPATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def wait_for(
    check: Callable[[], bool], timeout: float, what: str, proc: Proc | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
        time.sleep(0.2)
    detail = f"\n{proc.name} log:\n{proc.tail()}" if proc else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")


def condition(obj: dict[str, Any] | None, kind: str) -> str | None:
    """The status of one condition of an object, None when absent."""
    for item in (obj or {}).get("status", {}).get("conditions", []):
        if item["type"] == kind:
            return str(item["status"])
    return None


class Cluster:
    """What a test needs to drive deckies with kubectl and look at Docker."""

    def __init__(
        self, kubectl: Any, namespace: str, docker: Any, operator: Proc, agent: Proc, node: str
    ) -> None:
        self.kubectl, self.ns, self.docker = kubectl, namespace, docker
        self.operator, self.agent, self.node = operator, agent, node
        self.subnet_octet = 100 + (uuid.uuid4().int % 150)

    def apply(self, *docs: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        manifest = yaml.safe_dump_all(docs)
        return self.kubectl("apply", "-n", self.ns, "-f", "-", input=manifest, check=check)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        out = self.kubectl("get", kind, name, "-n", self.ns, "-o", "json").stdout
        return dict(json.loads(out))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get("decky", name).get("status", {}))

    def deckies(self) -> list[dict[str, Any]]:
        out = self.kubectl("get", "deckies", "-n", self.ns, "-o", "json").stdout
        return list(json.loads(out)["items"])

    def lan(self, name: str = "lan", subnet: str | None = None, **spec: Any) -> dict[str, Any]:
        subnet = subnet or f"10.{self.subnet_octet}.0.0/24"
        return {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "LAN",
            "metadata": {"name": name},
            "spec": {"subnet": subnet, **spec},
        }

    def decky(
        self, name: str, services: list[str], lan: str = "lan", **spec: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"services": services, "networks": [{"lan": lan}]}
        body["nodeName"] = self.node
        body.update(spec)
        return {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "Decky",
            "metadata": {"name": name},
            "spec": body,
        }

    def wait_ready(self, names: list[str], timeout: float = 120) -> None:
        def ready() -> bool:
            by_name = {d["metadata"]["name"]: d for d in self.deckies()}
            return all(condition(by_name.get(n), "Ready") == "True" for n in names)

        wait_for(ready, timeout, f"deckies {names} Ready", self.agent)

    def containers(self, decky: str | None = None) -> list[Any]:
        filters = [f"decnet.io/namespace={self.ns}"]
        if decky:
            filters.append(f"decnet.io/decky={decky}")
        # List, then inspect one by one: a container may go between the two (an agent
        # removing it), which is not this helper's business to fail on.
        import docker.errors

        found = []
        for summary in self.docker.api.containers(all=True, filters={"label": filters}):
            try:
                found.append(self.docker.containers.get(summary["Id"]))
            except docker.errors.NotFound:
                continue
        return found

    def container_ids(self, decky: str) -> dict[str, str]:
        """role:service -> container id, e.g. {"base:": ..., "service:http": ...}."""
        ids = {}
        for c in self.containers(decky):
            ids[c.labels["decnet.io/role"] + ":" + c.labels.get("decnet.io/service", "")] = c.id
        return ids


# A login service that writes one attacker event per try, in the emulators' format, with
# the client's real address (busybox: cheap enough for a 1,000-attempt brute force).
LOGIN_SCRIPT = r"""read -r user pass
ino=$(readlink /proc/$$/fd/0 | tr -dc 0-9)
rem=$(cat /proc/net/tcp /proc/net/tcp6 | awk -v i="$ino" '$10 == i {print $3}')
h=${rem%:*}
h=${h:$((${#h}-8)):8}
ip=$(printf '%d.%d.%d.%d' 0x${h:6:2} 0x${h:4:2} 0x${h:2:2} 0x${h:0:2})
port=$(printf '%d' 0x${rem#*:})
ts=$(date -u +%Y-%m-%dT%H:%M:%S).$(printf '%06d' $(( $(cut -d' ' -f1 /proc/uptime | tr -d .) % 1000000 )))Z
echo "<133>1 $ts - ssh $$ auth [attack@32473 kind=\"auth\" service=\"ssh\" src_ip=\"$ip\" src_port=\"$port\" dst_port=\"22\" proto=\"tcp\" session=\"$$\" username=\"$user\" password=\"$pass\"] login attempt" > /proc/1/fd/1
echo "Permission denied"
"""
LOGIN_SERVICE = "evt-login"
LOGIN_TEMPLATE = {
    "apiVersion": "decnet.io/v1alpha1",
    "kind": "ServiceTemplate",
    "metadata": {"name": LOGIN_SERVICE},
    "spec": {
        "image": "decnet-test/busybox:latest",
        "description": "Test fixture: a login prompt that writes one attacker event per try.",
        "ports": [{"port": 22, "protocol": "tcp"}],
        "command": ["nc", "-ll", "-p", "22", "-e", "sh", "-c", LOGIN_SCRIPT],
    },
}


def attack(ip: str, user: str, password: str, timeout: float = 10) -> tuple[str, int]:
    """One login attempt as a client; returns the client's (address, port)."""
    with socket.create_connection((ip, 22), timeout=timeout) as s:
        s.sendall(f"{user} {password}\n".encode())
        s.recv(100)
        return s.getsockname()[0], s.getsockname()[1]


def listening(cluster: Cluster, name: str, port: int = 22) -> bool:
    """The port in LISTEN inside the decky, seen without connecting (a probe is a contact)."""
    base = next(c for c in cluster.containers(name) if c.labels["decnet.io/role"] == "base")
    code, out = base.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
    return code == 0 and any(
        fields[1].endswith(f":{port:04X}") and fields[3] == "0A"
        for fields in (row.split() for row in out.decode().splitlines()[1:])
        if len(fields) > 3
    )
