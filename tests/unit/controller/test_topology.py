"""Topology validation reports each rule violation with its stable code."""

from collections.abc import Sequence
from typing import Any

import pytest

from decnet.api import v1alpha1
from decnet.controller import topology, views

TEMPLATES = {
    "ssh": views.Template("ssh", "decnet/ssh"),
    "http": views.Template(
        "http",
        "decnet/http",
        config_schema={"type": "object", "properties": {"port": {"type": "integer"}}},
    ),
    "sniffer": views.Template("sniffer", "decnet/sniffer", fleet_singleton=True),
}


def lan(name: str, subnet: str, dmz: bool = False) -> views.Lan:
    return views.Lan(name=name, namespace="ns", subnet=subnet, dmz=dmz, topology="maze")


def decky(name: str, *nets: tuple[str, str | None], **kw: Any) -> views.Decky:
    return views.Decky(
        name=name,
        namespace="ns",
        hostname=kw.get("hostname", name),
        archetype=kw.get("archetype"),
        services=tuple(kw.get("services", () if kw.get("archetype") else ("ssh",))),
        service_config=kw.get("config", {}),
        networks=tuple(v1alpha1.NetworkAttachment(lan=n, ip=ip) for n, ip in nets),
        node_name=None,
        forwards_l3=kw.get("gw", False),
        mutation_pool=tuple(kw.get("pool", ())),
        files=(),
        topology_label=kw.get("label"),
    )


def codes(issues: Sequence[dict[str, str]]) -> list[str]:
    return [i["code"] for i in issues]


GOOD_LANS = [lan("dmz", "10.1.0.0/24", dmz=True), lan("inner", "10.2.0.0/24")]
GOOD_DECKIES = [
    decky("gw", ("dmz", "10.1.0.10"), gw=True),
    decky("bridge", ("dmz", None), ("inner", "10.2.0.5")),
    decky("leaf", ("inner", None)),
]


def test_a_good_maze_has_no_issues() -> None:
    issues = topology.validate(GOOD_LANS, GOOD_DECKIES, TEMPLATES)
    assert issues == []
    assert topology.summary(issues) == "Valid"


@pytest.mark.parametrize(
    ("lans", "deckies", "code"),
    [
        ([lan("a", "10.1.0.0/24")], [decky("x", ("a", None))], topology.DMZ_MISSING),
        (
            [lan("a", "10.1.0.0/24", True), lan("b", "10.2.0.0/24", True)],
            [decky("x", ("a", None), ("b", None))],
            topology.DMZ_MULTIPLE,
        ),
        (GOOD_LANS, [decky("x", ("dmz", None)), decky("y", ("inner", None))], topology.DMZ_ORPHAN),
        (GOOD_LANS, GOOD_DECKIES + [decky("lost", label="maze")], topology.DECKY_ORPHAN),
        (
            GOOD_LANS,
            GOOD_DECKIES + [decky("gw2", ("dmz", None), hostname="GW")],
            topology.NAME_DUPLICATE,
        ),
        (GOOD_LANS, GOOD_DECKIES + [decky("z", ("dmz", "10.1.0.10"))], topology.IP_COLLISION),
        (GOOD_LANS, GOOD_DECKIES + [decky("z", ("dmz", "10.1.0.1"))], topology.IP_COLLISION),
        (GOOD_LANS, GOOD_DECKIES + [decky("z", ("dmz", "10.9.0.3"))], topology.IP_OUT_OF_SUBNET),
        (
            GOOD_LANS,
            GOOD_DECKIES + [decky("z", ("dmz", None), ("nope", None))],
            topology.IP_UNKNOWN_LAN,
        ),
        (
            GOOD_LANS + [lan("dup", "10.2.0.128/25")],
            GOOD_DECKIES + [decky("z", ("dmz", None), ("dup", None))],
            topology.SUBNET_OVERLAP,
        ),
        (
            GOOD_LANS,
            GOOD_DECKIES + [decky("z", ("dmz", None), services=("telnetx",))],
            topology.UNKNOWN_SERVICE,
        ),
        (
            GOOD_LANS,
            GOOD_DECKIES + [decky("z", ("dmz", None), services=("sniffer",))],
            topology.UNKNOWN_SERVICE,
        ),
        (
            GOOD_LANS,
            GOOD_DECKIES
            + [decky("z", ("dmz", None), services=("http",), config={"http": {"port": "x"}})],
            topology.SERVICE_CONFIG_INVALID,
        ),
        (
            GOOD_LANS,
            GOOD_DECKIES + [decky("z", ("inner", None), gw=True)],
            topology.GATEWAY_NOT_IN_DMZ,
        ),
    ],
)
def test_each_rule_reports_its_code(
    lans: list[views.Lan], deckies: list[views.Decky], code: str
) -> None:
    issues = topology.validate(lans, deckies, TEMPLATES)
    assert code in codes(issues)
    assert topology.summary(issues) == "Invalid"


def test_shape_rules_are_warnings_on_a_live_topology() -> None:
    deckies = [decky("x", ("dmz", None)), decky("y", ("inner", None))]
    issues = topology.validate(GOOD_LANS, deckies, TEMPLATES, live=True)
    assert codes(issues) == [topology.DMZ_ORPHAN]
    assert issues[0]["severity"] == topology.WARNING
    assert topology.summary(issues) == "Degraded"
    bad = deckies + [decky("z", ("dmz", "10.9.9.9"))]
    assert topology.summary(topology.validate(GOOD_LANS, bad, TEMPLATES, live=True)) == "Invalid"


def test_members_are_its_lans_and_the_deckies_attached_or_labelled() -> None:
    other = views.Lan(name="other", namespace="ns", subnet=None, topology=None)
    lans, deckies = topology.members(
        "maze",
        GOOD_LANS + [other],
        GOOD_DECKIES + [decky("out", ("other", None)), decky("lbl", label="maze")],
    )
    assert [x.name for x in lans] == ["dmz", "inner"]
    assert [d.name for d in deckies] == ["bridge", "gw", "lbl", "leaf"]


def test_config_for_an_archetype_or_pool_service_is_valid() -> None:
    by_archetype = decky("db", ("inner", None), archetype="linux-server", config={"http": {}})
    by_pool = decky(
        "p", ("inner", None), services=("ssh",), pool=("ssh", "http"), config={"http": {}}
    )
    issues = topology.validate(GOOD_LANS, [*GOOD_DECKIES, by_archetype, by_pool], TEMPLATES)
    assert issues == []


def test_config_for_a_service_the_decky_can_never_run_is_invalid() -> None:
    stray = decky("s", ("inner", None), services=("ssh",), config={"http": {}})
    issues = topology.validate(GOOD_LANS, [*GOOD_DECKIES, stray], TEMPLATES)
    assert codes(issues) == [topology.SERVICE_CONFIG_INVALID]
    assert "can never run" in issues[0]["message"]


def test_the_example_maze_is_valid_with_the_builtin_templates() -> None:
    import pathlib

    import yaml

    root = pathlib.Path(__file__).resolve().parents[3] / "examples"
    docs = [d for d in yaml.safe_load_all((root / "topology.yaml").read_text()) if d]
    builtin = [d for d in yaml.safe_load_all((root / "servicetemplates.yaml").read_text()) if d]
    lans = [views.Lan.from_obj(d) for d in docs if d["kind"] == "LAN"]
    deckies = [views.Decky.from_obj(d) for d in docs if d["kind"] == "Decky"]
    templates = {d["metadata"]["name"]: views.Template.from_obj(d) for d in builtin}
    assert topology.validate(lans, deckies, templates) == []
