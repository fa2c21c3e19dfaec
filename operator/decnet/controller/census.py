"""The deckies-by-phase gauge, kept from the watch stream.

A gauge counted at scrape time would need the reconcilers' state; this module keeps its
own (decky uid → phase of status.lifecycle) from a kopf event handler of its own, so it
depends on no other controller module. `tally` is the pure part.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from decnet.controller import metrics
from decnet.kube import names

NONE = "none"  # no lifecycle operation yet


def phase_of(body: Mapping[str, Any]) -> str:
    lifecycle = (body.get("status") or {}).get("lifecycle") or {}
    return str(lifecycle.get("phase") or NONE)


def tally(phases: Iterable[str], known: Iterable[str]) -> dict[str, int]:
    """Count per phase; a phase seen before and now empty reads 0 (not a stale value)."""
    counts = Counter(phases)
    return {phase: counts.get(phase, 0) for phase in {*known, *counts}}


class Census:
    def __init__(self) -> None:
        self.phases: dict[str, str] = {}
        self.seen: set[str] = set()

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if not uid:
            return
        if event_type == "DELETED":
            self.phases.pop(uid, None)
        else:
            self.phases[uid] = phase_of(body)
        counts = tally(self.phases.values(), self.seen)
        self.seen |= set(counts)
        for phase, count in counts.items():
            metrics.DECKIES.labels(phase).set(count)


CENSUS = Census()


@kopf.on.event(names.GROUP, names.VERSION, names.DECKIES)
async def count_decky(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
    CENSUS.observe(event.get("type"), body)
