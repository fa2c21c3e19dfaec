"""The freshest body of an object, with resourceVersions compared for equality only."""

from typing import Any

from decnet.controller import state, workqueue

KEY = workqueue.Key(workqueue.Kind.DECKY, "ns", "ws-01")


def body(rv: str, phase: str = "") -> dict[str, Any]:
    return {"metadata": {"name": "ws-01", "resourceVersion": rv}, "status": {"phase": phase}}


def test_without_a_write_of_ours_the_watch_body_is_the_freshest() -> None:
    st = state.State(state.Config())
    assert st.freshest(KEY, body("9")) == body("9")


def test_our_write_wins_until_the_watch_delivers_it() -> None:
    st = state.State(state.Config())
    st.remember(KEY, body("10"), body("11", "ours"))
    st.remember(KEY, body("11", "ours"), body("12", "ours again"))
    # The watch replays what we wrote over, and our own earlier write: older than ours.
    assert st.freshest(KEY, body("10")) == body("12", "ours again")
    assert st.freshest(KEY, body("11")) == body("12", "ours again")
    # Our write comes back: the watch has caught up.
    assert st.freshest(KEY, body("12", "ours again")) == body("12", "ours again")
    assert st.freshest(KEY, body("13", "agent")) == body("13", "agent")


def test_someone_elses_write_of_unknown_age_is_read_again() -> None:
    st = state.State(state.Config())
    st.remember(KEY, body("100"), body("101", "ours"))
    # "99" < "101" as a string compare would say, yet only equality is meaningful here.
    assert st.freshest(KEY, body("99", "agent")) is None
    assert st.freshest(KEY, body("99", "agent")) == body("99", "agent")  # nothing held


def test_a_deleted_object_is_forgotten() -> None:
    st = state.State(state.Config())
    st.remember(KEY, body("1"), body("2"))
    st.forget(KEY, "uid")
    assert st.freshest(KEY, body("1")) == body("1")


def test_the_per_node_load_follows_placements_and_forgets() -> None:
    st = state.State(state.Config())
    st.place("u1", "a")
    st.place("u2", "a")
    st.place("u3", "b")
    st.place("u2", "b")  # moved
    st.place("u3", "b")  # again: counted once
    assert dict(st.load()) == {"a": 1, "b": 2}
    st.forget(workqueue.Key(workqueue.Kind.DECKY, "ns", "x"), "u1")
    assert st.load().get("a", 0) == 0 and st.load()["b"] == 2
