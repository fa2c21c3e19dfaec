"""The operator's background work: startup, the loop that drains the work queue, cleanup.

Watch events reconcile at once or add keys to the queue (controller/workqueue.py);
this loop wakes on a new key or every tick, takes what is ready, adds deckies that
need a visit without any event (a node came or went, a deletion on a lost node, a
scheduled mutation due), and reconciles each key on its own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kopf
import structlog

from decnet.controller import (
    claims,
    deckies,
    indexes,
    lans,
    leadership,
    state,
    stored,
    topologies,
    workqueue,
    writes,
)
from decnet.kube import client as kclient
from decnet.kube import names

log = structlog.get_logger("decnet.controller")


@kopf.on.startup()
async def startup(memo: Any, **kwargs: Any) -> None:
    st = state.of(memo)
    st.client = kclient.async_client(st.config.kubeconfig, names.OPERATOR_MANAGER)
    st.indices = {k: kwargs[k] for k in indexes.NAMES}
    st.loop_task = asyncio.get_running_loop().create_task(run(st))
    writes.background(st, claims.sweep_at_start(st))
    log.info("operator.started", base_image=st.config.base_image)


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    st = state.of(memo)
    if st.loop_task is not None:
        st.loop_task.cancel()
    if st.client is not None:
        await st.client.close()


@kopf.on.event(indexes.G, indexes.V, names.SERVICE_TEMPLATES)
async def template_event(memo: Any, **_: Any) -> None:
    st = state.of(memo)
    st.queue.add(
        *[workqueue.Key(workqueue.Kind.DECKY, *k) for k, _ in st.values("decky_idx")],
        *[workqueue.Key(workqueue.Kind.TOPOLOGY, *k) for k, _ in st.values("topo_idx")],
    )


@kopf.on.event(
    indexes.LEASE_GROUP,
    indexes.LEASE_VERSION,
    "leases",
    labels={names.LABEL_AGENT_LEASE: kopf.PRESENT},
    when=indexes.in_system,
)
async def lease_event(memo: Any, **_: Any) -> None:
    state.of(memo).queue.kick()


def due(st: state.State, decky: stored.StoredDecky, live: set[str], changed: set[str]) -> bool:
    """Does this decky need a reconcile without a watch event?"""
    node = decky.node
    if not node:
        return bool(changed) or decky.deleting
    if node in changed:
        return True
    if decky.deleting:
        return node not in live and indexes.node_gone(st, node)
    if node not in live:
        # a Reschedule policy whose grace period has run out moves the decky now
        return indexes.node_loss(st, decky, node, live).due()
    return decky.mutation_due is not None and indexes.now() >= decky.mutation_due


def due_deckies(st: state.State, live: set[str], changed: set[str]) -> set[workqueue.Key]:
    keys = set()
    for (ns, name), entry in st.values("decky_idx"):
        key = workqueue.Key(workqueue.Kind.DECKY, ns, name)
        try:
            written = st.written.get(key)
            if written is not None:  # our own write the watch has not delivered yet
                entry = stored.store(
                    written.body, default_interval=st.config.mutation_interval_minutes
                )
            if due(st, entry, live, changed):
                keys.add(key)
        except Exception:  # noqa: BLE001 - a decky we cannot judge is reconciled, not skipped
            log.exception("due.failed", object=str(key))
            keys.add(key)
    return keys


async def reconcile(st: state.State, key: workqueue.Key) -> None:
    """One key of the queue, whatever its kind, from the freshest body the indexes hold."""
    if key.kind is workqueue.Kind.DECKY:
        body = indexes.decky_body(st, key.namespace, key.name)
        if body is not None:  # else gone: its deletion was handled by its watch event
            await deckies.reconcile(st, body)
    elif key.kind is workqueue.Kind.LAN:
        lan = st.one("lan_idx", (key.namespace, key.name))
        if lan is not None:
            await lans.reconcile(st, lan)
    else:
        await topologies.reconcile(st, key)


async def run(st: state.State) -> None:
    previous: set[str] = set()
    next_scan = 0.0
    while True:
        try:
            await asyncio.wait_for(st.queue.wake.wait(), timeout=st.config.tick_seconds)
        except TimeoutError:
            pass
        st.queue.wake.clear()
        st.heartbeat = time.monotonic()
        if not leadership.active():  # kopf paused this replica: so does its loop
            continue
        try:
            live = indexes.live_nodes(st)
            changed = live ^ previous
            previous = live
            now = time.monotonic()
            keys = st.queue.take(now)
            # a wake for queued keys (every Lease renewal kicks too) does not look at every
            # decky: that is O(deckies) and happens every few seconds, or when nodes change
            if changed or now >= next_scan:
                keys |= due_deckies(st, live, changed)
                next_scan = now + st.config.scan_seconds

            async def one(key: workqueue.Key) -> None:
                await reconcile(st, key)

            await workqueue.run(st.queue, keys, one)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the loop must survive anything
            log.exception("loop.failed")
            await asyncio.sleep(1)
