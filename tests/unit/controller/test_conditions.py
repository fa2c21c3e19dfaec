"""Conditions keep lastTransitionTime until their status changes."""

from decnet.kube import conditions


def test_transition_time_moves_only_on_status_change() -> None:
    old = [conditions.make("Ready", "False", "Progressing", "", 1, "T1")]
    same = conditions.merge(old, [conditions.make("Ready", "False", "Other", "m", 2, "T2")])
    assert same[0]["lastTransitionTime"] == "T1" and same[0]["reason"] == "Other"
    flipped = conditions.merge(old, [conditions.make("Ready", "True", "Converged", "", 2, "T3")])
    assert flipped[0]["lastTransitionTime"] == "T3"


def test_merge_keeps_unmanaged_types_and_orders_known_ones() -> None:
    old = [conditions.make("Custom", "True", "X", now="T0")]
    out = conditions.merge(
        old, [conditions.make(t, "Unknown", "Init", now="T1") for t in reversed(conditions.TYPES)]
    )
    assert [c["type"] for c in out] == [*conditions.TYPES, "Custom"]
    assert conditions.is_true(out, "Custom") and conditions.status_of(out, "Nope") == "Unknown"
