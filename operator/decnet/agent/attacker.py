"""Attacker events on this node, wired together: collect -> spool per sink -> deliver; surfaces.

Threads (all daemons, all stopping on the agent's stop event):
- the collector's scanner and pipeline (agent/collector.py);
- one delivery loop per EventSink (agent/delivery.py), created and closed as the
  sink watch sees sinks come, change and go;
- a surfaces loop, once a second: status.activity of deckies with new contact
  (at most once per 30 s each), AttackerContact Events (aggregated), and each
  sink's status.nodes entry for this node (on change, at most every 5 s).
With no contact and no sink change, none of these writes anything.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from lightkube import ApiError, Client
from prometheus_client import Counter

from decnet.agent import activity, collector, delivery, eventkube, eventrecord, sinks, spool
from decnet.agent.runtime import logs as runtime_logs
from decnet.agent.runtime.engine import DockerError, EngineUnavailable
from decnet.api import v1alpha1
from decnet.kube import names

log = structlog.get_logger("decnet.agent.events")

ATTACKER_EVENTS = Counter(
    "decnet_attacker_events_total",
    "Attacker events collected on this node",
    ["namespace", "decky", "service", "kind"],
)

SINK_STATUS_INTERVAL = 5.0
SECRET_REFRESH_SECONDS = 60.0
DEFAULT_SPOOL_BYTES = 256 * 1024 * 1024

DeckyLookup = Callable[[str], Mapping[str, Any] | None]  # uid -> Decky object


def selected(selector: Mapping[str, Any] | None, namespace: str, labels: Mapping[str, str]) -> bool:
    """Does a sink's spec.selector take events of a decky in `namespace` with `labels`?"""
    if not selector:
        return True
    namespaces = selector.get("namespaces")
    if namespaces and namespace not in namespaces:
        return False
    wanted = ((selector.get("deckySelector") or {}).get("matchLabels")) or {}
    return all(labels.get(k) == v for k, v in wanted.items())


def node_entry(node: str, stats: delivery.Stats, backlog: int, dropped: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "node": node,
        "delivered": stats.delivered,
        "failed": stats.failed,
        "backlog": backlog,
        "dropped": dropped,
        "ready": stats.ready,
    }
    if stats.last_delivered_at:
        entry["lastDeliveredAt"] = stats.last_delivered_at
    if stats.last_error:
        entry["lastError"] = stats.last_error
    return entry


def sink_status(
    mine: Mapping[str, Any], current: Mapping[str, Any], now_rfc3339: str
) -> dict[str, Any]:
    """The status this agent applies: its node entry, and sums/conditions over all nodes."""
    others = [n for n in current.get("nodes") or [] if n.get("node") != mine["node"]]
    nodes = [*others, dict(mine)]
    delivered = sum(int(n.get("delivered", 0)) for n in nodes)
    backlog = sum(int(n.get("backlog", 0)) for n in nodes)
    dropped = sum(int(n.get("dropped", 0)) for n in nodes)
    last = max((str(n.get("lastDeliveredAt", "")) for n in nodes), default="")
    failing = sorted(str(n.get("node")) for n in nodes if not n.get("ready"))
    old = {c.get("type"): c for c in current.get("conditions") or []}

    def cond(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        status = "True" if ok else "False"
        previous = old.get(kind) or {}
        since = previous.get("lastTransitionTime") if previous.get("status") == status else None
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": since or now_rfc3339,
        }

    if failing:
        errors = [
            f"{n.get('node')}: {n.get('lastError', 'not connected')}"
            for n in nodes
            if not n.get("ready")
        ]
        conditions = [
            cond("Ready", False, "DeliveryFailing", "; ".join(errors)),
            cond(
                v1alpha1.CONDITION_DEGRADED,
                True,
                "DeliveryFailing",
                f"backlog {backlog}; " + "; ".join(errors),
            ),
        ]
    else:
        conditions = [
            cond("Ready", True, "Delivering", f"{len(nodes)} node(s) deliver"),
            cond(v1alpha1.CONDITION_DEGRADED, False, "Delivering", ""),
        ]
    status: dict[str, Any] = {
        "conditions": conditions,
        "delivered": delivered,
        "backlog": backlog,
        "dropped": dropped,
        "nodes": [dict(mine)],
    }
    if last:
        status["lastDeliveredAt"] = last
    return status


