"""Admission as the chart installs it, and reconcile for whatever gets past admission.

The operator runs under the chart's ServiceAccount and only serves its webhook;
the harness registers the chart's ValidatingWebhookConfiguration (failurePolicy
Fail) pointed at it. Stopping the operator must make the API server refuse a
bad apply, not admit it; removing the configuration on purpose (a bypass) must
leave reconcile refusing the same specs, reported as Stalled with the reason,
with nothing allocated or planned (so no agent ever creates anything).
"""

from __future__ import annotations

import json
import uuid
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
        identities,
        kubectl,
        DECNET_MUTATION_INTERVAL_MINUTES="0",
        # the admin's limits, as the chart's operator.limits values set them
        DECNET_SUBNET_POOLS="10.0.0.0/8",
        DECNET_PREFIX_LENGTHS="16-28",
        DECNET_MACVLAN_PARENTS="veth-decoy",
    )


@pytest.fixture
def bypassed(identities: Any, operator: h.Operator) -> Iterator[None]:
    """The webhook configuration absent (as after a hand-deleted or failed-open webhook)."""
    identities.remove_webhook()
    try:
        yield
    finally:
        operator.register_webhook()


def _subnet() -> str:
    return f"10.{160 + uuid.uuid4().int % 80}.{uuid.uuid4().int % 250}.0/24"


def _stalled(kube_client: Any, op: h.Operator, ns: str, name: str, kind: Any) -> dict[str, Any]:
    def probe() -> Any:
        obj = h.get(kube_client, kind, name, ns)
        return obj if h.condition(obj, "Stalled").get("status") == "True" else None

    return dict(h.wait_for(probe, 30, f"{name} Stalled", op))


def test_the_webhook_paths_are_kopfs_handler_ids(identities: Any) -> None:
    vwc = identities.webhook_configuration("https://127.0.0.1:1", b"ca")
    paths = {w["name"]: w["clientConfig"]["url"].rsplit("/", 1)[1] for w in vwc["webhooks"]}
    assert paths == {"decky.decnet.io": "decky", "lan.decnet.io": "lan"}
    assert {w["failurePolicy"] for w in vwc["webhooks"]} == {"Fail"}


