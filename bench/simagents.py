"""Many simulated nodes on one machine: the real agent process with `--engine fake`.

Each agent is its own node (a Node object, a token bound to it, the chart's agent
ServiceAccount and RBAC, its own Lease) and watches only its own deckies through the
real API server; only Docker is replaced by the in-memory engine
(decnet/agent/runtime/fakedocker.py). Every process is started, killed and
restarted by its pid.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import stack


@dataclass
class SimAgents:
    s: stack.Stack
    count: int
    prefix: str = "sim"
    workers: int = 4
    resync_seconds: float = 300.0
    settle_seconds: float = 0.2
    latency: float = 0.005
    failure_rate: float = 0.0
    procs: dict[str, stack.Process] = field(default_factory=dict)

    @property
    def nodes(self) -> list[str]:
        return [f"{self.prefix}-{i:03d}" for i in range(self.count)]

    def _process(self, node: str) -> stack.Process:
        state = self.s.state / "agents" / node
        state.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "decnet.agent", "--node", node, "--engine", "fake"]
        argv += ["--workers", str(self.workers), "--resync-seconds", str(self.resync_seconds)]
        argv += ["--settle-seconds", str(self.settle_seconds), "--state-dir", str(state)]
        argv += ["--fake-latency", str(self.latency)]
        argv += ["--fake-failure-rate", str(self.failure_rate)]
        env = {
            **self.s.env,
            "NODE_NAME": node,
            "KUBECONFIG": self.s.identities.agent_kubeconfig(node),
            "DECNET_SYSTEM_NAMESPACE": self.s.identities.namespace,
        }
        return stack.Process(f"agent {node}", argv, env, state / "agent.log")

    def start(self, nodes: list[str] | None = None, stagger: float = 0.2) -> None:
        """Start agents (all by default) and wait for each one's Lease."""
        todo = nodes if nodes is not None else self.nodes
        for node in todo:
            proc = self._process(node)
            proc.start()
            self.procs[node] = proc
            time.sleep(stagger)  # a 2-core machine: not 50 interpreters importing at once
        stack.wait(lambda: set(todo) <= self.leased(), 300)

    def leased(self) -> set[str]:
        """Nodes whose agent Lease was renewed within its duration."""
        import datetime as dt

        from lightkube.resources.coordination_v1 import Lease

        now = dt.datetime.now(dt.UTC)
        live = set()
        for lease in self.s.client().list(Lease, namespace=self.s.identities.namespace):
            spec = lease.spec
            if spec is None or spec.renewTime is None or not spec.holderIdentity:
                continue
            if (now - spec.renewTime).total_seconds() < (spec.leaseDurationSeconds or 40):
                live.add(spec.holderIdentity)
        return live

    def kill(self, nodes: list[str]) -> None:
        for node in nodes:
            self.procs[node].signal(signal.SIGKILL)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.popen is not None and proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            proc.stop()  # waits, SIGKILL after 20 s

    def rss_mb(self) -> float:
        return sum(p.rss_mb() for p in self.procs.values() if p.popen and p.popen.poll() is None)

    def logs(self) -> list[Path]:
        return [p.log for p in self.procs.values()]
