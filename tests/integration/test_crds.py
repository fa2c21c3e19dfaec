"""The generated CRDs in a real kube-apiserver: they install, every example applies,
`kubectl explain` and `kubectl get` show what users need, and bad input is rejected by
the API server itself (schema + CEL), with a message naming the field, creating nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "data" / "invalid").glob("*.yaml"))
PLURAL = {
    "EventSink": "eventsinks",
    "Decky": "deckies",
    "LAN": "lans",
    "Topology": "topologies",
    "ServiceTemplate": "servicetemplates",
    "AddressClaim": "addressclaims",
}
CLUSTER_SCOPED = {"ServiceTemplate", "EventSink"}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect:' line"
    return first.removeprefix("# expect: ")


def test_every_crd_is_established(crds: list[str]) -> None:
    assert sorted(crds) == sorted(f"{plural}.decnet.io" for plural in PLURAL.values())


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_applies_strictly(
    path: Path, crds: list[str], kubectl: Any, namespace: str
) -> None:
    docs = _docs(path)
    cluster_only = all(doc["kind"] in CLUSTER_SCOPED for doc in docs)
    # Cluster-scoped templates would outlive the test namespace: validate them with a
    # server-side dry run (full admission: schema, CEL, defaulting) instead of storing.
    extra = ["--dry-run=server", "-o", "json"] if cluster_only else []
    result = kubectl("apply", "--validate=strict", "-n", namespace, "-f", str(path), *extra)
    if cluster_only:
        stored = json.loads(result.stdout)
        items = stored.get("items", [stored])
        assert sorted(i["metadata"]["name"] for i in items) == sorted(
            d["metadata"]["name"] for d in docs
        )
        return
    for doc in docs:
        got = kubectl(
            "get", PLURAL[doc["kind"]], doc["metadata"]["name"], "-n", namespace, "-o", "json"
        )
        stored = json.loads(got.stdout)
        assert (
            stored["spec"].items()
            >= {k: v for k, v in doc["spec"].items() if not isinstance(v, dict | list)}.items()
        )


def test_api_server_applies_spec_defaults_and_prunes_nulls(
    crds: list[str], kubectl: Any, namespace: str
) -> None:
    manifest = """
apiVersion: decnet.io/v1alpha1
kind: LAN
metadata: {name: bare}
---
apiVersion: decnet.io/v1alpha1
kind: Decky
metadata: {name: d1}
spec:
  services: [ssh]
  networks: [{lan: bare, ip: null}]
  files: [{path: /etc/motd, content: {inline: aGk=}}]
