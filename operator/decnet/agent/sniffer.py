"""The fleet sniffer: one thread per agent watching this node's decoy LAN bridges.

A decky's containers could not do this: they see only their own interface, and a
container holding CAP_NET_RAW on a decoy LAN is one more thing to contain. The agent
already runs in the host's network namespace, names the bridges and knows which
addresses its deckies hold, so it captures (agent/runtime/capture.py), judges and
aggregates (agent/scans.py, pure) and hands one `sniffer`/`scan` event per (LAN, source)
and window to the same spools and sinks as the emulators' events, selected by the LAN's
namespace and labels.

The set of bridges follows the plans of this node's deckies: a capture opens when a
bridge LAN with spec.sniffer on first has a decky here (and its bridge exists) and
closes when the last one goes. The loop polls the sockets with a short timeout; with
no LAN it only sleeps.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import structlog
from prometheus_client import Counter, Gauge

from decnet.agent import eventrecord, scans
from decnet.agent.runtime import capture

log = structlog.get_logger("decnet.agent.sniffer")

FRAMES = Counter("decnet_sniffer_frames_total", "Frames the sniffer's kernel filter passed")
KERNEL_DROPS = Counter(
    "decnet_sniffer_kernel_drops_total", "Frames the kernel dropped before the sniffer read them"
)
SOURCES_DROPPED = Counter(
    "decnet_sniffer_sources_dropped_total",
    "Frames of new sources not tracked because the open windows were at their cap",
)
CAPTURES = Gauge("decnet_sniffer_captures", "LAN bridges the sniffer watches")

READ_BATCH = 512
RECONCILE_SECONDS = 1.0

LansSource = Callable[[], Mapping[str, scans.LanView]]
DeliverLan = Callable[[Sequence[eventrecord.Record], Mapping[str, str]], None]


class Sniffer:
    def __init__(
        self,
        node: str,
        lans: LansSource,
        deliver: DeliverLan,
        stop: threading.Event,
        ready: Sequence[threading.Event] = (),
        window: float = scans.WINDOW_SECONDS,
        opener: Callable[[str], capture.Capture] | None = None,
    ) -> None:
        self.node = node
        self.lans = lans
        self.deliver = deliver
        self.stop = stop
        self.ready = ready
        self.aggregator = scans.Aggregator(window=window)
        self.captures: dict[str, capture.Capture] = {}
        self.failed: dict[str, str] = {}  # bridge -> last error logged
        self.opener = opener or (
            lambda bridge: capture.Capture(bridge, scans.bpf_program(), scans.SNAP)
        )
        self._poke = threading.Event()

    def poke(self) -> None:
        """The plans changed: reconcile the captures now rather than within a second."""
        self._poke.set()

    # ------------------------------------------------------------------ captures

    def reconcile(self, now: float) -> None:
        wanted = dict(self.lans())
        for bridge in sorted(set(self.captures) - set(wanted)):
            self.captures.pop(bridge).close()
            log.info("sniffer.stopped", bridge=bridge)
        for bridge, view in sorted(wanted.items()):
            if bridge in self.captures:
                continue
            if not capture.exists(bridge):
                continue  # not created yet (the converge makes it), or gone already
            try:
                self.captures[bridge] = self.opener(bridge)
            except capture.CaptureError as error:
                if self.failed.get(bridge) != str(error):
                    log.warning("sniffer.capture_failed", bridge=bridge, error=str(error)[:300])
                    self.failed[bridge] = str(error)
                continue
            self.failed.pop(bridge, None)
            log.info(
                "sniffer.started",
                bridge=bridge,
                lan=f"{view.namespace}/{view.name}",
                subnet=view.subnet,
            )
        self.aggregator.set_lans({b: v for b, v in wanted.items() if b in self.captures}, now)
        CAPTURES.set(len(self.captures))

    def _read(self, bridge: str, now: float) -> None:
        cap = self.captures.get(bridge)
        if cap is None:
            return
        try:
            frames = cap.read(READ_BATCH)
        except capture.CaptureError as error:
            log.warning("sniffer.read_failed", bridge=bridge, error=str(error)[:300])
            self.captures.pop(bridge).close()  # reopened by the next reconcile if still wanted
            self._poke.set()
            return
        FRAMES.inc(len(frames))
        observe, parse = self.aggregator.observe, scans.parse
        for frame in frames:
            obs = parse(frame)
            if obs is not None:
                observe(bridge, obs, now)

    def flush(self, now: float, everything: bool = False) -> int:
        """Deliver the scans of closed windows, grouped by LAN; returns how many."""
        found = self.aggregator.due(now, flush=everything)
        by_lan: dict[tuple[str, str], list[eventrecord.Record]] = {}
        labels: dict[tuple[str, str], dict[str, str]] = {}
        for scan in found:
            by_lan.setdefault(scan.lan.key, []).append(scans.record(scan, self.node))
            labels[scan.lan.key] = dict(scan.lan.labels)
        for key, records in by_lan.items():
            self.deliver(records, labels[key])
            log.info("sniffer.scans", lan=f"{key[0]}/{key[1]}", events=len(records))
        dropped = self.aggregator.dropped_sources
        if dropped:
            SOURCES_DROPPED.inc(dropped)
            self.aggregator.dropped_sources = 0
        return len(found)

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        for event in self.ready:
            while not event.wait(0.5):
                if self.stop.is_set():
                    return
        log.info("sniffer.running", window=self.aggregator.window)
        while not self.stop.is_set():
            try:
                self._loop()
            except Exception:  # noqa: BLE001 - the sniffer must never take the agent down
                log.exception("sniffer.crashed", retry_in=5)
                self.stop.wait(5)

    def _loop(self) -> None:
        poller = select.poll()
        registered: dict[int, str] = {}
        next_reconcile = 0.0
        try:
            while not self.stop.is_set():
                now = time.time()
                if self._poke.is_set() or time.monotonic() >= next_reconcile:
                    self._poke.clear()
                    self.reconcile(now)
                    next_reconcile = time.monotonic() + RECONCILE_SECONDS
                    for fd in list(registered):
                        poller.unregister(fd)
                    registered = {c.fileno(): b for b, c in self.captures.items()}
                    for fd in registered:
                        poller.register(fd, select.POLLIN)
                    for cap in self.captures.values():
                        KERNEL_DROPS.inc(cap.drops())
                if not registered:
                    self.stop.wait(0.5)
                    self.flush(time.time())
                    continue
                for fd, _ in poller.poll(250):
                    bridge = registered.get(fd)
                    if bridge is not None:
                        self._read(bridge, time.time())
                self.flush(time.time())
            self.flush(time.time(), everything=True)  # a clean stop delivers open windows
        finally:
            for cap in self.captures.values():
                cap.close()
            self.captures.clear()
            CAPTURES.set(0)
