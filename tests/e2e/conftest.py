"""End-to-end fixtures: the operator and a node agent as real processes.

Both run as subprocesses against the session's control plane and the real
dockerd, exactly as `make demo` runs them, so a test can SIGKILL and
restart them by pid. The ServiceTemplates are the busybox ones from
examples/servicetemplates-test.yaml, whose services really listen.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Cluster, Proc, env_for, free_port, wait_for, webhook_registered


@pytest.fixture(scope="session")
def logdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="decnet-e2e-logs-"))


@pytest.fixture(scope="session")
def service_templates(kubectl: Any, crds: list[str], test_image: str) -> None:
    path = ROOT / "examples" / "servicetemplates-test.yaml"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str, kubectl: Any, crds: list[str], service_templates: None, logdir: Path
) -> Iterator[Proc]:
    argv = [sys.executable, "-m", "decnet.controller", "--standalone"]
    argv += ["--webhook-port", str(free_port()), "--metrics-port", "0"]
    env = env_for(
        kubeconfig, DECNET_MUTATION_INTERVAL_MINUTES="0", DECNET_BASE_IMAGE="decnet/base:0.1.0"
    )
    proc = Proc("operator", argv, env, logdir)
    proc.start()
    try:
        wait_for(lambda: webhook_registered(kubectl), 60, "the operator's admission webhook", proc)
        yield proc
    finally:
        proc.stop()
        # A webhook pointing at a stopped operator would reject every later create.
        listed = kubectl("get", "validatingwebhookconfigurations", "-o", "name", check=False)
        for name in listed.stdout.split():
            if "decnet" in name:
                kubectl("delete", name, "--ignore-not-found", check=False)


@pytest.fixture(scope="session")
def node_name() -> str:
    return f"e2e-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def agent(
    kubeconfig: str, kubectl: Any, operator: Proc, node_name: str, docker_client: Any, logdir: Path
) -> Iterator[Proc]:
    argv = [sys.executable, "-m", "decnet.agent", "--node", node_name, "--metrics-port", "0"]
    argv += ["--resync-seconds", "5", "--orphan-grace-seconds", "5"]
    argv += ["--state-dir", tempfile.mkdtemp(prefix="decnet-agent-state-")]
    proc = Proc("agent", argv, env_for(kubeconfig, NODE_NAME=node_name), logdir)
    proc.start()

    def lease_exists() -> bool:
        lease = f"decnet-agent-{node_name}"
        return kubectl("get", "lease", lease, "-n", "decnet-system", check=False).returncode == 0

    try:
        wait_for(lease_exists, 60, "the agent's lease", proc)
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def cluster(
    kubectl: Any, namespace: str, docker_client: Any, operator: Proc, agent: Proc, node_name: str
) -> Cluster:
    for proc in (operator, agent):
        if not proc.alive():
            proc.start()
    return Cluster(kubectl, namespace, docker_client, operator, agent, node_name)
