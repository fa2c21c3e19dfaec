"""Scheduling places deckies only on nodes whose agent holds a live lease."""

import datetime
from typing import Any

from decnet.controller import scheduling

NOW = datetime.datetime(2026, 11, 22, 10, 0, tzinfo=datetime.UTC)


def lease(node: str, seconds_ago: int, duration: int = 40) -> scheduling.Lease:
    return scheduling.Lease(node, NOW - datetime.timedelta(seconds=seconds_ago), duration)


def test_lease_is_live_until_renew_plus_duration() -> None:
    assert lease("a", 39).live(NOW)
    assert not lease("a", 40).live(NOW)
    assert not scheduling.Lease("a", None, 40).live(NOW)
    assert scheduling.live_nodes([lease("a", 5), lease("b", 100)], NOW) == {"a"}


def test_least_loaded_live_node_wins() -> None:
    d = scheduling.choose(
        current=None,
        topology_node=None,
        pinned=None,
        live={"a", "b", "c"},
        load={"a": 3, "b": 1, "c": 1},
    )
    assert d.node == "b" and d.reason == scheduling.SCHEDULED


def test_topology_node_beats_pinned_node() -> None:
    d = scheduling.choose(current=None, topology_node="t", pinned="p", live={"t", "p"}, load={})
    assert d.node == "t"
    d = scheduling.choose(current=None, topology_node=None, pinned="p", live={"p", "q"}, load={})
    assert d.node == "p"


def test_no_live_agent_leaves_decky_unscheduled() -> None:
    d = scheduling.choose(current=None, topology_node=None, pinned=None, live=set(), load={})
    assert d.node is None and d.reason == scheduling.NO_LIVE_AGENT
    d = scheduling.choose(current=None, topology_node=None, pinned="p", live={"q"}, load={})
    assert d.node is None and d.reason == scheduling.NO_LIVE_AGENT and "p" in d.message


def test_a_placed_decky_keeps_its_node() -> None:
    d = scheduling.choose(current="a", topology_node=None, pinned=None, live={"b"}, load={})
    assert d.node == "a"


def test_the_message_does_not_change_once_placed() -> None:
    first = scheduling.choose(current=None, topology_node=None, pinned="p", live={"p"}, load={})
    later = scheduling.choose(current="p", topology_node=None, pinned="p", live={"p"}, load={})
    assert first == later


def lost(seconds: float | None, policy: str = "Reschedule", grace: float = 300) -> Any:
    return scheduling.NodeLoss(policy=policy, grace_seconds=grace, lost_seconds=seconds)


def test_a_decky_on_a_lost_node_waits_by_default() -> None:
    d = scheduling.choose(
        current="a",
        topology_node=None,
        pinned=None,
        live={"b"},
        load={},
        node_loss=lost(3600, policy="Wait"),
    )
    assert d.node == "a" and d.moved_from is None


def test_reschedule_waits_for_the_grace_period_then_moves_to_the_least_loaded_live_node() -> None:
    def at(seconds: float | None) -> Any:
        return scheduling.choose(
            current="a",
            topology_node=None,
            pinned=None,
            live={"b", "c"},
            load={"b": 5, "c": 2},
            node_loss=lost(seconds),
        )

    assert at(None).node == "a"
    assert at(299).node == "a"
    moved = at(300)
    assert moved.node == "c" and moved.moved_from == "a"
    assert moved.reason == scheduling.RESCHEDULED and "node a" in moved.message


def test_reschedule_stays_when_no_other_node_is_live_or_the_node_is_back() -> None:
    alone = scheduling.choose(
        current="a", topology_node=None, pinned=None, live=set(), load={}, node_loss=lost(900)
    )
    assert alone.node == "a" and alone.moved_from is None
    back = scheduling.choose(
        current="a",
        topology_node=None,
        pinned=None,
        live={"a", "b"},
        load={},
        node_loss=lost(900),
    )
    assert back.node == "a" and back.moved_from is None


def test_pinned_and_topology_deckies_never_move_on_their_own() -> None:
    for pinned, topo in (("a", None), (None, "a")):
        d = scheduling.choose(
            current="a",
            topology_node=topo,
            pinned=pinned,
            live={"b"},
            load={},
            node_loss=lost(900),
        )
        assert d.node == "a" and d.moved_from is None
