"""The lifecycle state machine: current status + what was decided -> next status.

Pure, so every transition is unit-tested without a cluster. The handler
computes placement, addresses, the plan and any mutation; this module turns
them plus the agent's report into the operator-owned part of status: the
lifecycle record (deploy, update, mutate, reschedule, teardown; each
pending -> running -> succeeded | failed; terminal records
never edited), a short history, and the four kstatus conditions. When the
result equals what is already in status the handler writes nothing, which
is what keeps an idle fleet at zero API writes.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from decnet.api import v1alpha1
from decnet.controller import scheduling
from decnet.kube import conditions

Op = v1alpha1.Operation
Phase = v1alpha1.Phase
State = v1alpha1.AgentState

HISTORY = 5
RESTARTED = "operator restarted during operation"

# The status fields the operator owns (docs/internals.md); it always sends all of them.
OWNED = (
    "observedGeneration",
    "node",
    "addresses",
    "services",
    "servicesSummary",
    "lastMutation",
    "mutationRequest",
    "planHash",
    "plan",
    "lifecycle",
    "history",
    "conditions",
)

Record = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Stall:
    """Why the decky cannot progress without a change (Stalled=True)."""

    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Desired:
    """What the handler decided for this round."""

    schedule: scheduling.Decision
    addresses: tuple[Mapping[str, str], ...] = ()
    services: tuple[str, ...] = ()
    plan: Mapping[str, Any] | None = None
    last_mutation: Mapping[str, Any] | None = None
    mutation_request: str | None = None
    mutated: bool = False
    stall: Stall | None = None
    waiting: Stall | None = None  # blocked on something that may still appear (not Stalled)


@dataclasses.dataclass(frozen=True)
class Current:
    """The decky as the operator finds it this round: its status and its node's health."""

    generation: int
    status: Mapping[str, Any]
    deleting: bool = False
    node_live: bool = True
    node_gone: bool = False
    first_visit: bool = False


@dataclasses.dataclass
class Transition:
    """One step's result: the next operator-owned status, its Events, and whether the
    finalizer may go."""

    status: dict[str, Any]
    events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    release: bool = False

    def changed(self, status: Mapping[str, Any]) -> bool:
        return owned(status) != self.status


def owned(status: Mapping[str, Any]) -> dict[str, Any]:
    """The operator-owned subset of a status, for comparison and for SSA."""
    return {k: status[k] for k in OWNED if status.get(k) is not None}


def _read(record: Mapping[str, Any]) -> Record:
    """A lifecycle record as read back; a lowercase word an older operator wrote
    (`deploy`, `succeeded`) becomes its CamelCase member, so the next write is valid."""
    return {
        **record,
        "operation": Op(record["operation"]),
        "phase": Phase(record["phase"]),
    }


def _camel(*words: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in words)


