"""Mutation against a real control plane: a manual request and scheduled rotation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration import test_operator_harness as h

pytestmark = pytest.mark.integration

POOL = ["ssh", "http", "ftp", "telnet"]


@pytest.fixture(scope="module")
def node(kubectl: Any) -> Iterator[str]:
    yield from h.leased_node(kubectl)


@pytest.fixture(scope="module")
def operator(identities: Any, kubectl: Any, crds: list[str], node: str) -> Iterator[h.Operator]:
    # 0.05 minutes = 3 s: the global default interval, so scheduled rotation is observable.
    yield from h.start(identities, kubectl, "--no-webhook", DECNET_MUTATION_INTERVAL_MINUTES="0.05")


fetch = h.fetch_decky


def until(
    kube_client: Any, op: h.Operator, ns: str, name: str, pred: Any, what: str, timeout: float = 20
) -> dict[str, Any]:
    return dict(
        h.wait_for(lambda: (o := fetch(kube_client, ns, name)) and pred(o) and o, timeout, what, op)
    )


def record(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["status"].get("lifecycle") or {})


def deploy(
    kubectl: Any, kube_client: Any, op: h.Operator, ns: str, name: str, **spec: Any
) -> dict[str, Any]:
    h.apply(kubectl, h.decky(name, ns, **spec))
    obj = until(kube_client, op, ns, name, lambda o: record(o).get("phase") == "Running", "run")
    h.report(kube_client, obj)
    return until(
        kube_client,
        op,
        ns,
        name,
        lambda o: record(o).get("phase") == "Succeeded",
        "deploy succeeded",
    )


def test_manual_mutation_changes_services_only_once_per_token(
    kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    h.apply(kubectl, h.lan("office", namespace))
    before = deploy(
        kubectl,
        kube_client,
        operator,
        namespace,
        "m1",
        nodeName=node,
        hostname="FILES-01",
        services=["ssh"],
        mutation={"pool": POOL, "intervalMinutes": 600},
    )
    kubectl("annotate", "decky", "m1", "-n", namespace, "decnet.io/mutate-request=first")
    after = until(
        kube_client,
        operator,
        namespace,
        "m1",
        lambda o: o["status"].get("mutationRequest") == "first",
        "mutation",
    )
    last = after["status"]["lastMutation"]
    assert last["trigger"] == "Manual"
    assert last["from"] == ["ssh"] and last["to"] == after["status"]["services"]
    assert after["status"]["services"] != ["ssh"]
    assert set(after["status"]["services"]) <= set(POOL)
    assert 1 <= len(after["status"]["services"]) <= 3
    assert record(after)["operation"] == "Mutate" and record(after)["phase"] == "Running"
    for field in ("addresses", "node"):
        assert after["status"][field] == before["status"][field]
    assert after["status"]["plan"]["hostname"] == "FILES-01"
    assert after["status"]["planHash"] != before["status"]["planHash"]
    planned = sorted(s["name"] for s in after["status"]["plan"]["services"])
    assert planned == after["status"]["services"]

    h.report(kube_client, after)
    done = until(
        kube_client,
        operator,
        namespace,
        "m1",
        lambda o: record(o).get("phase") == "Succeeded",
        "mutate succeeded",
    )
    assert h.condition(done, "Ready")["status"] == "True"
    # The same token again (a re-apply of the annotation) is not a new request.
    kubectl(
        "annotate",
        "--overwrite",
        "decky",
        "m1",
        "-n",
        namespace,
        "decnet.io/mutate-request=first",
        "other=1",
    )
    import time

    time.sleep(3)
    assert fetch(kube_client, namespace, "m1")["status"]["services"] == done["status"]["services"]
    events = kubectl(
        "get", "events", "-n", namespace, "--field-selector", "reason=Mutated", "-o", "name"
    ).stdout.split()
    assert len(events) == 1


def test_scheduled_rotation_mutates_after_the_interval(
    kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    h.apply(kubectl, h.lan("office", namespace))
    before = deploy(
        kubectl,
        kube_client,
        operator,
        namespace,
        "s1",
        nodeName=node,
        services=["ssh"],
        mutation={"pool": POOL},
    )
    after = until(
        kube_client,
        operator,
        namespace,
        "s1",
        lambda o: (o["status"].get("lastMutation") or {}).get("trigger") == "Scheduled",
        "a scheduled mutation",
        timeout=30,
    )
    assert after["status"]["services"] != before["status"]["services"]
    assert after["status"]["addresses"] == before["status"]["addresses"]
    assert record(after)["operation"] == "Mutate"


def test_a_per_decky_interval_overrides_the_global_default(
    kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    h.apply(kubectl, h.lan("office", namespace))
    done = deploy(
        kubectl,
        kube_client,
        operator,
        namespace,
        "z1",
        nodeName=node,
        services=["ssh"],
        mutation={"pool": POOL, "intervalMinutes": 600},
    )
    import time

    time.sleep(6)
    again = fetch(kube_client, namespace, "z1")
    assert again["metadata"]["resourceVersion"] == done["metadata"]["resourceVersion"]
