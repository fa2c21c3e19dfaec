"""Follow every service container's stdout on this node and hand parsed events on.

One follower thread per service container, started when the agent starts the
container (`started`, from the engine) and ending when its output ends (the
container stopped). A Docker list every `scan_seconds` catches anything else (an
agent restart, a container started by hand); it is not how a new decky is found:
listing every container each second is O(containers) per second, O(n²) for a fleet
deployed over a minute. Followers put lines into one bounded queue; a single
pipeline thread parses, enriches, hands records to `deliver` (spools, surfaces)
and only then advances the container's checkpoint position, so a restart
resumes exactly after what was handled.

`drain(container_id)` is how removal waits for last words: the engine stops the
container, asks the collector to read to the end of its output, and removes it
only afterwards (see runtime.engine.Engine.before_remove).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
from prometheus_client import Counter

from decnet.agent import checkpoint, eventrecord
from decnet.agent.runtime import logs as runtime_logs
from decnet.agent.runtime.engine import DockerError, EngineUnavailable
from decnet.emulators import events
from decnet.kube import names

log = structlog.get_logger("decnet.agent.events")

DROPPED_LINES = Counter(
    "decnet_collector_lines_dropped_total", "Service output lines not taken", ["reason"]
)

QUEUE_MAX = 20000
BATCH_MAX = 1000
CHECKPOINT_EVERY = 0.5
DRAIN_TIMEOUT = 15.0

OriginFor = Callable[[runtime_logs.ServiceContainer], eventrecord.Origin]
Deliver = Callable[[Sequence[eventrecord.Record]], None]


class _End:
    """Queue marker: a follower reached the end of its container's output."""

    def __init__(self, container_id: str) -> None:
        self.container_id = container_id


_Item = tuple[str, str, str] | _End  # (container id, docker ts, line)


