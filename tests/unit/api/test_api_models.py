"""The typed API: every example parses and round-trips, and the registry is consistent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from decnet.api import v1alpha1

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
BY_KIND: dict[str, type[v1alpha1.Model]] = {
    model.crd.kind: model  # type: ignore[attr-defined]
    for model in v1alpha1.KINDS
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _is_subset(small: Any, big: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            key in big and _is_subset(value, big[key]) for key, value in small.items()
        )
    if isinstance(small, list):
        return (
            isinstance(big, list)
            and len(small) == len(big)
            and all(_is_subset(a, b) for a, b in zip(small, big, strict=True))
        )
    return bool(small == big)


EXAMPLE_DOCS = [
    pytest.param(doc, id=f"{path.name}:{doc['kind']}/{doc['metadata']['name']}")
    for path in EXAMPLES
    for doc in _documents(path)
]


@pytest.mark.parametrize("doc", EXAMPLE_DOCS)
def test_example_round_trips_through_its_model(doc: dict[str, Any]) -> None:
    model = BY_KIND[doc["kind"]]
    parsed = model.model_validate(doc)
    dumped = parsed.model_dump(by_alias=True, exclude_none=True)
    assert _is_subset(doc, dumped), f"fields lost or changed: {doc} -> {dumped}"
    assert model.model_validate(dumped) == parsed


def test_examples_cover_every_user_kind() -> None:
    kinds = {doc["kind"] for path in EXAMPLES for doc in _documents(path)}
    assert {"Decky", "LAN", "Topology", "ServiceTemplate"} <= kinds


def test_builtin_templates_cover_every_builtin_service_once() -> None:
    docs = _documents(ROOT / "examples" / "servicetemplates.yaml")
    names = [doc["metadata"]["name"] for doc in docs]
    assert sorted(names) == sorted(v1alpha1.BUILTIN_SERVICES)
    for doc in docs:
        template = v1alpha1.ServiceTemplate.model_validate(doc)
        name = doc["metadata"]["name"]
        assert template.spec.image == "decnet/emulator:0.1.0"
        assert template.spec.fleet_singleton == (name in v1alpha1.FLEET_SINGLETONS)
        assert template.spec.ports or template.spec.fleet_singleton, name


def test_test_templates_run_the_local_busybox_image_with_a_listener() -> None:
    docs = _documents(ROOT / "examples" / "servicetemplates-test.yaml")
    assert {doc["metadata"]["name"] for doc in docs} == {
        "http",
        "ftp",
        "telnet",
        "ssh",
        "smb",
        "rdp",
        "mysql",
    }
    for doc in docs:
        template = v1alpha1.ServiceTemplate.model_validate(doc)
        assert template.spec.image == "decnet-test/busybox:latest"
        port = str(template.spec.ports[0].port)
        assert port in template.spec.command, f"{doc['metadata']['name']} does not listen on {port}"


def test_builtin_services_are_28_per_decky_plus_the_sniffer() -> None:
    assert len(v1alpha1.PER_DECKY_SERVICES) == 28
    assert v1alpha1.BUILTIN_SERVICES[-1] == "sniffer"
    assert len(set(v1alpha1.BUILTIN_SERVICES)) == 29
    assert all(DNS_LABEL.match(name) for name in v1alpha1.BUILTIN_SERVICES)


def test_archetypes_use_only_builtin_per_decky_services() -> None:
    assert len(v1alpha1.ARCHETYPES) == 15
    for archetype, services in v1alpha1.ARCHETYPES.items():
        assert DNS_LABEL.match(archetype)
        assert services and set(services) <= set(v1alpha1.PER_DECKY_SERVICES), archetype
    assert v1alpha1.ARCHETYPES["devops-host"] == ["docker-api", "ssh", "k8s"]


def test_the_contract_names_are_exported() -> None:
    names = (
        "Decky DeckySpec DeckyStatus NetworkAttachment MutationPolicy FileSpec FileContent Plan"
        " PlanNetwork PlanService PlanFile AgentReport ContainerStatus Lifecycle Condition Address"
        " LastMutation LAN LANSpec LANStatus Topology TopologySpec TopologyStatus ValidationIssue"
        " ServiceTemplate ServiceTemplateSpec PortSpec BuildSpec AddressClaim AddressClaimSpec"
        " ARCHETYPES BUILTIN_SERVICES"
    ).split()
    missing = [name for name in names if not hasattr(v1alpha1, name)]
    assert not missing
    assert v1alpha1.CONDITION_TYPES == ("Ready", "Scheduled", "Reconciling", "Stalled")
    assert list(v1alpha1.Operation) == ["Deploy", "Update", "Mutate", "Reschedule", "Teardown"]
    assert list(v1alpha1.Phase) == ["Pending", "Running", "Succeeded", "Failed"]
    assert list(v1alpha1.AgentState) == ["Converged", "Failed", "Refused", "Removed"]
    assert list(v1alpha1.MutationTrigger) == ["Manual", "Scheduled"]
    assert len(v1alpha1.ISSUE_CODES) == 12


def test_status_contract_fields_use_the_documented_wire_names() -> None:
    status = v1alpha1.DeckyStatus.model_validate(
        {
            "observedGeneration": 3,
            "node": "node-a",
            "addresses": [{"lan": "office", "ip": "10.20.0.15"}],
            "services": ["smb", "rdp"],
            "lastMutation": {"trigger": "Manual", "at": "2026-11-22T10:00:00Z", "from": ["a"]},
            "mutationRequest": "2026-11-22T10:00",
            "planHash": "9f2c1e",
            "lifecycle": {"id": "u", "operation": "Deploy", "phase": "Succeeded"},
            "history": [],
            "containers": [{"name": "c", "id": "i", "role": "base", "state": "running"}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Converged",
                    "message": "containers match plan 9f2c1e",
                    "lastTransitionTime": "2026-11-22T10:00:05Z",
                    "observedGeneration": 3,
                }
            ],
            "agent": {"node": "node-a", "planHash": "9f2c1e", "state": "Converged"},
        }
    )
    assert status.last_mutation is not None and status.last_mutation.from_ == ["a"]
    wire = status.model_dump(by_alias=True, exclude_none=True)
    assert wire["lastMutation"]["from"] == ["a"]
    assert wire["agent"]["planHash"] == "9f2c1e"
    assert wire["lifecycle"]["phase"] == "Succeeded"


def test_a_lowercase_word_an_older_operator_wrote_reads_as_its_camelcase_member() -> None:
    record = v1alpha1.Lifecycle.model_validate(
        {"id": "u", "operation": "reschedule", "phase": "succeeded"}
    )
    assert (record.operation, record.phase) == ("Reschedule", "Succeeded")
    assert v1alpha1.AgentState("converged") is v1alpha1.AgentState.CONVERGED
    with pytest.raises(ValueError):
        v1alpha1.Phase("done")


def test_file_mode_defaults_to_0644_and_content_is_typed() -> None:
    spec = v1alpha1.FileSpec.model_validate(
        {"path": "/etc/motd", "content": {"configMapKeyRef": {"name": "lures", "key": "motd"}}}
    )
    assert spec.mode == 0o644
    assert spec.content.config_map_key_ref is not None
    assert spec.content.config_map_key_ref.key == "motd"
