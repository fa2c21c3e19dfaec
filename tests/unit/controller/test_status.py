"""LAN and Topology status: what follows from what the reconcile found, and when to write."""

from typing import Any

from decnet.controller import lanstatus, topostatus, validation
from decnet.kube import conditions


def cond(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def lan(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "current": {},
        "generation": 2,
        "requested": None,
        "subnet": None,
        "held_by": None,
        "problem": None,
        "deckies": 0,
        "topology": None,
    }
    return lanstatus.status(**{**args, **kw})


def test_a_lan_with_a_subnet_is_ready_with_its_gateway() -> None:
    status = lan(subnet="10.0.3.0/24", deckies=2, topology="maze")
    assert status["subnet"] == "10.0.3.0/24"
    assert status["gateway"] == "10.0.3.1"
    assert (status["deckies"], status["topology"], status["observedGeneration"]) == (2, "maze", 2)
    ready = cond(status, conditions.READY)
    assert (ready["status"], ready["reason"]) == ("True", "SubnetAllocated")
    assert cond(status, conditions.STALLED)["status"] == "False"


def test_a_lan_whose_subnet_another_holds_publishes_none_and_names_the_holder() -> None:
    status = lan(requested="10.0.3.0/24", subnet="10.0.3.0/24", held_by="office")
    assert "subnet" not in status and "gateway" not in status
    ready = cond(status, conditions.READY)
    assert (ready["status"], ready["reason"]) == ("False", "SubnetHeld")
    assert ready["message"] == "subnet 10.0.3.0/24 is held by LAN office"


def test_a_refused_lan_is_stalled_and_publishes_no_subnet() -> None:
    problem = validation.Problem(422, "SubnetOverlap", "overlaps LAN a/first")
    status = lan(requested="10.0.0.0/16", subnet="10.0.0.0/16", problem=problem)
    assert "subnet" not in status
    stalled = cond(status, conditions.STALLED)
    assert (stalled["status"], stalled["reason"]) == ("True", "SubnetOverlap")
    assert cond(status, conditions.READY)["message"] == "overlaps LAN a/first"


def test_an_exhausted_pool_is_not_ready() -> None:
    assert cond(lan(), conditions.READY)["reason"] == "PoolExhausted"


def test_an_idle_lan_is_not_written_again() -> None:
    first = lan(subnet="10.0.3.0/24")
    again = lan(current=first, subnet="10.0.3.0/24")
    assert not lanstatus.changed(first, again)
    assert lanstatus.changed({}, first)
    # a subnet no longer held is removed from status: a write
    held = lan(current=first, requested="10.0.3.0/24", subnet="10.0.3.0/24", held_by="x")
    assert lanstatus.changed(first, held)


def issue(code: str, severity: str) -> dict[str, Any]:
    return {"code": code, "severity": severity, "message": f"{code} here", "object": "LAN/x"}


def topo(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "current": {},
        "generation": 1,
        "issues": [],
        "lans": 2,
        "deckies": 3,
        "node": "node-a",
    }
    return topostatus.status(**{**args, **kw})


def test_a_valid_topology_is_ready_on_its_node() -> None:
    status = topo()
    assert (status["valid"], status["node"], status["lans"], status["deckies"]) == (
        True,
        "node-a",
        2,
        3,
    )
    ready = cond(status, conditions.READY)
    assert (ready["status"], ready["reason"]) == ("True", "Valid")


def test_an_error_makes_a_topology_invalid_and_stalled_a_warning_degraded() -> None:
    invalid = topo(issues=[issue("DMZ_MISSING", "Error"), issue("IP_COLLISION", "Warning")])
    assert invalid["valid"] is False
    assert cond(invalid, conditions.STALLED)["status"] == "True"
    ready = cond(invalid, conditions.READY)
    assert ready["message"] == "DMZ_MISSING: DMZ_MISSING here; IP_COLLISION: IP_COLLISION here"
    degraded = topo(issues=[issue("IP_COLLISION", "Warning")])
    assert degraded["valid"] is True
    assert cond(degraded, conditions.READY)["reason"] == "Degraded"


def test_a_topology_without_a_node_yet_has_none_in_status() -> None:
    assert "node" not in topo(node=None)


def test_an_idle_topology_is_not_written_again() -> None:
    first = topo()
    assert not topostatus.changed(first, topo(current=first))
    assert topostatus.changed(first, topo(current=first, node="node-b"))