class _Machine:
    def __init__(self, obs: Current, want: Desired, now: str, new_id: Callable[[], str]) -> None:
        self.obs = obs
        self.want = want
        self.now = now
        self.new_id = new_id
        self.events: list[tuple[str, str, str]] = []
        status = obs.status
        self.record: Record | None = _read(status["lifecycle"]) if status.get("lifecycle") else None
        self.history: list[Record] = [_read(r) for r in status.get("history") or ()]
        self.old_hash: str | None = status.get("planHash") or None
        self.plan = want.plan or status.get("plan")
        self.hash: str | None = (want.plan or {}).get("hash") or self.old_hash
        # The agent's report counts only when it comes from the decky's node: after a
        # reschedule the old node's last report (converged, same plan) says nothing.
        report: Mapping[str, Any] = status.get("agent") or {}
        if report.get("state"):
            report = {**report, "state": State(report["state"])}
        self.agent = report if report.get("node") == want.schedule.node else {}
        # The hash of the plan the report answers (the plan's own hash is self.hash).
        self.reported_hash: str | None = self.agent.get("planHash")

    # -- records ---------------------------------------------------------------

    def _emit(self, record: Record) -> None:
        kind = "Warning" if record["phase"] == Phase.FAILED else "Normal"
        text = f"{record['operation']} {record['id']} {record['phase']}"
        if record.get("message"):
            text += f": {record['message']}"
        self.events.append(
            (kind, _camel(record["operation"], record["phase"]), v1alpha1.cap_message(text))
        )

    def _finish(self, phase: str, message: str = "") -> None:
        assert self.record is not None
        self.record = {
            **self.record,
            "phase": phase,
            "message": v1alpha1.cap_message(message),
            "completedAt": self.now,
        }
        self._emit(self.record)

    def _open(self, operation: str, phase: str) -> None:
        if self.record is not None:
            if self.record["phase"] in v1alpha1.OPEN_PHASES:
                why = RESTARTED if self.obs.first_visit else f"superseded by a new {operation}"
                self._finish(Phase.FAILED, why)
            self.history = (self.history + [self.record])[-HISTORY:]
        self.record = {
            "id": self.new_id(),
            "operation": operation,
            "phase": phase,
            "message": "",
            "startedAt": self.now,
        }
        self._emit(self.record)

    def _start(self) -> None:
        assert self.record is not None
        self.record = {**self.record, "phase": Phase.RUNNING}
        self._emit(self.record)

    # -- the step ----------------------------------------------------------------

    def run(self) -> Transition:
        release = False
        if self.obs.deleting:
            release = self._teardown()
        else:
            self._progress()
        return Transition(self._status(), self.events, release)

    def _teardown(self) -> bool:
        node = self.want.schedule.node
        if self.record is None or self.record["operation"] != Op.TEARDOWN:
            self._open(Op.TEARDOWN, Phase.RUNNING)
        assert self.record is not None
        if self.record["phase"] not in v1alpha1.OPEN_PHASES:
            return True
        if node is None:
            self._finish(Phase.SUCCEEDED, "never scheduled: nothing to remove")
            return True
        if self.agent.get("state") == State.REMOVED:
            self._finish(Phase.SUCCEEDED)
            return True
        if self.obs.node_gone:
            self._finish(
                Phase.SUCCEEDED,
                f"node {node} is gone: released without the agent's "
                "confirmation; its agent reaps the containers if it returns",
            )
            return True
        return False

    def _progress(self) -> None:
        want = self.want
        ready_to_run = want.plan is not None and want.schedule.node is not None
        rec = self.record
        new_plan = want.plan is not None and want.plan.get("hash") != self.old_hash
        if rec is None:
            self._open(Op.DEPLOY, Phase.RUNNING if ready_to_run else Phase.PENDING)
        elif want.schedule.moved_from:
            self.events.append(
                ("Warning", want.schedule.reason, v1alpha1.cap_message(want.schedule.message))
            )
            self._open(Op.RESCHEDULE, Phase.RUNNING if ready_to_run else Phase.PENDING)
        elif rec["phase"] == Phase.PENDING:
            # Never handed to an agent: a newer plan simply becomes this record's plan.
            if ready_to_run:
                self._start()
        elif new_plan:
            if want.mutated:
                op = Op.MUTATE
            elif self.old_hash is None:
                op = Op.DEPLOY
            else:
                op = Op.UPDATE
            self._open(op, Phase.RUNNING if ready_to_run else Phase.PENDING)
        self._complete()

    def _complete(self) -> None:
        rec = self.record
        if rec is None or rec["phase"] != Phase.RUNNING or not self.hash:
            return
        if self.reported_hash != self.hash:
            return
        state = self.agent.get("state")
        message = str(self.agent.get("message") or "")
        if state == State.CONVERGED:
            self._finish(Phase.SUCCEEDED)
        elif state == State.FAILED:
            self._finish(Phase.FAILED, message or "the agent failed")
        elif state == State.REFUSED:
            self._finish(
                Phase.FAILED,
                message
                or "the change needs the base container recreated; "
                "set annotation decnet.io/allow-recreate=true",
            )

    # -- status ------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        want, obs = self.want, self.obs
        status: dict[str, Any] = {
            "observedGeneration": obs.generation,
            "node": want.schedule.node,
            "addresses": [dict(a) for a in want.addresses] or None,
            "services": list(want.services) or None,
            "servicesSummary": ",".join(want.services) or None,
            "lastMutation": dict(want.last_mutation) if want.last_mutation else None,
            "mutationRequest": want.mutation_request,
            "planHash": self.hash,
            "plan": dict(self.plan) if self.plan else None,
            "lifecycle": self.record,
            "history": self.history or None,
            "conditions": conditions.merge(obs.status.get("conditions"), self._conditions()),
        }
        return {k: v for k, v in status.items() if v is not None}

    def _agent_reason(self) -> str:
        """The agent's own reason for a failure (ServiceExited, FirewallFailed, ...)."""
        return str(self.agent.get("reason") or "") or "AgentFailed"

    def _conditions(self) -> list[conditions.Condition]:
        gen, now = self.obs.generation, self.now
        rec = self.record or {}
        phase = rec.get("phase", Phase.PENDING)
        op = rec.get("operation", Op.DEPLOY)
        sched = self.want.schedule
        node = sched.node
        converged = (
            self.hash is not None
            and self.reported_hash == self.hash
            and self.agent.get("state") == State.CONVERGED
        )

        def cond(t: str, s: str, reason: str, msg: str) -> conditions.Condition:
            return conditions.make(t, s, reason, msg, gen, now)

        if node:
            scheduled = cond(conditions.SCHEDULED, conditions.TRUE, sched.reason, sched.message)
        else:
            scheduled = cond(conditions.SCHEDULED, conditions.FALSE, sched.reason, sched.message)

        if phase in v1alpha1.OPEN_PHASES:
            reconciling = cond(
                conditions.RECONCILING,
                conditions.TRUE,
                _camel(phase),
                f"{op} {rec.get('id', '')} {phase}",
            )
        else:
            reconciling = cond(
                conditions.RECONCILING,
                conditions.FALSE,
                _camel(phase),
                f"{op} {rec.get('id', '')} {phase}",
            )

        stall = self.want.stall
        agent_now = self.hash is not None and self.reported_hash == self.hash
        if stall is None and phase == Phase.FAILED and agent_now:
            if self.agent.get("state") == State.REFUSED:
                stall = Stall("RecreateRefused", str(rec.get("message", "")))
            elif self.agent.get("state") == State.FAILED:
                stall = Stall(self._agent_reason(), str(rec.get("message", "")))
        elif stall is None and phase == Phase.SUCCEEDED and agent_now:
            # A decky that was Ready and no longer is (a service exited after a restart,
            # the egress firewall failed): the record stays succeeded, Ready tells.
            if self.agent.get("state") == State.FAILED:
                stall = Stall(self._agent_reason(), str(self.agent.get("message") or ""))
        if stall is not None:
            stalled = cond(conditions.STALLED, conditions.TRUE, stall.reason, stall.message)
        else:
            stalled = cond(conditions.STALLED, conditions.FALSE, "NoFailure", "")

        if self.obs.deleting:
            ready = cond(conditions.READY, conditions.FALSE, "Deleting", "teardown in progress")
        elif node and not self.obs.node_live:
            ready = cond(
                conditions.READY,
                conditions.UNKNOWN,
                "AgentLost",
                f"the agent on node {node} lost its lease",
            )
        elif converged:
            ready = cond(
                conditions.READY, conditions.TRUE, "Converged", f"containers match plan {self.hash}"
            )
        elif stall is not None:
            ready = cond(conditions.READY, conditions.FALSE, stall.reason, stall.message)
        elif self.want.waiting is not None and phase in v1alpha1.OPEN_PHASES:
            wait = self.want.waiting
            ready = cond(conditions.READY, conditions.FALSE, wait.reason, wait.message)
        elif not node:
            ready = cond(conditions.READY, conditions.FALSE, sched.reason, sched.message)
        elif phase == Phase.FAILED:
            ready = cond(conditions.READY, conditions.FALSE, "Failed", str(rec.get("message")))
        else:
            ready = cond(
                conditions.READY,
                conditions.FALSE,
                "Progressing",
                f"{op} {rec.get('id', '')} {phase}",
            )
        return [ready, scheduled, reconciling, stalled]


def step(
    current: Current,
    desired: Desired,
    *,
    now: str | None = None,
    new_id: Callable[[], str] | None = None,
) -> Transition:
    """The next operator-owned status; compare with `owned(status)` before writing."""
    return _Machine(
        current, desired, now or conditions.now_rfc3339(), new_id or (lambda: str(uuid.uuid4()))
    ).run()
