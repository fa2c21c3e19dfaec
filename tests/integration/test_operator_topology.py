"""Topology validation in a live cluster: every rule reports its stable code.

The operator runs without its webhook here so that objects admission would
refuse (overlapping subnets, a clashing pinned IP) can exist and the
topology's graph validation is what reports them.
"""

from __future__ import annotations

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
    yield from h.start(identities, kubectl, "--no-webhook", DECNET_MUTATION_INTERVAL_MINUTES="0")


def topo(name: str, ns: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "decnet.io/v1alpha1",
        "kind": "Topology",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodeName": node},
    }


def net(lan: str, ip: str | None = None) -> dict[str, str]:
    return {"lan": lan, "ip": ip} if ip else {"lan": lan}


# code -> (LANs as (name, spec), deckies as (name, spec, labels)) of one topology "t".
CASES: dict[str, tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]] = {
    "DMZ_MISSING": ([("a", {})], [("d1", {"networks": [net("a")]})]),
    "DMZ_MULTIPLE": (
        [("a", {"dmz": True}), ("b", {"dmz": True})],
        [("d1", {"networks": [net("a"), net("b")]})],
    ),
    "DMZ_ORPHAN": (
        [("a", {"dmz": True}), ("b", {})],
        [("d1", {"networks": [net("a")]}), ("d2", {"networks": [net("b")]})],
    ),
    "DECKY_ORPHAN": (
        [("a", {"dmz": True})],
        [("d1", {"networks": [net("a")]}), ("d2", {"networks": [net("outside")], "_label": True})],
    ),
    "NAME_DUPLICATE": (
        [("a", {"dmz": True})],
        [
            ("d1", {"networks": [net("a")], "hostname": "SAME"}),
            ("d2", {"networks": [net("a")], "hostname": "SAME"}),
        ],
    ),
    "IP_COLLISION": (
        [("a", {"dmz": True, "subnet": "10.61.0.0/24"})],
        [
            ("d1", {"networks": [net("a", "10.61.0.9")]}),
            ("d2", {"networks": [net("a", "10.61.0.9")]}),
        ],
    ),
    "IP_OUT_OF_SUBNET": (
        [("a", {"dmz": True, "subnet": "10.62.0.0/24"})],
        [("d1", {"networks": [net("a", "10.99.0.9")]})],
    ),
    "IP_UNKNOWN_LAN": (
        [("a", {"dmz": True})],
        [("d1", {"networks": [net("a"), net("outside")]})],
    ),
    "SUBNET_OVERLAP": (
        [("a", {"dmz": True, "subnet": "10.63.0.0/24"}), ("b", {"subnet": "10.63.0.0/25"})],
        [("d1", {"networks": [net("a"), net("b")]})],
    ),
    "UNKNOWN_SERVICE": (
        [("a", {"dmz": True})],
        [("d1", {"networks": [net("a")], "services": ["nosuch"]})],
    ),
    "SERVICE_CONFIG_INVALID": (
        [("a", {"dmz": True})],
        [("d1", {"networks": [net("a")], "serviceConfig": {"http": {"port": 80}}})],
    ),
    "GATEWAY_NOT_IN_DMZ": (
        [("a", {"dmz": True}), ("b", {})],
        [("d1", {"networks": [net("b"), net("a")], "forwardsL3": True})],
    ),
}


def status_of(kube_client: Any, ns: str, name: str) -> dict[str, Any]:
    obj = h.get(kube_client, kclient.Topology, name, ns) or {}
    return dict(obj.get("status") or {})


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_rule_is_reported_with_its_code(
    code: str, kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    lans, deckies = CASES[code]
    objs: list[dict[str, Any]] = [topo("t", namespace, node), h.lan("outside", namespace)]
    for name, spec in lans:
        objs.append(h.lan(name, namespace, topology="t", **spec))
    for name, spec in deckies:
        spec = dict(spec)
        labels = {"decnet.io/topology": "t"} if spec.pop("_label", False) else None
        objs.append(h.decky(name, namespace, labels=labels, **spec))
    h.apply(kubectl, *objs)
    status = h.wait_for(
        lambda: (
            (s := status_of(kube_client, namespace, "t"))
            and code in {i["code"] for i in s.get("issues") or ()}
            and s
        ),
        20,
        f"topology issue {code}",
        operator,
    )
    issue = next(i for i in status["issues"] if i["code"] == code)
    assert issue["severity"] == "Error" and issue["message"]
    assert status["valid"] is False
    assert h.condition({"status": status}, "Ready")["status"] == "False"


def test_a_live_edit_breaking_a_shape_rule_degrades_without_teardown(
    kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    h.apply(
        kubectl,
        topo("maze", namespace, node),
        h.lan("dmz", namespace, topology="maze", dmz=True),
        h.lan("inner", namespace, topology="maze"),
        h.decky("gw", namespace, networks=[net("dmz")], forwardsL3=True),
        h.decky("bridge", namespace, networks=[net("dmz"), net("inner")]),
        h.decky("leaf", namespace, networks=[net("inner")]),
    )
    status = h.wait_for(
        lambda: (
            (s := status_of(kube_client, namespace, "maze"))
            and s.get("valid") is True
            and s.get("deckies") == 3
            and s
        ),
        20,
        "a valid maze",
        operator,
    )
    assert status["issues"] == [] and status["node"] == node
    for name in ("gw", "bridge", "leaf"):
        obj = h.wait_for(
            lambda name=name: (
                (o := h.get(kube_client, kclient.Decky, name, namespace))
                and (o.get("status") or {}).get("node") == node
                and ((o["status"].get("lifecycle") or {}).get("phase") == "Running")
                and o
            ),
            20,
            f"{name} on the topology's node with a plan to run",
            operator,
        )
        h.report(kube_client, obj)
    leaf_before = h.wait_for(
        lambda: (
            (o := h.get(kube_client, kclient.Decky, "leaf", namespace))
            and (o["status"].get("lifecycle") or {}).get("phase") == "Succeeded"
            and o
        ),
        20,
        "leaf deployed",
        operator,
    )

    kubectl("delete", "decky", "bridge", "-n", namespace, "--wait=false")
    status = h.wait_for(
        lambda: (
            (s := status_of(kube_client, namespace, "maze"))
            and any(i["code"] == "DMZ_ORPHAN" for i in s.get("issues") or ())
            and s
        ),
        20,
        "DMZ_ORPHAN after the bridge left",
        operator,
    )
    orphan = next(i for i in status["issues"] if i["code"] == "DMZ_ORPHAN")
    assert orphan["severity"] == "Warning"
    assert status["valid"] is True
    assert h.condition({"status": status}, "Ready")["reason"] == "Degraded"
    leaf = h.get(kube_client, kclient.Decky, "leaf", namespace)
    assert leaf is not None and "deletionTimestamp" not in leaf["metadata"]
    assert leaf["status"]["lifecycle"] == leaf_before["status"]["lifecycle"]
