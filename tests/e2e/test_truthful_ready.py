"""Ready only for what is in place: a service that exits at once is never reported Ready.

The operator and the agent run as real processes against the real API server and
dockerd (the e2e fixtures); the Ready condition is the operator's, from the agent's
report. A crashing service must show up as Ready=False with the agent's reason and the
exit code, and the agent must retry it with backoff, not restart it in a hot loop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from harness import Cluster, wait_for

EXIT_CODE = 3
WINDOW = 20.0  # seconds over which container starts are counted


@pytest.fixture
def crashing_template(cluster: Cluster) -> Iterator[str]:
    """A cluster-scoped ServiceTemplate whose container exits with EXIT_CODE at once."""
    name = f"crashy-{uuid.uuid4().hex[:6]}"
    cluster.apply(
        {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "ServiceTemplate",
            "metadata": {"name": name},
            "spec": {
                "image": "decnet-test/busybox:latest",
                "description": "Exits at once: a service whose command fails.",
                "ports": [{"port": 9, "protocol": "tcp"}],
                "command": ["sh", "-c", f"exit {EXIT_CODE}"],
            },
        }
    )
    yield name
    cluster.kubectl("delete", "servicetemplate", name, "--wait=false", check=False)


def _ready(cluster: Cluster, decky: str) -> dict[str, Any] | None:
    for c in cluster.status(decky).get("conditions") or []:
        if c["type"] == "Ready":
            return dict(c)
    return None


def _events(cluster: Cluster, decky: str, since: float, until: float) -> list[dict[str, Any]]:
    labels = [f"decnet.io/namespace={cluster.ns}", f"decnet.io/decky={decky}"]
    stream = cluster.docker.api.events(
        since=int(since),
        until=int(until) + 1,
        filters={"type": "container", "label": labels},
        decode=True,
    )
    return [e for e in stream if since <= e.get("time", 0) <= until + 1]


def test_a_service_that_exits_at_once_is_not_ready_and_is_retried_with_backoff(
    cluster: Cluster, crashing_template: str
) -> None:
    started = time.time()
    cluster.apply(cluster.lan(), cluster.decky("crash-01", ["http", crashing_template]))

    def not_ready_for_the_service() -> bool:
        ready = _ready(cluster, "crash-01") or {}
        return (ready.get("status"), ready.get("reason")) == ("False", "ServiceExited")

    wait_for(not_ready_for_the_service, 120, "Ready=False ServiceExited", cluster.agent)
    ready = _ready(cluster, "crash-01") or {}
    assert crashing_template in ready["message"]
    assert f"exit code {EXIT_CODE}" in ready["message"]
    status = cluster.status("crash-01")
    assert status["agent"]["state"] == "Failed"
    assert status["agent"]["reason"] == "ServiceExited"
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "ServiceExited")

    # It never turns Ready, and the crashing container is restarted with backoff: after
    # the first few quick retries, a 20 s window sees at most a few starts (the resync
    # alone, every 5 s here, would start it 4 times; a hot loop dozens).
    time.sleep(8)
    window_start = time.time()
    while time.time() < window_start + WINDOW:
        assert (_ready(cluster, "crash-01") or {}).get("status") == "False"
        time.sleep(1)
    window_end = time.time()
    window = _events(cluster, "crash-01", window_start, window_end)
    starts = [e for e in window if e.get("Action") == "start"]
    everything = _events(cluster, "crash-01", started - 1, window_end)
    creates = [e for e in everything if e.get("Action") == "create"]
    all_starts = [e for e in everything if e.get("Action") == "start"]
    print(
        f"crash-01: {len(all_starts)} container starts in {window_end - started:.0f} s, "
        f"{len(starts)} in the last {WINDOW:.0f} s window, {len(creates)} creates"
    )
    assert len(starts) <= 3, [e.get("Actor", {}).get("Attributes", {}).get("name") for e in starts]
    # restarted in place, never recreated: base, http and the crashing service, once each
    assert len(creates) == 3
    # the healthy sibling stays up throughout
    http = next(
        c for c in cluster.containers("crash-01") if c.labels.get("decnet.io/service") == "http"
    )
    http.reload()
    assert http.status == "running"
