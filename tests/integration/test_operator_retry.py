"""No lost reconcile: a reconcile that fails at the API server is retried by the operator's
own work queue, with no other event to bring it back.

The failure is real, not mocked: a ValidatingAdmissionPolicy refuses the AddressClaim
the operator creates for one named holder, so the very first reconcile of that Decky
(or LAN) fails before it has written anything. The policy is then deleted, which sends
no event for the object: only the operator's retry can finish it.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration import test_operator_harness as h

from decnet.kube import client as kclient

pytestmark = pytest.mark.integration

REFUSAL = "refused by the test: no claim for this holder yet"


@pytest.fixture(scope="module")
def node(kubectl: Any) -> Iterator[str]:
    yield from h.leased_node(kubectl)


@pytest.fixture(scope="module")
def operator(identities: Any, kubectl: Any, crds: list[str], node: str) -> Iterator[h.Operator]:
    yield from h.start(identities, kubectl, DECNET_MUTATION_INTERVAL_MINUTES="0")


@contextlib.contextmanager
def claims_refused(kubectl: Any, op: h.Operator, namespace: str, holder: str) -> Iterator[None]:
    """Inside, the API server refuses every AddressClaim for `holder`; on leaving, the
    operator has been refused at least once and the policy is gone."""
    name = f"it-refuse-{uuid.uuid4().hex[:6]}"
    items = h.refusing_policy(
        name,
        namespace,
        "addressclaims",
        "CREATE",
        f"object.spec.holder.name != '{holder}'",
        REFUSAL,
    )
    objects = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    kubectl("apply", "-f", "-", input=objects)
    # The API server loads the policy asynchronously: prove it is in force before the test.
    probe_claim = {
        "apiVersion": "decnet.io/v1alpha1",
        "kind": "AddressClaim",
        "metadata": {"name": f"probe-{uuid.uuid4().hex[:6]}", "namespace": namespace},
        "spec": {"address": "10.99.0.0/24", "holder": {"kind": "LAN", "name": holder, "uid": "x"}},
    }

    def in_force() -> bool:
        result = kubectl("create", "-f", "-", input=json.dumps(probe_claim), check=False)
        if result.returncode == 0:
            kubectl("delete", "addressclaim", probe_claim["metadata"]["name"], "-n", namespace)
            return False
        return REFUSAL in result.stderr

    h.wait_for(in_force, 30, "the refusing policy in force")
    seen = op.log.read_text(errors="replace").count(REFUSAL)
    try:
        yield
        h.wait_for(
            lambda: op.log.read_text(errors="replace").count(REFUSAL) > seen,
            30,
            "the operator's claim refused",
            op,
        )
    finally:
        kubectl("delete", "-f", "-", "--ignore-not-found", input=objects)


def test_a_decky_whose_first_reconcile_fails_still_goes_ready(
    kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    h.apply(kubectl, h.lan("office", namespace, subnet="10.78.0.0/24"))

    def lan_ready() -> Any:
        return h.condition(h.get(kube_client, kclient.LAN, "office", namespace), "Ready")

    h.wait_for(lambda: lan_ready().get("status") == "True", 30, "the LAN ready", operator)
    with claims_refused(kubectl, operator, namespace, "flaky"):
        h.apply(kubectl, h.decky("flaky", namespace, nodeName=node))
    obj = h.fetch_decky(kube_client, namespace, "flaky")
    assert not obj["status"].get("lifecycle"), "the first reconcile wrote before it failed"
    # Nothing touches the decky from here on: only the operator's retry can plan it.
    planned = h.wait_for(
        lambda: (
            (o := h.fetch_decky(kube_client, namespace, "flaky"))["status"].get("planHash") and o
        ),
        30,
        "the decky planned by a retry",
        operator,
    )
    assert planned["status"]["addresses"][0]["ip"].startswith("10.78.0.")
    h.report(kube_client, planned)  # the agent converges it
    ready = h.wait_for(
        lambda: (
            h.condition(h.fetch_decky(kube_client, namespace, "flaky"), "Ready").get("status")
            == "True"
        ),
        30,
        "the decky Ready",
        operator,
    )
    assert ready
    final = h.fetch_decky(kube_client, namespace, "flaky")
    assert final["status"]["lifecycle"]["phase"] == "Succeeded"
    # kopf keeps nothing of its own on the object: no progress, diff-base or finalizer
    assert final["metadata"]["finalizers"] == ["decnet.io/teardown"]
    assert not [a for a in final["metadata"].get("annotations") or {} if "kopf" in a]


def test_a_lan_whose_first_reconcile_fails_still_gets_its_subnet(
    kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str
) -> None:
    with claims_refused(kubectl, operator, namespace, "shaky"):
        h.apply(kubectl, h.lan("shaky", namespace, subnet="10.79.0.0/24"))

    def subnet() -> Any:
        obj = h.get(kube_client, kclient.LAN, "shaky", namespace) or {}
        return (obj.get("status") or {}).get("subnet")

    assert h.wait_for(subnet, 30, "the LAN's subnet held by a retry", operator) == "10.79.0.0/24"
