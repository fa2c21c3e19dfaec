"""The operator against a real control plane: schedule, allocate, lifecycle, merge, prune.

The agent is simulated only where it reports (a Lease, status.agent under
the decnet-agent field manager); everything else is the real operator
process and the real API server.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration import test_operator_harness as h

from decnet.kube import client as kclient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(kubectl: Any) -> Iterator[str]:
    yield from h.leased_node(kubectl)


@pytest.fixture(scope="module")
def operator(identities: Any, kubectl: Any, crds: list[str], node: str) -> Iterator[h.Operator]:
    yield from h.start(
        identities, kubectl, DECNET_MUTATION_INTERVAL_MINUTES="0", DECNET_NODE_GONE_SECONDS="3"
    )


@pytest.fixture
def office(kubectl: Any, namespace: str, operator: h.Operator) -> str:
    h.apply(kubectl, h.lan("office", namespace, subnet="10.77.0.0/24"))
    return namespace


def wait_decky(
    kube_client: Any, op: h.Operator, ns: str, name: str, pred: Any, what: str, timeout: float = 20
) -> dict[str, Any]:
    def probe() -> Any:
        obj = h.get(kube_client, kclient.Decky, name, ns)
        if obj is None:
            return None
        obj.setdefault("status", {})
        return obj if pred(obj) else None

    return dict(h.wait_for(probe, timeout, f"{ns}/{name}: {what}", op))


def phase(obj: dict[str, Any]) -> str:
    return str(((obj.get("status") or {}).get("lifecycle") or {}).get("phase", ""))


def test_one_decky_is_scheduled_addressed_and_succeeds_when_the_agent_reports(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str, node: str
) -> None:
    h.apply(kubectl, h.decky("ws-01", office, nodeName=node, services=["ssh", "http"]))
    obj = wait_decky(
        kube_client, operator, office, "ws-01", lambda o: phase(o) == "Running", "lifecycle running"
    )
    status = obj["status"]
    assert status["node"] == node
    assert obj["metadata"]["labels"]["decnet.io/node"] == node
    assert "decnet.io/teardown" in obj["metadata"]["finalizers"]
    ip = status["addresses"][0]["ip"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.77.0.0/24")
    assert ip not in ("10.77.0.0", "10.77.0.1", "10.77.0.255")
    assert status["plan"]["hash"] == status["planHash"]
    assert status["lifecycle"]["operation"] == "Deploy"
    assert h.condition(obj, "Scheduled")["status"] == "True"
    claims = kubectl("get", "addressclaims.decnet.io", "-n", office, "-o", "name").stdout
    assert f"ip.office.{ip.replace('.', '-')}" in claims

    h.report(kube_client, obj)
    done = wait_decky(
        kube_client,
        operator,
        office,
        "ws-01",
        lambda o: phase(o) == "Succeeded",
        "lifecycle succeeded",
    )
    assert h.condition(done, "Ready")["status"] == "True"
    assert h.condition(done, "Reconciling")["status"] == "False"
    assert all(c["observedGeneration"] == 1 for c in done["status"]["conditions"])
    waited = kubectl("wait", "--for=condition=Ready", "decky/ws-01", "-n", office, "--timeout=5s")
    assert "condition met" in waited.stdout
    events = kubectl("get", "events", "-n", office, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"DeployRunning", "DeploySucceeded"} <= reasons


def test_idle_decky_gets_no_writes(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str, node: str
) -> None:
    h.apply(kubectl, h.decky("idle", office, nodeName=node))
    obj = wait_decky(
        kube_client, operator, office, "idle", lambda o: phase(o) == "Running", "running"
    )
    h.report(kube_client, obj)
    done = wait_decky(
        kube_client, operator, office, "idle", lambda o: phase(o) == "Succeeded", "succeeded"
    )
    import time

    time.sleep(4)  # several ticks of the operator's loop
    again = h.get(kube_client, kclient.Decky, "idle", office)
    assert again is not None
    assert again["metadata"]["resourceVersion"] == done["metadata"]["resourceVersion"]


def test_second_decky_merges_and_leaves_the_first_untouched(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str, node: str
) -> None:
    h.apply(kubectl, h.decky("a", office, nodeName=node))
    first = wait_decky(
        kube_client, operator, office, "a", lambda o: phase(o) == "Running", "running"
    )
    h.report(kube_client, first)
    first = wait_decky(
        kube_client, operator, office, "a", lambda o: phase(o) == "Succeeded", "succeeded"
    )
    h.apply(kubectl, h.decky("b", office, nodeName=node))
    second = wait_decky(
        kube_client, operator, office, "b", lambda o: phase(o) == "Running", "running"
    )
    assert second["status"]["addresses"] != first["status"]["addresses"]
    after = h.get(kube_client, kclient.Decky, "a", office)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert after["status"] == first["status"]


def test_prune_removes_deckies_left_out_once_the_agent_reports_removed(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str, node: str
) -> None:
    fleet = {"decnet.io/fleet": "f1"}
    h.apply(kubectl, *[h.decky(n, office, nodeName=node, labels=fleet) for n in ("p1", "p2", "p3")])
    for n in ("p1", "p2", "p3"):
        obj = wait_decky(kube_client, operator, office, n, lambda o: phase(o) == "Running", "run")
        h.report(kube_client, obj)
    kept = h.decky("p1", office, nodeName=node, labels=fleet)
    pruned = kubectl(
        "apply",
        "--prune",
        "-l",
        "decnet.io/fleet=f1",
        "--prune-allowlist=decnet.io/v1alpha1/Decky",
        "-n",
        office,
        "-f",
        "-",
        input=h.yaml.safe_dump(kept),
    )
    assert "p2" in pruned.stdout and "pruned" in pruned.stdout
    for n in ("p2", "p3"):
        obj = wait_decky(
            kube_client,
            operator,
            office,
            n,
            lambda o: (o["status"].get("lifecycle") or {}).get("operation") == "Teardown",
            "teardown record",
        )
        assert h.get(kube_client, kclient.Decky, n, office) is not None  # finalizer holds it
        h.report(kube_client, obj, state="Removed")
        h.wait_for(
            lambda n=n: h.get(kube_client, kclient.Decky, n, office) is None,
            20,
            f"{n} gone",
            operator,
        )
    assert h.get(kube_client, kclient.Decky, "p1", office) is not None
    claims = kubectl("get", "addressclaims.decnet.io", "-n", office, "-o", "json").stdout
    holders = {c["spec"]["holder"]["name"] for c in json.loads(claims)["items"]}
    assert "p2" not in holders and "p3" not in holders and "p1" in holders


def test_clashing_pinned_ip_is_rejected_with_409_naming_the_holder(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str, node: str
) -> None:
    h.apply(
        kubectl,
        h.decky("ws-02", office, nodeName=node, networks=[{"lan": "office", "ip": "10.77.0.7"}]),
    )
    wait_decky(
        kube_client,
        operator,
        office,
        "ws-02",
        lambda o: (o["status"].get("addresses") or [{}])[0].get("ip") == "10.77.0.7",
        "pinned address published",
    )
    result = h.apply(
        kubectl,
        h.decky("ws-03", office, nodeName=node, networks=[{"lan": "office", "ip": "10.77.0.7"}]),
        check=False,
    )
    assert result.returncode != 0
    assert "10.77.0.7 on LAN office is held by decky ws-02" in result.stderr
    from lightkube import ApiError

    clash = h.decky("ws-04", office, nodeName=node, networks=[{"lan": "office", "ip": "10.77.0.7"}])
    with pytest.raises(ApiError) as err:
        kube_client.create(kclient.Decky.from_dict(clash), namespace=office)
    assert err.value.status.code == 409
    assert "held by decky ws-02" in str(err.value.status.message)
    assert h.get(kube_client, kclient.Decky, "ws-03", office) is None


def test_invalid_references_are_rejected_with_422(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str, node: str
) -> None:
    cases = {
        "unknown service": (h.decky("x1", office, services=["nosuch"]), "unknown service"),
        "singleton": (h.decky("x2", office, services=["sniffer"]), "fleet singleton"),
        "missing LAN": (h.decky("x3", office, networks=[{"lan": "nowhere"}]), "does not exist"),
    }
    for what, (obj, text) in cases.items():
        result = h.apply(kubectl, obj, check=False)
        assert result.returncode != 0, what
        assert text in result.stderr, (what, result.stderr)
    from lightkube import ApiError

    with pytest.raises(ApiError) as err:
        kube_client.create(kclient.Decky.from_dict(cases["unknown service"][0]), namespace=office)
    assert err.value.status.code == 422
    overlapping = h.apply(kubectl, h.lan("other", office, subnet="10.77.0.128/25"), check=False)
    assert overlapping.returncode != 0 and "overlaps" in overlapping.stderr


def test_twenty_concurrent_deckies_get_distinct_addresses(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str, node: str
) -> None:
    names = [f"c{i:02d}" for i in range(20)]

    def create(n: str) -> Any:
        return h.apply(kubectl, h.decky(n, office, nodeName=node))

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(create, names))
    ips = []
    for n in names:
        obj = wait_decky(
            kube_client,
            operator,
            office,
            n,
            lambda o: bool(o["status"].get("addresses")),
            "an address",
            60,
        )
        ips.append(obj["status"]["addresses"][0]["ip"])
    assert len(set(ips)) == 20, sorted(ips)
    claims = json.loads(
        kubectl("get", "addressclaims.decnet.io", "-n", office, "-o", "json").stdout
    )["items"]
    held = sorted(c["spec"]["address"] for c in claims if c["spec"].get("lan") == "office")
    assert held == sorted(ips)


def test_no_live_agent_keeps_the_decky_pending_until_a_lease_appears(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str
) -> None:
    absent = h.node_name()
    h.apply(kubectl, h.decky("late", office, nodeName=absent))
    obj = wait_decky(
        kube_client,
        operator,
        office,
        "late",
        lambda o: h.condition(o, "Scheduled").get("status") == "False",
        "Scheduled=False",
    )
    assert h.condition(obj, "Scheduled")["reason"] == "NoLiveAgent"
    assert phase(obj) == "Pending"
    h.lease(kubectl, absent)
    try:
        obj = wait_decky(
            kube_client,
            operator,
            office,
            "late",
            lambda o: phase(o) == "Running",
            "running once the lease exists",
        )
        assert obj["status"]["node"] == absent
    finally:
        h.drop_lease(kubectl, absent)


def test_a_lost_lease_turns_ready_unknown(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str
) -> None:
    short = h.node_name()
    h.lease(kubectl, short, duration=3600)
    try:
        h.apply(kubectl, h.decky("lost", office, nodeName=short))
        obj = wait_decky(
            kube_client, operator, office, "lost", lambda o: phase(o) == "Running", "running"
        )
        h.report(kube_client, obj)
        wait_decky(
            kube_client,
            operator,
            office,
            "lost",
            lambda o: h.condition(o, "Ready").get("status") == "True",
            "Ready",
        )
        h.lease(kubectl, short, age_seconds=100, duration=40)  # the agent stopped renewing
        obj = wait_decky(
            kube_client,
            operator,
            office,
            "lost",
            lambda o: h.condition(o, "Ready").get("status") == "Unknown",
            "Ready=Unknown",
        )
        assert h.condition(obj, "Ready")["reason"] == "AgentLost"
    finally:
        h.drop_lease(kubectl, short)


def test_the_operator_never_owns_spec(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str, node: str
) -> None:
    h.apply(kubectl, h.decky("mf", office, nodeName=node, services=["ssh"]))
    obj = wait_decky(kube_client, operator, office, "mf", lambda o: phase(o) == "Running", "run")
    h.report(kube_client, obj)
    wait_decky(kube_client, operator, office, "mf", lambda o: phase(o) == "Succeeded", "done")
    kubectl("annotate", "decky", "mf", "-n", office, "decnet.io/mutate-request=t1")
    wait_decky(
        kube_client,
        operator,
        office,
        "mf",
        lambda o: o["status"].get("mutationRequest") == "t1",
        "mutation handled",
    )
    raw = json.loads(
        kubectl("get", "decky", "mf", "-n", office, "-o", "json", "--show-managed-fields").stdout
    )
    spec_owners = {
        m["manager"]
        for m in raw["metadata"]["managedFields"]
        if "f:spec" in json.dumps(m.get("fieldsV1", {}))
    }
    assert spec_owners == {"kubectl-client-side-apply"}, spec_owners
    operator_entries = [
        m for m in raw["metadata"]["managedFields"] if m["manager"] == "decnet-operator"
    ]
    assert operator_entries
    for m in operator_entries:
        fields = m.get("fieldsV1", {})
        assert "f:spec" not in fields
        if m.get("subresource") != "status":
            assert set(fields) <= {"f:metadata"}


def test_a_never_scheduled_decky_is_released_at_once(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str
) -> None:
    h.apply(kubectl, h.decky("nowhere", office, nodeName=h.node_name()))
    wait_decky(kube_client, operator, office, "nowhere", lambda o: phase(o) == "Pending", "pending")
    kubectl("delete", "decky", "nowhere", "-n", office, "--wait=false")
    h.wait_for(
        lambda: h.get(kube_client, kclient.Decky, "nowhere", office) is None,
        20,
        "the unscheduled decky gone",
        operator,
    )


def test_a_decky_on_a_gone_node_is_released_after_the_grace_period(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str
) -> None:
    doomed = h.node_name()
    h.lease(kubectl, doomed, duration=3600)
    try:
        h.apply(kubectl, h.decky("orphan", office, nodeName=doomed))
        obj = wait_decky(
            kube_client, operator, office, "orphan", lambda o: phase(o) == "Running", "running"
        )
        h.report(kube_client, obj)
        wait_decky(
            kube_client, operator, office, "orphan", lambda o: phase(o) == "Succeeded", "succeeded"
        )
    finally:
        h.drop_lease(kubectl, doomed)  # the node and its agent are gone for good
    kubectl("delete", "decky", "orphan", "-n", office, "--wait=false")
    h.wait_for(
        lambda: h.get(kube_client, kclient.Decky, "orphan", office) is None,
        30,
        "release after DECNET_NODE_GONE_SECONDS",
        operator,
    )
    events = json.loads(kubectl("get", "events", "-n", office, "-o", "json").stdout)["items"]
    teardown = [
        e
        for e in events
        if e["involvedObject"]["name"] == "orphan" and e["reason"] == "TeardownSucceeded"
    ]
    assert teardown and "gone" in teardown[0]["message"]


def test_a_decky_with_the_reschedule_policy_moves_off_a_lost_node_with_its_address(
    kubectl: Any, kube_client: Any, operator: h.Operator, office: str, node: str
) -> None:
    assert node  # a second live node to move to
    lost_node = h.node_name()
    h.lease(kubectl, lost_node, duration=3600)
    try:
        # placed on the node first (pinned), then unpinned with the Reschedule policy
        h.apply(kubectl, h.decky("roamer", office, nodeName=lost_node))
        h.apply(kubectl, h.decky("waiter", office, nodeName=lost_node))
        for name in ("roamer", "waiter"):
            obj = wait_decky(
                kube_client, operator, office, name, lambda o: phase(o) == "Running", "running"
            )
            h.report(kube_client, obj)
            wait_decky(
                kube_client, operator, office, name, lambda o: phase(o) == "Succeeded", "done"
            )
        before = h.fetch_decky(kube_client, office, "roamer")
        h.apply(
            kubectl,
            h.decky("roamer", office, nodeLoss={"policy": "Reschedule", "graceSeconds": 5}),
        )
        refused = h.apply(
            kubectl,
            h.decky("waiter", office, nodeName=lost_node, nodeLoss={"policy": "Reschedule"}),
            check=False,
        )
        assert refused.returncode != 0
        assert "cannot move a decky pinned with spec.nodeName" in refused.stderr

        h.lease(kubectl, lost_node, age_seconds=100, duration=40)  # the agent stopped renewing
        for name in ("roamer", "waiter"):
            obj = wait_decky(
                kube_client,
                operator,
                office,
                name,
                lambda o: h.condition(o, "Ready").get("reason") == "AgentLost",
                "AgentLost",
            )
            assert obj["status"]["node"] == lost_node
        moved = wait_decky(
            kube_client,
            operator,
            office,
            "roamer",
            lambda o: o["status"].get("node") not in (None, lost_node),
            "rescheduled to a live node",
        )
        status = moved["status"]
        assert moved["metadata"]["labels"]["decnet.io/node"] == status["node"]
        assert status["addresses"] == before["status"]["addresses"]
        assert status["lifecycle"]["operation"] == "Reschedule"
        assert status["lifecycle"]["phase"] == "Running"
        # why it moved, for `kubectl describe` / `kubectl get events`
        events = json.loads(kubectl("get", "events", "-n", office, "-o", "json").stdout)
        why = [e for e in events["items"] if e["reason"] == "Rescheduled"]
        assert why and why[0]["involvedObject"]["name"] == "roamer"
        assert lost_node in why[0]["message"] and status["node"] in why[0]["message"]
        # the old node's converged report does not make it Ready; the new node's does
        assert h.condition(moved, "Ready")["status"] == "False"
        h.report(kube_client, moved)
        done = wait_decky(
            kube_client,
            operator,
            office,
            "roamer",
            lambda o: phase(o) == "Succeeded",
            "reschedule succeeded",
        )
        assert h.condition(done, "Ready")["reason"] == "Converged"
        events = json.loads(kubectl("get", "events", "-n", office, "-o", "json").stdout)
        reasons = {e["reason"] for e in events["items"]}
        assert {"RescheduleRunning", "RescheduleSucceeded"} <= reasons
        # the Wait decky stays bound to its node
        waiter = h.fetch_decky(kube_client, office, "waiter")
        assert waiter["status"]["node"] == lost_node
        assert h.condition(waiter, "Ready")["reason"] == "AgentLost"
    finally:
        h.drop_lease(kubectl, lost_node)
