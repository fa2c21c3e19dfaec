"""Which operator replica acts: kopf's peering rule, applied to our background work too.

kopf pauses its watches and handlers while a live peer of a higher (or the same) priority
is listed in the ClusterKopfPeering, but it knows nothing of the operator's own background
loop (retries, scheduled mutations, node loss) nor of the claim sweep at start. This module
follows the same object with a watch of its own and answers "may I act now?" with kopf's
rule, evaluated when asked: a peer killed without a word stops counting once its lifetime
has run out, with no event to say so (a clean stop removes its record at once).

Each replica needs a distinct priority (equal priorities pause every one of them): the
default is the start time in milliseconds, so the newest replica leads and a rollout hands
over at once. Standalone (no peering name), the process always leads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf
import structlog
from lightkube.generic_resource import create_global_resource

from decnet.controller import metrics
from decnet.kube import client as kclient

log = structlog.get_logger("decnet.controller")

ClusterKopfPeering = create_global_resource(
    "kopf.dev", "v1", "ClusterKopfPeering", "clusterkopfpeerings"
)
PRIORITY_ENV = "DECNET_PEERING_PRIORITY"
LIFETIME_ENV = "DECNET_PEERING_LIFETIME"
IDENTITY_ENV = "POD_ID"  # kopf's own name for it; the chart sets it to the pod name
DEFAULT_LIFETIME = 60  # kopf's default (seconds)


@dataclass(frozen=True)
class Peer:
    identity: str
    priority: int
    deadline: dt.datetime  # lastseen + lifetime


def peers(status: Mapping[str, Any]) -> list[Peer]:
    """The peers kopf lists in the ClusterKopfPeering's status ({id: {priority, ...}})."""
    found = []
    for identity, info in status.items():
        if not isinstance(info, Mapping):
            continue
        try:
            seen = dt.datetime.fromisoformat(str(info.get("lastseen")))
        except ValueError:
            continue
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=dt.UTC)
        seconds = info.get("lifetime")
        lifetime = dt.timedelta(seconds=int(DEFAULT_LIFETIME if seconds is None else seconds))
        found.append(Peer(str(identity), int(info.get("priority") or 0), seen + lifetime))
    return found


def leading(others: Iterable[Peer], me: str, priority: int, now: dt.datetime) -> bool:
    """kopf's rule: paused while another live peer has a higher or the same priority."""
    return not any(p.identity != me and p.deadline > now and p.priority >= priority for p in others)


def own_priority(env: Mapping[str, str], now: float) -> int:
    value = env.get(PRIORITY_ENV, "").strip()
    return int(value) if value else int(now * 1000)


def own_identity(env: Mapping[str, str]) -> str:
    pod = env.get(IDENTITY_ENV, "").strip()
    return pod or f"{socket.gethostname()}/{os.getpid()}"


def own_lifetime(env: Mapping[str, str]) -> int:
    return int(env.get(LIFETIME_ENV, "").strip() or DEFAULT_LIFETIME)


class Leadership:
    """The last seen peering status, and the answer to "may I act now"."""

    def __init__(self, peering: str | None, identity: str, priority: int) -> None:
        self.peering, self.identity, self.priority = peering, identity, priority
        self.status: Mapping[str, Any] | None = None  # None: not read yet

    def leading(self, now: dt.datetime | None = None) -> bool:
        if self.peering is None:
            return True
        if self.status is None:
            return False
        when = now or dt.datetime.now(dt.UTC)
        return leading(peers(self.status), self.identity, self.priority, when)

    async def wait(self) -> None:
        was = self.leading()
        while not self.leading():
            await asyncio.sleep(0.5)
        if not was:
            log.info("leadership.acquired", identity=self.identity, priority=self.priority)

    async def follow(self, client: Any) -> None:
        """Keep `status` current: one watch on the one object, re-listed after an error."""
        assert self.peering is not None
        while True:
            try:
                obj = await client.get(ClusterKopfPeering, self.peering)
                self.status = dict(obj.get("status") or {})
                version = obj.metadata.resourceVersion
                async for _kind, event in client.watch(
                    ClusterKopfPeering,
                    fields={"metadata.name": self.peering},
                    resource_version=version,
                ):
                    self.status = dict(event.get("status") or {})
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - keep following; act only when known
                log.warning("leadership.watch_failed", error=str(error)[:300])
                await asyncio.sleep(2)


# One per process, configured by main before kopf runs; standalone until then.
_SELF = Leadership(None, "", 0)
_TASKS: set[asyncio.Task[None]] = set()


def configure(peering: str | None, identity: str, priority: int) -> None:
    _SELF.peering, _SELF.identity, _SELF.priority = peering, identity, priority
    _SELF.status = None


def active() -> bool:
    """May this process do background work (loop passes, sweeps) now?"""
    now = _SELF.leading()
    metrics.LEADER.set(1 if now else 0)
    return now


async def wait_active() -> None:
    await _SELF.wait()


@kopf.on.startup()
async def _follow(**_: Any) -> None:
    if _SELF.peering is None:
        return
    client = kclient.async_client(os.environ.get("KUBECONFIG") or None)
    task = asyncio.get_running_loop().create_task(_SELF.follow(client))
    _TASKS.add(task)
    log.info(
        "leadership.following",
        peering=_SELF.peering,
        identity=_SELF.identity,
        priority=_SELF.priority,
    )


@kopf.on.cleanup()
async def _stop(**_: Any) -> None:
    for task in _TASKS:
        task.cancel()
