"""The process state of one operator, one object passed to every handler (kopf's memo).

Handlers are thin; what they share lives here so the background loop and the
watch handlers see one view: per-object locks (a watch event and the loop never
reconcile one object at once), the freshest body known per object (our own write
responses are newer than a watch event still on its way), the work queue, and
in-memory reservations that keep concurrent allocations in this process from
racing for one address before the API server arbitrates.
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

from decnet.controller import mutation, planning, stored, validation, workqueue
from decnet.kube import names


@dataclasses.dataclass(frozen=True)
class Config:
    kubeconfig: str | None = None
    base_image: str = planning.DEFAULT_BASE_IMAGE
    mutation_interval_minutes: float = mutation.DEFAULT_INTERVAL_MINUTES
    node_gone_seconds: int = 300
    tick_seconds: float = 1.0
    # how often the loop looks at every decky for work without an event (a mutation due,
    # a deletion on a lost node, a reschedule whose grace ran out); node liveness itself
    # is checked every tick, and a change in it looks at every decky at once
    scan_seconds: float = 5.0
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
            scan_seconds=float(env.get("DECNET_SCAN_SECONDS", "5.0")),
            system_namespace=names.system_namespace(env),
            limits=validation.Limits.from_env(env),
        )


def rv(body: Mapping[str, Any] | None) -> str:
    """An object's resourceVersion: opaque, so only ever compared for equality."""
    return str((body or {}).get("metadata", {}).get("resourceVersion") or "")


@dataclasses.dataclass
class Written:
    """Our own latest write of one object, until the watch delivers it.

    resourceVersions are opaque (API conventions): which of two is newer cannot be
    read from them. The watch delivers an object's versions in order, so until the
    version we wrote comes back, a watch body is older than ours if it is a version we
    wrote over or wrote ourselves before; anything else is someone else's write, of
    unknown age.
    """

    body: dict[str, Any]
    older: set[str]


class State:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.client: Any = None
        self.indices: dict[str, Any] = {}
        self.queue = workqueue.WorkQueue()
        self.locks: dict[workqueue.Key, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self.written: dict[workqueue.Key, Written] = {}
        self.seen: set[str] = set()
        self.placement: dict[str, str] = {}  # decky uid -> its node
        self._per_node: collections.Counter[str] = collections.Counter()  # node -> deckies
        self.reserved: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        self.reserved_subnets: set[str] = set()
        self.started = datetime.datetime.now(datetime.UTC)
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

    def freshest(self, key: workqueue.Key, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """The newest body known: ours while the watch still replays older versions.

        None when the watch body is someone else's write whose age is unknown: the
        caller reads the object from the API server instead.
        """
        known = self.written.get(key)
        if known is None:
            return dict(body)
        version = rv(body)
        if version == rv(known.body):
            del self.written[key]  # the watch has caught up with our write
            return dict(body)
        if version in known.older:
            return known.body
        del self.written[key]
        return None

    def remember(
        self, key: workqueue.Key, base: Mapping[str, Any], body: Mapping[str, Any]
    ) -> None:
        """Our write over `base` was answered with `body`: newer than both."""
        known = self.written.get(key)
        older = known.older if known is not None else set()
        older.add(rv(base))
        if known is not None:
            older.add(rv(known.body))
        # managedFields are most of a response's bytes and no decision reads them
        self.written[key] = Written(stored.without_managed_fields(body), older)

    def forget(self, key: workqueue.Key, uid: str | None) -> None:
        self.written.pop(key, None)
        if uid:
            self.seen.discard(uid)
            node = self.placement.pop(uid, None)
            if node is not None:
                self._per_node[node] -= 1

    def load(self) -> Mapping[str, int]:
        return self._per_node

    def place(self, uid: str, node: str) -> None:
        """Count the decky on its node (kept as it changes: the scheduler reads the counts
        once per placement, and counting every decky each time is O(n²) for a burst)."""
        old = self.placement.get(uid)
        if old == node:
            return
        if old is not None:
            self._per_node[old] -= 1
        self.placement[uid] = node
        self._per_node[node] += 1


def of(memo: Any) -> State:
    """The State kopf hands every handler in its memo (main.py puts it there)."""
    st = memo["state"]
    assert isinstance(st, State)
    return st
