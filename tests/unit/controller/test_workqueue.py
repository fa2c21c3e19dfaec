"""Failed reconciles come back and never hold back another: the operator's work queue."""

import asyncio

from decnet.controller import workqueue
from decnet.controller.workqueue import Key, Kind

BAD = Key(Kind.DECKY, "a", "bad")
GOOD = Key(Kind.DECKY, "a", "good")
TOPO = Key(Kind.TOPOLOGY, "a", "maze")


def test_the_delay_starts_at_one_second_doubles_and_is_capped() -> None:
    delays = []
    previous = None
    for _ in range(10):
        previous = workqueue.next_retry_delay(previous)
        delays.append(previous)
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == workqueue.RETRY_MAX_SECONDS == delays[-1]


def test_kinds_are_part_of_the_key() -> None:
    assert Key(Kind.DECKY, "a", "x") != Key(Kind.TOPOLOGY, "a", "x")
    assert str(TOPO) == "Topology/a/maze"


def test_an_added_key_is_taken_once() -> None:
    queue = workqueue.WorkQueue()
    queue.add(GOOD, TOPO)
    assert queue.wake.is_set()
    assert queue.take(0.0) == {GOOD, TOPO}
    assert queue.take(0.0) == set()


def test_a_failed_key_is_due_after_its_delay_and_forgotten_on_success() -> None:
    queue = workqueue.WorkQueue()
    assert queue.failed(BAD, now=100.0) == 1.0
    assert queue.take(100.5) == set()
    assert queue.take(101.0) == {BAD}
    assert queue.take(101.0) == set()  # taken: due again only after its next failure
    assert queue.failed(BAD, now=101.0) == 2.0  # failed again: longer
    assert queue.take(102.0) == set()
    assert queue.take(103.0) == {BAD}
    queue.succeeded(BAD)
    assert queue.take(1000.0) == set()
    assert not queue.waiting(BAD)


def test_a_deleted_object_is_not_retried() -> None:
    queue = workqueue.WorkQueue()
    queue.failed(BAD, now=0.0)
    queue.add(BAD)
    queue.forget(BAD)
    assert queue.take(1000.0) == set()


def test_one_failing_key_does_not_stop_the_others() -> None:
    """The loop runs every key of a batch, retries the failing one, and keeps going."""
    queue = workqueue.WorkQueue()
    done: list[Key] = []
    clock = [0.0]

    async def reconcile(key: Key) -> None:
        if key == BAD:
            raise RuntimeError("the API server refused")
        done.append(key)

    async def passes() -> None:
        queue.add(BAD, GOOD, TOPO)
        assert await workqueue.run(queue, queue.take(clock[0]), reconcile, lambda: clock[0]) == 1
        assert sorted(done) == sorted([GOOD, TOPO])
        assert queue.waiting(BAD) and not queue.waiting(GOOD)
        clock[0] = 1.0  # the backoff has run out: only the failed key comes back
        done.clear()
        assert queue.take(clock[0]) == {BAD}

    asyncio.run(passes())


def test_a_key_that_fails_then_succeeds_is_forgotten() -> None:
    queue = workqueue.WorkQueue()
    calls = [0]

    async def flaky(key: Key) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise ConnectionError("transient")

    async def passes() -> None:
        assert not await workqueue.attempt(queue, GOOD, flaky, lambda: 0.0)
        assert queue.take(1.0) == {GOOD}
        assert await workqueue.attempt(queue, GOOD, flaky, lambda: 1.0)
        assert not queue.waiting(GOOD)

    asyncio.run(passes())


def test_the_loop_runs_keys_side_by_side_each_once() -> None:
    queue = workqueue.WorkQueue()
    keys = [Key(workqueue.Kind.DECKY, "ns", f"d-{i:03d}") for i in range(100)]
    running = [0]
    most = [0]
    done: list[Key] = []

    async def slow(key: Key) -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.01)
        running[0] -= 1
        done.append(key)

    async def passes() -> None:
        assert await workqueue.run(queue, keys, slow, workers=8) == 0

    asyncio.run(passes())
    assert sorted(done) == keys  # every key once
    assert most[0] == 8  # never more than the workers, and not one at a time
