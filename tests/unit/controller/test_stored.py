"""What the operator keeps of a decky: the facts the scans read, and the whole body back."""

import datetime
import json
from typing import Any

from decnet.controller import mutation, stored

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def decky(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "decnet.io/v1alpha1",
        "kind": "Decky",
        "metadata": {
            "name": "ws-01",
            "namespace": "site-a",
            "uid": "u-1",
            "resourceVersion": "42",
            "labels": {"decnet.io/topology": "maze"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {
            "services": ["ssh"],
            "networks": [{"lan": "office", "ip": "10.0.0.5"}, {"lan": "dmz"}],
            "nodeLoss": {"policy": "Reschedule", "graceSeconds": 60},
            "mutation": {"intervalMinutes": 10, "quietSeconds": 120},
        },
        "status": status,
    }


def test_the_body_comes_back_whole_but_for_managed_fields() -> None:
    body = decky(node="node-a", plan={"containers": [{"name": "base"}]})
    kept = stored.store(body, default_interval=30)
    back = kept.body()
    assert "managedFields" not in back["metadata"]
    body["metadata"].pop("managedFields")
    assert back == json.loads(json.dumps(body))
    assert len(kept.packed) < len(json.dumps(body))


def test_the_facts_the_scans_read() -> None:
    kept = stored.store(
        decky(
            node="node-a",
            addresses=[{"lan": "dmz", "ip": "10.0.1.9"}],
            conditions=[{"type": "Ready", "status": "True"}],
        ),
        default_interval=30,
    )
    assert kept.node == "node-a"
    assert not kept.deleting
    assert kept.ready
    assert kept.topology_label == "maze"
    assert (kept.node_loss_policy, kept.node_loss_grace_seconds) == ("Reschedule", 60)
    assert kept.on_lan("office") and kept.on_lan("dmz") and not kept.on_lan("lab")


def test_a_deckys_addresses_per_lan_pinned_or_held() -> None:
    body = decky(addresses=[{"lan": "dmz", "ip": "10.0.1.9"}, {"lan": "office", "ip": "10.0.0.5"}])
    assert stored.addresses(body) == {"office": ("10.0.0.5",), "dmz": ("10.0.1.9",)}
    assert stored.addresses(decky()) == {"office": ("10.0.0.5",)}


def test_a_new_decky_has_no_node_and_no_mutation_due() -> None:
    kept = stored.store(decky(), default_interval=30)
    assert kept.node is None and not kept.ready and kept.mutation_due is None


def test_the_mutation_due_time_is_the_rule_the_reconcile_applies() -> None:
    started = NOW - datetime.timedelta(minutes=11)
    contact = NOW - datetime.timedelta(seconds=60)
    status = {
        "node": "node-a",
        "lifecycle": {"phase": "Succeeded", "startedAt": started.isoformat()},
        "activity": {"lastContact": contact.isoformat()},
    }
    body = decky(**status)
    kept = stored.store(body, default_interval=30)
    # 10 minutes after the start, but not within 120 s of the last contact
    assert kept.mutation_due == contact + datetime.timedelta(seconds=120)
    policy = mutation.v1alpha1.MutationPolicy.model_validate(body["spec"]["mutation"])
    for at in (NOW, kept.mutation_due, kept.mutation_due + datetime.timedelta(seconds=1)):
        assert mutation.scheduled(policy, status, default_interval=30, now=at) == (
            at >= kept.mutation_due
        )
