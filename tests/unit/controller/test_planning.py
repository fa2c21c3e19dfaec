"""The plan holds references and hashes, never secrets, and hashes stably."""

import json
from typing import Any

import pytest

from decnet.api import v1alpha1
from decnet.controller import planning, views

LANS = {"office": views.Lan("office", "decoys", "10.20.0.0/24")}
TEMPLATES = {
    "smb": views.Template("smb", "decnet/smb:0.1.0", ports=(v1alpha1.PortSpec(port=445),)),
    "rdp": views.Template("rdp", "decnet/rdp:0.1.0"),
    "sniffer": views.Template("sniffer", "decnet/sniffer", fleet_singleton=True),
}


def decky(**spec: object) -> views.Decky:
    body = {
        "metadata": {"name": "ws-01", "namespace": "decoys"},
        "spec": {
            "services": ["smb", "rdp"],
            "networks": [{"lan": "office"}],
            "hostname": "WS-01",
            "serviceConfig": {"smb": {"password": "hunter2"}},
            "files": [
                {"path": "/p.txt", "mode": 0o600, "content": {"inline": "c2VjcmV0LWNvbnRlbnQ="}},
                {"path": "/q.txt", "content": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
            **spec,
        },
    }
    return views.Decky.from_obj(body)


def build(d: views.Decky, services: list[str] | None = None) -> dict[str, Any]:
    return planning.build(
        d,
        lans=LANS,
        templates=TEMPLATES,
        addresses={"office": "10.20.0.15"},
        services=services or ["rdp", "smb"],
    ).wire()


def test_plan_matches_the_contract() -> None:
    plan = build(decky())
    assert plan["networks"] == [
        {
            "lan": "office",
            "network": "office-f6dc6d4b",  # names.network_name, pinned
            "ip": "10.20.0.15",
            "subnet": "10.20.0.0/24",
            "gateway": "10.20.0.1",
            "dmz": False,
            "driver": "bridge",
            "parent": "",
        }
    ]
    assert [s["name"] for s in plan["services"]] == ["rdp", "smb"]  # type: ignore[index]
    assert plan["baseImage"] == planning.DEFAULT_BASE_IMAGE
    files = plan["files"]
    assert files[0]["mode"] == 0o600 and files[0]["source"] == "inline"  # type: ignore[index]
    assert files[1]["source"] == "secret" and files[1]["name"] == "s"  # type: ignore[index]
    assert len(str(plan["hash"])) == 16


def test_plan_never_contains_config_values_or_file_contents() -> None:
    text = json.dumps(build(decky()))
    assert "hunter2" not in text
    assert "c2VjcmV0LWNvbnRlbnQ=" not in text and "secret-content" not in text


def test_hash_is_stable_and_follows_changes() -> None:
    assert build(decky())["hash"] == build(decky())["hash"]
    assert build(decky())["hash"] != build(decky(), ["smb"])["hash"]
    changed = decky(serviceConfig={"smb": {"password": "other"}})
    assert build(decky())["hash"] != build(changed)["hash"]


def test_unplannable_specs_raise_with_a_reason() -> None:
    with pytest.raises(planning.PlanError) as err:
        build(decky(), ["nope"])
    assert err.value.reason == "UnknownService"
    with pytest.raises(planning.PlanError):
        build(decky(), ["sniffer"])
    with pytest.raises(planning.PlanError) as err:
        build(decky(networks=[{"lan": "missing"}]))
    assert err.value.reason == "LANNotFound"


def test_a_templates_security_and_a_lans_topology_and_egress_reach_the_agent() -> None:
    security = {"capabilities": ["NET_RAW"], "pidsLimit": 64, "runtime": "runsc"}
    egress = [{"cidr": "198.51.100.0/24", "protocol": "tcp", "ports": [443], "description": "x"}]
    plan = planning.build(
        decky(),
        lans={
            "office": views.Lan(
                "office",
                "decoys",
                "10.20.0.0/24",
                topology="maze",
                egress=tuple(v1alpha1.EgressRule.model_validate(e) for e in egress),
            )
        },
        templates={
            **TEMPLATES,
            "smb": views.Template(
                "smb",
                "decnet/smb:0.1.0",
                security=v1alpha1.SecuritySpec.model_validate(security),
            ),
        },
        addresses={"office": "10.20.0.15"},
        services=["rdp", "smb"],
    ).wire()
    by_name = {s["name"]: s for s in plan["services"]}  # type: ignore[attr-defined]
    assert by_name["smb"]["security"] == security
    assert "security" not in by_name["rdp"]  # absent = the agent's defaults
    net = plan["networks"][0]  # type: ignore[index]
    assert net["topology"] == "maze"
    assert net["egress"] == [{"cidr": "198.51.100.0/24", "protocol": "tcp", "ports": [443]}]
    # a LAN without topology or egress plans exactly as before (no hash churn on upgrade)
    assert "egress" not in build(decky())["networks"][0]  # type: ignore[index]


def test_a_lans_sniffer_opt_out_and_labels_reach_the_agent_and_defaults_plan_as_before() -> None:
    default = build(decky())
    body = {
        "metadata": {"name": "office", "namespace": "decoys", "labels": {"team": "red"}},
        "spec": {"subnet": "10.20.0.0/24", "sniffer": {"enabled": False}},
    }
    plan = planning.build(
        decky(),
        lans={"office": views.Lan.from_obj(body)},
        templates=TEMPLATES,
        addresses={"office": "10.20.0.15"},
        services=["rdp", "smb"],
    ).wire()
    net = plan["networks"][0]  # type: ignore[index]
    assert net["sniffer"] is False and net["labels"] == {"team": "red"}
    # sniffer on (the default) and no labels: the plan and its hash are what they were
    on = views.Lan.from_obj({"metadata": {"name": "office", "namespace": "decoys"}, "spec": {}})
    assert on.sniffer is True and on.labels == ()
    assert "sniffer" not in default["networks"][0]  # type: ignore[index]
    assert "labels" not in default["networks"][0]  # type: ignore[index]
    assert default["hash"] == build(decky())["hash"]


def test_the_sniffer_service_is_refused_for_a_decky_with_a_pointer_to_the_lan_field() -> None:
    from decnet.controller import validation

    problem = validation.services(decky(services=["sniffer"]), TEMPLATES)
    assert problem is not None and "spec.sniffer.enabled" in problem.message
