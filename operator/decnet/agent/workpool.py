"""The agent's converge workers: a fixed set of threads taking work in order, with a front
lane for work that finishes a decky.

A ThreadPoolExecutor is strictly first in, first out: when 200 new deckies are queued,
the pass that confirms the first decky's containers after their settle (one list and a
status write, and the decky is Ready) waits behind all of them, so every decky turns
Ready only at the end of the deploy. Work submitted with `first=True` is taken before
the rest, so deckies turn Ready as their containers come up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import structlog

log = structlog.get_logger("decnet.agent")


class WorkPool:
    def __init__(self, workers: int, name: str = "converge") -> None:
        self._front: deque[Callable[[], None]] = deque()
        self._back: deque[Callable[[], None]] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}_{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, work: Callable[[], None], first: bool = False) -> None:
        with self._ready:
            if self._closed:
                return
            (self._front if first else self._back).append(work)
            self._ready.notify()

    def pending(self) -> int:
        with self._ready:
            return len(self._front) + len(self._back)

    def shutdown(self, wait_seconds: float = 0.0) -> None:
        """Drop what is queued; a worker finishes the item it holds, then ends. Waits up to
        `wait_seconds` for those items (a Docker call is not cut off at exit)."""
        with self._ready:
            self._closed = True
            self._front.clear()
            self._back.clear()
            self._ready.notify_all()
        deadline = time.monotonic() + wait_seconds
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _take(self) -> Callable[[], None] | None:
        with self._ready:
            while not (self._front or self._back or self._closed):
                self._ready.wait()
            if self._closed:
                return None
            return (self._front or self._back).popleft()

    def _run(self) -> None:
        while (work := self._take()) is not None:
            try:
                work()
            except Exception:  # noqa: BLE001 - a worker outlives any one item
                log.exception("worker.crashed")
