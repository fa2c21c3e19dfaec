"""Golden plans: an unchanged decky plans to the same bytes and hash across upgrades.

A changed plan hash makes every agent re-converge every running decky, so the wire form
of the plan (which keys it has, and their values) is pinned here for a few fixed deckies.
The hashes below were taken before the plan became a `v1alpha1.Plan`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from decnet.controller import planning, views

DECKY = {
    "metadata": {"name": "ws-01", "namespace": "decoys", "uid": "u-1"},
    "spec": {
        "archetype": "windows-workstation",
        "services": ["smb", "rdp"],
        "networks": [{"lan": "office"}, {"lan": "dmz"}],
        "serviceConfig": {"smb": {"password": "hunter2", "shares": ["c$"]}},
        "files": [
            {"path": "/p.txt", "mode": 0o600, "content": {"inline": "c2VjcmV0"}},
            {"path": "/q.txt", "content": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {
                "path": "/r.txt",
                "mtimeOffsetSeconds": -86400,
                "content": {"configMapKeyRef": {"name": "cm", "key": "r"}},
            },
        ],
    },
}
OFFICE = {
    "metadata": {"name": "office", "namespace": "decoys"},
    "spec": {"subnet": "10.20.0.0/24", "driver": "bridge", "dmz": False},
}
DMZ = {
    "metadata": {"name": "dmz", "namespace": "decoys", "labels": {"team": "red"}},
    "spec": {
        "subnet": "10.30.0.0/24",
        "dmz": True,
        "topology": "maze",
        "sniffer": {"enabled": False},
        "egress": [{"cidr": "198.51.100.0/24", "ports": [443, 80], "description": "updates"}],
    },
}
SMB = {
    "metadata": {"name": "smb"},
    "spec": {
        "image": "decnet/smb:0.1.0",
        "ports": [{"port": 445, "protocol": "tcp"}, {"port": 139}],
        "env": {"A": "1"},
        "security": {"capabilities": ["NET_RAW"], "pidsLimit": 64, "runtime": "runsc"},
    },
}
RDP = {
    "metadata": {"name": "rdp"},
    "spec": {"image": "decnet/rdp:0.1.0", "command": ["rdpd", "-f"]},
}


# SMB as the API server returns it: the CRD's defaults filled in.
SMB_DEFAULTED = {
    "metadata": {"name": "smb"},
    "spec": {
        **SMB["spec"],
        "ports": [{"port": 445, "protocol": "tcp"}, {"port": 139, "protocol": "tcp"}],
        "fleetSingleton": False,
        "security": {
            **SMB["spec"]["security"],  # type: ignore[dict-item]
            "readOnlyRootFilesystem": True,
            "memoryMiB": 256,
            "cpuMillicores": 500,
        },
    },
}


def plan_of(decky: dict[str, Any], lans: list[dict[str, Any]], smb: dict[str, Any] = SMB) -> Any:
    return planning.build(
        views.Decky.from_obj(decky),
        lans={lan["metadata"]["name"]: views.Lan.from_obj(lan) for lan in lans},
        templates={t["metadata"]["name"]: views.Template.from_obj(t) for t in (smb, RDP)},
        addresses={"office": "10.20.0.15", "dmz": "10.30.0.7"},
        services=["rdp", "smb"],
    )


def wire(plan: Any) -> dict[str, Any]:
    return plan if isinstance(plan, dict) else plan.wire()


def small(decky: dict[str, Any]) -> dict[str, Any]:
    """The decky without files, on its home LAN only, a hostname of its own."""
    spec = {k: v for k, v in decky["spec"].items() if k != "files"}
    return {**decky, "spec": {**spec, "networks": [{"lan": "office"}], "hostname": "WS-01"}}


CASES = {
    "full": (DECKY, [OFFICE, DMZ]),
    "small": (small(DECKY), [OFFICE]),
}
GOLDEN_HASH = {
    "full": "fb96212b58da8d03",
    "small": "c4a2bfc4df9678a0",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unchanged_decky_keeps_its_plan_hash_across_the_upgrade(case: str) -> None:
    decky, lans = CASES[case]
    assert wire(plan_of(decky, lans))["hash"] == GOLDEN_HASH[case]


def test_a_template_with_the_api_servers_defaults_keeps_its_plan_hash() -> None:
    """Every key the API server returned stays in the plan's security, as before."""
    plan = wire(plan_of(small(DECKY), [OFFICE], SMB_DEFAULTED))
    assert plan["hash"] == GOLDEN_DEFAULTED_HASH


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_plan_on_the_wire_is_byte_identical(case: str) -> None:
    decky, lans = CASES[case]
    text = json.dumps(wire(plan_of(decky, lans)), sort_keys=True, separators=(",", ":"))
    assert text == GOLDEN_WIRE[case]


