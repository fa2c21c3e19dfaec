"""Admission decisions from the operator's indexes: 409 for clashes, 422 for bad references."""

from collections.abc import Iterator
from typing import Any

import pytest

from decnet.controller import admission, state, stored, views
from decnet.controller import indexes as idx
from decnet.kube import names


def body(name: str, ns: str = "ns", **spec: Any) -> dict[str, Any]:
    spec.setdefault("services", ["ssh"])
    spec.setdefault("networks", [{"lan": "office"}])
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"}, "spec": spec}


ST = state.State(state.Config())
OFFICE = {"metadata": {"name": "office", "namespace": "ns"}, "spec": {"subnet": "10.0.3.0/24"}}


@pytest.fixture(autouse=True)
def indexes() -> Iterator[None]:
    schema = {"type": "object", "properties": {"port": {"type": "integer"}}}
    ST.indices = {
        "lan_idx": {("ns", "office"): [OFFICE]},
        "lan_views": {("ns", "office"): [views.Lan.from_obj(OFFICE)]},
        "template_idx": {
            "ssh": [views.Template("ssh", "img")],
            "http": [views.Template("http", "img", config_schema=schema)],
            "sniffer": [views.Template("sniffer", "img", fleet_singleton=True)],
        },
        "claim_idx": {
            ("ns", names.ip_claim_name("office", "10.0.3.7")): [
                idx.claim_of(
                    {
                        "address": "10.0.3.7",
                        "lan": "office",
                        "holder": {"kind": "Decky", "name": "ws-02", "uid": "uid-ws-02"},
                    },
                    "ns",
                    names.ip_claim_name("office", "10.0.3.7"),
                ),
            ],
        },
        "addresses_by_lan": {("ns", "office"): [("ws-05", ("10.0.3.9",))]},
        "decky_idx": {
            ("ns", "ws-05"): [
                stored.store(
                    body("ws-05", networks=[{"lan": "office", "ip": "10.0.3.9"}]),
                    default_interval=30,
                )
            ]
        },
    }
    yield
    ST.indices = {}


def test_a_valid_decky_passes() -> None:
    assert admission.decky_problems(ST, body("ok")) is None
    assert (
        admission.decky_problems(
            ST, body("ok", services=["http"], serviceConfig={"http": {"port": 80}})
        )
        is None
    )


def test_a_claimed_or_pinned_ip_is_a_409_naming_the_holder() -> None:
    claimed = body("ws-03", networks=[{"lan": "office", "ip": "10.0.3.7"}])
    assert admission.decky_problems(ST, claimed) == (
        409,
        "10.0.3.7 on LAN office is held by decky ws-02",
    )
    pinned = body("ws-04", networks=[{"lan": "office", "ip": "10.0.3.9"}])
    assert admission.decky_problems(ST, pinned) == (
        409,
        "10.0.3.9 on LAN office is held by decky ws-05",
    )
    # The holder itself may be updated.
    assert (
        admission.decky_problems(ST, body("ws-02", networks=[{"lan": "office", "ip": "10.0.3.7"}]))
        is None
    )


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ({"services": ["nosuch"]}, "unknown service nosuch"),
        ({"services": ["sniffer"]}, "fleet singleton"),
        ({"networks": [{"lan": "nowhere"}]}, "LAN nowhere does not exist"),
        ({"networks": [{"lan": "office", "ip": "10.9.9.9"}]}, "outside subnet"),
        ({"networks": [{"lan": "office", "ip": "10.0.3.1"}]}, "gateway"),
        ({"services": ["http"], "serviceConfig": {"http": {"port": "x"}}}, "http.port"),
        ({"services": ["ssh"], "serviceConfig": {"ssh": {"banner": "x" * 40_000}}}, "bytes"),
    ],
)
def test_bad_references_are_422(spec: dict[str, Any], text: str) -> None:
    problem = admission.decky_problems(ST, body("bad", **spec))
    assert problem is not None and problem[0] == 422 and text in problem[1]


def test_overlapping_lan_subnet_is_a_409_naming_the_lan() -> None:
    lan = {"metadata": {"name": "lab", "namespace": "other"}, "spec": {"subnet": "10.0.0.0/16"}}
    assert admission.lan_problems(ST, lan) == (
        409,
        "subnet 10.0.0.0/16 overlaps 10.0.3.0/24 of LAN ns/office",
    )
    free = {"metadata": {"name": "lab", "namespace": "ns"}, "spec": {"subnet": "10.1.0.0/24"}}
    assert admission.lan_problems(ST, free) is None


def test_only_spec_changes_are_judged() -> None:
    old = body("x", services=["nosuch"])
    assert admission._skip(old, old)
    assert admission._skip({**old, "metadata": {"deletionTimestamp": "t"}}, None)
    assert not admission._skip(old, None)
