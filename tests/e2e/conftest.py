"""End-to-end fixtures: the operator and a node agent as real processes.

Both run as subprocesses against the session's control plane and the real
dockerd, so a test can SIGKILL and restart them by pid, and both run as the
chart's ServiceAccounts with the chart's RBAC and admission policy (the
session's `identities` fixture; the agent's token is bound to its Node), never
admin. The operator only serves its webhook; the fixture registers the chart's
ValidatingWebhookConfiguration (failurePolicy Fail) pointed at it and removes
it when the operator is gone for good. The ServiceTemplates are the busybox
ones from examples/servicetemplates-test.yaml, whose services really listen.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chart_identities
import pytest
from harness import ROOT, Cluster, Proc, env_for, free_port, wait_for
from receivers import Rsyslog, Webhook
from tests.support import require

from decnet.controller import certs


@pytest.fixture(scope="session")
def logdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="decnet-e2e-logs-"))


@pytest.fixture(scope="session")
def service_templates(kubectl: Any, crds: list[str], test_image: str) -> None:
    path = ROOT / "examples" / "servicetemplates-test.yaml"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))


@pytest.fixture(scope="session")
def operator(
    identities: Any, kubectl: Any, crds: list[str], service_templates: None, logdir: Path
) -> Iterator[Proc]:
    hook = chart_identities.local_webhook(Path(tempfile.mkdtemp(prefix="decnet-e2e-webhook-")))
    argv = [sys.executable, "-m", "decnet.controller", "--standalone", *hook.args()]
    argv += ["--metrics-port", "0"]
    env = env_for(
        identities.operator_kubeconfig,
        DECNET_MUTATION_INTERVAL_MINUTES="0",
        DECNET_BASE_IMAGE=os.environ.get("DECNET_BASE_IMAGE", "decnet/base:0.1.0"),
        DECNET_SYSTEM_NAMESPACE=identities.namespace,
        **hook.env(),
    )
    proc = Proc("operator", argv, env, logdir)
    proc.start()
    try:
        wait_for(hook.serving, 60, "the operator's admission webhook", proc)
        identities.register_webhook(identities.webhook_configuration(hook.url, hook.ca_pem))
        yield proc
    finally:
        proc.stop()
        # A failurePolicy Fail webhook pointing at a stopped operator would refuse
        # every later Decky/LAN write.
        identities.remove_webhook()


@pytest.fixture(scope="session")
def node_name() -> str:
    return f"e2e-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def agent(
    identities: Any,
    kubectl: Any,
    operator: Proc,
    node_name: str,
    docker_client: Any,
    logdir: Path,
) -> Iterator[Proc]:
    argv = [sys.executable, "-m", "decnet.agent", "--node", node_name, "--metrics-port", "0"]
    argv += ["--resync-seconds", "5", "--orphan-grace-seconds", "5"]
    argv += ["--sniffer-window", "2"]  # scan events within seconds (test_sniffer.py)
    argv += ["--state-dir", tempfile.mkdtemp(prefix="decnet-agent-state-")]
    env = env_for(
        identities.agent_kubeconfig(node_name),
        NODE_NAME=node_name,
        DECNET_SYSTEM_NAMESPACE=identities.namespace,
    )
    proc = Proc("agent", argv, env, logdir)
    proc.start()

    def lease_exists() -> bool:
        lease = f"decnet-agent-{node_name}"
        ns = identities.namespace
        return kubectl("get", "lease", lease, "-n", ns, check=False).returncode == 0

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


# --- the security team's receivers (test_events, test_sniffer) ---------------------------


@pytest.fixture(scope="module")
def pki() -> certs.Bundle:
    return certs.generate(Path(tempfile.mkdtemp(prefix="decnet-e2e-pki-")), ["127.0.0.1"])


@pytest.fixture(scope="module")
def rsyslog(pki: certs.Bundle) -> Iterator[Rsyslog]:
    require(shutil.which("rsyslogd") is not None, "rsyslogd (hack/clients.apt)")
    server = Rsyslog(
        Path(tempfile.mkdtemp(prefix="decnet-e2e-rsyslog-")),
        free_port(),
        pki.certfile,
        pki.pkeyfile,
        pki.cafile,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def webhook(pki: certs.Bundle) -> Iterator[Webhook]:
    server = Webhook(free_port(), pki.certfile, pki.pkeyfile)
    server.start()
    try:
        yield server
    finally:
        server.stop()
