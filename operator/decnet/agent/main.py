"""The node agent's I/O loop: watch this node's deckies, converge them in parallel, report.

Threads, because the Docker SDK and lightkube's sync client block:
- a watcher lists then watches deckies with the server-side selector
  decnet.io/node=<node> (re-listing after any watch error, 410 Gone included);
- a bounded pool converges deckies; one decky is never converged by two
  workers at once, and events arriving meanwhile coalesce into one more pass;
- a ticker re-queues failed deckies after their backoff, runs the periodic
  resync (fresh list, drift repair, orphan reaping) and renews the Lease. A failed
  decky waits for its backoff: neither its own status echo nor the resync retries it
  sooner (a crashing service is restarted with backoff, not in a hot loop).
Ready is reported only for what is in place: containers started in a converge are
confirmed after a short settle, and a failed egress firewall sync fails every decky
on a LAN (agent/health.py).
Nothing is deleted on uncertainty: orphans are reaped only after a successful
fresh list and a grace period, and an unreachable Docker engine only delays.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pydantic
import structlog
from lightkube import ApiError, Client
from prometheus_client import Counter, Gauge, Histogram, start_http_server

import decnet
from decnet import logs
from decnet.agent import (
    attacker,
    converge,
    desired,
    egress,
    hardening,
    health,
    kube,
    lures,
    planner,
    readiness,
    reporter,
    scans,
    sniffer,
    workpool,
)
from decnet.agent.runtime import engine as runtime
from decnet.agent.runtime import fakedocker, firewall
from decnet.api import v1alpha1
from decnet.kube import names, probes

log = structlog.get_logger("decnet.agent")

CONVERGES = Counter("decnet_agent_converges_total", "Decky converge passes", ["result"])
CONVERGE_SECONDS = Histogram("decnet_agent_converge_seconds", "Time of one decky converge pass")
STATUS_WRITES = Counter("decnet_agent_status_writes_total", "Status reports written")
DECKIES = Gauge("decnet_agent_deckies", "Deckies of this node known to the agent")
REAPED = Counter("decnet_agent_orphans_reaped_total", "Orphan containers removed")
FIREWALL_SYNCS = Counter(
    "decnet_agent_firewall_syncs_total", "Egress rule reconciliations", ["result"]
)
FAILING = Gauge("decnet_agent_deckies_failing", "Deckies whose last converge failed")
BUILD_INFO = Gauge(
    "decnet_agent_build_info", "Always 1; the labels say which build runs", ["version"]
)
BUILD_INFO.labels(decnet.__version__).set(1)
LEASE_RENEWED = Gauge(
    "decnet_agent_lease_renewed_timestamp_seconds", "Unix time of the last node Lease renewal"
)

MAX_BACKOFF = 60.0
# How long a just-started container must stay up before the converge counts it.
SETTLE_SECONDS = 1.5
# the tick loop's rhythm: retries and settles due, reaping, the resync
TICK_SECONDS = 0.5
# at a stop, how long converges already under way may take to finish their Docker calls
SHUTDOWN_WAIT_SECONDS = 20.0


def renew_interval(lease_seconds: float) -> float:
    """Renew four times per Lease duration (10 s for the default 40 s), so one slow
    API round trip never lets the Lease lapse."""
    return lease_seconds / 4


class Agent:
    def __init__(
        self,
        client: Client,
        engine: runtime.Engine,
        node: str,
        workers: int = 8,
        resync_seconds: float = 30.0,
        orphan_grace_seconds: float = 60.0,
        lease_seconds: int = kube.LEASE_DURATION_SECONDS,
        firewall_enabled: bool = False,
        denied_cidrs: tuple[str, ...] = egress.DEFAULT_DENIED,
        system_namespace: str = names.SYSTEM_NAMESPACE,
        lease_owner: str = "",
        egress_within: tuple[str, ...] = egress.ANYWHERE,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self.client = client
        self.system_namespace = system_namespace
        self.lease_owner = lease_owner
        self.engine = engine
        self.node = node
        self.resync_seconds = resync_seconds
        self.settle_seconds = settle_seconds
        self.orphan_grace_seconds = orphan_grace_seconds
        self.lease_seconds = lease_seconds
        self.pool = workpool.WorkPool(workers)
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, Any]] = {}  # uid -> latest Decky as a dict
        self._done: dict[str, str] = {}  # uid -> fingerprint last converged without error
        self._failed: dict[str, str] = {}  # uid -> fingerprint whose converge failed
        self._active: set[str] = set()  # uids a worker owns right now
        self._again: set[str] = set()  # uids that changed while a worker owned them
        self._retry: dict[str, tuple[float, float]] = {}  # uid -> (due, last delay)
        # a counter of object updates from the watch and our own writes, and the last
        # update of each uid: a list answered later never overwrites a newer one
        self._seq = 0
        self._touched_at: dict[str, int] = {}
        # uid -> (when its settle runs out, containers started to confirm then)
        self._settling: dict[str, tuple[float, tuple[str, ...]]] = {}
        # uid -> containers whose settle ran out, for the decky's next (confirming) pass
        self._settled_ids: dict[str, tuple[str, ...]] = {}
        self._orphan_first_seen: dict[str, float] = {}
        self._listed = threading.Event()
        # set after the first list and whenever a decky leaves this node's watch: its
        # containers may belong to a decky deleted or rescheduled while this agent was away
        self._reap_soon = threading.Event()
        # uids of the first list still to be visited: when it empties, the agent has adopted
        # (or repaired) everything that was on its node when it started.
        self._initial: set[str] | None = None
        self._started = time.monotonic()
        self.firewall_enabled = firewall_enabled
        self.denied_cidrs = denied_cidrs
        self.egress_within = egress_within
        self._fw_refused: set[tuple[str, str, str]] = set()
        self._fw_lock = threading.Lock()
        self._fw_closed = False  # set once the rules are released on a clean stop
        self._fw_applied = ""  # fingerprint of the last ruleset applied without error
        self._fw_error: str | None = None  # why the last sync failed; None when it did not
        # uid -> (plan hash, (namespace, networks)): plans parsed once, not per converge
        self._fw_plans: dict[
            str, tuple[str, tuple[str, tuple[planner.NetworkWant, ...]] | None]
        ] = {}
        # monotonic times the probes read (decnet.agent.readiness)
        self.lease_renewed: float | None = None
        self.docker_answered: float | None = None
        self._threads: list[threading.Thread] = []
        # uid -> (plan hash, (namespace, networks)), for the sniffer's thread only
        self._sniff_plans: dict[
            str, tuple[str, tuple[str, tuple[planner.NetworkWant, ...]] | None]
        ] = {}

    # ------------------------------------------------------------------ scheduling

    def enqueue(self, uid: str, force: bool = False, first: bool = False) -> None:
        """Converge this decky on a worker; `first` puts it before queued work (a pass
        that confirms started containers, after which the decky is Ready)."""
        with self._lock:
            obj = self._objects.get(uid)
            if obj is None:
                return
            fp = desired.fingerprint(obj)
            # a failed decky is retried by its backoff timer (force), not by every event
            if not force and fp in (self._done.get(uid), self._failed.get(uid)):
                return
            if uid in self._active:
                self._again.add(uid)
                return
            self._active.add(uid)
        self.pool.submit(lambda: self._work(uid), first=first)

    def _work(self, uid: str) -> None:
        while not self.stop.is_set():
            try:
                self.converge_one(uid)
            except Exception:  # noqa: BLE001 - a worker must survive anything and retry
                log.exception("converge.crashed", uid=uid)
                self._schedule_retry(uid)
            with self._lock:
                if uid in self._again:
                    self._again.discard(uid)
                    continue
                self._active.discard(uid)
                return

    def _schedule_retry(self, uid: str) -> None:
        with self._lock:
            _, last = self._retry.get(uid, (0.0, 0.0))
            delay = min(MAX_BACKOFF, max(1.0, last * 2))
            self._retry[uid] = (time.monotonic() + delay, delay)

    def _settle_later(self, uid: str, started: tuple[str, ...]) -> None:
        """Confirm these containers once they have had the settle to fail (tick_loop)."""
        with self._lock:
            at, before = self._settling.get(uid, (None, ()))
            if started or at is None:  # an event meanwhile does not push the settle out
                at = time.monotonic() + self.settle_seconds
            self._settling[uid] = (at, tuple(dict.fromkeys((*before, *started))))

    def _settled(self, uid: str) -> tuple[bool, tuple[str, ...]]:
        """(still settling, containers whose settle has run out and are to be confirmed)."""
        with self._lock:
            if uid in self._settled_ids:
                return False, self._settled_ids.pop(uid)
            return uid in self._settling, ()

    def _next_tick(self) -> float:
        """Seconds until the tick loop's next pass: every 0.5 s, sooner when a settle runs
        out before that (a decky's report is not held back by the tick's rhythm)."""
        with self._lock:
            soonest = min((at for at, _ in self._settling.values()), default=None)
        if soonest is None:
            return TICK_SECONDS
        return min(TICK_SECONDS, max(0.0, soonest - time.monotonic()))

    def _due_settles(self) -> list[str]:
        """Deckies whose settle has run out, each handed over once to its confirming pass."""
        now = time.monotonic()
        with self._lock:
            due = [uid for uid, (at, _) in self._settling.items() if at <= now]
            for uid in due:
                self._settled_ids[uid] = self._settling.pop(uid)[1]
        return due

    def _due_retries(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            due = [uid for uid, (at, _) in self._retry.items() if at <= now]
            for uid in due:
                at, delay = self._retry[uid]
                self._retry[uid] = (float("inf"), delay)  # re-armed by the next failure
        return due

    # ------------------------------------------------------------------ one decky

    def converge_one(self, uid: str) -> None:
        try:
            self._converge_one(uid)
        finally:
            self._initial_visited(uid)

    @property
    def listed(self) -> threading.Event:
        """Set once the first list of this node's deckies is in."""
        return self._listed

    def decky(self, uid: str) -> dict[str, Any] | None:
        """The latest Decky object of this node with that uid (for event enrichment)."""
        with self._lock:
            return self._objects.get(uid)

    def _initial_visited(self, uid: str) -> None:
        with self._lock:
            if self._initial is None or uid not in self._initial:
                return
            self._initial.discard(uid)
            if self._initial:
                return
            count = len(self._objects)
        log.info(
            "sync.initial_done",
            deckies=count,
            seconds=round(time.monotonic() - self._started, 3),
        )

    def _converge_one(self, uid: str) -> None:
        with self._lock:
            raw = self._objects.get(uid)
        if raw is None:
            return
        fp = desired.fingerprint(raw)
        meta = raw.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        status = raw.get("status") or {}
        plan = status.get("plan") or {}
        lifecycle_id = str((status.get("lifecycle") or {}).get("id", ""))
        if not owned_by(status, self.node):
            # Labelled for this node but scheduled elsewhere (a hand-edited label, or a
            # label the operator has not corrected yet): never run another node's plan.
            log.warning("decky.not_ours", decky=f"{namespace}/{name}", node=str(status.get("node")))
            return
        started = time.monotonic()
        want: planner.DeckyWant | None = None
        settling = False
        try:
            if meta.get("deletionTimestamp"):
                with self._lock:
                    self._settling.pop(uid, None)
                    self._settled_ids.pop(uid, None)
                outcome = converge.remove(self.engine, namespace, name, uid)
                self.collect_networks()
            else:
                decky = v1alpha1.Decky.model_validate(raw)
                want = desired.want_from_decky(decky, self._read_ref)
                if want is None:
                    return  # not planned yet: the operator has not scheduled it here
                waiting, confirm = self._settled(uid)
                if waiting:
                    # containers it started are within their settle: its own pass comes
                    # then (tick_loop), with whatever changed meanwhile; a pass now would
                    # start a crashed service again before it is judged
                    return
                outcome = converge.converge(self.engine, want, self.settle_seconds, confirm)
                settling = bool(outcome.settling)
        except runtime.EngineUnavailable as error:
            log.warning("docker.unavailable", decky=f"{namespace}/{name}", error=str(error))
            CONVERGES.labels("unavailable").inc()
            self._schedule_retry(uid)
            return
        except (runtime.DockerError, desired.FileSourceError) as error:
            observed = self._safe_observe(namespace, name)
            outcome = converge.Outcome(v1alpha1.AgentState.FAILED, str(error), observed)
        except pydantic.ValidationError as error:
            # a Decky (or plan) this agent cannot read: reported, never a crash loop
            # locations and reasons only: input values may be lure content or config
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in error.errors(include_input=False)[:5]
            )
            message = f"unreadable Decky or plan ({error.error_count()} error(s)): {where}"
            outcome = converge.Outcome(
                v1alpha1.AgentState.FAILED, message, self._safe_observe(namespace, name)
            )
        # rules for a new LAN before Ready is reported (until then its bridge is closed)
        self.sync_firewall()
        if settling:
            # started containers have not had their settle yet: no report until they
            # have, and this worker goes on to other deckies meanwhile
            self._settle_later(uid, outcome.settling)
            return
        if outcome.state == v1alpha1.AgentState.CONVERGED and want is not None:
            verdict = health.judge_firewall(want, self.firewall_error)
            if verdict is not None:
                outcome = converge.Outcome(
                    v1alpha1.AgentState.FAILED, verdict.message, outcome.observed, verdict.reason
                )
        CONVERGE_SECONDS.observe(time.monotonic() - started)
        CONVERGES.labels(outcome.state).inc()
        report = reporter.build_report(
            self.node,
            want,
            str(plan.get("hash", "")),
            lifecycle_id,
            outcome.state,
            outcome.message,
            []
            if outcome.state == v1alpha1.AgentState.REMOVED
            else list(outcome.observed.containers),
            outcome.reason,
        )
        self._write(uid, namespace, name, status, report)
        if outcome.state == v1alpha1.AgentState.FAILED:
            log.warning("converge.failed", decky=f"{namespace}/{name}", message=outcome.message)
            with self._lock:
                self._failed[uid] = fp
                # a revert to the last good spec is work again (Docker holds the failed one)
                self._done.pop(uid, None)
            self._schedule_retry(uid)
            return
        with self._lock:
            self._retry.pop(uid, None)
            self._failed.pop(uid, None)
            self._done[uid] = fp
        log.info("converge.done", decky=f"{namespace}/{name}", state=outcome.state)

    def _safe_observe(self, namespace: str, name: str) -> planner.Observed:
        try:
            return self.engine.observe_decky(namespace, name, with_files=False)
        except (runtime.DockerError, runtime.EngineUnavailable):
            return planner.Observed()

    def _read_ref(self, kind: str, namespace: str, name: str, key: str) -> bytes | None:
        return kube.read_ref(self.client, kind, namespace, name, key)

    def _write(
        self, uid: str, namespace: str, name: str, status: dict[str, Any], report: dict[str, Any]
    ) -> None:
        if not reporter.differs(status, report):
            return
        try:
            kube.apply_status(self.client, reporter.apply_body(namespace, name, report))
        except ApiError as error:
            if error.status.code == 404:
                # Deleted meanwhile (its finalizer already released): nobody to tell.
                log.debug("report.target_gone", decky=f"{namespace}/{name}")
                return
            raise
        STATUS_WRITES.inc()
        with self._lock:
            obj = self._objects.get(uid)
            if obj is not None:
                merged = dict(obj.get("status") or {})
                merged.update(report)
                self._objects[uid] = {**obj, "status": merged}
                self._touched(uid)

    # ------------------------------------------------------------------ the API server

    def _mark(self) -> int:
        """A point in this agent's stream of object updates, taken before a list."""
        with self._lock:
            return self._seq

    def _touched(self, uid: str) -> None:
        """The watch (or our own write) just updated or removed this decky: a list
        taken before now is older for it. Called under the lock."""
        self._seq += 1
        self._touched_at[uid] = self._seq

    def _watched(self, uid: str, obj: dict[str, Any]) -> None:
        """The watch delivered this version of a decky of this node."""
        with self._lock:
            self._objects[uid] = obj
            self._touched(uid)

    def _watched_deleted(self, uid: str) -> None:
        """The watch says the decky is gone (or no longer this node's)."""
        with self._lock:
            self._forget(uid)
            self._touched(uid)

    def _forget(self, uid: str) -> None:
        """Nothing of this decky is kept (called under the lock)."""
        self._objects.pop(uid, None)
        self._done.pop(uid, None)
        self._failed.pop(uid, None)
        self._retry.pop(uid, None)
        self._settling.pop(uid, None)
        self._settled_ids.pop(uid, None)

    def _set_objects(self, items: list[dict[str, Any]], since: int) -> set[str]:
        """Take a list as the truth, except for deckies the watch (or our own write)
        touched after `since`, when the list was asked for: a resync's list may answer
        after the watch delivered a newer version or a deletion, and overwriting it would
        leave the decky on its older version until the next resync. The uids now held."""
        listed = {str(o["metadata"]["uid"]): o for o in items}
        with self._lock:
            newer = {uid for uid, at in self._touched_at.items() if at > since}
            for gone in set(self._objects) - set(listed) - newer:
                self._forget(gone)
            for uid, obj in listed.items():
                if uid not in newer:
                    self._objects[uid] = obj
            # what the list has seen is settled: only later touches need remembering
            self._touched_at = {uid: at for uid, at in self._touched_at.items() if at > since}
            DECKIES.set(len(self._objects))
            return set(self._objects)

    def watch_loop(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            try:
                mark = self._mark()
                items, rv = kube.list_deckies(self.client, self.node)
                uids = self._set_objects(items, mark)
                first = not self._listed.is_set()
                if first:
                    with self._lock:
                        self._initial = set(uids)
                for uid in uids:
                    self.enqueue(uid, force=first)
                self._listed.set()
                self._reap_soon.set()
                if first and not uids:
                    log.info("sync.initial_done", deckies=0, seconds=0.0)
                delay = 1.0
                for kind, obj in kube.watch_deckies(self.client, self.node, rv):
                    if self.stop.is_set():
                        return
                    uid = str(obj["metadata"]["uid"])
                    if kind == "DELETED":
                        self._watched_deleted(uid)
                        self._reap_soon.set()
                        continue
                    self._watched(uid, obj)
                    self.enqueue(uid)
            except Exception as error:  # noqa: BLE001 - re-list after any watch failure
                if self.stop.is_set():
                    return
                log.warning("watch.failed", error=str(error)[:300], retry_in=delay)
                self.stop.wait(delay)
                delay = min(MAX_BACKOFF, delay * 2)

    def resync(self) -> None:
        """Fresh list, drift repair for every decky, orphans past their grace period reaped."""
        try:
            mark = self._mark()
            items, _ = kube.list_deckies(self.client, self.node)
            live: set[str] | None = self._set_objects(items, mark)
        except Exception as error:  # noqa: BLE001 - unreachable API server: reap nothing
            log.warning("resync.list_failed", error=str(error)[:300])
            live = None
        with self._lock:
            # a decky waiting for its backoff is retried by the timer, not sooner
            waiting = {u for u, (at, _) in self._retry.items() if at != float("inf")}
            uids = [u for u in self._objects if u not in waiting]
        for uid in uids:
            self.enqueue(uid, force=True)
        if live is not None:
            self.sync_firewall(force=True)
        try:
            observed = self.engine.observe_node()
        except (runtime.DockerError, runtime.EngineUnavailable) as error:
            log.warning("resync.docker_failed", error=str(error)[:300])
            return
        if live is not None:
            now = time.monotonic()
            found = planner.find_orphans(observed, live)
            for c in found:
                if c.id not in self._orphan_first_seen:
                    log.info("orphan.seen", container=c.name, uid=c.uid, live_deckies=len(live))
            orphans = {c.id for c in found}
            self._orphan_first_seen = {
                cid: self._orphan_first_seen.get(cid, now) for cid in orphans
            }
            actions = planner.plan_gc(
                self._planned_networks(),
                observed,
                live,
                self._orphan_first_seen,
                now,
                self.orphan_grace_seconds,
                gone_uids=self._confirmed_gone(found),
            )
            self._run_gc(actions)
            # lure directories of deckies that are gone (their containers went above)
            with_containers = {c.uid for c in observed.containers}
            for uid in self.engine.lures.prune(live | with_containers):
                log.info("gc.done", action=f"lure files of {uid}")

    def reap_moved(self) -> None:
        """Containers whose decky the API server confirms is not this node's any more
        (deleted, or rescheduled to another node while this agent was down or cut off) are
        removed at once, not after the orphan grace period: the decoy may already run on
        its new node, and one address must never answer from two hosts."""
        with self._lock:
            live = set(self._objects)
        try:
            observed = self.engine.observe_node()
        except (runtime.DockerError, runtime.EngineUnavailable) as error:
            log.warning("reap.docker_failed", error=str(error)[:300])
            return
        found = planner.find_orphans(observed, live)
        gone = self._confirmed_gone(found)
        if not gone:
            return
        actions = planner.plan_gc(
            self._planned_networks(), observed, live, {}, time.monotonic(), float("inf"), gone
        )
        self._run_gc(actions)

    def _confirmed_gone(self, orphans: list[planner.ContainerSeen]) -> set[str]:
        """Orphans' deckies the API server confirms are no longer this node's (deleted, or
        rescheduled away while this agent was down): one GET per decky, not per container."""
        deckies = {
            c.uid: (c.labels.get(names.LABEL_NAMESPACE, ""), c.labels.get(names.LABEL_DECKY, ""))
            for c in orphans
            if c.uid
        }
        gone = set()
        for uid, (namespace, name) in deckies.items():
            if not (namespace and name):
                continue
            if kube.not_on_node(self.client, namespace, name, uid, self.node):
                log.info("orphan.confirmed", decky=f"{namespace}/{name}", uid=uid)
                gone.add(uid)
        return gone

    @property
    def firewall_error(self) -> str | None:
        """Why the last egress firewall sync failed; None when it did not (or it is off)."""
        return self._fw_error

    def sync_firewall(self, force: bool = False) -> None:
        """Egress rules for the LANs planned on this node; a no-op when nothing changed
        since the last successful sync, unless forced (the resync repairs drift)."""
        if not self.firewall_enabled or not self._listed.is_set():
            return  # before the first list, "no LANs" would only mean "not known yet"
        if self._sync_firewall(force):
            # containment just failed or came back: every decky's Ready must say so
            with self._lock:
                uids = list(self._objects)
            for uid in uids:
                self.enqueue(uid, force=True)

    def _sync_firewall(self, force: bool) -> bool:
        """One sync; True when it turned containment from in place to failed or back."""
        # one sync at a time, each from a fresh snapshot: a slower sync can never apply
        # an older view over a newer one
        with self._fw_lock:
            if self._fw_closed:
                return False  # the agent is stopping and released its rules
            was_ok = self._fw_error is None
            with self._lock:
                objects = dict(self._objects)
            v4, v6 = self._wanted_rules(objects)
            fp = egress.fingerprint(v4) + egress.fingerprint(v6)
            if not force and fp == self._fw_applied:
                return False
            try:
                done = firewall.sync(self.node, v4, firewall.IPV4)
                done += firewall.sync(self.node, v6, firewall.IPV6)
            except firewall.FirewallError as error:
                self._fw_applied = ""
                self._fw_error = str(error)[:500] or type(error).__name__
                FIREWALL_SYNCS.labels("failed").inc()
                log.error("firewall.sync_failed", error=str(error)[:500])
                return was_ok
            self._fw_applied = fp
            self._fw_error = None
            FIREWALL_SYNCS.labels("ok").inc()
            if done:
                log.info("firewall.synced", actions=[type(a).__name__ for a in done])
            return not was_ok

    def _wanted_rules(
        self, objects: dict[str, dict[str, Any]]
    ) -> tuple[egress.Ruleset, egress.Ruleset]:
        planned = []
        cache: dict[str, tuple[str, tuple[str, tuple[planner.NetworkWant, ...]] | None]] = {}
        for uid, obj in objects.items():
            key = str(((obj.get("status") or {}).get("plan") or {}).get("hash", ""))
            key += "/deleting" if (obj.get("metadata") or {}).get("deletionTimestamp") else ""
            hit = self._fw_plans.get(uid)
            nets = hit[1] if hit and hit[0] == key else desired.planned_networks(obj)
            cache[uid] = (key, nets)
            if nets:
                planned.append(nets)
        self._fw_plans = cache
        lans = egress.lans_from_plans(planned)
        refused = set(egress.refused(lans, self.egress_within))
        for namespace, lan, cidr in sorted(refused - self._fw_refused):
            log.warning(
                "egress.allowance_refused",
                lan=f"{namespace}/{lan}",
                cidr=cidr,
                allowed=list(self.egress_within),
            )
        self._fw_refused = refused
        return egress.wanted(self.node, lans, self.denied_cidrs, self.egress_within)

    def sniffer_lans(self) -> dict[str, scans.LanView]:
        """The bridge LANs the sniffer watches: those of this node's planned deckies."""
        with self._lock:
            objects = dict(self._objects)
        planned = []
        cache: dict[str, tuple[str, tuple[str, tuple[planner.NetworkWant, ...]] | None]] = {}
        for uid, obj in objects.items():
            key = str(((obj.get("status") or {}).get("plan") or {}).get("hash", ""))
            key += "/deleting" if (obj.get("metadata") or {}).get("deletionTimestamp") else ""
            hit = self._sniff_plans.get(uid)
            nets = hit[1] if hit and hit[0] == key else desired.planned_networks(obj)
            cache[uid] = (key, nets)
            if nets:
                planned.append(nets)
        self._sniff_plans = cache
        return scans.lans_from_plans(self.node, planned)

    def collect_networks(self) -> None:
        """Networks nobody uses or plans; no container is touched here."""
        observed = self.engine.observe_node()
        self._run_gc(planner.plan_gc(self._planned_networks(), observed, set(), {}, 0.0, 1.0))

    def _planned_networks(self) -> set[str]:
        with self._lock:
            objs = list(self._objects.values())
        planned: set[str] = set()
        for obj in objs:
            if (obj.get("metadata") or {}).get("deletionTimestamp"):
                continue
            plan = (obj.get("status") or {}).get("plan") or {}
            planned.update(str(n.get("network")) for n in plan.get("networks") or [])
        return planned

    def _run_gc(self, actions: list[planner.Action]) -> None:
        for action in actions:
            try:
                self.engine.execute(action)
            except (runtime.DockerError, runtime.EngineUnavailable) as error:
                log.warning("gc.failed", action=converge.describe(action), error=str(error)[:300])
                continue
            if isinstance(action, planner.RemoveContainer):
                REAPED.inc()
                self._orphan_first_seen.pop(action.id, None)
            log.info("gc.done", action=converge.describe(action))

    def lease_loop(self) -> None:
        """Renew the node Lease and ping Docker: the two facts readiness stands on."""
        acquired = dt.datetime.now(dt.UTC)
        owner = None
        while not self.stop.is_set():
            try:
                if self.lease_owner and owner is None:
                    owner = kube.lease_owner(self.client, self.system_namespace, self.lease_owner)
                kube.renew_lease(
                    self.client,
                    self.node,
                    acquired,
                    self.system_namespace,
                    owner,
                    duration=self.lease_seconds,
                )
                self.lease_renewed = time.monotonic()
                LEASE_RENEWED.set_to_current_time()
            except Exception as error:  # noqa: BLE001 - retried on the next tick
                log.warning("lease.renew_failed", error=str(error)[:300])
            try:
                self.engine.ping()
                self.docker_answered = time.monotonic()
            except (runtime.DockerError, runtime.EngineUnavailable) as error:
                log.warning("docker.ping_failed", error=str(error)[:300])
            self.stop.wait(renew_interval(self.lease_seconds))

    def is_listed(self) -> bool:
        return self._listed.is_set()

    def loops_alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def tick_loop(self) -> None:
        next_resync = time.monotonic() + self.resync_seconds
        while not self.stop.wait(self._next_tick()):
            with self._lock:
                FAILING.set(len(self._failed))
            for uid in self._due_retries():
                self.enqueue(uid, force=True)
            for uid in self._due_settles():
                self.enqueue(uid, force=True, first=True)
            if self._reap_soon.is_set() and self._listed.is_set():
                self._reap_soon.clear()
                try:
                    self.reap_moved()
                except Exception:  # noqa: BLE001 - the resync reaps them later
                    log.exception("reap.crashed")
            if time.monotonic() >= next_resync and self._listed.is_set():
                try:
                    self.resync()
                except Exception:  # noqa: BLE001
                    log.exception("resync.crashed")
                next_resync = time.monotonic() + self.resync_seconds

    def run(self) -> None:
        self._threads = threads = [
            threading.Thread(target=self.lease_loop, name="lease", daemon=True),
            threading.Thread(target=self.watch_loop, name="watch", daemon=True),
            threading.Thread(target=self.tick_loop, name="tick", daemon=True),
        ]
        for t in threads:
            t.start()
        self.stop.wait()
        self.pool.shutdown(wait_seconds=SHUTDOWN_WAIT_SECONDS)
        self.release_firewall_if_empty()

    def release_firewall_if_empty(self) -> None:
        """On a clean stop with nothing left to contain, remove this node's egress chains.

        An uninstall (deckies deleted first, then `helm uninstall`) then leaves no rule
        behind. While any decky of this node is listed or any of its containers runs,
        the rules stay: containment must outlive an agent restart or upgrade.
        """
        if not self.firewall_enabled or not self._listed.is_set():
            return
        with self._lock:
            if self._objects:
                return
        # under the sync lock, and no sync after it: a resync still running in another
        # thread must not put a chain back once it is gone
        with self._fw_lock:
            self._fw_closed = True
            try:
                if self.engine.observe_node().containers:
                    return
                for family in (firewall.IPV4, firewall.IPV6):
                    firewall.cleanup(self.node, family)
            except (
                runtime.DockerError,
                runtime.EngineUnavailable,
                firewall.FirewallError,
            ) as error:
                log.warning("firewall.release_failed", error=str(error)[:300])
                return
        log.info("firewall.released", node=self.node)


def owned_by(status: dict[str, Any], node: str) -> bool:
    """A decky is this agent's only when the operator scheduled it here (status.node).

    The server-side label selector is a filter, not an authority: anyone who may
    edit a Decky may set decnet.io/node. An unscheduled decky (no status.node) has
    no plan yet and is left alone too.
    """
    return str(status.get("node") or "") == node


def connect_docker(
    node: str, lure_store: lures.LureStore, logs: hardening.LogLimits
) -> runtime.Engine | None:
    """The Docker SDK negotiates the API version on connect: wait for an engine that answers."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    delay = 1.0
    while not stop.is_set():
        try:
            return runtime.Engine.from_env(node, lure_store=lure_store, logs=logs)
        except runtime.EngineUnavailable as error:
            log.warning("docker.unavailable", error=str(error)[:300], retry_in=delay)
            stop.wait(delay)
            delay = min(MAX_BACKOFF, delay * 2)
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="decnet-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--node", default=os.environ.get("NODE_NAME", ""))
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG") or None)
    parser.add_argument(
        "--lease-owner",
        default=os.environ.get("DECNET_AGENT_DAEMONSET", ""),
        help="name of the agent's DaemonSet in the system namespace: it owns the Leases, "
        "so deleting it (helm uninstall) deletes them",
    )
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--resync-seconds", type=float, default=30.0)
    parser.add_argument("--orphan-grace-seconds", type=float, default=60.0)
    parser.add_argument(
        "--lease-duration-seconds",
        type=int,
        default=kube.LEASE_DURATION_SECONDS,
        help="the node Lease's duration: the operator marks this node's deckies AgentLost"
        " this long after the last renewal (renewed every quarter of it)",
    )
    parser.add_argument("--metrics-port", type=int, default=0)
    parser.add_argument(
        "--metrics-addr", default="0.0.0.0", help="metrics listen address (the chart: the pod IP)"
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=0,
        help="serve /healthz (live) and /readyz (Docker answers, Lease fresh) here; 0 = off",
    )
    parser.add_argument(
        "--health-addr",
        default="127.0.0.1",
        help="probe listen address; with hostNetwork the kubelet probes the node's pod IP, "
        "so the chart passes status.podIP (not 0.0.0.0: deckies reach the host's bridges)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=SETTLE_SECONDS,
        help="how long a container started in a converge must stay up before Ready "
        "(0: trust Docker's start answer)",
    )
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("DECNET_STATE_DIR", lures.DEFAULT_ROOT),
        help="node directory for lure files, the event checkpoint and the per-sink spools "
        "(a hostPath in the chart; the same path on the host and in the agent). Visible to an "
        "attacker in /proc/self/mountinfo: keep it neutral",
    )
    parser.add_argument("--log-max-size", default="10m", help="json-file max-size per container")
    parser.add_argument("--log-max-files", type=int, default=3, help="json-file max-file")
    parser.add_argument(
        "--firewall",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("DECNET_FIREWALL", "") == "true",
        help="enforce egress rules with iptables (the chart turns it on)",
    )
    parser.add_argument(
        "--denied-cidrs",
        default=os.environ.get("DECNET_DENIED_CIDRS", ",".join(egress.DEFAULT_DENIED)),
        help="comma-separated CIDRs no decky may reach (cluster, pod, service, metadata)",
    )
    parser.add_argument(
        "--egress-within",
        default=os.environ.get("DECNET_EGRESS_WITHIN", ",".join(egress.ANYWHERE)),
        help="comma-separated CIDRs a LAN's spec.egress may open at all (others are ignored)",
    )
    parser.add_argument(
        "--cleanup-firewall",
        action="store_true",
        help="remove every iptables rule of this node's agent and exit",
    )
    parser.add_argument(
        "--spool-bytes",
        type=int,
        default=int(os.environ.get("DECNET_SPOOL_BYTES", attacker.DEFAULT_SPOOL_BYTES)),
        help="Disk cap of each sink's spool; the oldest events are dropped (and counted) beyond.",
    )
    parser.add_argument(
        "--sniffer",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("DECNET_SNIFFER", "true") != "false",
        help="watch this node's bridge LANs for scans (needs the host network and NET_RAW); "
        "a LAN opts out with spec.sniffer.enabled: false",
    )
    parser.add_argument(
        "--engine",
        choices=("docker", "fake"),
        default=os.environ.get("DECNET_AGENT_ENGINE", "docker"),
        help="docker: the node's dockerd; fake: an in-memory engine for simulated nodes "
        "(benchmarks, tests); it turns off the firewall, the sniffer and event collection, "
        "which need real network namespaces, iptables and container logs",
    )
    parser.add_argument(
        "--fake-latency",
        type=float,
        default=float(os.environ.get("DECNET_FAKE_LATENCY", "0.005")),
        help="seconds each call to the fake engine takes",
    )
    parser.add_argument(
        "--fake-failure-rate",
        type=float,
        default=float(os.environ.get("DECNET_FAKE_FAILURE_RATE", "0")),
        help="share of the fake engine's mutating calls that fail as Docker would (0..1)",
    )
    parser.add_argument(
        "--sniffer-window",
        type=float,
        default=float(os.environ.get("DECNET_SNIFFER_WINDOW", scans.WINDOW_SECONDS)),
        help="seconds of one scan window: at most one scan event per (LAN, source) per window",
    )
    parser.add_argument("--log-level", default=os.environ.get("DECNET_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=os.environ.get("DECNET_LOG_FORMAT", "json"),
        help="json for machines (default), console for humans; on stderr either way",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    if not args.node:
        log.error("agent.no_node", hint="set NODE_NAME or --node")
        return 2
    if args.cleanup_firewall:
        for family in (firewall.IPV4, firewall.IPV6):
            done = firewall.cleanup(args.node, family)
            log.info("firewall.removed", family=family.save, actions=len(done))
        return 0
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_addr)
    running: list[Agent] = []  # the agent exists once Docker has answered
    if args.health_port:
        live, ready = readiness.checks(
            lambda: running[0] if running else None,
            time.monotonic,
            readiness.MISSED_RENEWALS * renew_interval(args.lease_duration_seconds),
        )
        probes.serve(args.health_addr, args.health_port, live, ready)
    lure_store = lures.LureStore(args.state_dir)
    log_limits = hardening.LogLimits(args.log_max_size, args.log_max_files)
    simulated = args.engine == "fake"
    engine: runtime.Engine | None
    if simulated:
        log.warning(
            "engine.fake",
            latency=args.fake_latency,
            failure_rate=args.fake_failure_rate,
            off=["firewall", "sniffer", "events"],
        )
        engine = fakedocker.engine(
            args.node, args.fake_latency, args.fake_failure_rate, lure_store, log_limits
        )
    else:
        engine = connect_docker(args.node, lure_store, log_limits)
    if engine is None:
        return 1
    agent = Agent(
        kube.make_client(args.kubeconfig),
        engine,
        args.node,
        workers=args.workers,
        resync_seconds=args.resync_seconds,
        orphan_grace_seconds=args.orphan_grace_seconds,
        lease_seconds=args.lease_duration_seconds,
        firewall_enabled=args.firewall and not simulated,
        denied_cidrs=tuple(c.strip() for c in args.denied_cidrs.split(",") if c.strip()),
        system_namespace=names.system_namespace(),
        lease_owner=args.lease_owner,
        egress_within=tuple(c.strip() for c in args.egress_within.split(",") if c.strip()),
        settle_seconds=args.settle_seconds,
    )
    running.append(agent)
    sniffing: threading.Thread | None = None
    if not simulated:
        events = attacker.AttackerEvents(
            agent.client,
            args.node,
            Path(args.state_dir),
            args.spool_bytes,
            agent.decky,
            agent.stop,
            deckies_listed=agent.listed,
        )
        engine.before_remove = events.before_remove
        engine.after_start = events.after_start
        events.start()
        if args.sniffer:
            watcher = sniffer.Sniffer(
                args.node,
                agent.sniffer_lans,
                events.deliver_lan,
                agent.stop,
                ready=(events.sinks_listed, agent.listed),
                window=args.sniffer_window,
            )
            sniffing = threading.Thread(target=watcher.run, name="sniffer", daemon=True)
            sniffing.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop.set())
    log.info("agent.started", node=args.node, workers=args.workers)
    agent.run()
    if sniffing is not None:
        sniffing.join(timeout=3)  # its open windows go to the spools
    log.info("agent.stopped", node=args.node)
    return 0
