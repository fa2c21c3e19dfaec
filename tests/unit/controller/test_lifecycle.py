"""The lifecycle state machine: records, history and conditions from status + decisions."""

import itertools
from typing import Any

from decnet.api import v1alpha1
from decnet.controller import lifecycle, scheduling
from decnet.kube import conditions

PLAN = {"hash": "aaaa", "hostname": "h"}
PLAN2 = {"hash": "bbbb", "hostname": "h"}
HERE = scheduling.Decision("node-a", scheduling.SCHEDULED, "scheduled to node node-a")
NOWHERE = scheduling.Decision(None, scheduling.NO_LIVE_AGENT, "no node has a live decnet agent")


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


def step(
    status: dict[str, Any],
    gen: int = 1,
    *,
    plan: Any = PLAN,
    sched: Any = HERE,
    t: str = "T1",
    new_id: Any = None,
    **kw: Any,
) -> lifecycle.Transition:
    obs_keys = {"deleting", "node_live", "node_gone", "first_visit"}
    obs = lifecycle.Current(gen, status, **{k: v for k, v in kw.items() if k in obs_keys})
    want = lifecycle.Desired(
        schedule=sched,
        plan=plan,
        services=("ssh",),
        **{k: v for k, v in kw.items() if k not in obs_keys},
    )
    return lifecycle.step(obs, want, now=t, new_id=new_id or ids())


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = conditions.find(status["conditions"], type_)
    assert found is not None
    return dict(found)


def report(
    status: dict[str, Any], state: str, plan_hash: str = "aaaa", msg: str = "", node: str = "node-a"
) -> dict:
    agent = {"node": node, "planHash": plan_hash, "state": state, "message": msg}
    return {**status, "agent": agent}


def test_first_visit_opens_a_running_deploy_and_sets_all_four_conditions() -> None:
    out = step({})
    rec = out.status["lifecycle"]
    assert rec["operation"] == "Deploy" and rec["phase"] == "Running"
    assert out.status["planHash"] == "aaaa" and out.status["node"] == "node-a"
    assert [c["type"] for c in out.status["conditions"]] == list(conditions.TYPES)
    assert all(c["observedGeneration"] == 1 for c in out.status["conditions"])
    assert cond(out.status, "Ready")["status"] == "False"
    assert cond(out.status, "Reconciling")["status"] == "True"
    assert out.events and out.events[0][1] == "DeployRunning"


def test_agent_converged_completes_the_record_and_readies() -> None:
    s1 = step({}).status
    out = step(report(s1, "Converged"), t="T2")
    assert out.status["lifecycle"]["phase"] == "Succeeded"
    assert out.status["lifecycle"]["completedAt"] == "T2"
    assert cond(out.status, "Ready")["status"] == "True"
    assert cond(out.status, "Reconciling")["status"] == "False"
    # Idle: the same inputs give the same status, so nothing is written.
    again = step(report(out.status, "Converged"), t="T3")
    assert not again.changed(report(out.status, "Converged"))
    assert again.events == []


def test_report_for_another_plan_does_not_complete() -> None:
    s1 = step({}).status
    out = step(report(s1, "Converged", plan_hash="old"))
    assert out.status["lifecycle"]["phase"] == "Running"


def test_no_live_agent_keeps_deploy_pending_then_starts_it() -> None:
    s1 = step({}, sched=NOWHERE).status
    assert s1["lifecycle"]["phase"] == "Pending"
    assert cond(s1, "Scheduled")["status"] == "False"
    assert cond(s1, "Scheduled")["reason"] == "NoLiveAgent"
    out = step(s1, t="T2")
    assert out.status["lifecycle"]["id"] == s1["lifecycle"]["id"]
    assert out.status["lifecycle"]["phase"] == "Running"
    assert cond(out.status, "Scheduled")["status"] == "True"
    assert cond(out.status, "Scheduled")["lastTransitionTime"] == "T2"


def test_spec_change_opens_update_and_mutation_opens_mutate() -> None:
    done = step(report(step({}).status, "Converged")).status
    up = step(report(done, "Converged"), gen=2, plan=PLAN2, new_id=lambda: "u")
    assert up.status["lifecycle"]["operation"] == "Update"
    assert up.status["history"][-1]["phase"] == "Succeeded"
    mut = step(report(done, "Converged"), plan=PLAN2, mutated=True, new_id=lambda: "m")
    assert mut.status["lifecycle"]["operation"] == "Mutate"


