"""Collection decisions without Docker: ids, checkpoints, enrichment, spool, aggregation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from decnet.agent import activity, attacker, checkpoint, delivery, eventrecord, sinks, spool
from decnet.emulators import events

WHEN = dt.datetime(2026, 11, 29, 19, 30, 0, 123456, tzinfo=dt.UTC)


def _event(**fields: str) -> events.Event:
    return events.Event(
        service="ssh",
        kind="auth",
        src_ip="10.20.0.9",
        src_port=51234,
        dst_port=22,
        session="s1",
        time=WHEN,
        fields=fields,
    )


ORIGIN = eventrecord.Origin(
    namespace="decoys",
    decky="ws-01",
    node="node-a",
    service="ssh",
    container_id="c" * 64,
    archetype="linux-server",
    lan="office",
)


def test_the_same_line_read_twice_gets_the_same_id_and_another_line_another() -> None:
    line = events.to_line(_event(username="root", password="x"))
    ts = "2026-11-29T19:30:00.123456789Z"
    a = eventrecord.enrich(events.parse_line(line), ORIGIN, ts, line)  # type: ignore[arg-type]
    b = eventrecord.enrich(events.parse_line(line), ORIGIN, ts, line)  # type: ignore[arg-type]
    assert a.id == b.id and len(a.id) == 32
    assert eventrecord.event_id(ORIGIN.container_id, "2026-11-29T19:30:00.123456790Z", line) != a.id


def test_a_line_cannot_rehome_itself_the_agents_origin_fields_win() -> None:
    hostile = _event(namespace="kube-system", decky="other", id="fake", username="root")
    line = events.to_line(hostile)
    record = eventrecord.enrich(events.parse_line(line), ORIGIN, "t", line)  # type: ignore[arg-type]
    parsed = events.parse_line(record.to_syslog())
    assert parsed is not None
    assert parsed.fields["namespace"] == "decoys"
    assert parsed.fields["decky"] == "ws-01"
    assert parsed.fields["id"] == record.id
    assert parsed.fields["username"] == "root"
    assert record.to_dict()["namespace"] == "decoys"
    assert "namespace" not in record.to_dict()["fields"]


def test_a_record_survives_the_spool_round_trip() -> None:
    line = events.to_line(_event(username="root", password="p w"))
    record = eventrecord.enrich(events.parse_line(line), ORIGIN, "t", line)  # type: ignore[arg-type]
    again = eventrecord.from_dict(json.loads(record.to_json()))
    assert again == record


def test_checkpoint_keeps_only_lines_not_handled_yet() -> None:
    ns = checkpoint.docker_ns("2026-11-29T19:30:00.000000005Z")
    assert ns == checkpoint.docker_ns("2026-11-29T19:30:00Z") + 5
    pos = checkpoint.advance(checkpoint.Position(), ns, "a")
    assert not checkpoint.keep(pos, ns - 1, "older")
    assert not checkpoint.keep(pos, ns, "a")
    assert checkpoint.keep(pos, ns, "b")  # same nanosecond, another line
    assert checkpoint.keep(pos, ns + 1, "c")
    assert pos.since_seconds() == ns // 1_000_000_000
    assert checkpoint.Position().since_seconds() == 0


def test_checkpoint_store_round_trips_and_forgets_gone_containers(tmp_path: Path) -> None:
    store = checkpoint.Store(tmp_path / "cp.json")
    assert store.load() == {}
    store.save({"x": checkpoint.Position(5, ("a",)), "y": checkpoint.Position(7, ())})
    loaded = store.load()
    assert loaded["x"] == checkpoint.Position(5, ("a",))
    assert set(checkpoint.forget(loaded, ["y"])) == {"y"}
    (tmp_path / "cp.json").write_text("{broken")
    assert store.load() == {}


def test_spool_delivers_in_order_and_resumes_from_its_cursor(tmp_path: Path) -> None:
    q = spool.Spool(tmp_path, cap_bytes=10_000_000, segment_bytes=1024)
    q.append([f"event-{i}" for i in range(100)])
    batch = q.read(30)
    assert batch.lines[0] == "event-0" and len(batch.lines) == 30
    q.ack(batch)
    reopened = spool.Spool(tmp_path, cap_bytes=10_000_000, segment_bytes=1024)
    assert reopened.backlog == 70
    rest = reopened.read(1000)
    assert rest.lines[0] == "event-30" and rest.lines[-1] == "event-99"
    reopened.ack(rest)
    assert reopened.backlog == 0 and reopened.read(10).lines == ()


def test_a_full_spool_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    q = spool.Spool(tmp_path, cap_bytes=4096, segment_bytes=1024)
    total = 0
    for i in range(100):
        total += 1
        q.append([f"event-{i:04d}-" + "x" * 80])
    assert q.disk_bytes() <= 4096 + 1024
    assert q.dropped > 0
    assert q.backlog + q.dropped == total
    first = q.read(1).lines[0]
    assert first != "event-0000-" + "x" * 80  # the oldest went first
    assert q.read(1000).lines[-1].startswith("event-0099")


def test_activity_is_written_once_per_30_s_and_never_without_contact() -> None:
    tracker = activity.Activity(interval=30)
    assert tracker.due(0.0) == []
    line = events.to_line(_event())
    record = eventrecord.enrich(events.parse_line(line), ORIGIN, "t", line)  # type: ignore[arg-type]
    tracker.observe(record, base_contacts=5)
    ((key, body),) = tracker.due(100.0)
    assert key == ("decoys", "ws-01")
    assert body == {
        "lastContact": "2026-11-29T19:30:00Z",
        "contacts": 6,
        "lastSource": "10.20.0.9",
        "lastService": "ssh",
    }
    tracker.observe(record)
    assert tracker.due(110.0) == []  # within 30 s of the last write
    assert tracker.due(131.0)[0][1]["contacts"] == 7
    assert tracker.due(500.0) == []  # nothing new: no write


def test_a_thousand_attempts_are_one_contact_whose_count_grows() -> None:
    contacts = activity.Contacts(interval=10)
    line = events.to_line(_event())
    record = eventrecord.enrich(events.parse_line(line), ORIGIN, "t", line)  # type: ignore[arg-type]
    contacts.observe(record, 0.0)
    first = contacts.due(0.0)
    assert [c.count for c in first] == [1]
    for _ in range(999):
        contacts.observe(record, 1.0)
    assert contacts.due(5.0) == []
    later = contacts.due(10.0)
    assert len(later) == 1 and later[0].count == 1000 and later[0].name == first[0].name
    assert "10.20.0.9" in later[0].message()


def test_sink_selector_by_namespace_and_labels() -> None:
    assert attacker.selected(None, "a", {})
    assert attacker.selected({"namespaces": ["a"]}, "a", {})
    assert not attacker.selected({"namespaces": ["b"]}, "a", {})
    sel = {"deckySelector": {"matchLabels": {"decnet.io/fleet": "office"}}}
    assert attacker.selected(sel, "a", {"decnet.io/fleet": "office"})
    assert not attacker.selected(sel, "a", {"decnet.io/fleet": "lab"})


def test_sink_status_sums_nodes_and_says_degraded_while_a_node_fails() -> None:
    now = "2026-11-29T19:30:00Z"
    other = {"node": "b", "delivered": 10, "backlog": 0, "dropped": 0, "ready": True}
    failing = attacker.node_entry("a", delivery.Stats(delivered=5, last_error="refused"), 7, 1)
    status = attacker.sink_status(failing, {"nodes": [other]}, now)
    assert status["delivered"] == 15 and status["backlog"] == 7 and status["dropped"] == 1
    assert status["nodes"] == [failing]  # only this agent's entry is applied
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds == {"Ready": "False", "Degraded": "True"}
    fine = attacker.node_entry("a", delivery.Stats(delivered=12, ready=True), 0, 1)
    conds = {
        c["type"]: c["status"]
        for c in attacker.sink_status(fine, {"nodes": [other]}, now)["conditions"]
    }
    assert conds == {"Ready": "True", "Degraded": "False"}


def test_octet_counting_frames_count_bytes_not_characters() -> None:
    assert sinks.octet_frame("héllo") == b"6 h\xc3\xa9llo"
    assert sinks.parse_address("tls://siem.example:6514") == ("tls", "siem.example", 6514)
