"""Leader election between two operator processes under the chart's ServiceAccount.

Two replicas share the chart's kind of ClusterKopfPeering, each with its own identity
(POD_ID, as the chart sets it) and the default priority (its start time): the newer one
leads, the other waits paused, its background loop too (decnet_operator_leader reads 0).
Killed by its pid with SIGKILL, the leader leaves a record that only its lifetime ends;
then the other takes over, and a decky created after the kill is planned.
"""

from __future__ import annotations

import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration import test_operator_harness as h

from decnet.kube import client as kclient

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PEERING_CRD = ROOT / "charts" / "decnet-operator" / "crds" / "kopf.dev_clusterkopfpeerings.yaml"
LIFETIME = 10  # seconds (the chart's operator.peering.lifetime; 60 by default)


def leader_gauge(port: int) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("decnet_operator_leader "):
                return float(line.split()[1])
    return None


def phase(obj: dict[str, Any] | None) -> str:
    return str((((obj or {}).get("status") or {}).get("lifecycle") or {}).get("phase", ""))


@pytest.fixture(scope="module")
def peering(kubectl: Any, crds: list[str]) -> Iterator[str]:
    """The chart's peering CRD and a ClusterKopfPeering of this module's own."""
    existed = kubectl("get", "crd", "clusterkopfpeerings.kopf.dev", check=False).returncode == 0
    kubectl("apply", "--server-side", "-f", str(PEERING_CRD))
    kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev"
    )
    name = f"leader-{uuid.uuid4().hex[:6]}"
    body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
    kubectl("create", "-f", "-", input=yaml.safe_dump(body))
    yield name
    kubectl("delete", "clusterkopfpeering", name, "--ignore-not-found", check=False)
    if not existed:
        kubectl("delete", "crd", "clusterkopfpeerings.kopf.dev", "--wait=false", check=False)


@pytest.fixture(scope="module")
def node(kubectl: Any) -> Iterator[str]:
    yield from h.leased_node(kubectl)


def replica(pod: str, peering: str, port: int) -> tuple[tuple[str, ...], dict[str, str]]:
    args = ("--no-webhook", "--no-standalone", "--peering", peering, "--metrics-port", str(port))
    env = {"POD_ID": pod, "DECNET_PEERING_LIFETIME": str(LIFETIME)}
    return args, env


def test_the_newest_replica_leads_and_the_other_takes_over_when_it_is_killed(
    identities: Any,
    kubectl: Any,
    kube_client: Any,
    namespace: str,
    node: str,
    peering: str,
) -> None:
    port_a, port_b = h.free_port(), h.free_port()
    args_a, env_a = replica("decnet-operator-a", peering, port_a)
    first = h.start(identities, kubectl, *args_a, **env_a)
    a = next(first)
    b: h.Operator | None = None
    try:
        h.wait_for(lambda: b"leadership.acquired" in a.log.read_bytes(), 30, "a leads", a)
        h.apply(kubectl, h.lan("office", namespace, subnet="10.81.0.0/24"))

        def planned(name: str) -> bool:
            return phase(h.get(kube_client, kclient.Decky, name, namespace)) == "Running"

        h.apply(kubectl, h.decky("ws-01", namespace, nodeName=node))
        h.wait_for(lambda: planned("ws-01"), 20, "ws-01 planned by a", a)
        assert leader_gauge(port_a) == 1

        # a newer replica: the higher priority (its start time), so it leads, a pauses
        args_b, env_b = replica("decnet-operator-b", peering, port_b)
        b = h.Operator(identities, *args_b, **env_b)
        b.start()
        h.wait_for(lambda: b"leadership.acquired" in b.log.read_bytes(), 30, "b leads", b)
        h.wait_for(lambda: leader_gauge(port_a) == 0, 15, "a paused (its loop too)", a)
        assert b"Pausing operations in favour of" in a.log.read_bytes()  # kopf's side
        assert leader_gauge(port_b) == 1
        h.apply(kubectl, h.decky("ws-02", namespace, nodeName=node))
        h.wait_for(lambda: planned("ws-02"), 20, "ws-02 planned by b", b)
        assert b'"ws-02' not in a.log.read_bytes().split(b"Pausing operations")[-1]

        # the leader dies without a word: its record ends with its lifetime, then a leads
        assert b.proc is not None
        killed_at = time.monotonic()
        b.stop(signal.SIGKILL)
        h.apply(kubectl, h.decky("ws-03", namespace, nodeName=node))
        h.wait_for(lambda: planned("ws-03"), LIFETIME + 30, "ws-03 planned after takeover", a)
        took = time.monotonic() - killed_at
        assert leader_gauge(port_a) == 1
        print(f"\ntakeover after SIGKILL of the leader: ws-03 planned {took:.1f} s later")
        assert took < LIFETIME + 30
    finally:
        if b is not None:
            b.stop()
        for _ in first:  # stops a (SIGTERM by pid)
            pass