def test_a_change_while_running_fails_the_old_record_and_never_edits_terminal_ones() -> None:
    s1 = step({}).status
    out = step(s1, gen=2, plan=PLAN2, new_id=lambda: "new")
    old = out.status["history"][-1]
    assert old["phase"] == "Failed" and "superseded" in old["message"]
    assert out.status["lifecycle"]["id"] == "new"
    done = step(report(out.status, "Converged", "bbbb"), gen=2, plan=PLAN2).status
    assert done["history"][-1] == old


def test_operator_restart_resumes_or_fails_with_the_restart_message() -> None:
    s1 = step({}).status
    resumed = step(report(s1, "Converged"), first_visit=True)
    assert resumed.status["lifecycle"]["id"] == s1["lifecycle"]["id"]
    assert resumed.status["lifecycle"]["phase"] == "Succeeded"
    changed = step(s1, gen=2, plan=PLAN2, first_visit=True, new_id=lambda: "n")
    assert changed.status["history"][-1]["message"] == lifecycle.RESTARTED
    assert changed.status["lifecycle"]["phase"] == "Running"


def test_agent_failure_fails_the_record_with_capped_message_and_stalls() -> None:
    s1 = step({}).status
    out = step(report(s1, "Failed", msg="x" * 5000))
    assert out.status["lifecycle"]["phase"] == "Failed"
    assert len(out.status["lifecycle"]["message"]) == v1alpha1.MESSAGE_MAX
    assert cond(out.status, "Stalled")["status"] == "True"
    assert cond(out.status, "Ready")["status"] == "False"
    refused = step(report(s1, "Refused", msg="needs allow-recreate"))
    assert cond(refused.status, "Stalled")["reason"] == "RecreateRefused"


def test_history_keeps_the_last_five() -> None:
    status: dict[str, Any] = {}
    for i in range(9):
        status = step(status, plan={"hash": f"h{i}"}, new_id=lambda i=i: f"id{i}").status
    assert [r["id"] for r in status["history"]] == ["id3", "id4", "id5", "id6", "id7"]


def test_lost_lease_makes_ready_unknown_once() -> None:
    done = report(step(report(step({}).status, "Converged")).status, "Converged")
    lost = step(done, node_live=False, t="T5")
    ready = cond(lost.status, "Ready")
    assert ready["status"] == "Unknown" and ready["reason"] == "AgentLost"
    again = step(report(lost.status, "Converged"), node_live=False, t="T6")
    assert not again.changed(report(lost.status, "Converged"))


def test_teardown_waits_for_removed_then_releases() -> None:
    done = report(step(report(step({}).status, "Converged")).status, "Converged")
    out = step(done, deleting=True, new_id=lambda: "td")
    assert out.status["lifecycle"]["operation"] == "Teardown"
    assert out.status["lifecycle"]["phase"] == "Running" and not out.release
    gone = step(report(out.status, "Removed"), deleting=True)
    assert gone.release and gone.status["lifecycle"]["phase"] == "Succeeded"


def test_teardown_of_a_never_scheduled_decky_releases_at_once() -> None:
    s1 = step({}, sched=NOWHERE).status
    out = step(s1, sched=NOWHERE, deleting=True)
    assert out.release


def test_teardown_releases_when_the_node_is_gone() -> None:
    running = step(step({}).status, deleting=True).status
    out = step(running, deleting=True, node_gone=True)
    assert out.release and "gone" in out.status["lifecycle"]["message"]


def test_stall_sets_stalled_with_reason() -> None:
    out = step({}, plan=None, stall=lifecycle.Stall("AddressHeld", "10.0.3.7 held by ws-02"))
    assert cond(out.status, "Stalled")["status"] == "True"
    assert cond(out.status, "Stalled")["reason"] == "AddressHeld"
    assert out.status["lifecycle"]["phase"] == "Pending"


def test_waiting_is_not_stalled() -> None:
    wait = lifecycle.Stall("LANNotFound", "LAN office does not exist (yet)")
    out = step({}, plan=None, waiting=wait)
    assert cond(out.status, "Stalled")["status"] == "False"
    assert cond(out.status, "Ready")["reason"] == "LANNotFound"
    assert out.status["lifecycle"]["phase"] == "Pending"


