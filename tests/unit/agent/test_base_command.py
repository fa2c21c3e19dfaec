"""PID 1 of a decky's base: a plain sleep loop, or one that keeps the packet persona running."""

from __future__ import annotations

import pytest

from decnet.agent import planner
from decnet.agent.runtime import engine


def want(packet_persona: str) -> planner.DeckyWant:
    return planner.DeckyWant(namespace="decoys", name="ws-01", uid="u", plan_hash="h",
                             hostname="WS-01", base_image="b", networks=(),
                             packet_persona=packet_persona)


def test_a_base_without_packet_persona_only_sleeps() -> None:
    assert engine.base_command(want("")) == engine.BASE_COMMAND


def test_a_windows_base_supervises_the_rewriter_and_falls_back_to_sleeping() -> None:
    argv = engine.base_command(want("windows"))
    assert argv[:2] == ["sh", "-c"]
    script = argv[2]
    assert "python3 -m netshape --profile windows" in script
    assert "trap 'exit 0' TERM" in script and "else while :; do sleep 3600" in script
    assert "decnet" not in script.lower()  # visible in the base's process list


def test_a_profile_is_a_word_from_the_personas_table_never_shell_text() -> None:
    with pytest.raises(ValueError):
        engine.base_command(want("windows; reboot"))
