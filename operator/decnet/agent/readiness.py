"""What the agent's liveness and readiness probes mean (served by decnet.kube.probes).

Ready: Docker answered a ping and the node's Lease was renewed within the last few
renew periods, and the first list of this node's deckies is in. The operator schedules
onto nodes whose Lease is fresh, so a ready agent is one the operator can rely on; an
unreachable Docker engine only delays work (nothing is deleted), so it makes the pod
unready, never restarts it. Live: the agent's loops (lease, watch, tick) are running;
each survives its own errors, so a dead one is a bug that a restart clears.

Both read timestamps the loops record; a probe never calls Docker or the API server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from decnet.kube import probes

# Renewals (every quarter of the Lease duration) that may be missed before the agent is unready.
MISSED_RENEWALS = 3


class Probed(Protocol):
    """What the probes read from a running agent."""

    lease_renewed: float | None  # monotonic time of the last successful renewal
    docker_answered: float | None  # monotonic time of the last successful ping

    def is_listed(self) -> bool: ...

    def loops_alive(self) -> bool: ...


def live(loops_alive: bool) -> str | None:
    return None if loops_alive else "agent loop stopped"


def ready(
    now: float,
    listed: bool,
    lease_renewed: float | None,
    docker_answered: float | None,
    stale_seconds: float,
) -> str | None:
    if docker_answered is None or now - docker_answered > stale_seconds:
        return "docker unreachable"
    if lease_renewed is None or now - lease_renewed > stale_seconds:
        return "node lease not renewed"
    if not listed:
        return "deckies not listed yet"
    return None


def checks(
    agent: Callable[[], Probed | None], now: Callable[[], float], stale_seconds: float
) -> tuple[probes.Check, probes.Check]:
    """(live, ready) for an agent that exists only once Docker has answered (None before)."""

    def live_check() -> str | None:
        a = agent()
        return None if a is None else live(a.loops_alive())

    def ready_check() -> str | None:
        a = agent()
        if a is None:
            return "docker unreachable"
        return ready(now(), a.is_listed(), a.lease_renewed, a.docker_answered, stale_seconds)

    return live_check, ready_check