class Collector:
    def __init__(
        self,
        source: runtime_logs.Logs,
        state_dir: Path,
        origin_for: OriginFor,
        deliver: Deliver,
        stop: threading.Event,
        scan_seconds: float = 10.0,
    ) -> None:
        self.source = source
        self.origin_for = origin_for
        self.deliver = deliver
        self.stop = stop
        self.scan_seconds = scan_seconds
        self.store = checkpoint.Store(state_dir / "checkpoint.json")
        self.positions = self.store.load()
        self.queue: queue.Queue[_Item] = queue.Queue(maxsize=QUEUE_MAX)
        self._lock = threading.Lock()
        self._followers: dict[str, threading.Thread] = {}
        self._origins: dict[str, eventrecord.Origin] = {}
        self._ended: dict[str, threading.Event] = {}
        self._wake = threading.Event()
        self._new: set[str] = set()  # containers started since the last look

    # ------------------------------------------------------------------ followers

    def scan(self) -> None:
        """Start followers for containers that have none; forget containers that are gone."""
        containers = self.source.service_containers()
        live = {c.id for c in containers}
        for c in containers:
            self._ensure_follower(c)
        with self._lock:
            for cid in [cid for cid in self._origins if cid not in live]:
                thread = self._followers.get(cid)
                ended = self._ended.get(cid)
                if (thread is not None and thread.is_alive()) or (
                    ended is not None and not ended.is_set()
                ):
                    continue  # still reading, or its last lines are still in the queue
                self._origins.pop(cid, None)
                self._ended.pop(cid, None)
                self._followers.pop(cid, None)
            self.positions = checkpoint.forget(self.positions, live)

    def _ensure_follower(self, c: runtime_logs.ServiceContainer) -> threading.Event:
        with self._lock:
            thread = self._followers.get(c.id)
            ended = self._ended.get(c.id)
            if thread is not None and thread.is_alive():
                assert ended is not None
                return ended
            if ended is not None and ended.is_set() and c.state != "running":
                return ended  # read to the end already, and nothing new can come
            self._origins[c.id] = self.origin_for(c)
            ended = self._ended[c.id] = threading.Event()
            thread = threading.Thread(
                target=self._follow, args=(c.id,), name=f"follow-{c.id[:12]}", daemon=True
            )
            self._followers[c.id] = thread
        thread.start()
        return ended

    def _follow(self, cid: str, follow: bool = True) -> None:
        with self._lock:
            since = self.positions.get(cid, checkpoint.Position()).since_seconds()
        try:
            for item in self.source.follow(cid, since, follow=follow):
                if item is None:
                    DROPPED_LINES.labels("malformed_or_too_long").inc()
                    continue
                self.queue.put((cid, item[0], item[1]))
        except (DockerError, EngineUnavailable) as error:
            log.warning("follow.failed", container=cid[:12], error=str(error)[:300])
            with self._lock:
                self._followers.pop(cid, None)
            self._ended.get(cid, threading.Event()).set()
            return
        self.queue.put(_End(cid))

    def drain(
        self, container_id: str, labels: dict[str, str], timeout: float = DRAIN_TIMEOUT
    ) -> bool:
        """Read a (stopped) container's output to its end and hand it on; False on timeout."""
        if labels.get(names.LABEL_ROLE) != names.ROLE_SERVICE:
            return True
        c = runtime_logs.ServiceContainer(container_id, "", labels, "exited")
        with self._lock:
            # a follower that ended earlier may have missed output written since: read again
            ended = self._ended.get(container_id)
            thread = self._followers.get(container_id)
            if ended is not None and ended.is_set() and (thread is None or not thread.is_alive()):
                self._ended.pop(container_id, None)
        done = self._ensure_follower(c).wait(timeout)
        if done:
            return True
        # A follow stream that never ended (seen once right after a dockerd restart): read
        # what the stopped container wrote without following, then let the pipeline take it.
        log.warning("drain.timeout", container=container_id[:12], fallback="read without follow")
        with self._lock:
            ended = self._ended[container_id] = threading.Event()
        threading.Thread(
            target=self._follow, args=(container_id, False), name="drain-read", daemon=True
        ).start()
        return ended.wait(timeout)

    # ------------------------------------------------------------------ pipeline

    def pipeline_loop(self) -> None:
        last_save = time.monotonic()
        dirty = False
        while not self.stop.is_set():
            try:
                first = self.queue.get(timeout=0.2)
            except queue.Empty:
                if dirty:
                    self._save()
                    dirty = False
                continue
            items = [first]
            while len(items) < BATCH_MAX:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            ended = self.handle(items)
            dirty = True
            now = time.monotonic()
            if ended or now - last_save >= CHECKPOINT_EVERY:
                self._save()
                last_save, dirty = now, False
            for cid in ended:
                with self._lock:
                    event = self._ended.get(cid)
                if event is not None:
                    event.set()
        self._save()

    def handle(self, items: Sequence[_Item]) -> list[str]:
        """Parse, enrich and deliver a batch; then advance positions. Returns ended containers."""
        records: list[eventrecord.Record] = []
        advances: list[tuple[str, int, str]] = []
        ended: list[str] = []
        with self._lock:
            positions = dict(self.positions)
            origins = dict(self._origins)
        for item in items:
            if isinstance(item, _End):
                ended.append(item.container_id)
                continue
            cid, ts, line = item
            ns = checkpoint.docker_ns(ts)
            line_id = eventrecord.event_id(cid, ts, line)
            position = positions.get(cid, checkpoint.Position())
            if not checkpoint.keep(position, ns, line_id):
                continue
            positions[cid] = checkpoint.advance(position, ns, line_id)
            advances.append((cid, ns, line_id))
            event = events.parse_line(line)
            origin = origins.get(cid)
            if event is None or origin is None:
                if event is None and line.strip():
                    DROPPED_LINES.labels("not_an_event").inc()
                continue
            records.append(eventrecord.enrich(event, origin, ts, line))
        if records:
            self.deliver(records)
        with self._lock:
            for cid, ns, line_id in advances:
                current = self.positions.get(cid, checkpoint.Position())
                self.positions[cid] = checkpoint.advance(current, ns, line_id)
        return ended

    def _save(self) -> None:
        with self._lock:
            snapshot = dict(self.positions)
        try:
            self.store.save(snapshot)
        except OSError as error:
            log.warning("checkpoint.save_failed", error=str(error)[:300])

    def scan_loop(self) -> None:
        retry = 0.5
        next_scan = 0.0
        while not self.stop.is_set():
            try:
                if time.monotonic() >= next_scan:
                    self.scan()
                    next_scan = time.monotonic() + self.scan_seconds
                self.follow_started()
                retry = 0.5
            except (DockerError, EngineUnavailable) as error:
                retry = min(30.0, retry * 2)
                log.warning("collector.scan_failed", error=str(error)[:300], retry_in=retry)
                next_scan = time.monotonic() + retry
            self._wake.wait(max(0.0, next_scan - time.monotonic()))
            self._wake.clear()

    def started(self, container_id: str) -> None:
        """The agent just started this container: follow it now (one inspect), rather
        than at the next scan."""
        with self._lock:
            self._new.add(container_id)
        self._wake.set()

    def follow_started(self) -> None:
        with self._lock:
            new, self._new = self._new, set()
        for cid in sorted(new):
            c = self.source.service_container(cid)
            if c is not None:
                self._ensure_follower(c)
