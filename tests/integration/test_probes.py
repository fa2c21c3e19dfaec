"""The probes the chart points the kubelet at, answered by the real processes.

The operator runs under the chart's ServiceAccount against the control plane, its
webhook on; the agent under its node-bound token, once with Docker and once with an
engine that does not answer (unready, yet alive: an unreachable Docker only delays).
"""

from __future__ import annotations

import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration import test_operator_harness as h
from tests.integration.test_agent import AgentProc

pytestmark = pytest.mark.integration


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


@pytest.fixture
def operator_probes(identities: Any, kubectl: Any, crds: list[str]) -> Iterator[int]:
    port = h.free_port()
    run = h.start(identities, kubectl, "--health-port", str(port), "--health-addr", "127.0.0.1")
    operator = next(run)
    try:
        yield port
    finally:
        run.close()
        assert operator.proc is None  # stopped by its pid


def test_operator_is_live_and_ready_once_started_with_its_webhook_serving(
    operator_probes: int,
) -> None:
    port = operator_probes
    assert h.wait_for(lambda: probe(port, "/readyz") == (200, "ok\n"), 30, "operator /readyz")
    assert probe(port, "/healthz") == (200, "ok\n")
    assert probe(port, "/metrics")[0] == 404


def _agent(identities: Any, **env: str) -> tuple[AgentProc, int]:
    node = f"node-{uuid.uuid4().hex[:6]}"
    logdir = Path(tempfile.mkdtemp(prefix="decnet-agent-probes-"))
    proc = AgentProc(identities.agent_kubeconfig(node), node, logdir, identities.namespace)
    port = h.free_port()
    proc.argv += ["--health-port", str(port)]  # --health-addr defaults to 127.0.0.1
    proc.env.update(env)
    proc.start()
    return proc, port


def test_agent_is_alive_but_not_ready_while_docker_does_not_answer(identities: Any) -> None:
    proc, port = _agent(identities, DOCKER_HOST="unix:///nonexistent/docker.sock")
    try:
        h.wait_for(lambda: probe(port, "/healthz")[0] == 200, 30, "agent /healthz")
        assert probe(port, "/readyz") == (503, "docker unreachable\n"), proc.text()[-2000:]
    finally:
        proc.stop()


def test_agent_is_ready_once_docker_answers_and_its_lease_is_renewed(
    identities: Any, docker_client: Any, kubectl: Any
) -> None:
    proc, port = _agent(identities)
    try:
        h.wait_for(lambda: probe(port, "/readyz") == (200, "ok\n"), 30, "agent /readyz")
        assert probe(port, "/healthz") == (200, "ok\n")
        lease = kubectl(
            "get", "lease", f"decnet-agent-{proc.node}", "-n", identities.namespace, check=False
        )
        assert lease.returncode == 0, lease.stderr
    finally:
        proc.stop()
