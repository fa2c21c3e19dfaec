"""Service rotation: which services a decky runs next, and when.

Mirrors DECNET's mutator: the pool is the decky's explicit mutation pool,
else its archetype's services, else every per-decky service; a mutation
picks 1..min(3, pool) services, always a set different from the current one
(given up after 20 draws, as upstream). The random source is injected so the
choice is reproducible in tests.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from decnet.api import v1alpha1
from decnet.kube import conditions

MAX_PICK = 3
MAX_TRIES = 20
DEFAULT_INTERVAL_MINUTES = 30

DEFAULT_QUIET_SECONDS = v1alpha1.DEFAULT_QUIET_SECONDS
# status.activity.lastContact is written at most every 30 s during an attack, so it can
# lag the real last contact by that much: a shorter quiet period could cut a session.
MIN_QUIET_SECONDS = 45


def pool(
    *,
    explicit: Sequence[str] | None,
    archetype: str | None,
    archetypes: Mapping[str, Sequence[str]],
    templates: Mapping[str, bool],
) -> list[str]:
    """The services a mutation may choose from.

    `templates` maps every known service to its fleetSingleton flag; a
    singleton never runs per decky, so it is never part of a pool.
    """
    if explicit:
        chosen: Iterable[str] = explicit
    elif archetype and archetype in archetypes:
        chosen = archetypes[archetype]
    else:
        chosen = (name for name, singleton in templates.items() if not singleton)
    out: list[str] = []
    for name in chosen:
        if name not in out and not templates.get(name, False):
            out.append(name)
    return sorted(out)


def pick(
    service_pool: Sequence[str], current: Iterable[str], rng: random.Random | None = None
) -> list[str] | None:
    """A new sorted service set from the pool, or None when no different set came up."""
    rng = rng or random.Random()
    candidates = sorted(set(service_pool))
    if not candidates:
        return None
    now = set(current)
    for _ in range(MAX_TRIES):
        count = rng.randint(1, min(MAX_PICK, len(candidates)))
        choice = sorted(rng.sample(candidates, count))
        if set(choice) != now:
            return choice
    return None


def interval_minutes(per_decky: float | None, default: float) -> float:
    """Per-decky interval wins; 0 anywhere in effect disables scheduled rotation."""
    return default if per_decky is None else per_decky


def due_time(*, interval: float, last: datetime.datetime | None) -> datetime.datetime | None:
    """A scheduled mutation is due `interval` minutes after the last mutation/start."""
    if interval <= 0 or last is None:
        return None
    return last + datetime.timedelta(minutes=interval)


def due(
    *,
    interval: float,
    last: datetime.datetime | None,
    now: datetime.datetime,
) -> bool:
    at = due_time(interval=interval, last=last)
    return at is not None and now >= at


def quiet_until(
    *, last_contact: datetime.datetime | None, quiet_seconds: float | None
) -> datetime.datetime | None:
    """Until when no scheduled mutation may run: the quiet period after the last attacker
    contact (status.activity.lastContact), so a rotation never cuts a live session.
    None: no wait. A manual mutation does not ask."""
    period = DEFAULT_QUIET_SECONDS if quiet_seconds is None else quiet_seconds
    if period <= 0 or last_contact is None:
        return None
    return last_contact + datetime.timedelta(seconds=max(period, MIN_QUIET_SECONDS))


def quiet(
    *,
    last_contact: datetime.datetime | None,
    now: datetime.datetime,
    quiet_seconds: float | None,
) -> bool:
    """May a scheduled mutation run now, as far as attacker contact goes?"""
    until = quiet_until(last_contact=last_contact, quiet_seconds=quiet_seconds)
    return until is None or now >= until


def due_at(
    policy: v1alpha1.MutationPolicy | None,
    status: Mapping[str, Any],
    *,
    default_interval: float,
) -> datetime.datetime | None:
    """When a scheduled mutation falls due, as status stands (None: none is scheduled).

    policy is spec.mutation. Due once the interval has passed since the last mutation
    (else since the start of the last operation, which must have succeeded), and only
    once the decky is quiet (no attacker contact within its quiet period).
    """
    policy = policy or v1alpha1.MutationPolicy()
    interval = interval_minutes(policy.interval_minutes, default_interval)
    rec = status.get("lifecycle") or {}
    if interval <= 0 or v1alpha1.Phase(rec.get("phase") or "Pending") != v1alpha1.Phase.SUCCEEDED:
        return None
    since = conditions.parse_time(
        (status.get("lastMutation") or {}).get("at") or rec.get("startedAt")
    )
    at = due_time(interval=interval, last=since)
    if at is None:
        return None
    activity = status.get("activity") or {}
    until = quiet_until(
        last_contact=conditions.parse_time(activity.get("lastContact")),
        quiet_seconds=policy.quiet_seconds,
    )
    return at if until is None else max(at, until)


def scheduled(
    policy: v1alpha1.MutationPolicy | None,
    status: Mapping[str, Any],
    *,
    default_interval: float,
    now: datetime.datetime,
) -> bool:
    """Is a scheduled mutation due now? The one answer the loop and the reconcile share."""
    at = due_at(policy, status, default_interval=default_interval)
    return at is not None and now >= at
