"""The operator's work queue: every reconcile runs behind a key, and a failure is retried.

The agent's shape (agent/main.py), for the controller's three kinds: a key is a typed
(kind, namespace, name), never a string with a prefix. Watch events and the periodic
checks add keys; the background loop takes what is ready (added, or a failed key whose
backoff has run out) and runs each key on its own, several at once, so one failing key
never holds back or drops another. A failed key comes back after 1 s, doubling to 60 s,
until it succeeds; nothing but success forgets it.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import NamedTuple

import structlog

from decnet.controller import metrics

log = structlog.get_logger("decnet.controller")

RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
# reconciles the loop runs at once
WORKERS = 16


class Kind(enum.StrEnum):
    DECKY = "Decky"
    LAN = "LAN"
    TOPOLOGY = "Topology"


class Key(NamedTuple):
    kind: Kind
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


def next_retry_delay(previous: float | None) -> float:
    """Backoff for a key whose reconcile failed: 1 s, doubling, at most 60 s."""
    if previous is None:
        return RETRY_FIRST_SECONDS
    return min(RETRY_MAX_SECONDS, max(RETRY_FIRST_SECONDS, previous * 2))


class WorkQueue:
    """Keys to reconcile now, and failed keys waiting for their backoff."""

    def __init__(self) -> None:
        self._ready: set[Key] = set()
        # keys whose last reconcile failed: (monotonic time it is due again, its delay)
        self._retries: dict[Key, tuple[float, float]] = {}
        self.wake = asyncio.Event()

    def add(self, *keys: Key) -> None:
        self._ready.update(keys)
        if keys:
            self.wake.set()

    def kick(self) -> None:
        """Wake the loop for a pass without a key (its periodic checks)."""
        self.wake.set()

    def failed(self, key: Key, now: float) -> float:
        """The reconcile of `key` failed: it is due again after a growing delay."""
        previous = self._retries.get(key)
        delay = next_retry_delay(previous[1] if previous else None)
        self._retries[key] = (now + delay, delay)
        return delay

    def succeeded(self, key: Key) -> None:
        self._retries.pop(key, None)

    def forget(self, key: Key) -> None:
        """The object is gone: nothing of it is left to retry."""
        self._ready.discard(key)
        self._retries.pop(key, None)

    def waiting(self, key: Key) -> bool:
        return key in self._ready or key in self._retries

    def take(self, now: float) -> set[Key]:
        """What is ready now: added keys and failed keys whose delay has run out.

        A taken retry keeps its delay (the next failure doubles it) but is not due
        again until it fails again."""
        keys = set(self._ready)
        self._ready.clear()
        for key, (at, delay) in self._retries.items():
            if at <= now:
                keys.add(key)
                self._retries[key] = (float("inf"), delay)
        return keys


async def attempt(
    queue: WorkQueue,
    key: Key,
    reconcile: Callable[[Key], Awaitable[None]],
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Run one key's reconcile, counted; on failure schedule its retry. True on success."""
    metrics.RECONCILES.labels(key.kind).inc()
    try:
        with metrics.counting_errors(key.kind):
            await reconcile(key)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - retried with backoff, never lost
        delay = queue.failed(key, clock())
        log.exception("reconcile.failed", object=str(key), retry_in=delay)
        return False
    queue.succeeded(key)
    return True


async def run(
    queue: WorkQueue,
    keys: Iterable[Key],
    reconcile: Callable[[Key], Awaitable[None]],
    clock: Callable[[], float] = time.monotonic,
    workers: int = WORKERS,
) -> int:
    """Reconcile each key on its own, `workers` at a time (taken in a stable order);
    returns how many failed.

    Keys are distinct objects (each reconcile holds its object's lock), so they run side
    by side as kopf's watch handlers do: a pass over the 1,000 deckies of a lost node
    waits on the API server 16 writes at a time, not one after another."""
    pending = iter(sorted(keys))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for key in pending:  # one iterator shared by the workers: each key is taken once
            if not await attempt(queue, key, reconcile, clock):
                failures += 1

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
    return failures
