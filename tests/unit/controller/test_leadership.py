"""Leader election: kopf's peering rule, as the background loop applies it."""

from __future__ import annotations

import datetime as dt

from decnet.controller import leadership

NOW = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)


def _status(**peers: tuple[int, int, int]) -> dict[str, dict[str, object]]:
    """identity -> (priority, lifetime, seconds since lastseen), as kopf writes it."""
    return {
        name: {
            "priority": priority,
            "lifetime": lifetime,
            "lastseen": (NOW - dt.timedelta(seconds=ago)).isoformat(),
        }
        for name, (priority, lifetime, ago) in peers.items()
    }


def _leads(me: str, priority: int, status: dict[str, dict[str, object]]) -> bool:
    return leadership.leading(leadership.peers(status), me, priority, NOW)


def test_the_highest_priority_leads_and_the_others_pause() -> None:
    status = _status(a=(100, 60, 5), b=(200, 60, 5))
    assert _leads("b", 200, status)
    assert not _leads("a", 100, status)


def test_equal_priorities_pause_both_as_kopf_does() -> None:
    status = _status(a=(100, 60, 5), b=(100, 60, 5))
    assert not _leads("a", 100, status) and not _leads("b", 100, status)


def test_a_killed_leader_stops_counting_when_its_lifetime_runs_out() -> None:
    assert not _leads("a", 100, _status(b=(200, 10, 9)))
    assert _leads("a", 100, _status(b=(200, 10, 10)))  # no event needed: time alone


def test_a_record_of_lifetime_zero_is_dead() -> None:
    assert _leads("a", 100, _status(b=(200, 0, 0)))


def test_own_record_and_garbage_do_not_count() -> None:
    status = _status(a=(100, 60, 0))
    status["junk"] = {"lastseen": "yesterday"}
    status["other"] = "not a record"  # type: ignore[assignment]
    assert _leads("a", 100, status)


def test_standalone_always_leads_and_a_peer_waits_for_its_first_read() -> None:
    assert leadership.Leadership(None, "a", 0).leading()
    follower = leadership.Leadership("decnet-operator", "a", 100)
    assert not follower.leading(NOW)  # the peering object not read yet
    follower.status = _status(b=(200, 60, 5))
    assert not follower.leading(NOW)
    follower.status = {}
    assert follower.leading(NOW)


def test_priority_defaults_to_the_start_time_so_the_newest_pod_leads() -> None:
    assert leadership.own_priority({}, 1_700_000_000.5) == 1_700_000_000_500
    assert leadership.own_priority({"DECNET_PEERING_PRIORITY": "7"}, 1.0) == 7
    assert leadership.own_identity({"POD_ID": "decnet-operator-7d9-x2"}) == "decnet-operator-7d9-x2"
    assert leadership.own_identity({}) != ""
    assert leadership.own_lifetime({}) == 60
    assert leadership.own_lifetime({"DECNET_PEERING_LIFETIME": "10"}) == 10