def test_with_the_operator_stopped_a_bad_apply_is_refused_not_admitted(
    kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    subnet = _subnet()
    h.apply(kubectl, h.lan("office", namespace, subnet=subnet))
    outside = "192.0.2.10"
    operator.stop()
    try:
        result = h.apply(
            kubectl,
            h.decky("bad", namespace, nodeName=node, networks=[{"lan": "office", "ip": outside}]),
            check=False,
        )
        assert result.returncode != 0
        assert "failed calling webhook" in result.stderr, result.stderr
        assert h.get(kube_client, kclient.Decky, "bad", namespace) is None
    finally:
        operator.start()
    # The operator back: the same apply is refused by the webhook itself, with the reason.
    result = h.apply(
        kubectl,
        h.decky("bad", namespace, nodeName=node, networks=[{"lan": "office", "ip": outside}]),
        check=False,
    )
    assert result.returncode != 0
    assert f"{outside} is outside subnet {subnet} of LAN office" in result.stderr


def test_with_the_operator_stopped_only_spec_changes_wait_for_the_webhook(
    kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    """The chart's matchConditions send the webhook only creations and spec changes: a
    label (as the operator's own finalizer and node-label writes) or a deletion is not
    held up by a webhook that is down, while a spec change still is."""
    subnet = _subnet()
    h.apply(kubectl, h.lan("office", namespace, subnet=subnet))
    h.apply(kubectl, h.decky("quiet", namespace, nodeName=node))
    h.wait_for(
        lambda: (h.get(kube_client, kclient.Decky, "quiet", namespace) or {})
        .get("metadata", {})
        .get("finalizers"),
        30,
        "the operator's finalizer on quiet",
        operator,
    )
    operator.stop()
    try:
        labelled = kubectl("label", "decky", "quiet", "-n", namespace, "team=blue", check=False)
        assert labelled.returncode == 0, labelled.stderr
        changed = h.apply(
            kubectl, h.decky("quiet", namespace, nodeName=node, hostname="other"), check=False
        )
        assert changed.returncode != 0
        assert "failed calling webhook" in changed.stderr, changed.stderr
        deleted = kubectl("delete", "decky", "quiet", "-n", namespace, "--wait=false", check=False)
        assert deleted.returncode == 0, deleted.stderr
    finally:
        operator.start()
    obj = h.get(kube_client, kclient.Decky, "quiet", namespace)
    assert obj is None or obj["metadata"]["labels"].get("team") == "blue"
    assert obj is None or not obj["spec"].get("hostname")


def test_with_the_webhook_bypassed_an_out_of_subnet_ip_stalls_and_nothing_is_planned(
    kubectl: Any,
    kube_client: Any,
    operator: h.Operator,
    namespace: str,
    node: str,
    bypassed: None,
) -> None:
    subnet = _subnet()
    h.apply(kubectl, h.lan("office", namespace, subnet=subnet))
    outside = "192.0.2.10"
    h.apply(
        kubectl,
        h.decky("bad", namespace, nodeName=node, networks=[{"lan": "office", "ip": outside}]),
    )
    obj = _stalled(kube_client, operator, namespace, "bad", kclient.Decky)
    stalled = h.condition(obj, "Stalled")
    assert stalled["reason"] == "IPOutOfSubnet"
    assert f"{outside} is outside subnet {subnet}" in stalled["message"]
    assert h.condition(obj, "Ready")["status"] == "False"
    status = obj["status"]
    assert not status.get("plan") and not status.get("planHash") and not status.get("addresses")
    claims = json.loads(
        kubectl("get", "addressclaims.decnet.io", "-n", namespace, "-o", "json").stdout
    )["items"]
    assert [c["spec"]["address"] for c in claims] == [subnet]  # the LAN's, no address


def test_with_the_webhook_bypassed_bad_service_config_stalls(
    kubectl: Any,
    kube_client: Any,
    operator: h.Operator,
    namespace: str,
    node: str,
    bypassed: None,
) -> None:
    h.apply(kubectl, h.lan("office", namespace, subnet=_subnet()))
    h.apply(
        kubectl,
        h.decky(
            "wg",
            namespace,
            nodeName=node,
            services=["smb"],
            serviceConfig={"smb": {"workgroup": "W" * 40}},
        ),
        h.decky(
            "big",
            namespace,
            nodeName=node,
            services=["smb"],
            serviceConfig={"smb": {"x": "y" * (33 * 1024)}},
        ),
    )
    wg = h.condition(_stalled(kube_client, operator, namespace, "wg", kclient.Decky), "Stalled")
    assert wg["reason"] == "ServiceConfigInvalid" and "workgroup" in wg["message"]
    big = h.condition(_stalled(kube_client, operator, namespace, "big", kclient.Decky), "Stalled")
    assert big["reason"] == "ServiceConfigTooLarge"


def test_with_the_webhook_bypassed_a_subnet_overlapping_another_namespace_stalls(
    kubectl: Any,
    kube_client: Any,
    operator: h.Operator,
    namespace: str,
    node: str,
    bypassed: None,
) -> None:
    subnet = _subnet()
    other_ns = f"{namespace}-b"
    kubectl("create", "namespace", other_ns)
    try:
        h.apply(kubectl, h.lan("first", namespace, subnet=subnet))
        h.wait_for(
            lambda: (
                h.condition(h.get(kube_client, kclient.LAN, "first", namespace), "Ready").get(
                    "status"
                )
                == "True"
            ),
            30,
            "the first LAN Ready",
            operator,
        )
        narrower = subnet.replace(".0/24", ".128/25")
        h.apply(kubectl, h.lan("second", other_ns, subnet=narrower))
        h.apply(
            kubectl,
            h.decky("on-second", other_ns, nodeName=node, networks=[{"lan": "second"}]),
        )
        lan = _stalled(kube_client, operator, other_ns, "second", kclient.LAN)
        assert h.condition(lan, "Stalled")["reason"] == "SubnetOverlap"
        assert f"LAN {namespace}/first" in h.condition(lan, "Stalled")["message"]
        assert not lan["status"].get("subnet")
        decky = _stalled(kube_client, operator, other_ns, "on-second", kclient.Decky)
        assert h.condition(decky, "Stalled")["reason"] == "SubnetOverlap"
        assert not decky["status"].get("plan")
        first = h.get(kube_client, kclient.LAN, "first", namespace)
        assert h.condition(first, "Ready")["status"] == "True"  # the older LAN keeps it
    finally:
        for kind in ("deckies", "lans", "addressclaims"):
            for obj in kubectl(
                "get", f"{kind}.decnet.io", "-n", other_ns, "-o", "name", check=False
            ).stdout.split():
                kubectl(
                    "patch",
                    obj,
                    "-n",
                    other_ns,
                    "--type=merge",
                    "-p",
                    '{"metadata":{"finalizers":null}}',
                    check=False,
                )
                kubectl("delete", obj, "-n", other_ns, "--wait=false", check=False)
        kubectl("delete", "namespace", other_ns, "--wait=false", check=False)


def test_the_admins_limits_refuse_subnets_prefixes_parents_and_setid_files(
    kubectl: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    cases = [
        (h.lan("outside", namespace, subnet="192.168.7.0/24"), "outside the allowed pools"),
        (h.lan("tiny", namespace, subnet="10.5.0.0/30"), "prefix length must be between"),
        (
            h.lan("mac", namespace, subnet="10.6.0.0/24", driver="macvlan", parent="eth0"),
            "macvlan parent eth0 is not allowed",
        ),
    ]
    for obj, text in cases:
        result = h.apply(kubectl, obj, check=False)
        assert result.returncode != 0 and text in result.stderr, result.stderr
    allowed = h.lan("mac", namespace, subnet="10.6.0.0/24", driver="macvlan", parent="veth-decoy")
    h.apply(kubectl, allowed)
    setuid = h.decky(
        "suid",
        namespace,
        nodeName=node,
        networks=[{"lan": "mac"}],
        files=[{"path": "/usr/bin/helper", "mode": 0o4755, "content": {"inline": "eA=="}}],
    )
    result = h.apply(kubectl, setuid, check=False)
    assert result.returncode != 0 and "setuid/setgid bits are not allowed" in result.stderr


def test_with_the_webhook_bypassed_a_lan_outside_the_pools_stalls(
    kubectl: Any,
    kube_client: Any,
    operator: h.Operator,
    namespace: str,
    node: str,
    bypassed: None,
) -> None:
    h.apply(kubectl, h.lan("outside", namespace, subnet="192.168.7.0/24"))
    h.apply(kubectl, h.decky("on-it", namespace, nodeName=node, networks=[{"lan": "outside"}]))
    lan = _stalled(kube_client, operator, namespace, "outside", kclient.LAN)
    assert h.condition(lan, "Stalled")["reason"] == "SubnetNotAllowed"
    assert not lan["status"].get("subnet")
    decky = _stalled(kube_client, operator, namespace, "on-it", kclient.Decky)
    assert h.condition(decky, "Stalled")["reason"] == "SubnetNotAllowed"
    assert not decky["status"].get("plan")
    claims = kubectl("get", "addressclaims.decnet.io", "-n", namespace, "-o", "name").stdout
    assert claims.strip() == ""


def test_claims_whose_holder_vanished_while_the_operator_was_down_are_released(
    kubectl: Any, kube_client: Any, operator: h.Operator, namespace: str, node: str
) -> None:
    h.apply(kubectl, h.lan("office", namespace, subnet=_subnet()))
    h.apply(kubectl, h.decky("kept", namespace, nodeName=node))
    live = h.wait_for(
        lambda: (
            (o := h.get(kube_client, kclient.Decky, "kept", namespace))
            and (o.get("status") or {}).get("addresses")
            and o
        ),
        30,
        "kept has an address",
        operator,
    )
    claims = json.loads(
        kubectl("get", "addressclaims.decnet.io", "-n", namespace, "-o", "json").stdout
    )["items"]
    ip_claim = next(c for c in claims if c["spec"]["holder"]["kind"] == "Decky")
    owner = ip_claim["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Decky",
        "kept",
        live["metadata"]["uid"],
    )
    operator.stop()
    try:
        orphan = {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "AddressClaim",
            "metadata": {"name": "ip.office.10-250-0-9", "namespace": namespace},
            "spec": {
                "address": "10.250.0.9",
                "lan": "office",
                "holder": {"kind": "Decky", "name": "gone", "uid": str(uuid.uuid4())},
            },
        }
        h.apply(kubectl, orphan)
    finally:
        operator.start()

    def released() -> bool:
        names = kubectl("get", "addressclaims.decnet.io", "-n", namespace, "-o", "name").stdout
        return "ip.office.10-250-0-9" not in names

    h.wait_for(released, 30, "the orphan claim released", operator)
    left = json.loads(
        kubectl("get", "addressclaims.decnet.io", "-n", namespace, "-o", "json").stdout
    )["items"]
    assert {c["metadata"]["name"] for c in left} == {c["metadata"]["name"] for c in claims}


def test_kopf_self_registration_is_refused_under_the_charts_rbac(
    identities: Any, kubectl: Any, operator: h.Operator
) -> None:
    """Why the chart turns kopf's webhook management off: the operator's identity may not
    write admission configuration (the issue's 403 on mutatingwebhookconfigurations)."""
    managed = h.Operator(identities, DECNET_WEBHOOK_MANAGED="1")
    managed.start()
    try:
        h.wait_for(
            lambda: (
                b'cannot create resource \\"validatingwebhookconfigurations\\"'
                in managed.log.read_bytes()
                or b'cannot create resource "validatingwebhookconfigurations"'
                in managed.log.read_bytes()
            ),
            30,
            "kopf's registration refused with 403",
            managed,
        )
    finally:
        managed.stop()
        operator.register_webhook()  # the module's operator serves admission again
