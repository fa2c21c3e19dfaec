"""Process-wide state of one operator: settings, the API client, kopf's indexes.

Handlers are thin; what they share lives here so the background loop and
the watch handlers see one view: per-object locks (a watch event and the
loop never reconcile one object at once), the freshest body known per
object (our own patch responses are newer than a queued watch event), and
in-memory reservations that keep concurrent allocations in this process
from racing for one address before the API server arbitrates.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import os
import random
from collections.abc import Iterator, Mapping
from typing import Any

from decnet.controller import mutation, planning, validation
from decnet.kube import names


@dataclasses.dataclass(frozen=True)
class Config:
    kubeconfig: str | None = None
    base_image: str = planning.DEFAULT_BASE_IMAGE
    mutation_interval_minutes: float = mutation.DEFAULT_INTERVAL_MINUTES
    node_gone_seconds: int = 300
    tick_seconds: float = 1.0
    system_namespace: str = names.SYSTEM_NAMESPACE
    limits: validation.Limits = dataclasses.field(default_factory=validation.Limits)

    @classmethod
    def from_env(cls, kubeconfig: str | None = None) -> Config:
        env = os.environ
        return cls(
            kubeconfig=kubeconfig,
            base_image=env.get("DECNET_BASE_IMAGE", planning.DEFAULT_BASE_IMAGE),
            mutation_interval_minutes=float(
                env.get("DECNET_MUTATION_INTERVAL_MINUTES", mutation.DEFAULT_INTERVAL_MINUTES)
            ),
            node_gone_seconds=int(env.get("DECNET_NODE_GONE_SECONDS", "300")),
            tick_seconds=float(env.get("DECNET_TICK_SECONDS", "1.0")),
            system_namespace=names.system_namespace(env),
            limits=validation.Limits.from_env(env),
        )


Key = tuple[str, str]


def rv(body: Mapping[str, Any] | None) -> int:
    try:
        return int((body or {}).get("metadata", {}).get("resourceVersion", 0))
    except (TypeError, ValueError):
        return 0


RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0


def next_retry_delay(previous: float | None) -> float:
    """Backoff for a key whose reconcile failed: 1 s, doubling, at most 60 s."""
    if previous is None:
        return RETRY_FIRST_SECONDS
    return min(RETRY_MAX_SECONDS, max(RETRY_FIRST_SECONDS, previous * 2))


class Runtime:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.client: Any = None
        self.indices: dict[str, Any] = {}
        self.locks: dict[Any, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self.latest: dict[Key, dict[str, Any]] = {}
        self.seen: set[str] = set()
        self.placement: dict[str, str] = {}
        self.reserved: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        self.reserved_subnets: set[str] = set()
        self.started = datetime.datetime.now(datetime.UTC)
        self.poked: set[Key] = set()
        self.wake = asyncio.Event()
        # keys whose last reconcile failed: (monotonic time it is due again, its delay)
        self.retries: dict[Key, tuple[float, float]] = {}
        self.rng = random.Random()
        self.background: set[asyncio.Task[None]] = set()
        self.last_live: dict[str, datetime.datetime] = {}
        self.loop_task: asyncio.Task[None] | None = None
        # monotonic time of the background loop's last pass: the liveness probe reads it
        self.heartbeat: float | None = None

    # -- indexes -----------------------------------------------------------------

    def index(self, name: str) -> Mapping[Any, Any]:
        return self.indices.get(name) or {}

    def values(self, name: str) -> Iterator[tuple[Any, Any]]:
        idx = self.index(name)
        for key in list(idx.keys()):
            for value in idx.get(key, ()):
                yield key, value

    def one(self, name: str, key: Any) -> Any:
        store = self.index(name).get(key)
        if not store:
            return None
        for value in store:
            return value
        return None

    # -- freshest bodies -----------------------------------------------------------

    def freshest(self, key: Key, body: Mapping[str, Any]) -> dict[str, Any]:
        known = self.latest.get(key)
        if known is not None and rv(known) > rv(body):
            return known
        return dict(body)

    def remember(self, key: Key, body: Mapping[str, Any]) -> None:
        if rv(body) >= rv(self.latest.get(key)):
            self.latest[key] = dict(body)

    def forget(self, key: Key, uid: str | None) -> None:
        self.latest.pop(key, None)
        if uid:
            self.seen.discard(uid)
            self.placement.pop(uid, None)

    def poke(self, *keys: Key) -> None:
        self.poked.update(keys)
        self.wake.set()

    # -- failed reconciles ------------------------------------------------------------

    def retry_later(self, key: Key, now: float) -> float:
        """A reconcile of `key` failed: run it again after a growing delay (never lost)."""
        previous = self.retries.get(key)
        delay = next_retry_delay(previous[1] if previous else None)
        self.retries[key] = (now + delay, delay)
        return delay

    def succeeded(self, key: Key) -> None:
        self.retries.pop(key, None)

    def due_retries(self, now: float) -> set[Key]:
        return {key for key, (at, _) in self.retries.items() if at <= now}

    def load(self) -> dict[str, int]:
        return dict(collections.Counter(self.placement.values()))
