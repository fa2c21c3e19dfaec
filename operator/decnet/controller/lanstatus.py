"""A LAN's operator-owned status, decided from what the reconcile found (pure).

What controller/lifecycle.py is for a Decky: the reconcile gathers the facts
(the subnet it holds, who else holds the one asked for, a refusal), this module
says what status follows, and `changed` keeps an idle LAN at zero writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decnet.controller import allocation, validation
from decnet.kube import conditions

SUBNET_HELD = "SubnetHeld"
SUBNET_ALLOCATED = "SubnetAllocated"
POOL_EXHAUSTED = "PoolExhausted"
NO_FAILURE = "NoFailure"


def status(
    *,
    current: Mapping[str, Any],
    generation: int,
    requested: str | None,
    subnet: str | None,
    held_by: str | None,
    problem: validation.Problem | None,
    deckies: int,
    topology: str | None,
) -> dict[str, Any]:
    """The status a LAN should have.

    requested: spec.subnet; subnet: the one it holds (requested, kept or allocated);
    held_by: the LAN that holds the requested subnet instead; problem: why the LAN is
    refused (limits, overlap, pool), which stalls it until its spec changes.
    """
    if problem is not None:
        ready = conditions.make(
            conditions.READY, conditions.FALSE, problem.reason, problem.message, generation
        )
    elif held_by:
        ready = conditions.make(
            conditions.READY,
            conditions.FALSE,
            SUBNET_HELD,
            f"subnet {requested} is held by LAN {held_by}",
            generation,
        )
    elif subnet:
        ready = conditions.make(
            conditions.READY, conditions.TRUE, SUBNET_ALLOCATED, f"subnet {subnet}", generation
        )
    else:
        ready = conditions.make(
            conditions.READY,
            conditions.FALSE,
            POOL_EXHAUSTED,
            "no free subnet in the pool",
            generation,
        )
    stalled = conditions.make(
        conditions.STALLED,
        conditions.TRUE if problem is not None else conditions.FALSE,
        problem.reason if problem is not None else NO_FAILURE,
        problem.message if problem is not None else "",
        generation,
    )
    published = subnet if problem is None and not held_by else None
    wanted: dict[str, Any] = {
        "observedGeneration": generation,
        "subnet": published,
        "gateway": allocation.gateway(published) if published else None,
        "deckies": deckies,
        "topology": topology,
        "conditions": conditions.merge(current.get("conditions"), [ready, stalled]),
    }
    return {k: v for k, v in wanted.items() if v is not None}


def changed(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """A write is due: a wanted field differs, or status holds a field no longer wanted."""
    if {k: current.get(k) for k in wanted} != dict(wanted):
        return True
    return bool(set(current) - set(wanted) - {"conditions"})
