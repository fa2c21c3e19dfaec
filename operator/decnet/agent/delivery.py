"""One sink on this node: its spool, its transport and the loop that moves one to the other.

At-least-once: a batch leaves the spool only after the sink took it (a webhook's
2xx; for TCP/TLS syslog, the connection still alive a moment after the write).
Failures back off exponentially (1 s .. 30 s) while the spool keeps filling up
to its cap. Statistics are what status.nodes[] and the metrics show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
from collections.abc import Sequence

import structlog
from prometheus_client import Counter, Gauge

from decnet.agent import eventrecord, sinks, spool

log = structlog.get_logger("decnet.agent.events")

DELIVERED = Counter("decnet_eventsink_delivered_total", "Events delivered to a sink", ["sink"])
FAILED = Counter("decnet_eventsink_failed_total", "Failed delivery attempts", ["sink"])
BACKLOG = Gauge("decnet_eventsink_backlog", "Events waiting in the node's spool", ["sink"])
DROPPED = Counter("decnet_eventsink_dropped_total", "Events the spool cap dropped", ["sink"])

BATCH = 500
CONFIRM_AFTER = 0.05
MAX_BACKOFF = 30.0


@dataclasses.dataclass
class Stats:
    delivered: int = 0
    failed: int = 0
    last_delivered_at: str | None = None
    last_error: str | None = None
    ready: bool = False


class Runner:
    """The delivery loop of one sink; `config` is the sink's spec (re-created when it changes)."""

    def __init__(
        self,
        name: str,
        config_key: str,
        queue: spool.Spool,
        transport: sinks.Syslog | sinks.Webhook,
        max_batch: int = BATCH,
    ) -> None:
        self.name = name
        self.config_key = config_key
        self.spool = queue
        self.transport = transport
        self.max_batch = max_batch
        self.stats = Stats()
        self.secrets_key = ""  # what the Secrets it was built from held (see attacker)
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self.loop, name=f"sink-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def offer(self, records: Sequence[eventrecord.Record]) -> None:
        """Spool records in the form this sink sends (syslog line or JSON object)."""
        if isinstance(self.transport, sinks.Syslog):
            lines = [r.to_syslog() for r in records]
        else:
            lines = [r.to_json() for r in records]
        dropped = self.spool.append(lines)
        if dropped:
            DROPPED.labels(self.name).inc(dropped)
            log.warning("spool.dropped", sink=self.name, events=dropped)
        BACKLOG.labels(self.name).set(self.spool.backlog)
        self.wake.set()

    def _send(self, batch: spool.Batch) -> None:
        if isinstance(self.transport, sinks.Syslog):
            self.transport.send(batch.lines)
        else:
            self.transport.send([json.loads(raw) for raw in batch.lines])

    def loop(self) -> None:
        delay = 1.0
        probe_at = 0.0
        while not self.stop.is_set():
            batch = self.spool.read(self.max_batch)
            if not batch.lines:
                if not self.stats.ready and time.monotonic() >= probe_at:
                    if self._probe():
                        delay = 1.0
                    else:
                        probe_at = time.monotonic() + delay
                        delay = min(MAX_BACKOFF, delay * 2)
                self.wake.wait(1.0)
                self.wake.clear()
                continue
            try:
                self._send(batch)
                if isinstance(self.transport, sinks.Syslog):
                    time.sleep(CONFIRM_AFTER)  # let a reset from a dead receiver arrive
                    if not self.transport.confirm():
                        raise sinks.SinkError("the receiver went away during the write")
            except sinks.SinkError as error:
                self._failed(str(error))
                self.stop.wait(delay)
                delay = min(MAX_BACKOFF, delay * 2)
                continue
            delay = 1.0
            self.spool.ack(batch)
            count = len(batch.lines)
            self.stats.delivered += count
            self.stats.last_delivered_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.stats.ready, self.stats.last_error = True, None
            DELIVERED.labels(self.name).inc(count)
            BACKLOG.labels(self.name).set(self.spool.backlog)
        self.transport.close()

    def _probe(self) -> bool:
        """An idle sink: a syslog connection, or an empty webhook batch ({"events": []}),
        so status can say Ready (or why not) before the first attack."""
        try:
            self.transport.send([])
            self.stats.ready, self.stats.last_error = True, None
            return True
        except sinks.SinkError as error:
            self._failed(str(error), count=False)
            return False

    def _failed(self, error: str, count: bool = True) -> None:
        if count:
            self.stats.failed += 1
            FAILED.labels(self.name).inc()
        if self.stats.ready or self.stats.last_error != error[:1024]:
            log.warning("sink.delivery_failed", sink=self.name, error=error[:300])
        self.stats.ready = False
        self.stats.last_error = error[:1024]

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
