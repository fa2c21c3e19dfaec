"""An operator killed mid-operation and restarted leaves nothing stuck in running."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration import test_operator_harness as h

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(kubectl: Any) -> Iterator[str]:
    yield from h.leased_node(kubectl)


fetch = h.fetch_decky


def lc(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["status"].get("lifecycle") or {})


def test_restart_resumes_or_fails_open_records(
    identities: Any, kubectl: Any, kube_client: Any, crds: list[str], namespace: str, node: str
) -> None:
    ops = h.start(identities, kubectl, "--no-webhook", DECNET_MUTATION_INTERVAL_MINUTES="0")
    op = next(ops)
    try:
        h.apply(kubectl, h.lan("office", namespace))
        h.apply(kubectl, *[h.decky(n, namespace, nodeName=node) for n in ("r1", "r2", "r3")])
        for n in ("r1", "r2", "r3"):
            h.wait_for(
                lambda n=n: lc(fetch(kube_client, namespace, n)).get("phase") == "Running",
                20,
                f"{n} running",
                op,
            )
        running = {n: fetch(kube_client, namespace, n) for n in ("r1", "r2", "r3")}

        op.stop(signal.SIGKILL)  # mid-operation: three records are running
        # While it is down: the agent finishes r1, the user changes r2, r3 sees nothing.
        h.report(kube_client, running["r1"])
        h.apply(kubectl, h.decky("r2", namespace, nodeName=node, services=["ssh", "http"]))

        op.start()
        r1 = h.wait_for(
            lambda: (
                (o := fetch(kube_client, namespace, "r1")) and lc(o)["phase"] == "Succeeded" and o
            ),
            20,
            "r1 resumed to succeeded",
            op,
        )
        assert lc(r1)["id"] == lc(running["r1"])["id"]  # resumed, not restarted

        r2 = h.wait_for(
            lambda: (
                (o := fetch(kube_client, namespace, "r2"))
                and lc(o)["id"] != lc(running["r2"])["id"]
                and o
            ),
            20,
            "r2 got a new record",
            op,
        )
        old = [r for r in r2["status"]["history"] if r["id"] == lc(running["r2"])["id"]][0]
        assert old["phase"] == "Failed"
        assert old["message"] == "operator restarted during operation"
        assert lc(r2)["operation"] == "Update" and lc(r2)["phase"] == "Running"

        r3 = fetch(kube_client, namespace, "r3")
        assert lc(r3)["id"] == lc(running["r3"])["id"] and lc(r3)["phase"] == "Running"
        # The agent's reports complete everything still open: nothing stays running.
        h.report(kube_client, r2)
        h.report(kube_client, r3)
        for n in ("r1", "r2", "r3"):
            h.wait_for(
                lambda n=n: lc(fetch(kube_client, namespace, n)).get("phase") == "Succeeded",
                20,
                f"{n} succeeded",
                op,
            )
    finally:
        ops.close()
