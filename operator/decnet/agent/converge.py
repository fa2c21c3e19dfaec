"""One decky's convergence round: observe, plan, act, until the planner is satisfied.

Level-based: every round starts from a fresh observation, so a half-finished
earlier attempt (an agent killed mid-deploy, a container removed by hand) is
just another starting point. Creating a base takes a second round because its
services' hashes include the base id. A round that started containers is not the end:
it returns the containers to confirm (Outcome.settling), the caller converges again a
short settle later with them, and that pass inspects them; one that did not stay up
fails the converge (health.judge_containers) instead of reporting Ready. Nothing waits
in between: the agent's worker goes on to the next decky meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import structlog

from decnet.agent import health, planner
from decnet.agent.runtime import engine as runtime
from decnet.api import v1alpha1

log = structlog.get_logger("decnet.agent")

MAX_ROUNDS = 6


@dataclass(frozen=True)
class Outcome:
    state: v1alpha1.AgentState
    message: str
    observed: planner.Observed
    reason: str = ""  # v1alpha1.AGENT_REASONS for a failure the agent judged itself
    # containers started on the way, to be confirmed once they have had the settle to
    # fail: while any are, the outcome is not final and nothing is reported
    settling: tuple[str, ...] = ()


def converge(
    eng: runtime.Engine,
    want: planner.DeckyWant,
    settle_seconds: float = 0.0,
    confirm: Sequence[str] = (),
) -> Outcome:
    """Drive Docker to `want`; DockerError is turned into a failed outcome by the caller.

    Docker is observed once; after a round of creations the next round plans from what
    Docker answered to them (planner.predict), and only a round with removals or network
    changes looks again. The periodic resync re-observes everything anyway.

    With `settle_seconds` > 0, containers started on the way come back as
    Outcome.settling; converging again after the settle with them as `confirm`
    inspects them, and a converge whose containers did not stay up fails.
    """
    observed: planner.Observed | None = None
    if confirm:
        # judged before anything is done: a crashed service is not started again here
        # (its retry backoff does that), and its exit code is the verdict's
        observed = eng.observe_decky(
            want.namespace, want.name, with_files=want.files is not None, uid=want.uid
        )
        judged = _confirm(eng, want, observed, confirm)
        if judged.state == v1alpha1.AgentState.FAILED:
            return judged
        observed = judged.observed
    started: list[str] = []
    for _ in range(MAX_ROUNDS):
        if observed is None:
            observed = eng.observe_decky(
                want.namespace, want.name, with_files=want.files is not None, uid=want.uid
            )
        actions = planner.plan_decky(want, observed)
        for action in actions:
            if isinstance(action, planner.Refuse):
                return Outcome(v1alpha1.AgentState.REFUSED, action.message, observed)
            if isinstance(action, planner.Fail):
                return Outcome(v1alpha1.AgentState.FAILED, action.message, observed)
        if not actions:
            settling = tuple(dict.fromkeys(started)) if settle_seconds > 0 else ()
            return Outcome(v1alpha1.AgentState.CONVERGED, "", observed, settling=settling)
        results: list[planner.Created | None] = []
        for action in actions:
            log.info("docker.action", decky=want.key, action=describe(action))
            try:
                results.append(eng.execute(action))
            except runtime.StuckContainer as stuck:
                _replace_stuck(eng, want, stuck)
                break
        done = actions[: len(results)]
        started.extend(health.started_ids(done, results))
        # after a replacement only a fresh look tells what the next round starts from
        replaced = len(done) < len(actions)
        observed = None if replaced else planner.predict(observed, actions, results)
    return Outcome(
        v1alpha1.AgentState.FAILED,
        f"not converged after {MAX_ROUNDS} rounds",
        observed or planner.Observed(),
    )


def _replace_stuck(
    eng: runtime.Engine, want: planner.DeckyWant, stuck: runtime.StuckContainer
) -> None:
    """Remove a container Docker will never start again (its id is stuck in Docker's
    runtime, as after a dockerd stopped mid-restart); the next round creates it anew."""
    log.warning("container.replaced", decky=want.key, container=stuck.name, message=str(stuck))
    removal = planner.RemoveContainer(stuck.name, stuck.container_id, "its id is stuck in Docker")
    log.info("docker.action", decky=want.key, action=describe(removal))
    eng.execute(removal)


def converge_and_settle(
    eng: runtime.Engine,
    want: planner.DeckyWant,
    settle_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """converge(), waiting out the settle in place: for one decky at a time (tests, tools).
    The agent does not wait: it converges other deckies meanwhile."""
    outcome = converge(eng, want, settle_seconds)
    for _ in range(MAX_ROUNDS):
        if not outcome.settling:
            return outcome
        sleep(settle_seconds)
        outcome = converge(eng, want, settle_seconds, confirm=outcome.settling)
    return outcome


def _confirm(
    eng: runtime.Engine,
    want: planner.DeckyWant,
    observed: planner.Observed,
    confirm: Sequence[str],
) -> Outcome:
    """Converged, unless a container to confirm is not up now (the observation is fresh:
    only one it does not show running is inspected, for its exit code)."""
    current = {c.id: c for c in observed.containers}
    to_confirm = [
        current[i]
        for i in dict.fromkeys(confirm)
        if i in current and current[i].state not in health.UP
    ]
    if not to_confirm:
        return Outcome(v1alpha1.AgentState.CONVERGED, "", observed)
    for c in eng.confirm(to_confirm):
        current[c.id] = c
    observed = replace(observed, containers=tuple(current.values()))
    verdict = health.judge_containers(want, observed.containers)
    if verdict is None:
        return Outcome(v1alpha1.AgentState.CONVERGED, "", observed)
    log.warning("container.not_up", decky=want.key, reason=verdict.reason, message=verdict.message)
    return Outcome(v1alpha1.AgentState.FAILED, verdict.message, observed, verdict.reason)


def remove(eng: runtime.Engine, namespace: str, name: str, uid: str) -> Outcome:
    """A deleted decky: remove its containers, then networks nobody uses or plans."""
    observed = eng.observe_decky(namespace, name, with_files=False)
    for action in planner.plan_removal(namespace, name, uid, observed):
        log.info("docker.action", decky=f"{namespace}/{name}", action=describe(action))
        eng.execute(action)
    eng.lures.remove(uid)
    return Outcome(
        v1alpha1.AgentState.REMOVED, "", eng.observe_decky(namespace, name, with_files=False)
    )


def describe(action: planner.Action) -> str:
    """A log line for an action, without file contents or service config."""
    if isinstance(action, planner.CreateBase):
        return f"create base {action.want.base_name}"
    if isinstance(action, planner.CreateService):
        return f"create service {action.want.service_name(action.service.name)}"
    if isinstance(action, planner.RemoveContainer):
        return f"remove {action.name} ({action.reason})"
    if isinstance(action, planner.SyncFiles):
        place = [f.path for f in action.place]
        return f"lure files of {action.uid}: place {place} remove {list(action.remove)}"
    if isinstance(action, planner.EnsureNetwork):
        return f"ensure network {action.net.network}"
    return repr(action)
