"""Mutation picks a different, non-empty service set from the right pool."""

import datetime
import random

from decnet.api import v1alpha1
from decnet.controller import mutation

TEMPLATES = {"smb": False, "rdp": False, "ssh": False, "http": False, "sniffer": True}
ARCH = {"windows-workstation": ["smb", "rdp"], "linux-server": ["ssh", "http"]}


def test_pool_prefers_explicit_then_archetype_then_all_non_singletons() -> None:
    assert mutation.pool(
        explicit=["http", "smb"], archetype="linux-server", archetypes=ARCH, templates=TEMPLATES
    ) == ["http", "smb"]
    assert mutation.pool(
        explicit=None, archetype="linux-server", archetypes=ARCH, templates=TEMPLATES
    ) == ["http", "ssh"]
    assert mutation.pool(explicit=None, archetype=None, archetypes=ARCH, templates=TEMPLATES) == [
        "http",
        "rdp",
        "smb",
        "ssh",
    ]
    assert "sniffer" not in mutation.pool(
        explicit=["sniffer", "ssh"], archetype=None, archetypes=ARCH, templates=TEMPLATES
    )


def test_pick_is_different_and_within_bounds() -> None:
    rng = random.Random(7)
    pool = ["a", "b", "c", "d", "e"]
    for _ in range(200):
        current = sorted(rng.sample(pool, rng.randint(1, 3)))
        chosen = mutation.pick(pool, current, rng)
        assert chosen is not None
        assert chosen != current
        assert 1 <= len(chosen) <= 3
        assert set(chosen) <= set(pool)


def test_pick_gives_up_when_no_different_set_exists() -> None:
    assert mutation.pick(["ssh"], ["ssh"], random.Random(1)) is None
    assert mutation.pick([], [], random.Random(1)) is None
    assert mutation.pick(["ssh"], ["smb"], random.Random(1)) == ["ssh"]


def test_due_after_interval_and_disabled_by_zero() -> None:
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    later = t0 + datetime.timedelta(minutes=30)
    assert mutation.due(interval=30, last=t0, now=later)
    assert not mutation.due(interval=30, last=t0, now=later - datetime.timedelta(seconds=1))
    assert not mutation.due(interval=0, last=t0, now=later)
    assert mutation.interval_minutes(None, 30) == 30
    assert mutation.interval_minutes(0, 30) == 0
    assert mutation.interval_minutes(5, 30) == 5


def test_a_scheduled_mutation_waits_for_the_quiet_period_after_contact() -> None:
    now = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC)
    contact = now - datetime.timedelta(seconds=100)
    assert not mutation.quiet(last_contact=contact, now=now, quiet_seconds=None)  # default 300
    assert not mutation.quiet(last_contact=contact, now=now, quiet_seconds=101)
    assert mutation.quiet(last_contact=contact, now=now, quiet_seconds=100)
    # activity lags by up to 30 s: a shorter period is lengthened to MIN_QUIET_SECONDS
    recent = now - datetime.timedelta(seconds=40)
    assert not mutation.quiet(last_contact=recent, now=now, quiet_seconds=10)
    assert mutation.quiet(last_contact=contact, now=now, quiet_seconds=0)  # 0 = never wait
    assert mutation.quiet(last_contact=None, now=now, quiet_seconds=300)  # never touched
    assert mutation.quiet(
        last_contact=now - datetime.timedelta(seconds=mutation.DEFAULT_QUIET_SECONDS),
        now=now,
        quiet_seconds=None,
    )


def test_a_scheduled_mutation_is_due_only_after_a_success_the_interval_and_quiet() -> None:
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    later = start + datetime.timedelta(minutes=31)
    status = {"lifecycle": {"phase": "Succeeded", "startedAt": "2026-01-01T00:00:00Z"}}

    def due(policy: dict | None, st: dict, now: datetime.datetime = later) -> bool:
        typed = v1alpha1.MutationPolicy.model_validate(policy) if policy is not None else None
        return mutation.scheduled(typed, st, default_interval=30, now=now)

    assert due(None, status)
    assert not due(None, status, now=start + datetime.timedelta(minutes=29))
    assert not due({"intervalMinutes": 60}, status)
    running = {"lifecycle": {**status["lifecycle"], "phase": "Running"}}
    assert not due(None, running)
    mutated = {**status, "lastMutation": {"at": "2026-01-01T00:20:00Z"}}
    assert not due(None, mutated)  # counted from the last mutation
    touched = {**status, "activity": {"lastContact": "2026-01-01T00:30:30Z"}}
    assert not due(None, touched)  # an attacker is active: wait
