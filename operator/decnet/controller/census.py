"""The deckies-by-phase gauge, kept from the watch stream.

A gauge counted at scrape time would need the reconcilers' state; this module keeps its
own (decky uid → phase of status.lifecycle) from a kopf event handler of its own, so it
depends on no other controller module. `moved` is the pure part.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import kopf

from decnet.api import v1alpha1
from decnet.controller import metrics
from decnet.kube import names

NONE = "none"  # no lifecycle operation yet


def phase_of(body: Mapping[str, Any]) -> str:
    lifecycle = (body.get("status") or {}).get("lifecycle") or {}
    phase = lifecycle.get("phase")
    # An older operator wrote the phase lowercase: count it under its CamelCase name.
    return str(v1alpha1.Phase(phase)) if phase else NONE


def moved(counts: Counter[str], old: str | None, new: str | None) -> Counter[str]:
    """The counts after one decky moved from `old` to `new` (None: absent); a phase
    that empties stays at 0, so the gauge reads 0 rather than a stale value."""
    after = Counter(counts)
    if old is not None:
        after[old] -= 1
    if new is not None:
        after[new] += 1
    return after


class Census:
    """O(1) per event: 10,000 deckies listed at start cost 10,000 small updates."""

    def __init__(self) -> None:
        self.phases: dict[str, str] = {}
        self.counts: Counter[str] = Counter()

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if not uid:
            return
        old = self.phases.get(uid)
        new = None if event_type == "DELETED" else phase_of(body)
        if old == new:
            return
        if new is None:
            self.phases.pop(uid, None)
        else:
            self.phases[uid] = new
        self.counts = moved(self.counts, old, new)
        for phase in (old, new):
            if phase is not None:
                metrics.DECKIES.labels(phase).set(self.counts[phase])


CENSUS = Census()


@kopf.on.event(names.GROUP, names.VERSION, names.DECKIES)
async def count_decky(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
    CENSUS.observe(event.get("type"), body)
