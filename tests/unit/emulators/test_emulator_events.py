"""The event line: what services write is what the agent parses, hostile values included."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from decnet.emulators import core, events, main

PACKAGE = Path(__file__).resolve().parents[3] / "operator" / "decnet" / "emulators"


def _event(**fields: str) -> events.Event:
    return events.Event(
        service="ssh", kind="auth", src_ip="10.0.0.9", src_port=5555, dst_port=22,
        session="abc123", time=dt.datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=dt.UTC),
        hostname="ws-01", fields=fields, message="login attempt",
    )


def test_round_trip_keeps_every_field() -> None:
    event = _event(username="root", password='p"a]s\\s w=rd')
    line = events.to_line(event, 42)
    assert line.startswith("<133>1 2026-11-29T12:00:00.123456Z ws-01 ssh 42 auth [attack@32473 ")
    assert events.parse_line(line) == event


def test_control_characters_and_long_values_are_bounded() -> None:
    event = _event(command="ls\n\x1b[2J" + "A" * 5000)
    line = events.to_line(event)
    assert "\n" not in line and "\x1b" not in line
    parsed = events.parse_line(line)
    assert parsed is not None
    assert parsed.get("command").startswith("ls\\n\\x1b[2J")
    assert parsed.get("command").endswith("...[truncated]")
    assert len(parsed.get("command")) < events.MAX_VALUE + 32


def test_anything_else_is_not_an_event() -> None:
    for line in ["", "hello", "<13>1 - - - - - -", "<133>1 2026 x y z w [other@1 a=\"b\"]",
                 "<133>1 2026-11-29T12:00:00.1Z h s 1 k [attack@32473 src_port=\"x\"]"]:
        assert events.parse_line(line) is None


def test_config_overlays_defaults_and_survives_garbage() -> None:
    defaults = {"banner": "x", "port": 1, "anonymous": True, "users": ["a"]}
    assert core.load_config(defaults, '{"banner": "y", "port": "2", "anonymous": "false", '
                            '"unknown": 1}') == {"banner": "y", "port": 2, "anonymous": False,
                                                 "users": ["a"]}
    assert core.load_config(defaults, "not json") == defaults
    assert core.load_config(defaults, "[1,2]") == defaults
    assert core.load_config(defaults, '{"port": "nope"}')["port"] == 1


def test_every_service_module_declares_ports_and_defaults() -> None:
    for service in main.SERVICES:
        if not (PACKAGE / "services" / f"{main.SERVICES[service]}.py").exists():
            continue  # not written yet
        mod = main.module(service)
        assert mod.PORTS and all(proto in ("tcp", "udp") for _, proto in mod.PORTS)
        assert isinstance(mod.DEFAULTS, dict)
        assert callable(mod.serve)


def test_no_tells_in_the_code_attackers_containers_carry() -> None:
    """The package is copied into every service image: it must not name the product."""
    for path in PACKAGE.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".txt", ".json", ""):
            text = path.read_text(errors="replace").lower()
            for word in ("decnet", "honeypot", "honey pot", "deception"):
                assert word not in text, f"{path.relative_to(PACKAGE)} says {word!r}"
