"""decnet.logs: one stream per process, one format, one event-name style."""

from __future__ import annotations

import ast
import io
import json
import logging
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from decnet import logs

ROOT = Path(__file__).resolve().parents[3]
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    own = logging.getLogger(logs.OWN).level
    hooks = threading.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(logs.OWN).setLevel(own)
    threading.excepthook = hooks
    logging.captureWarnings(False)
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line.strip()]


def test_our_events_and_every_librarys_records_are_one_json_stream(
    restore_logging: None,
) -> None:
    out = io.StringIO()
    logs.configure("info", "json", stream=out)
    structlog.get_logger("decnet.controller").info("reconcile.done", object="decoys/ws-01")
    structlog.get_logger("decnet.agent").debug("converge.detail")  # below the level
    logging.getLogger("kopf.objects").warning(
        "Handler 'decky_event' failed temporarily.",
        extra={"k8s_ref": {"kind": "Decky", "name": "ws-01", "namespace": "decoys"}},
    )
    logging.getLogger("lightkube").error("watch closed")
    logging.getLogger("kopf._core.engines.peering").info("Pausing operations in favour of [b].")
    logging.getLogger("httpx").info("HTTP Request: GET /apis 200")  # one per request: dropped
    logging.getLogger("aiohttp.server").error("Error handling request")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    crash = threading.Thread(target=lambda: 1 / 0, name="resync")
    crash.start()
    crash.join()

    records = [json.loads(line) for line in _lines(out)]  # every line is JSON
    for record in records:
        assert {"event", "level", "timestamp", "logger"} <= set(record), record
        assert record["timestamp"].endswith("Z")
    events = [(r["logger"], r["event"].splitlines()[0]) for r in records]
    assert events[:5] == [
        ("decnet.controller", "reconcile.done"),
        ("kopf.objects", "Handler 'decky_event' failed temporarily."),
        ("lightkube", "watch closed"),
        ("kopf._core.engines.peering", "Pausing operations in favour of [b]."),
        ("aiohttp.server", "Error handling request"),
    ]
    assert records[0]["object"] == "decoys/ws-01" and records[0]["level"] == "info"
    assert records[1]["k8s_ref"]["name"] == "ws-01" and records[1]["level"] == "warning"
    assert records[5]["logger"] == "py.warnings" and "old API" in records[5]["event"]
    assert records[6]["event"] == "thread.crashed" and records[6]["thread"] == "resync"
    assert "ZeroDivisionError" in records[6]["exception"]
    assert len(records) == 7


def test_console_format_is_for_humans_on_the_same_stream(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure("info", "console", stream=out)
    structlog.get_logger("decnet.agent").info("agent.started", node="n1")
    logging.getLogger("kopf").warning("peering paused")
    lines = _lines(out)
    assert len(lines) == 2
    assert "agent.started" in lines[0] and "node" in lines[0] and "n1" in lines[0]
    assert "peering paused" in lines[1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])
    with pytest.raises(ValueError, match="log format 'xml'"):
        logs.configure("info", "xml", stream=out)


def _event_names() -> list[tuple[str, str]]:
    """Every literal event name our code logs: the first argument of a log method call."""
    found = []
    for path in sorted((ROOT / "operator" / "decnet").rglob("*.py")):
        if "emulators" in path.parts:  # the emulators' own lines are RFC 5424 (docs/events.md)
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and isinstance(node.func.value, ast.Name | ast.Call)
            ):
                receiver = ast.unparse(node.func.value)
                if receiver == "log" or "get_logger" in receiver:
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node.args[0].value))
    return found


def test_every_event_name_is_dotted_lowercase() -> None:
    names = _event_names()
    assert len(names) > 50  # the scan finds our log calls
    assert [(where, n) for where, n in names if logs.bad_event_names([n])] == []
    assert logs.bad_event_names(["reconcile.failed", "claim.sweep_failed"]) == []
    assert logs.bad_event_names(["agent_started", "Reconcile.failed", "gc"]) == [
        "agent_started",
        "Reconcile.failed",
        "gc",
    ]