def test_the_agents_own_reason_becomes_the_ready_and_stalled_reason() -> None:
    s1 = step({}).status
    failed = report(s1, "Failed", msg="service ssh exited (exit code 3) after start")
    failed["agent"]["reason"] = "ServiceExited"
    out = step(failed)
    assert out.status["lifecycle"]["phase"] == "Failed"
    ready = cond(out.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ServiceExited")
    assert "exit code 3" in ready["message"]
    assert cond(out.status, "Stalled")["reason"] == "ServiceExited"


def test_a_ready_decky_whose_agent_then_fails_is_no_longer_ready() -> None:
    done = step(report(step({}).status, "Converged")).status
    assert cond(done, "Ready")["status"] == "True"
    failed = report(done, "Failed", msg="egress firewall rules for LAN(s) office are not in place")
    failed["agent"]["reason"] = "FirewallFailed"
    out = step(failed, t="T3")
    assert out.status["lifecycle"]["phase"] == "Succeeded"  # terminal records never edited
    ready = cond(out.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "FirewallFailed")
    assert "office" in ready["message"]
    # and once the agent reports converged again, Ready comes back
    back = step(report(out.status, "Converged"), t="T4")
    assert cond(back.status, "Ready")["status"] == "True"


def test_a_failure_without_an_agent_reason_is_agent_failed() -> None:
    out = step(report(step({}).status, "Failed", msg="no such image"))
    assert cond(out.status, "Ready")["reason"] == "AgentFailed"


MOVED = scheduling.Decision(
    "node-b",
    scheduling.RESCHEDULED,
    "rescheduled to node node-b: node node-a had no live agent for 300 s",
    moved_from="node-a",
)
THERE = scheduling.Decision("node-b", scheduling.SCHEDULED, "scheduled to node node-b")


def test_a_reschedule_opens_its_own_record_and_ignores_the_old_nodes_report() -> None:
    done = step(report(step({}).status, "Converged"), t="T2")
    assert cond(done.status, "Ready")["status"] == "True"
    moved = step(report(done.status, "Converged"), sched=MOVED, t="T3")
    rec = moved.status["lifecycle"]
    assert rec["operation"] == "Reschedule" and rec["phase"] == "Running"
    assert moved.status["node"] == "node-b"
    assert moved.status["history"][-1]["operation"] == "Deploy"
    assert ("Normal", "RescheduleRunning") in [(k, r) for k, r, _ in moved.events]
    assert ("Warning", "Rescheduled", MOVED.message) in moved.events
    # the old node's converged report (same plan) does not finish it, nor make it Ready
    assert cond(moved.status, "Ready")["status"] == "False"
    assert cond(moved.status, "Scheduled")["reason"] == "Rescheduled"
    stale = step(report(moved.status, "Converged", node="node-a"), sched=THERE, t="T4")
    assert stale.status["lifecycle"]["phase"] == "Running"
    assert cond(stale.status, "Ready")["status"] == "False"
    # the new node's agent converges it
    fresh = step(report(stale.status, "Converged", node="node-b"), sched=THERE, t="T5")
    assert fresh.status["lifecycle"]["phase"] == "Succeeded"
    assert cond(fresh.status, "Ready")["reason"] == "Converged"


def test_a_status_an_older_operator_wrote_lowercase_reads_back_and_is_rewritten_camelcase() -> None:
    old = {
        "planHash": "aaaa",
        "plan": PLAN,
        "lifecycle": {"id": "id-1", "operation": "deploy", "phase": "running", "startedAt": "T0"},
        "history": [{"id": "id-0", "operation": "update", "phase": "failed", "message": "x"}],
    }
    out = step(report(old, "converged"), t="T2")
    rec = out.status["lifecycle"]
    assert (rec["operation"], rec["phase"], rec["completedAt"]) == ("Deploy", "Succeeded", "T2")
    assert [(r["operation"], r["phase"]) for r in out.status["history"]] == [("Update", "Failed")]
    assert cond(out.status, "Ready")["status"] == "True"
    assert ("Normal", "DeploySucceeded") in [(k, r) for k, r, _ in out.events]
    assert out.status["servicesSummary"] == "ssh"
