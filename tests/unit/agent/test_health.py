"""Ready only for what is in place: the judgments on confirmed containers and the firewall."""

from __future__ import annotations

import dataclasses

from tests.unit.agent.test_planner import base_of, service_of, svc, want

from decnet.agent import health, planner
from decnet.api import v1alpha1


def test_all_started_containers_running_is_no_verdict() -> None:
    w = want()
    seen = [base_of(w)] + [service_of(w, s) for s in w.services]
    assert health.judge_containers(w, seen) is None


def test_an_exited_service_names_the_service_and_its_exit_code() -> None:
    w = want()
    smb = dataclasses.replace(service_of(w, w.services[0]), state="exited", exit_code=3)
    verdict = health.judge_containers(w, [base_of(w), smb, service_of(w, w.services[1])])
    assert verdict is not None
    assert verdict.reason == v1alpha1.AGENT_REASON_SERVICE_EXITED
    assert "service smb exited (exit code 3)" in verdict.message
    assert "rdp" not in verdict.message


def test_every_down_service_is_listed_in_a_stable_order() -> None:
    w = want()
    down = [
        dataclasses.replace(service_of(w, s), state="exited", exit_code=i)
        for i, s in enumerate(w.services, start=1)
    ]
    verdict = health.judge_containers(w, [base_of(w), *down])
    assert verdict is not None
    assert verdict.message.startswith("service rdp exited (exit code 2); service smb exited")


def test_a_down_base_outranks_its_services() -> None:
    w = want()
    base = base_of(w, state="exited", exit_code=137)
    smb = dataclasses.replace(service_of(w, w.services[0]), state="exited", exit_code=0)
    verdict = health.judge_containers(w, [smb, base])
    assert verdict is not None
    assert verdict.reason == v1alpha1.AGENT_REASON_BASE_EXITED
    assert verdict.message.startswith("base container exited (exit code 137)")


def test_a_container_gone_meanwhile_is_not_up() -> None:
    w = want(services=(svc("smb"),))
    gone = dataclasses.replace(service_of(w, w.services[0]), state="missing")
    verdict = health.judge_containers(w, [base_of(w), gone])
    assert verdict is not None and verdict.message == "service smb missing after start"


def test_an_unknown_docker_state_word_is_not_repeated() -> None:
    w = want(services=(svc("smb"),))
    odd = dataclasses.replace(service_of(w, w.services[0]), state="<script>", exit_code=1)
    verdict = health.judge_containers(w, [base_of(w), odd])
    assert verdict is not None
    assert "<script>" not in verdict.message
    assert verdict.message == "service smb not running (exit code 1) after start"


def test_containers_outside_the_plan_are_not_this_plans_failure() -> None:
    w = want(services=(svc("smb"),))
    other_uid = dataclasses.replace(
        service_of(w, w.services[0]),
        state="exited",
        labels={**service_of(w, w.services[0]).labels, "decnet.io/uid": "old-uid"},
    )
    removed_service = dataclasses.replace(service_of(w, svc("ftp")), state="exited", exit_code=1)
    assert health.judge_containers(w, [base_of(w), other_uid, removed_service]) is None


def test_started_ids_are_the_created_started_and_restarted_containers() -> None:
    w = want(services=(svc("smb"),))
    created = service_of(w, w.services[0])
    actions: list[planner.Action] = [
        planner.CreateService(w, w.services[0], "base-id", "h"),
        planner.StartContainer("b", "base-id"),
        planner.RestartContainer("r", "r-id"),
        planner.Connect("base-id", "net", "10.0.0.1"),
        planner.RemoveContainer("x", "x-id", "service removed"),
    ]
    results: list[object] = [created, None, None, None, None]
    assert health.started_ids(actions, results) == [created.id, "base-id", "r-id"]


def test_injected_firewall_failure_fails_a_decky_on_a_lan_naming_its_lans() -> None:
    # a real iptables failure is hard to cause safely: the failure is injected here
    verdict = health.judge_firewall(want(), "iptables-restore: line 3 failed")
    assert verdict is not None
    assert verdict.reason == v1alpha1.AGENT_REASON_FIREWALL_FAILED
    assert "office" in verdict.message and "line 3 failed" in verdict.message


def test_no_firewall_error_or_no_lan_is_no_firewall_verdict() -> None:
    assert health.judge_firewall(want(), None) is None
    assert health.judge_firewall(want(networks=()), "boom") is None