GOLDEN_DEFAULTED_HASH = "30f4c35801538750"  # taken before, like the others
GOLDEN_WIRE: dict[str, str] = {
    "full": (
        '{"baseImage":"decnet/base:0.1.0","files":[{"key":"","mode":384,"mtimeOffsetSeconds":'
        '0,"name":"","path":"/p.txt","sha256":"1c1185e02ff3e23b3e5a1c5bc86cf15d4126caa3dcde0f'
        'db6e93adc4deec119e","source":"inline"},{"key":"k","mode":420,"mtimeOffsetSeconds":0,'
        '"name":"s","path":"/q.txt","sha256":"","source":"secret"},{"key":"r","mode":420,"mti'
        'meOffsetSeconds":-86400,"name":"cm","path":"/r.txt","sha256":"","source":"configMap"'
        '}],"forwardsL3":false,"hash":"fb96212b58da8d03","hostname":"DESKTOP-LRYWL29","networ'
        'ks":[{"dmz":false,"driver":"bridge","gateway":"10.20.0.1","ip":"10.20.0.15","lan":"o'
        'ffice","network":"office-f6dc6d4b","parent":"","subnet":"10.20.0.0/24"},{"dmz":true,'
        '"driver":"bridge","egress":[{"cidr":"198.51.100.0/24","ports":[80,443],"protocol":"t'
        'cp"}],"gateway":"10.30.0.1","ip":"10.30.0.7","labels":{"team":"red"},"lan":"dmz","ne'
        'twork":"dmz-26d5231f","parent":"","sniffer":false,"subnet":"10.30.0.0/24","topology"'
        ':"maze"}],"services":[{"command":["rdpd","-f"],"configHash":"","env":{},"image":"dec'
        'net/rdp:0.1.0","name":"rdp","ports":[]},{"command":[],"configHash":"77282769ffd5254b'
        '","env":{"A":"1"},"image":"decnet/smb:0.1.0","name":"smb","ports":[{"port":445,"prot'
        'ocol":"tcp"},{"port":139,"protocol":"tcp"}],"security":{"capabilities":["NET_RAW"],"'
        'pidsLimit":64,"runtime":"runsc"}}]}'
    ),
    "small": (
        '{"baseImage":"decnet/base:0.1.0","files":[],"forwardsL3":false,"hash":"c4a2bfc4df967'
        '8a0","hostname":"WS-01","networks":[{"dmz":false,"driver":"bridge","gateway":"10.20.'
        '0.1","ip":"10.20.0.15","lan":"office","network":"office-f6dc6d4b","parent":"","subne'
        't":"10.20.0.0/24"}],"services":[{"command":["rdpd","-f"],"configHash":"","env":{},"i'
        'mage":"decnet/rdp:0.1.0","name":"rdp","ports":[]},{"command":[],"configHash":"772827'
        '69ffd5254b","env":{"A":"1"},"image":"decnet/smb:0.1.0","name":"smb","ports":[{"port"'
        ':445,"protocol":"tcp"},{"port":139,"protocol":"tcp"}],"security":{"capabilities":["N'
        'ET_RAW"],"pidsLimit":64,"runtime":"runsc"}}]}'
    ),
}
