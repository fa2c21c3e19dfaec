"""A failed egress firewall sync must reach every decky's report, and so must its recovery.

iptables cannot be made to fail safely on a shared machine, so the failure is injected
(firewall.sync replaced, said in the test names); everything else is the agent's own code.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.agent.test_planner import want

from decnet.agent import health, main
from decnet.agent.runtime import firewall


def _agent() -> tuple[main.Agent, list[tuple[str, bool]]]:
    agent = main.Agent(client=None, engine=None, node="node-a", firewall_enabled=True)  # type: ignore[arg-type]
    agent.listed.set()
    agent._set_objects([{"metadata": {"uid": "u1"}}, {"metadata": {"uid": "u2"}}], agent._mark())
    enqueued: list[tuple[str, bool]] = []
    agent.enqueue = lambda uid, force=False: enqueued.append((uid, force))  # type: ignore[method-assign]
    return agent, enqueued


def test_injected_iptables_failure_fails_every_decky_on_a_lan_until_a_sync_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent, enqueued = _agent()

    def refuse(*_: Any, **__: Any) -> list[Any]:
        raise firewall.FirewallError("iptables-restore v1.8.9: line 4 failed")

    monkeypatch.setattr(firewall, "sync", refuse)
    agent.sync_firewall()
    assert agent.firewall_error == "iptables-restore v1.8.9: line 4 failed"
    verdict = health.judge_firewall(want(), agent.firewall_error)
    assert verdict is not None and verdict.reason == "FirewallFailed"
    # containment just failed: every decky is re-judged (forced), once
    assert sorted(enqueued) == [("u1", True), ("u2", True)]
    enqueued.clear()
    agent.sync_firewall()
    assert enqueued == []

    monkeypatch.setattr(firewall, "sync", lambda *_, **__: [])
    agent.sync_firewall()
    assert agent.firewall_error is None
    assert health.judge_firewall(want(), agent.firewall_error) is None
    # and back in place: every decky is re-judged so that Ready returns
    assert sorted(enqueued) == [("u1", True), ("u2", True)]
    agent.pool.shutdown()


def test_with_the_firewall_off_no_sync_runs_and_nothing_is_claimed_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent, enqueued = _agent()
    agent.firewall_enabled = False
    monkeypatch.setattr(firewall, "sync", lambda *_, **__: pytest.fail("synced while off"))
    agent.sync_firewall()
    assert agent.firewall_error is None and enqueued == []
    agent.pool.shutdown()
