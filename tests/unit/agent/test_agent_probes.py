"""The agent's probes: ready only while Docker answers and the node Lease is fresh."""

from __future__ import annotations

import threading

import pytest

from decnet.agent import main, readiness


def test_not_ready_before_the_agent_exists_docker_not_answered_yet() -> None:
    live, ready = readiness.checks(lambda: None, lambda: 0.0, 30.0)
    assert live() is None
    assert ready() == "docker unreachable"


def test_ready_needs_a_recent_docker_answer_a_fresh_lease_and_the_first_list() -> None:
    agent = main.Agent(client=None, engine=None, node="node-a")  # type: ignore[arg-type]
    now = [100.0]
    live, ready = readiness.checks(lambda: agent, lambda: now[0], 30.0)
    assert ready() == "docker unreachable"
    agent.docker_answered = 95.0
    assert ready() == "node lease not renewed"
    agent.lease_renewed = 95.0
    assert ready() == "deckies not listed yet"
    agent.listed.set()
    assert ready() is None
    now[0] = 130.0  # three missed renewals: the operator stops scheduling here too
    assert ready() == "docker unreachable"
    agent.docker_answered = 129.0
    assert ready() == "node lease not renewed"


def test_live_while_the_agent_loops_run_dead_when_one_has_stopped() -> None:
    agent = main.Agent(client=None, engine=None, node="node-a")  # type: ignore[arg-type]
    live, _ = readiness.checks(lambda: agent, lambda: 0.0, 30.0)
    assert live() is None  # not started yet: nothing has died
    done = threading.Thread(target=lambda: None)
    done.start()
    done.join()
    agent._threads = [done]
    assert live() == "agent loop stopped"


class _Engine:
    def __init__(self, up: bool) -> None:
        self.up = up

    def ping(self) -> None:
        if not self.up:
            raise main.runtime.EngineUnavailable("connection refused")


def test_the_lease_loop_records_the_renewal_and_dockers_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    renewed: list[str] = []
    monkeypatch.setattr(main.kube, "renew_lease", lambda client, node, *_, **__: renewed.append(node))
    agent = main.Agent(client=None, engine=_Engine(up=False), node="node-a")  # type: ignore[arg-type]
    agent.stop.wait = lambda *_: agent.stop.set() or True  # type: ignore[method-assign]
    agent.lease_loop()
    assert renewed == ["node-a"] and agent.lease_renewed is not None
    assert agent.docker_answered is None
    agent.engine = _Engine(up=True)  # type: ignore[assignment]
    agent.stop.clear()
    agent.lease_loop()
    assert agent.docker_answered is not None
