"""Failed reconciles come back: the backoff and the retry schedule of the operator."""

from decnet.controller import runtime


def test_the_delay_starts_at_one_second_doubles_and_is_capped() -> None:
    delays = []
    previous = None
    for _ in range(10):
        previous = runtime.next_retry_delay(previous)
        delays.append(previous)
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == runtime.RETRY_MAX_SECONDS == delays[-1]


def test_a_failed_key_is_due_after_its_delay_and_forgotten_on_success() -> None:
    rt = runtime.Runtime(runtime.Config())
    key = ("decoys", "ws-01")
    assert rt.retry_later(key, now=100.0) == 1.0
    assert rt.due_retries(100.5) == set()
    assert rt.due_retries(101.0) == {key}
    assert rt.retry_later(key, now=101.0) == 2.0  # failed again: longer
    assert rt.due_retries(102.0) == set()
    rt.succeeded(key)
    assert rt.due_retries(1000.0) == set()


def test_one_failing_key_does_not_hold_back_another() -> None:
    rt = runtime.Runtime(runtime.Config())
    bad, good = ("a", "bad"), ("a", "good")
    for now in (0.0, 1.0, 3.0, 7.0):
        rt.retry_later(bad, now)
    rt.retry_later(good, 7.0)
    assert rt.due_retries(8.0) == {good}
