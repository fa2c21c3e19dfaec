"""The whole stack for a benchmark: control plane, dockerd, CRDs, operator and agent.

Started fresh for each benchmark run (a new etcd keeps the numbers free of
earlier objects), stopped by pid at the end. The control plane writes an
audit log of every write, which is how the benchmarks count API writes.
The operator and the agents run as the chart's ServiceAccounts (rendered RBAC,
TokenRequest tokens; see hack/chart_identities.py), never admin, with the
chart's webhook configuration pointed at the local operator.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(ROOT / "operator"))

import chart_identities  # noqa: E402
import controlplane  # noqa: E402

GROUP = "decnet.io"
VERSION = "v1alpha1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.popen = subprocess.Popen(
            self.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT
        )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def signal(self, sig: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def stop(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class Stack:
    state: Path
    kubeconfig: str
    kubectl_bin: str
    env: dict[str, str]
    identities: chart_identities.Identities
    processes: dict[str, Process] = field(default_factory=dict)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {args} failed: {result.stderr}")
        return result

    def apply(self, namespace: str, docs: list[dict[str, Any]]) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))

    def start_operator(self, launcher: tuple[str, ...] = ("-m",)) -> Process:
        """The operator; `launcher` replaces `-m` (bench/heapdump.py runs it under tracemalloc)."""
        hook = chart_identities.local_webhook(self.state / "webhook")
        argv = [sys.executable, *launcher, "decnet.controller", "--standalone", *hook.args()]
        argv += ["--metrics-port", "0"]
        env = {
            **self.env,
            **hook.env(),
            "KUBECONFIG": self.identities.operator_kubeconfig,
            "DECNET_SYSTEM_NAMESPACE": self.identities.namespace,
        }
        proc = Process("operator", argv, env, self.state / "operator.log")
        proc.start()
        self.processes["operator"] = proc
        wait(hook.serving, 180, proc=proc)
        ids = self.identities
        ids.register_webhook(ids.webhook_configuration(hook.url, hook.ca_pem))
        return proc

    def start_agent(self, node: str, workers: int = 8, log_level: str = "warning") -> Process:
        argv = [sys.executable, "-m", "decnet.agent", "--node", node, "--metrics-port", "0"]
        argv += ["--workers", str(workers)]
        env = {
            **self.env,
            "NODE_NAME": node,
            "DECNET_LOG_LEVEL": log_level,
            "KUBECONFIG": self.identities.agent_kubeconfig(node),
            "DECNET_SYSTEM_NAMESPACE": self.identities.namespace,
        }
        proc = Process("agent", argv, env, self.state / f"agent-{node}.log")
        proc.start()
        self.processes["agent"] = proc
        lease = f"decnet-agent-{node}"
        wait(
            lambda: (
                self.kubectl(
                    "get", "lease", lease, "-n", self.identities.namespace, check=False
                ).returncode
                == 0
            ),
            60,
            proc=proc,
        )
        return proc

    def client(self) -> Any:
        from lightkube import Client, KubeConfig

        return Client(KubeConfig.from_file(self.kubeconfig), field_manager="decnet-bench")

    def apiserver_requests(self) -> dict[tuple[str, str, str], float]:
        """apiserver_request_total from the API server's /metrics, by (verb, resource, code)."""
        import re
        import urllib.request

        config = yaml.safe_load(Path(self.kubeconfig).read_text())
        server = config["clusters"][0]["cluster"]["server"]
        context = controlplane.admin_context(self.state / "pki")
        with urllib.request.urlopen(f"{server}/metrics", context=context, timeout=30) as r:
            text = r.read().decode()
        totals: dict[tuple[str, str, str], float] = {}
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("code", ""))
            totals[key] = totals.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
        return totals

    def audit_writes(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Audit events (writes only, by policy) received after `since` (unix time)."""
        events = []
        with open(self.state / "audit.log") as handle:
            for line in handle:
                event = json.loads(line)
                stamp = event.get("requestReceivedTimestamp", "")
                if since and _unix(stamp) < since:
                    continue
                events.append(event)
        return events


def _unix(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def wait(
    check: Callable[[], bool], timeout: float, interval: float = 0.2, proc: Process | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.popen is not None and proc.popen.poll() is not None:
            tail = proc.log.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(f"{proc.name} exited:\n" + "\n".join(tail))
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")


@contextmanager
def stack(docker: bool = True) -> Iterator[Stack]:
    """docker=False: no dockerd or images (simulated agents only, bench/simagents.py)."""
    if docker:
        subprocess.run(["bash", str(ROOT / "hack" / "docker-up.sh")], check=True)
        subprocess.run(["bash", str(ROOT / "hack" / "images.sh")], check=True)
    state = Path(tempfile.mkdtemp(prefix="decnet-bench-"))
    plane = controlplane.up(state / "cp")
    kubectl_bin = str(controlplane.CACHE / "bin" / "current" / "kubectl")
    env = dict(os.environ)
    env.update(
        KUBECONFIG=str(plane.kubeconfig),
        PYTHONPATH=f"{ROOT / 'operator'}:{env.get('PYTHONPATH', '')}",
        PYTHONUNBUFFERED="1",
        DECNET_MUTATION_INTERVAL_MINUTES="0",
        DECNET_LOG_LEVEL="warning",
    )
    try:
        for crd in sorted((ROOT / "crds").glob("*.yaml")):
            subprocess.run(
                [kubectl_bin, f"--kubeconfig={plane.kubeconfig}", "apply", "--server-side"]
                + ["-f", str(crd)],
                check=True,
                capture_output=True,
            )
        ids = chart_identities.install(str(plane.kubeconfig), state / "identities")
    except Exception:
        controlplane.down(state / "cp")
        raise
    s = Stack(
        state=state / "cp",
        kubeconfig=str(plane.kubeconfig),
        kubectl_bin=kubectl_bin,
        env=env,
        identities=ids,
    )
    try:
        s.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        s.kubectl(
            "apply", "--server-side", "-f", str(ROOT / "examples" / "servicetemplates-test.yaml")
        )
        yield s
    finally:
        for proc in s.processes.values():
            proc.stop()
        ids.remove_webhook()
        controlplane.down(state / "cp")


def decky(name: str, node: str, services: list[str], lan: str = "lan") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Decky",
        "metadata": {"name": name},
        "spec": {"services": services, "networks": [{"lan": lan}], "nodeName": node},
    }


def lan(name: str, subnet: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LAN",
        "metadata": {"name": name},
        "spec": {"subnet": subnet},
    }


def machine() -> dict[str, Any]:
    import platform

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    docker_version = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dockerd": docker_version,
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    result = {
        "benchmark": name,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **result,
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def ready_watch(
    s: Stack,
    namespace: str,
    names: set[str],
    timeout: float,
    first_ready: dict[str, float] | None = None,
) -> float:
    """time.monotonic() when every named decky is Ready=True, watched (not polled) through the API.

    `first_ready`, when given, is filled with each decky's time.monotonic() of its first Ready."""
    import threading

    from lightkube.generic_resource import create_namespaced_resource

    decky_kind = create_namespaced_resource(GROUP, VERSION, "Decky", "deckies")
    client = s.client()
    ready: set[str] = set()
    done = threading.Event()
    finished_at: list[float] = []

    def watch() -> None:
        for _, obj in client.watch(decky_kind, namespace=namespace):
            status = obj.status if isinstance(obj.status, dict) else {}
            conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
            name = obj.metadata.name
            if conditions.get("Ready") == "True":
                ready.add(name)
                if first_ready is not None:
                    first_ready.setdefault(name, time.monotonic())
            else:
                ready.discard(name)
            if names <= ready:
                finished_at.append(time.monotonic())
                done.set()
                return

    threading.Thread(target=watch, daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"{len(names - ready)} deckies not Ready within {timeout} s")
    return finished_at[0]
