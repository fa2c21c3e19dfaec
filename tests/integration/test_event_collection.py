"""Event collection against the real dockerd: resume without gaps, and last words on removal.

The collector runs in-process (as in the agent) over real containers labelled as a
node's service containers; what it hands on is recorded. No Kubernetes here.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from decnet.agent import collector, eventrecord
from decnet.agent.runtime import engine as runtime
from decnet.agent.runtime import logs as runtime_logs
from decnet.emulators import events

pytestmark = pytest.mark.integration


def line(i: int) -> str:
    return events.to_line(
        events.Event(
            service="ssh",
            kind="auth",
            src_ip="198.51.100.7",
            src_port=40000 + i,
            dst_port=22,
            session=f"s{i}",
            time=dt.datetime.now(dt.UTC),
            fields={"username": "root", "password": f"pw-{i}"},
        )
    )


class Run:
    """One collector (as one agent process) recording what it delivers."""

    def __init__(self, node: str, state: Path) -> None:
        self.got: list[eventrecord.Record] = []
        self.stop = threading.Event()
        self.collector = collector.Collector(
            runtime_logs.Logs(node), state, self.origin, self.got.extend, self.stop, 0.2
        )
        self.threads = [
            threading.Thread(target=self.collector.scan_loop, daemon=True),
            threading.Thread(target=self.collector.pipeline_loop, daemon=True),
        ]
        for t in self.threads:
            t.start()

    @staticmethod
    def origin(c: runtime_logs.ServiceContainer) -> eventrecord.Origin:
        return eventrecord.Origin("ns", "decky", "node", "ssh", c.id)

    def passwords(self) -> list[str]:
        return [r.event.fields["password"] for r in list(self.got)]

    def crash(self) -> None:
        """Stop without a final checkpoint save, as a SIGKILL would."""
        self.collector.store.save = lambda positions: None  # type: ignore[method-assign]
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


@pytest.fixture
def node(docker_client: Any, test_image: str) -> Iterator[str]:
    name = f"it-{uuid.uuid4().hex[:6]}"
    yield name
    for c in docker_client.containers.list(
        all=True, filters={"label": f"decnet.io/agent-node={name}"}
    ):
        c.remove(force=True)


def service(docker_client: Any, node: str, script: str, **env: str) -> Any:
    return docker_client.containers.run(
        "decnet-test/busybox:latest",
        ["sh", "-c", script],
        environment=env,
        detach=True,
        network_mode="none",
        labels={
            "app.kubernetes.io/managed-by": "decnet-operator",
            "decnet.io/agent-node": node,
            "decnet.io/role": "service",
            "decnet.io/service": "ssh",
        },
    )


def wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_restarted_collector_resumes_from_its_checkpoint_without_a_gap(
    docker_client: Any, node: str
) -> None:
    state = Path(tempfile.mkdtemp(prefix="decnet-it-events-"))
    lines = "\n".join(line(i) for i in range(300))
    # 300 events, 10 every 0.1 s: the first collector dies in the middle.
    script = (
        "i=0; while read -r l; do echo \"$l\"; i=$((i+1)); [ $((i % 10)) = 0 ] && usleep 100000; done <<'EOF'\n"
        + lines
        + "\nEOF\nexec sleep 3600"
    )
    c = service(docker_client, node, script)
    first = Run(node, state)
    wait(lambda: len(first.got) >= 60, 30, "the first events")
    first.collector._save()  # a checkpoint from the middle of the stream, then none:
    first.collector.store.save = lambda positions: None  # type: ignore[method-assign]
    wait(lambda: len(first.got) >= 120, 30, "more events after the checkpoint")
    first.crash()  # events after the checkpoint were delivered but not checkpointed
    second = Run(node, state)
    try:
        wait(lambda: "pw-299" in second.passwords(), 60, "the last event")
    finally:
        second.stop.set()
    both = first.passwords() + second.passwords()
    assert set(both) == {f"pw-{i}" for i in range(300)}  # no gap
    # Duplicates only for what came after the first collector's last checkpoint.
    dupes = set(first.passwords()) & set(second.passwords())
    assert dupes, "the crash left no uncheckpointed events: the test proved nothing"
    assert "pw-0" not in second.passwords()
    ids = {r.id for r in first.got if r.event.fields["password"] in dupes}
    assert ids == {r.id for r in second.got if r.event.fields["password"] in dupes}  # same ids
    c.remove(force=True)


def test_removal_waits_for_the_containers_last_words(docker_client: Any, node: str) -> None:
    state = Path(tempfile.mkdtemp(prefix="decnet-it-events-"))
    script = """trap 'echo "$LAST"; exit 0' TERM; echo "$FIRST"; while :; do sleep 1; done"""
    c = service(docker_client, node, script, FIRST=line(1), LAST=line(999))
    run = Run(node, state)
    try:
        wait(lambda: "pw-1" in run.passwords(), 30, "the first event")
        engine = runtime.Engine.from_env(node)

        def before_remove(container_id: str) -> None:
            runtime_logs.Logs(node).stop(container_id, timeout=5)
            assert run.collector.drain(container_id, {"decnet.io/role": "service"})

        engine.before_remove = before_remove
        engine.remove_container(c.id)
        assert "pw-999" in run.passwords()  # collected before the container was gone
    finally:
        run.stop.set()


def test_hostile_output_is_dropped_and_the_next_event_still_arrives(
    docker_client: Any, node: str
) -> None:
    state = Path(tempfile.mkdtemp(prefix="decnet-it-events-"))
    # A 200 KB line, binary junk, a forged event claiming another namespace, then a real one.
    forged = line(5).replace('kind="auth"', 'kind="auth" namespace="kube-system" id="x"')
    script = (
        "head -c 200000 /dev/zero | tr '\\0' A; echo; "
        "printf '\\001\\377\\033[2J not syslog\\n'; "
        'echo "$FORGED"; echo "$GOOD"; exec sleep 3600'
    )
    c = service(docker_client, node, script, FORGED=forged, GOOD=line(7))
    run = Run(node, state)
    try:
        wait(lambda: "pw-7" in run.passwords(), 30, "the event after the junk")
    finally:
        run.stop.set()
    assert sorted(run.passwords()) == ["pw-5", "pw-7"]
    forged_record = next(r for r in run.got if r.event.fields["password"] == "pw-5")
    assert forged_record.namespace == "ns"  # the container's origin, not the line's claim
    assert forged_record.id != "x" and "namespace" not in forged_record.event.fields
    c.remove(force=True)