class AttackerEvents:
    def __init__(
        self,
        client: Client,
        node: str,
        state_dir: Path,
        spool_bytes: int,
        lookup: DeckyLookup,
        stop: threading.Event,
        source: runtime_logs.Logs | None = None,
        deckies_listed: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.node = node
        self.state_dir = state_dir
        self.spool_bytes = spool_bytes
        self.lookup = lookup
        self.stop = stop
        self.source = source or runtime_logs.Logs(node)
        self.collector = collector.Collector(
            self.source, state_dir, self.origin_for, self.deliver, stop
        )
        self._lock = threading.Lock()
        self.runners: dict[str, delivery.Runner] = {}
        self.sink_specs: dict[str, dict[str, Any]] = {}
        self.sink_objects: dict[str, dict[str, Any]] = {}
        self.labels: dict[tuple[str, str], dict[str, str]] = {}
        self.uids: dict[tuple[str, str], str] = {}
        self.activity = activity.Activity()
        self.contacts = activity.Contacts()
        self._sink_written: dict[str, tuple[str, float]] = {}
        # Collection starts only once the sinks and this node's deckies are known: a line
        # handled before would advance the checkpoint without reaching a sink's spool.
        self.sinks_listed = threading.Event()
        self.deckies_listed = deckies_listed or threading.Event()
        if deckies_listed is None:
            self.deckies_listed.set()
        (state_dir / "spool").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ collection

    def origin_for(self, c: runtime_logs.ServiceContainer) -> eventrecord.Origin:
        namespace = c.labels.get(names.LABEL_NAMESPACE, "")
        decky = c.labels.get(names.LABEL_DECKY, "")
        uid = c.labels.get(names.LABEL_UID, "")
        obj = self.lookup(uid) or {}
        spec = obj.get("spec") or {}
        nets = spec.get("networks") or [{}]
        labels = dict((obj.get("metadata") or {}).get("labels") or {})
        with self._lock:
            if obj:
                self.labels[(namespace, decky)] = labels
            self.uids[(namespace, decky)] = uid
        return eventrecord.Origin(
            namespace=namespace,
            decky=decky,
            node=self.node,
            service=c.labels.get(names.LABEL_SERVICE, ""),
            container_id=c.id,
            archetype=str(spec.get("archetype") or ""),
            lan=str(nets[0].get("lan") or ""),
            labels=labels,
        )

    def deliver(self, records: Sequence[eventrecord.Record]) -> None:
        """Into every matching sink's spool (before the checkpoint moves), then the surfaces."""
        with self._lock:
            runners = dict(self.runners)
            specs = dict(self.sink_specs)
            labels = dict(self.labels)
        for name, runner in runners.items():
            selector = specs.get(name, {}).get("selector")
            chosen = [
                r
                for r in records
                if selected(selector, r.namespace, labels.get((r.namespace, r.decky), {}))
            ]
            if chosen:
                runner.offer(chosen)
        now = time.monotonic()
        with self._lock:
            for r in records:
                e = r.event
                ATTACKER_EVENTS.labels(r.namespace, r.decky, e.service, e.kind).inc()
                base = 0
                if (r.namespace, r.decky) not in self.activity.deckies:
                    obj = self.lookup(self.uids.get((r.namespace, r.decky), "")) or {}
                    base = int(
                        ((obj.get("status") or {}).get("activity") or {}).get("contacts") or 0
                    )
                self.activity.observe(r, base)
                self.contacts.observe(r, now)

    def deliver_lan(self, records: Sequence[eventrecord.Record], labels: Mapping[str, str]) -> None:
        """A LAN's events (the sniffer's scans): into every sink whose selector takes the
        LAN's namespace and labels. No decky was touched: no activity, no contact Event."""
        with self._lock:
            runners = dict(self.runners)
            specs = dict(self.sink_specs)
        for name, runner in runners.items():
            selector = specs.get(name, {}).get("selector")
            chosen = [r for r in records if selected(selector, r.namespace, labels)]
            if chosen:
                runner.offer(chosen)
        for r in records:
            ATTACKER_EVENTS.labels(r.namespace, r.decky, r.event.service, r.event.kind).inc()

    def after_start(self, container_id: str) -> None:
        """The engine started a container: its output is followed from now on."""
        self.collector.started(container_id)

    def before_remove(self, container_id: str) -> None:
        """The engine is about to remove a container: stop it and read its last words."""
        try:
            labels = self.source.labels(container_id)
            if labels.get(names.LABEL_ROLE) != names.ROLE_SERVICE:
                return
            self.source.stop(container_id, timeout=1)
        except (DockerError, EngineUnavailable) as error:
            log.warning("drain.stop_failed", container=container_id[:12], error=str(error)[:300])
            return
        self.collector.drain(container_id, dict(labels))

    # ------------------------------------------------------------------ sinks

    def _tls(
        self, refs: Mapping[str, Any] | None, ca_ref: Mapping[str, Any] | None
    ) -> sinks.TLSMaterial:
        ca = cert = key = None
        if ca_ref:
            data = eventkube.secret_data(self.client, ca_ref["namespace"], ca_ref["name"]) or {}
            ca = data.get(ca_ref["key"])
        if refs:
            data = eventkube.secret_data(self.client, refs["namespace"], refs["name"]) or {}
            cert, key = data.get("tls.crt"), data.get("tls.key")
        return sinks.TLSMaterial(ca_pem=ca, cert_pem=cert, key_pem=key)

    def _runner(self, name: str, spec: Mapping[str, Any]) -> delivery.Runner:
        key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        tmp = str(self.state_dir)
        transport: sinks.Syslog | sinks.Webhook
        if spec.get("syslog"):
            cfg = spec["syslog"]
            tls = cfg.get("tls") or {}
            material = self._tls(tls.get("clientCertSecretRef"), tls.get("caSecretRef"))
            if tls.get("serverName"):
                material = sinks.TLSMaterial(
                    material.ca_pem, material.cert_pem, material.key_pem, tls["serverName"]
                )
            transport = sinks.Syslog(cfg["address"], material, tmp)
            kind = "syslog"
        else:
            cfg = spec["webhook"]
            headers: dict[str, str] = {}
            ref = cfg.get("headersSecretRef")
            if ref:
                data = eventkube.secret_data(self.client, ref["namespace"], ref["name"]) or {}
                headers = {k: v.decode().strip() for k, v in data.items()}
            material = self._tls(None, cfg.get("caSecretRef"))
            transport = sinks.Webhook(cfg["url"], headers, material, tmp)
            kind = "webhook"
        directory = self.state_dir / "spool" / name
        marker = directory / "kind"
        if directory.exists() and (not marker.exists() or marker.read_text() != kind):
            shutil.rmtree(directory, ignore_errors=True)  # a spool in the other format
        directory.mkdir(parents=True, exist_ok=True)
        marker.write_text(kind)
        queue = spool.Spool(directory, self.spool_bytes)
        batch = int((spec.get("webhook") or {}).get("maxBatch") or delivery.BATCH)
        return delivery.Runner(name, key, queue, transport, batch)

    def _secrets_key(self, spec: Mapping[str, Any]) -> str:
        """A digest of every Secret the sink names: a rotated CA or token rebuilds it."""
        cfg = dict(spec.get("syslog") or {})
        cfg.update(spec.get("webhook") or {})
        tls = cfg.get("tls") or {}
        refs = [
            tls.get("caSecretRef"),
            tls.get("clientCertSecretRef"),
            cfg.get("caSecretRef"),
            cfg.get("headersSecretRef"),
        ]
        digest = hashlib.sha256()
        for ref in refs:
            if ref:
                data = eventkube.secret_data(self.client, ref["namespace"], ref["name"]) or {}
                for k in sorted(data):
                    digest.update(k.encode() + b"\0" + data[k] + b"\0")
        return digest.hexdigest()[:16]

    def refresh_secrets(self) -> None:
        with self._lock:
            runners = dict(self.runners)
            objects = dict(self.sink_objects)
        for name, runner in runners.items():
            obj = objects.get(name)
            if obj is None:
                continue
            try:
                key = self._secrets_key(obj.get("spec") or {})
            except ApiError as error:
                log.warning("sink.secret_read_failed", sink=name, error=str(error)[:300])
                continue
            if key != runner.secrets_key:
                log.info("sink.secrets_changed", sink=name)
                self.set_sink(obj, force=True)

    def set_sink(self, obj: Mapping[str, Any], force: bool = False) -> None:
        name = str(obj["metadata"]["name"])
        spec = dict(obj.get("spec") or {})
        key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        with self._lock:
            self.sink_objects[name] = dict(obj)
            current = self.runners.get(name)
        if current is not None and current.config_key == key and not force:
            return
        try:
            secrets_key = self._secrets_key(spec)
            runner = self._runner(name, spec)
            runner.secrets_key = secrets_key
        except (ValueError, KeyError, ApiError, OSError) as error:
            log.warning("sink.config_failed", sink=name, error=str(error)[:300])
            return
        if current is not None:
            current.close()
            current.thread.join(timeout=15)
            runner.stats = current.stats
        with self._lock:
            self.runners[name] = runner
            self.sink_specs[name] = spec
        runner.start()
        log.info("sink.started", sink=name)

    def remove_sink(self, name: str) -> None:
        with self._lock:
            runner = self.runners.pop(name, None)
            self.sink_specs.pop(name, None)
            self.sink_objects.pop(name, None)
            self._sink_written.pop(name, None)
        if runner is not None:
            runner.close()
            runner.thread.join(timeout=15)
        shutil.rmtree(self.state_dir / "spool" / name, ignore_errors=True)
        log.info("sink.removed", sink=name)

    def sink_watch_loop(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            try:
                items, rv = eventkube.list_sinks(self.client)
                present = {str(o["metadata"]["name"]) for o in items}
                with self._lock:
                    gone = set(self.runners) - present
                for name in gone:
                    self.remove_sink(name)
                for obj in items:
                    self.set_sink(obj)
                self.sinks_listed.set()
                delay = 1.0
                for kind, obj in eventkube.watch_sinks(self.client, rv):
                    if self.stop.is_set():
                        return
                    if kind == "DELETED":
                        self.remove_sink(str(obj["metadata"]["name"]))
                    else:
                        self.set_sink(obj)
            except Exception as error:  # noqa: BLE001 - re-list after any watch failure
                if self.stop.is_set():
                    return
                log.warning("sink.watch_failed", error=str(error)[:300], retry_in=delay)
                self.stop.wait(delay)
                delay = min(60.0, delay * 2)

    # ------------------------------------------------------------------ surfaces

    def surfaces_once(self, now: float) -> None:
        with self._lock:
            due_activity = self.activity.due(now)
            due_contacts = self.contacts.due(now)
            self.contacts.expire(now)
            uids = dict(self.uids)
        for (namespace, decky), body in due_activity:
            try:
                eventkube.apply_activity(self.client, namespace, decky, body)
            except ApiError as error:
                if error.status.code != 404:
                    log.warning(
                        "activity.write_failed",
                        decky=f"{namespace}/{decky}",
                        error=str(error)[:300],
                    )
                    with self._lock:
                        entry = self.activity.deckies.get((namespace, decky))
                        if entry is not None:
                            entry.dirty = True
        for c in due_contacts:
            try:
                eventkube.write_contact_event(
                    self.client,
                    namespace=c.namespace,
                    decky=c.decky,
                    source=c.source,
                    service=c.service,
                    decky_uid=uids.get((c.namespace, c.decky), ""),
                    name=c.name,
                    count=c.count,
                    first=c.first,
                    last=c.last,
                    message=c.message(),
                    node=self.node,
                )
            except ApiError as error:
                log.warning(
                    "contact.event_failed", decky=f"{c.namespace}/{c.decky}", error=str(error)[:300]
                )
                with self._lock:
                    c.written_count = 0
        self._sink_statuses(now)

    def _sink_statuses(self, now: float) -> None:
        with self._lock:
            runners = dict(self.runners)
            objects = dict(self.sink_objects)
        for name, runner in runners.items():
            mine = node_entry(self.node, runner.stats, runner.spool.backlog, runner.spool.dropped)
            fingerprint = json.dumps(mine, sort_keys=True)
            last = self._sink_written.get(name)
            if last is not None and (
                last[0] == fingerprint or now - last[1] < SINK_STATUS_INTERVAL
            ):
                continue
            current = (objects.get(name) or {}).get("status") or {}
            body = sink_status(mine, current, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            try:
                eventkube.apply_sink_status(self.client, name, self.node, body)
            except ApiError as error:
                if error.status.code != 404:
                    log.warning("sink.status_failed", sink=name, error=str(error)[:300])
                continue
            self._sink_written[name] = (fingerprint, now)

    def surfaces_loop(self) -> None:
        next_refresh = time.monotonic() + SECRET_REFRESH_SECONDS
        while not self.stop.wait(1.0):
            try:
                self.surfaces_once(time.monotonic())
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + SECRET_REFRESH_SECONDS
                    self.refresh_secrets()
            except Exception:  # noqa: BLE001 - the loop must survive one bad write
                log.exception("surfaces.failed")

    def _collect(self) -> None:
        while not self.stop.is_set():
            if self.sinks_listed.wait(0.5) and self.deckies_listed.wait(0.5):
                break
        if self.stop.is_set():
            return
        log.info("collection.started", sinks=len(self.runners))
        threading.Thread(target=self.collector.scan_loop, name="collect-scan", daemon=True).start()
        self.collector.pipeline_loop()

    def start(self) -> None:
        for target, name in (
            (self._collect, "collect-pipeline"),
            (self.sink_watch_loop, "sink-watch"),
            (self.surfaces_loop, "surfaces"),
        ):
            threading.Thread(target=target, name=name, daemon=True).start()

    def close(self) -> None:
        with self._lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.close()
