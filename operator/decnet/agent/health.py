"""Is what the agent just did actually in place? Judgments the report must not skip.

The planner predicts "running" for a container it just started, which is true for a
moment only: a service whose command fails exits a second later, and the decky would
be reported Ready while its service is down (and the next resync would quietly start it
again). Likewise the egress firewall is synced node-wide after the converge; when that
sync fails, no decky on a LAN is contained. These pure functions turn what the agent
observed (a confirming inspect of the containers it started, the last firewall sync's
error) into a failed report with a reason, so nothing claims what is not in place.

Container output is never copied into a message: it is attacker-controlled. The exit
code (an integer Docker reports) and Docker's state word are all that is quoted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from decnet.agent import planner
from decnet.api import v1alpha1
from decnet.kube import names

# Docker's container states that count as "up" after a start.
UP = frozenset({"running"})
# What a state word may be quoted as (anything else from Docker is not repeated).
_KNOWN_STATES = frozenset(
    {"created", "running", "exited", "paused", "restarting", "dead", "removing", "missing"}
)


@dataclass(frozen=True)
class Verdict:
    """Why a decky is not Ready although every Docker call succeeded."""

    reason: str  # one of v1alpha1.AGENT_REASONS
    message: str


def started_ids(actions: Sequence[planner.Action], results: Sequence[object]) -> list[str]:
    """Ids of the containers a round created, started or restarted (to confirm later)."""
    ids: list[str] = []
    for action, result in zip(actions, results, strict=True):
        if isinstance(action, (planner.CreateBase, planner.CreateService)):
            if isinstance(result, planner.ContainerSeen):
                ids.append(result.id)
        elif isinstance(action, (planner.StartContainer, planner.RestartContainer)):
            ids.append(action.id)
    return ids


def _describe(c: planner.ContainerSeen) -> str:
    state = c.state if c.state in _KNOWN_STATES else "not running"
    what = f"service {c.service}" if c.role == names.ROLE_SERVICE else "base container"
    code = f" (exit code {c.exit_code})" if c.exit_code is not None else ""
    return f"{what} {state}{code}"


def judge_containers(
    want: planner.DeckyWant, containers: Iterable[planner.ContainerSeen]
) -> Verdict | None:
    """A verdict when a container of this decky's plan is not up, None when all are.

    Only the decky's own base and its planned services are judged (a stale container
    about to be removed is not this plan's failure). A down base outranks its services:
    they share its network namespace and cannot be up without it.
    """
    planned = {want.base_name} | {want.service_name(s.name) for s in want.services}
    down = sorted(
        (c for c in containers if c.uid == want.uid and c.name in planned and c.state not in UP),
        key=lambda c: (c.role != names.ROLE_BASE, c.service),
    )
    if not down:
        return None
    message = "; ".join(_describe(c) for c in down)
    if down[0].role == names.ROLE_BASE:
        return Verdict(v1alpha1.AGENT_REASON_BASE_EXITED, message + " after start")
    return Verdict(v1alpha1.AGENT_REASON_SERVICE_EXITED, message + " after start")


def judge_firewall(want: planner.DeckyWant, firewall_error: str | None) -> Verdict | None:
    """A verdict when the last egress firewall sync failed and this decky is on a LAN.

    The node's rules are applied as one ruleset, so a failed sync leaves every LAN's
    containment in doubt; `firewall_error` is None when enforcement is off or the last
    sync succeeded.
    """
    if firewall_error is None or not want.networks:
        return None
    lans = ", ".join(sorted({n.lan for n in want.networks}))
    return Verdict(
        v1alpha1.AGENT_REASON_FIREWALL_FAILED,
        f"egress firewall rules for LAN(s) {lans} are not in place: {firewall_error}",
    )
