"""A Topology's operator-owned status, decided from its validation issues (pure).

What controller/lifecycle.py is for a Decky: the reconcile gathers the members,
their issues (controller/topology.py) and the node; this module says what status
follows, and `changed` keeps an idle topology at zero writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from decnet.api import v1alpha1
from decnet.controller import topology
from decnet.kube import conditions


def status(
    *,
    current: Mapping[str, Any],
    generation: int,
    issues: Sequence[Mapping[str, Any]],
    lans: int,
    deckies: int,
    node: str | None,
) -> dict[str, Any]:
    """The status a Topology should have: Ready unless an issue makes it Invalid."""
    phase = topology.summary(issues)
    invalid = phase == "Invalid"
    message = v1alpha1.cap_message("; ".join(f"{i['code']}: {i['message']}" for i in issues))
    conds = [
        conditions.make(
            conditions.READY,
            conditions.FALSE if invalid else conditions.TRUE,
            phase,
            message,
            generation,
        ),
        conditions.make(
            conditions.STALLED,
            conditions.TRUE if invalid else conditions.FALSE,
            phase,
            message,
            generation,
        ),
    ]
    wanted: dict[str, Any] = {
        "observedGeneration": generation,
        "valid": not invalid,
        "issues": list(issues),
        "lans": lans,
        "deckies": deckies,
        "node": node,
        "conditions": conditions.merge(current.get("conditions"), conds),
    }
    return {k: v for k, v in wanted.items() if v is not None}


def changed(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return {k: current.get(k) for k in wanted} != dict(wanted)
