"""The deckies-by-phase gauge and the reconcile metrics, as Prometheus would scrape them."""

from __future__ import annotations

import platform
from collections import Counter

import prometheus_client
import pytest

from decnet.controller import census, metrics


def _gauge(phase: str) -> float | None:
    return prometheus_client.REGISTRY.get_sample_value("decnet_operator_deckies", {"phase": phase})


def _decky(uid: str, phase: str | None) -> dict[str, object]:
    status = {"lifecycle": {"phase": phase}} if phase else {}
    return {"metadata": {"uid": uid}, "status": status}


def test_a_move_counts_per_phase_and_an_emptied_phase_reads_zero() -> None:
    counts = census.moved(Counter({"Running": 2, "none": 1}), "Running", "Failed")
    assert counts == Counter({"Running": 1, "none": 1, "Failed": 1})
    assert census.moved(counts, "Failed", None)["Failed"] == 0  # deleted
    assert census.moved(counts, None, "none")["none"] == 2  # listed


def test_the_gauge_follows_each_decky_through_its_phases_and_its_deletion() -> None:
    counting = census.Census()
    counting.observe(None, _decky("u1", None))  # the initial listing
    counting.observe("ADDED", _decky("u2", "Pending"))
    assert (_gauge("none"), _gauge("Pending")) == (1, 1)
    counting.observe("MODIFIED", _decky("u1", "Succeeded"))
    counting.observe("MODIFIED", _decky("u2", "Succeeded"))
    assert (_gauge("none"), _gauge("Pending"), _gauge("Succeeded")) == (0, 0, 2)
    counting.observe("DELETED", _decky("u1", "Succeeded"))
    assert _gauge("Succeeded") == 1


def test_a_reconcile_is_timed_by_kind_and_counted_when_it_raises() -> None:
    def sample(name: str) -> float:
        return prometheus_client.REGISTRY.get_sample_value(name, {"kind": "Probe"}) or 0.0

    with metrics.counting_errors("Probe"):
        pass
    with pytest.raises(RuntimeError), metrics.counting_errors("Probe"):
        raise RuntimeError("conflict")
    assert sample("decnet_operator_reconcile_duration_seconds_count") == 2
    assert sample("decnet_operator_reconcile_errors_total") == 1
    info = prometheus_client.REGISTRY.get_sample_value(
        "decnet_operator_build_info",
        {"version": "0.1.0", "python": platform.python_version()},
    )
    assert info == 1
