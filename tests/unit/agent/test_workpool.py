"""The converge workers take front-lane work before queued work, and survive a crash."""

from __future__ import annotations

import threading

from decnet.agent.workpool import WorkPool


def test_work_submitted_first_runs_before_work_already_queued() -> None:
    pool = WorkPool(1)
    gate = threading.Event()
    order: list[str] = []
    done = threading.Event()
    pool.submit(gate.wait)  # holds the only worker while the rest is queued
    for name in ("new-1", "new-2"):
        pool.submit(lambda name=name: order.append(name))
    pool.submit(lambda: order.append("confirm"), first=True)
    pool.submit(done.set)
    gate.set()
    assert done.wait(5)
    assert order == ["confirm", "new-1", "new-2"]
    pool.shutdown()


def test_a_crashing_item_does_not_end_its_worker() -> None:
    pool = WorkPool(1)
    done = threading.Event()
    pool.submit(lambda: 1 / 0)
    pool.submit(done.set)
    assert done.wait(5)
    pool.shutdown()


def test_after_shutdown_queued_and_new_work_is_dropped() -> None:
    pool = WorkPool(1)
    gate = threading.Event()
    ran: list[int] = []
    pool.submit(gate.wait)
    pool.submit(lambda: ran.append(1))
    threading.Timer(0.2, gate.set).start()
    pool.shutdown(wait_seconds=5)  # returns once the item in hand is done
    assert gate.is_set()
    pool.submit(lambda: ran.append(2))
    assert ran == []
    assert pool.pending() == 0
