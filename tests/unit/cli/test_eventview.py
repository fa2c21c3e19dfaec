"""`kubectl decnet events` rows and table from AttackerContact Events."""

from __future__ import annotations

from decnet.cli import eventview


def _event(decky: str, source: str, count: int, last: str, reason: str = "AttackerContact") -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {
            "namespace": "decoys",
            "annotations": {"decnet.io/source": source, "decnet.io/service": "ssh"},
        },
        "involvedObject": {"kind": "Decky", "name": decky, "namespace": "decoys"},
        "reason": reason,
        "count": count,
        "firstTimestamp": "2026-11-29T10:00:00Z",
        "lastTimestamp": last,
        "source": {"host": "node-a"},
        "message": "...",
    }


def test_rows_are_attacker_contacts_of_the_asked_decky_newest_last() -> None:
    events = [
        _event("ws-01", "10.0.0.9", 1000, "2026-11-29T10:05:00Z"),
        _event("ws-02", "10.0.0.7", 3, "2026-11-29T10:01:00Z"),
        _event("ws-01", "10.0.0.8", 1, "2026-11-29T10:09:00Z", reason="Mutated"),
    ]
    rows = eventview.rows(events)
    assert [(r["decky"], r["count"]) for r in rows] == [("ws-02", 3), ("ws-01", 1000)]
    assert [r["source"] for r in eventview.rows(events, "ws-01")] == ["10.0.0.9"]


def test_table_has_a_namespace_column_only_for_all_namespaces() -> None:
    rows = eventview.rows([_event("ws-01", "10.0.0.9", 1000, "2026-11-29T10:05:00Z")])
    text = eventview.table(rows, all_namespaces=False)
    header, line = text.splitlines()
    assert header.split()[:3] == ["DECKY", "SOURCE", "SERVICE"]
    assert line.split()[:4] == ["ws-01", "10.0.0.9", "ssh", "1000"]
    assert eventview.table(rows, all_namespaces=True).startswith("NAMESPACE")
    assert eventview.table([], all_namespaces=False) == "No attacker contact found.\n"
