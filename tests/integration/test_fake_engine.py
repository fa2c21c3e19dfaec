"""The agent with its in-memory engine (`--engine fake`) against the real API server and operator.

The scale benchmark (bench/bench_scale.py) runs dozens of these simulated agents; this
keeps the fake engine honest in CI: a simulated node takes its Lease, converges the
deckies the operator schedules to it, reports them Ready with containers, and releases
a deleted decky, all under the chart's agent ServiceAccount.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_operator_harness as h

from decnet.kube import client as kclient
from decnet.kube import names

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def operator(identities: Any, kubectl: Any, crds: list[str]) -> Iterator[h.Operator]:
    yield from h.start(identities, kubectl)


@pytest.fixture
def fake_agent(identities: Any, namespace: str) -> Iterator[str]:
    """A simulated node: the real agent process, its Docker replaced by the fake engine."""
    node = f"fake-{uuid.uuid4().hex[:6]}"
    state = Path(tempfile.mkdtemp(prefix="decnet-fake-agent-"))
    argv = [sys.executable, "-m", "decnet.agent", "--node", node, "--engine", "fake"]
    argv += ["--state-dir", str(state), "--settle-seconds", "0.2", "--fake-latency", "0.01"]
    env = dict(os.environ, KUBECONFIG=identities.agent_kubeconfig(node), PYTHONUNBUFFERED="1")
    env[names.SYSTEM_NAMESPACE_ENV] = identities.namespace
    env["PYTHONPATH"] = f"{ROOT / 'operator'}:{env.get('PYTHONPATH', '')}"
    log = state / "agent.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield node
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        print(log.read_text(errors="replace")[-3000:])


def test_a_simulated_agent_brings_its_deckies_to_ready_and_releases_a_deleted_one(
    kubectl: Any, kube_client: Any, namespace: str, operator: h.Operator, fake_agent: str
) -> None:
    node = fake_agent
    h.wait_for(
        lambda: (
            kubectl(
                "get", "lease", names.lease_name(node), "-n", "decnet-system", check=False
            ).returncode
            == 0
        ),
        30,
        "the simulated agent's Lease",
    )
    deckies = [f"fake-{i}" for i in range(3)]
    h.apply(
        kubectl,
        h.lan("office", namespace, subnet="10.77.0.0/24"),
        *[h.decky(n, namespace, nodeName=node, services=["ssh", "http"]) for n in deckies],
    )

    def all_ready() -> list[dict[str, Any]] | None:
        objs = [h.fetch_decky(kube_client, namespace, n) for n in deckies]
        ok = all(h.condition(o, "Ready").get("status") == "True" for o in objs)
        return objs if ok else None

    objs = h.wait_for(all_ready, 60, "three deckies Ready on the simulated node", operator)
    for obj in objs:
        status = obj["status"]
        assert status["node"] == node
        assert status["agent"]["state"] == "Converged"
        roles = sorted(c["role"] for c in status["containers"])
        assert roles == ["base", "service", "service"]
        assert {c["state"] for c in status["containers"]} == {"running"}
        assert {c["planHash"] for c in status["containers"]} == {status["planHash"]}

    kubectl("delete", "decky", deckies[0], "-n", namespace, "--wait=false")
    h.wait_for(
        lambda: h.get(kube_client, kclient.Decky, deckies[0], namespace) is None,
        60,
        "the deleted decky released by the agent's report",
        operator,
    )
