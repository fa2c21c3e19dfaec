"""A reconcile that fails is retried: no decky is left without status until some
unrelated event comes along.

The failure is real, not mocked: a ValidatingAdmissionPolicy refuses the operator's
status writes for one labelled decky, so the operator's first reconciles of it fail
at the API server. Lifting the policy sends no event for the decky; only the
operator's own retry can bring it to Ready.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from harness import Cluster, wait_for
from tests.integration import test_operator_harness

LABEL = "e2e.decnet.io/refuse-status"


def refusing_policy(name: str, namespace: str) -> list[dict[str, Any]]:
    return test_operator_harness.refusing_policy(
        name,
        namespace,
        "deckies/status",
        "UPDATE",
        f"!has(object.metadata.labels) || !('{LABEL}' in object.metadata.labels)",
        "refused by the test: status writes fail for now",
    )


@contextlib.contextmanager
def status_writes_refused(cluster: Cluster) -> Iterator[Callable[[], None]]:
    """While inside, the API server refuses the operator's status writes for every decky
    labelled LABEL in the test's namespace; yields a wait for the next refusal."""
    name = f"e2e-refuse-{uuid.uuid4().hex[:6]}"
    objects = json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": refusing_policy(name, cluster.ns)}
    )
    cluster.kubectl("apply", "-f", "-", input=objects)
    time.sleep(2)  # the API server loads the policy
    seen = cluster.operator.tail(100000).count("refused by the test")

    def wait_refused() -> None:
        def refused() -> bool:
            return cluster.operator.tail(100000).count("refused by the test") > seen

        wait_for(refused, 60, "the operator's status write refused", cluster.operator)

    try:
        yield wait_refused
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=objects)


def test_a_decky_whose_first_reconciles_fail_still_goes_ready(cluster: Cluster) -> None:
    with status_writes_refused(cluster) as wait_refused:
        decky = cluster.decky("flaky", ["http"])
        decky["metadata"]["labels"] = {LABEL: "yes"}
        cluster.apply(cluster.lan(), decky)
        wait_refused()
        assert not cluster.status("flaky").get("lifecycle"), "a status write got through"
    # nothing touches the decky from here on: only the operator's retry can finish it
    cluster.wait_ready(["flaky"], timeout=120)
    assert cluster.status("flaky")["lifecycle"]["phase"] == "Succeeded"


def test_a_mutation_request_whose_reconcile_fails_is_not_lost(cluster: Cluster) -> None:
    """The request is one watch event; if its reconcile fails, nothing else asks again."""
    cluster.apply(cluster.lan(), cluster.decky("steady", ["http"], mutation={"pool": ["ssh"]}))
    cluster.wait_ready(["steady"])
    before = cluster.status("steady")
    with status_writes_refused(cluster) as wait_refused:
        cluster.kubectl("label", "decky", "steady", "-n", cluster.ns, f"{LABEL}=yes")
        request = f"decnet.io/mutate-request={int(time.time())}"
        cluster.kubectl("annotate", "decky", "steady", "-n", cluster.ns, request, "--overwrite")
        wait_refused()

    def mutated() -> bool:
        status = cluster.status("steady")
        return (status.get("lastMutation") or {}).get("trigger") == "Manual" and (
            status.get("lifecycle") or {}
        ).get("phase") == "Succeeded"

    # the label stays and nothing else touches the decky: only a retry finishes the request
    wait_for(mutated, 90, "the requested mutation done", cluster.operator)
    assert cluster.status("steady")["services"] != before["services"]
