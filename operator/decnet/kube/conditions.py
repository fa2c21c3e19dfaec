"""metav1.Condition helpers shared by everything that reads or writes conditions.

Conditions follow the kstatus convention (Ready, Scheduled, Reconciling,
Stalled) so `kubectl wait --for=condition=Ready` and Argo CD understand them.
lastTransitionTime moves only when the status value changes: a condition
whose reason or message changed is rewritten, but its transition time is
kept, otherwise every reconcile would look like a transition.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from decnet.api import v1alpha1

# The condition types are part of the API; short names here for the callers.
READY = v1alpha1.CONDITION_READY
SCHEDULED = v1alpha1.CONDITION_SCHEDULED
RECONCILING = v1alpha1.CONDITION_RECONCILING
STALLED = v1alpha1.CONDITION_STALLED
TYPES = v1alpha1.CONDITION_TYPES

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"

Condition = dict[str, Any]


def now_rfc3339(now: datetime.datetime | None = None) -> str:
    """Kubernetes timestamps: UTC, second precision, trailing Z."""
    now = now or datetime.datetime.now(datetime.UTC)
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def make(
    type_: str,
    status: str,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
    now: str | None = None,
) -> Condition:
    cond: Condition = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now or now_rfc3339(),
    }
    if observed_generation is not None:
        cond["observedGeneration"] = observed_generation
    return cond


def find(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for cond in conditions or ():
        if cond.get("type") == type_:
            return cond
    return None


def status_of(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> str:
    cond = find(conditions, type_)
    return str(cond.get("status", UNKNOWN)) if cond else UNKNOWN


def is_true(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> bool:
    return status_of(conditions, type_) == TRUE


def merge(
    current: Sequence[Mapping[str, Any]] | None, wanted: Iterable[Condition]
) -> list[Condition]:
    """Return `wanted`, keeping each condition's lastTransitionTime when its status held.

    Conditions in `current` that `wanted` does not mention are kept as they are,
    so a writer never drops a type it does not manage.
    """
    by_type = {str(c.get("type")): dict(c) for c in current or ()}
    out: dict[str, Condition] = dict(by_type)
    for cond in wanted:
        old = by_type.get(cond["type"])
        new = dict(cond)
        if old is not None and old.get("status") == new["status"] and old.get("lastTransitionTime"):
            new["lastTransitionTime"] = old["lastTransitionTime"]
        out[new["type"]] = new
    order = {t: i for i, t in enumerate(TYPES)}
    return sorted(out.values(), key=lambda c: (order.get(c["type"], len(order)), c["type"]))