"""
    kubectl("apply", "--validate=strict", "-n", namespace, "-f", "-", input=manifest)
    lan = json.loads(kubectl("get", "lan", "bare", "-n", namespace, "-o", "json").stdout)
    assert lan["spec"] == {"dmz": False, "driver": "bridge"}
    decky = json.loads(kubectl("get", "dk", "d1", "-n", namespace, "-o", "json").stdout)
    assert decky["spec"]["networks"] == [{"lan": "bare"}]
    assert decky["spec"]["files"][0]["mode"] == 0o644
    assert decky["spec"]["forwardsL3"] is False


def test_kubectl_explain_prints_field_descriptions(crds: list[str], kubectl: Any) -> None:
    networks = kubectl("explain", "decky.spec.networks").stdout
    assert "the first entry is the home LAN" in networks
    assert "allocated from the LAN's subnet when absent" in networks
    subnet = kubectl("explain", "lan.spec.subnet").stdout
    assert "Immutable once set" in subnet
    singleton = kubectl("explain", "servicetemplate.spec.fleetSingleton").stdout
    assert "once per node" in singleton


def test_kubectl_get_deckies_shows_the_status_columns(
    crds: list[str], kubectl: Any, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "fleet.yaml"))
    status = {
        "status": {
            "observedGeneration": 1,
            "node": "node-a",
            "addresses": [{"lan": "office", "ip": "10.20.0.15"}],
            "services": ["smb", "rdp"],
            "servicesSummary": "smb,rdp",
            "lifecycle": {"id": "0f9d", "operation": "Deploy", "phase": "Succeeded"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Converged",
                    "message": "",
                    "lastTransitionTime": "2026-11-22T10:00:00Z",
                }
            ],
        }
    }
    kubectl(
        "patch", "decky", "ws-01", "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip
    table = kubectl("get", "deckies", "-n", namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME", "READY", "NODE", "IP", "SERVICES", "REASON", "LAST-CONTACT", "AGE",
    ]  # fmt: skip
    row = next(line.split() for line in table if line.startswith("ws-01"))
    assert row[:6] == ["ws-01", "True", "node-a", "10.20.0.15", "smb,rdp", "Converged"]
    assert len(row) == 7  # never contacted: kubectl prints an empty LAST-CONTACT
    contact = {"status": {"activity": {"lastContact": "2020-01-01T00:00:00Z", "contacts": 3}}}
    kubectl(
        "patch", "decky", "ws-01", "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(contact),
    )  # fmt: skip
    table = kubectl("get", "deckies", "-n", namespace).stdout.splitlines()
    row = next(line.split() for line in table if line.startswith("ws-01"))
    assert row[6].endswith(("y", "d")), row  # an age, e.g. "6y"
    wide = kubectl("get", "dk", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert "PHASE" in wide[0].split()
    assert "Succeeded" in next(line for line in wide if line.startswith("ws-01")).split()
    lans = kubectl("get", "lans", "-n", namespace).stdout.splitlines()
    assert lans[0].split() == ["NAME", "READY", "SUBNET", "DMZ", "DECKIES", "AGE"]
    everything = kubectl("get", "decnet", "-n", namespace, "-o", "name").stdout.split()
    assert "decky.decnet.io/ws-03" in everything and "lan.decnet.io/office" in everything


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_manifest_is_rejected_naming_the_field(
    path: Path, crds: list[str], kubectl: Any, namespace: str
) -> None:
    expect = _expectation(path)
    (doc,) = _docs(path)
    client_side = kubectl(
        "apply", "--validate=strict", "-n", namespace, "-f", str(path), check=False
    )
    assert client_side.returncode != 0, f"accepted: {client_side.stdout}"
    assert expect in client_side.stderr
    server_side = kubectl(
        "apply", "--server-side", "--validate=strict", "-n", namespace, "-f", str(path),
        check=False,
    )  # fmt: skip
    assert server_side.returncode != 0, f"accepted: {server_side.stdout}"
    # Server-side apply words unknown fields ("field not declared in schema") and a key
    # listed twice in a list map or set ("duplicate entries for key") its own way.
    ssa_words = {"unknown field": "field not declared in schema", "Duplicate value": "duplicate"}
    assert expect in server_side.stderr or ssa_words.get(expect, expect) in server_side.stderr
    scope = [] if doc["kind"] in CLUSTER_SCOPED else ["-n", namespace]
    got = kubectl("get", PLURAL[doc["kind"]], doc["metadata"]["name"], *scope, check=False)
    assert got.returncode != 0 and "NotFound" in got.stderr


def _lan(name: str, **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "LAN",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def test_lan_subnet_and_dmz_are_immutable_once_set(
    crds: list[str], kubectl: Any, namespace: str
) -> None:
    kubectl(
        "apply", "-n", namespace, "-f", "-", input=_lan("dmz", subnet="172.16.10.0/24", dmz=True)
    )
    changed = kubectl(
        "apply", "-n", namespace, "-f", "-", input=_lan("dmz", subnet="172.16.20.0/24", dmz=True),
        check=False,
    )  # fmt: skip
    assert changed.returncode != 0
    assert "spec.subnet is immutable once set" in changed.stderr
    flipped = kubectl(
        "patch", "lan", "dmz", "-n", namespace, "--type=merge", "-p", '{"spec":{"dmz":false}}',
        check=False,
    )  # fmt: skip
    assert flipped.returncode != 0
    assert "spec.dmz is immutable once set" in flipped.stderr
    removed = kubectl(
        "patch", "lan", "dmz", "-n", namespace, "--type=json",
        "-p", '[{"op":"remove","path":"/spec/subnet"}]', check=False,
    )  # fmt: skip
    assert removed.returncode != 0
    assert "spec.subnet is immutable once set" in removed.stderr
    stored = json.loads(kubectl("get", "lan", "dmz", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["subnet"] == "172.16.10.0/24" and stored["spec"]["dmz"] is True
    # A LAN created without a subnet may get one set once, and then it is fixed too.
    kubectl("apply", "-n", namespace, "-f", "-", input=_lan("corp"))
    kubectl("apply", "-n", namespace, "-f", "-", input=_lan("corp", subnet="172.16.11.0/24"))
    again = kubectl(
        "apply", "-n", namespace, "-f", "-", input=_lan("corp", subnet="172.16.12.0/24"),
        check=False,
    )  # fmt: skip
    assert again.returncode != 0
    assert "spec.subnet is immutable once set" in again.stderr
    # Other fields stay editable.
    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=_lan("corp", subnet="172.16.11.0/24", topology="maze-1"),
    )


def test_the_api_server_refuses_a_lowercase_phase_and_a_condition_without_a_reason(
    crds: list[str], kubectl: Any, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "fleet.yaml"))
    cases = {
        "lifecycle": {"id": "0f9d", "operation": "deploy", "phase": "succeeded"},
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-22T10:00:00Z"}
        ],
    }
    for field, value in cases.items():
        bad = kubectl(
            "patch", "decky", "ws-01", "-n", namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": {field: value}}), check=False,
        )  # fmt: skip
        assert bad.returncode != 0, field
        assert "Unsupported value" in bad.stderr or "Required value" in bad.stderr, bad.stderr


def _apply_networks(kubectl: Any, namespace: str, manager: str, networks: list[Any]) -> None:
    doc = {
        "apiVersion": "decnet.io/v1alpha1",
        "kind": "Decky",
        "metadata": {"name": "multi"},
        "spec": {"services": ["ssh"], "networks": networks},
    }
    kubectl(
        "apply", "--server-side", f"--field-manager={manager}", "-n", namespace, "-f", "-",
        input=json.dumps(doc),
    )  # fmt: skip


def test_a_second_manager_applying_one_network_merges_it_into_the_list(
    crds: list[str], kubectl: Any, namespace: str
) -> None:
    """networks is a list map keyed by lan: each field manager owns its own entries."""
    # The LANs exist, so an operator's admission webhook (if one runs) accepts the decky.
    kubectl("apply", "-n", namespace, "-f", "-", input=_lan("office"))
    kubectl("apply", "-n", namespace, "-f", "-", input=_lan("dmz", dmz=True))
    kubectl("apply", "-n", namespace, "-f", "-", input=_lan("lab"))
    _apply_networks(kubectl, namespace, "gitops", [{"lan": "office"}])
    _apply_networks(kubectl, namespace, "netops", [{"lan": "dmz"}])
    stored = json.loads(kubectl("get", "decky", "multi", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["networks"] == [{"lan": "office"}, {"lan": "dmz"}]
    # The first manager re-applying its own entries leaves the second manager's in place,
    # and dropping one of its own removes only that one.
    _apply_networks(kubectl, namespace, "gitops", [{"lan": "office"}, {"lan": "lab"}])
    _apply_networks(kubectl, namespace, "gitops", [{"lan": "office"}])
    stored = json.loads(kubectl("get", "decky", "multi", "-n", namespace, "-o", "json").stdout)
    assert [n["lan"] for n in stored["spec"]["networks"]] == ["office", "dmz"]
