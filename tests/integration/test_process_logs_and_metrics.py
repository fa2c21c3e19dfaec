"""What a log collector and Prometheus see of a running operator and agent.

One stream per process: every line either process prints is one JSON object with
`event`, `level` and `timestamp` on stderr (nothing on stdout), kopf's and the HTTP
clients' lines included. The operator's /metrics has the reconcile duration histogram
and the error counter per kind, the deckies by phase and build_info, with the values
of what the test did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration import test_operator_harness as h

from decnet.kube import client as kclient
from decnet.kube import names

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LEVELS = {"debug", "info", "warning", "error", "critical"}


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def by_label(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, label: str
) -> dict[str, float]:
    return {dict(k)[label]: v for (n, k), v in samples.items() if n == name and label in dict(k)}


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{path.name}: not a JSON line: {line!r}") from None
        assert {"event", "level", "timestamp"} <= set(record), line
        records.append(record)
    return records


@pytest.fixture(scope="module")
def node(kubectl: Any) -> Iterator[str]:
    yield from h.leased_node(kubectl)


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return h.free_port()


@pytest.fixture(scope="module")
def operator(
    identities: Any, kubectl: Any, crds: list[str], node: str, metrics_port: int
) -> Iterator[h.Operator]:
    yield from h.start(
        identities,
        kubectl,
        "--metrics-port",
        str(metrics_port),
        DECNET_MUTATION_INTERVAL_MINUTES="0",
    )


def phase(obj: dict[str, Any]) -> str:
    return str(((obj.get("status") or {}).get("lifecycle") or {}).get("phase", ""))


def test_operator_metrics_show_the_reconciles_errors_phases_and_build(
    kubectl: Any,
    kube_client: Any,
    operator: h.Operator,
    namespace: str,
    node: str,
    metrics_port: int,
) -> None:
    h.apply(kubectl, h.lan("office", namespace, subnet="10.78.0.0/24"))
    h.apply(kubectl, h.decky("ws-01", namespace, nodeName=node))
    h.apply(kubectl, h.decky("ws-02", namespace, nodeName=node))

    def planned(name: str) -> Any:
        obj = h.get(kube_client, kclient.Decky, name, namespace)
        return obj if obj and phase(obj) == "Running" else None

    first = h.wait_for(lambda: planned("ws-01"), 20, "ws-01 running", operator)
    h.wait_for(lambda: planned("ws-02"), 20, "ws-02 running", operator)
    h.report(kube_client, first)  # ws-01 converged: succeeded; ws-02 stays running

    def phases() -> dict[str, float]:
        counts = by_label(scrape(metrics_port), "decnet_operator_deckies", "phase")
        return {p: v for p, v in counts.items() if v}

    h.wait_for(
        lambda: phases().get("Succeeded", 0) >= 1 and phases().get("Running", 0) >= 1,
        20,
        f"deckies by phase (now {phases()})",
        operator,
    )
    samples = scrape(metrics_port)
    counts = by_label(samples, "decnet_operator_reconcile_duration_seconds_count", "kind")
    sums = by_label(samples, "decnet_operator_reconcile_duration_seconds_sum", "kind")
    assert counts["Decky"] >= 3 and counts["LAN"] >= 1, counts  # two plans, one report
    for kind in ("Decky", "LAN"):
        assert 0 < sums[kind] / counts[kind] < 5, (kind, sums[kind], counts[kind])
    errors = by_label(samples, "decnet_operator_reconcile_errors_total", "kind")
    assert errors == {"Decky": 0.0, "LAN": 0.0, "Topology": 0.0}
    build = [dict(k) for (n, k), v in samples.items() if n == "decnet_operator_build_info"]
    assert [b["version"] for b in build] == ["0.1.0"]
    ours = {n for n, _ in samples if n.startswith("decnet_operator_")}
    assert "decnet_operator_reconciles_total" in ours


def test_every_line_the_operator_prints_is_one_json_record_on_stderr(
    operator: h.Operator,
) -> None:
    """Its life so far: kopf's startup, the reconciles of the test above."""
    assert operator.stdout.read_text() == ""
    records = json_lines(operator.log)
    events = {r["event"] for r in records}
    assert "operator.started" in events
    assert all(r["timestamp"].endswith("Z") for r in records)
    assert all(r["level"] in LEVELS for r in records)


def test_every_line_the_agent_prints_is_one_json_record_on_stderr(
    identities: Any, crds: list[str]
) -> None:
    """An agent's whole life on a node of its own: start, first sync, metrics, stop."""
    node = f"logs-{uuid.uuid4().hex[:6]}"
    port = h.free_port()
    logdir = Path(tempfile.mkdtemp(prefix="decnet-agent-logs-"))
    err, out = logdir / "stderr", logdir / "stdout"
    env = dict(os.environ, KUBECONFIG=str(identities.agent_kubeconfig(node)))
    env[names.SYSTEM_NAMESPACE_ENV] = identities.namespace
    env["PYTHONPATH"] = f"{ROOT / 'operator'}:{ROOT}"
    argv = [sys.executable, "-m", "decnet.agent", "--node", node, "--metrics-port", str(port)]
    argv += ["--metrics-addr", "127.0.0.1", "--no-firewall", "--no-sniffer"]
    argv += ["--state-dir", str(logdir / "state")]
    with err.open("ab") as e, out.open("ab") as o:
        proc = subprocess.Popen(argv, env=env, stdout=o, stderr=e)
    try:
        h.wait_for(lambda: b"sync.initial_done" in err.read_bytes(), 60, "the agent's first sync")
        build = by_label(scrape(port), "decnet_agent_build_info", "version")
        assert build == {"0.1.0": 1.0}
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert out.read_text() == ""
    records = json_lines(err)
    events = [r["event"] for r in records]
    assert events[0] == "agent.started" or "agent.started" in events, events
    assert events[-1] == "agent.stopped", events[-5:]
    assert all(r["timestamp"].endswith("Z") for r in records)
    assert all(r["level"] in LEVELS for r in records)
