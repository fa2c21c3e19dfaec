"""Faults caused for real: processes killed, the API server and dockerd stopped, containers removed.

Each test ends with every decky in the right state, nothing duplicated, nothing
orphaned and no lifecycle stuck in running.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Cluster, wait_for

sys.path.insert(0, str(ROOT / "hack"))
import controlplane  # noqa: E402
from tests.support import require  # noqa: E402

STATE = Path("/tmp/decnet-state")


def assert_no_duplicates(cluster: Cluster) -> None:
    names = Counter(c.name for c in cluster.containers())
    roles = Counter(
        (
            c.labels["decnet.io/decky"],
            c.labels["decnet.io/role"],
            c.labels.get("decnet.io/service", ""),
        )
        for c in cluster.containers()
    )
    assert max(names.values(), default=1) == 1
    assert max(roles.values(), default=1) == 1, roles


def assert_nothing_running(cluster: Cluster) -> None:
    for decky in cluster.deckies():
        phase = decky["status"]["lifecycle"]["phase"]
        assert phase in {"Succeeded", "Failed"}, (
            decky["metadata"]["name"],
            decky["status"]["lifecycle"],
        )


def test_agent_killed_mid_deploy_recovers_without_duplicates(cluster: Cluster) -> None:
    names = [f"kill-{i:02d}" for i in range(10)]
    cluster.apply(cluster.lan(), *[cluster.decky(n, ["http", "telnet"]) for n in names])
    wait_for(lambda: len(cluster.containers()) >= 6, 90, "the first containers", cluster.agent)
    cluster.agent.kill()
    survivors = {c.id for c in cluster.containers() if c.status == "running"}
    cluster.agent.start()
    cluster.wait_ready(names, timeout=180)
    assert_no_duplicates(cluster)
    assert len(cluster.containers()) == 3 * len(names)
    # Containers that were already right were adopted, not recreated.
    assert survivors <= {c.id for c in cluster.containers()}
    assert_nothing_running(cluster)


def test_operator_killed_mid_mutation_leaves_no_lifecycle_running(cluster: Cluster) -> None:
    names = [f"opk-{i:02d}" for i in range(4)]
    pool = {"pool": ["http", "telnet", "ssh", "ftp"]}
    cluster.apply(cluster.lan(), *[cluster.decky(n, ["http"], mutation=pool) for n in names])
    cluster.wait_ready(names)
    for name in names:
        cluster.kubectl(
            "annotate",
            "decky",
            name,
            "-n",
            cluster.ns,
            "--overwrite",
            "decnet.io/mutate-request=fault-1",
        )
    time.sleep(0.3)
    cluster.operator.kill()
    time.sleep(2)
    cluster.operator.start()
    wait_for(
        lambda: all(d["status"].get("lastMutation") for d in cluster.deckies()),
        60,
        "every mutation",
        cluster.operator,
    )
    cluster.wait_ready(names, timeout=120)
    wait_for(
        lambda: all(
            d["status"]["lifecycle"]["phase"] in {"Succeeded", "Failed"} for d in cluster.deckies()
        ),
        60,
        "terminal lifecycles",
    )
    assert_no_duplicates(cluster)
    for decky in cluster.deckies():
        services = sorted(
            c.labels["decnet.io/service"]
            for c in cluster.containers(decky["metadata"]["name"])
            if c.labels["decnet.io/role"] == "service"
        )
        assert services == sorted(decky["status"]["services"])


def test_a_container_removed_by_hand_comes_back(cluster: Cluster) -> None:
    cluster.apply(cluster.lan(), cluster.decky("drift-01", ["http", "telnet"]))
    cluster.wait_ready(["drift-01"])
    before = cluster.container_ids("drift-01")
    cluster.docker.containers.get(before["service:telnet"]).remove(force=True)
    cluster.docker.containers.get(before["service:http"]).stop(timeout=1)
    wait_for(
        lambda: (
            "service:telnet" in cluster.container_ids("drift-01")
            and all(c.status == "running" for c in cluster.containers("drift-01"))
        ),
        60,
        "drift repaired",
        cluster.agent,
    )
    after = cluster.container_ids("drift-01")
    assert after["base:"] == before["base:"]
    assert after["service:telnet"] != before["service:telnet"]
    cluster.wait_ready(["drift-01"])


def test_a_decky_deleted_while_its_agent_is_down_goes_when_it_returns(cluster: Cluster) -> None:
    cluster.apply(cluster.lan(), cluster.decky("orphan-01", ["http"]))
    cluster.wait_ready(["orphan-01"])
    cluster.agent.kill()
    cluster.kubectl("delete", "decky", "orphan-01", "-n", cluster.ns, "--wait=false")
    time.sleep(2)
    # Still there: its containers are not known to be gone.
    assert (
        cluster.kubectl("get", "decky", "orphan-01", "-n", cluster.ns, check=False).returncode == 0
    )
    assert len(cluster.containers("orphan-01")) == 2
    cluster.agent.start()
    wait_for(
        lambda: (
            cluster.kubectl("get", "decky", "orphan-01", "-n", cluster.ns, check=False).returncode
            != 0
        ),
        60,
        "the decky to go",
        cluster.agent,
    )
    assert cluster.containers("orphan-01") == []


def test_api_server_down_for_30_seconds_while_deckies_deploy(
    cluster: Cluster, control_plane: dict[str, Any]
) -> None:
    require(not control_plane.get("reused"), "needs a control plane this session started")
    state = Path(control_plane["state_dir"])
    names = [f"apidown-{i:02d}" for i in range(6)]
    cluster.apply(cluster.lan(), *[cluster.decky(n, ["http", "telnet"]) for n in names])
    time.sleep(1.0)
    controlplane.stop_apiserver(state)
    try:
        time.sleep(30)
        assert cluster.operator.alive() and cluster.agent.alive(), (
            "a process died with the API server"
        )
    finally:
        controlplane.start_apiserver(state)
    cluster.wait_ready(names, timeout=180)
    assert_no_duplicates(cluster)
    assert len(cluster.containers()) == 3 * len(names)
    assert_nothing_running(cluster)


def test_dockerd_restarted_with_deckies_running(cluster: Cluster) -> None:
    require(
        (STATE / "dockerd.pid").exists(),
        "dockerd was not started by hack/docker-up.sh; will not restart it",
    )
    require(shutil.which("ctr") is not None, "ctr (Debian's containerd, beside docker.io)")
    names = ["dock-01", "dock-02"]
    cluster.apply(cluster.lan(), *[cluster.decky(n, ["http", "telnet"]) for n in names])
    cluster.wait_ready(names)
    ours = {c.id for c in cluster.containers()}
    subprocess.run(["bash", str(ROOT / "hack" / "docker-down.sh")], check=True)
    try:
        time.sleep(3)
        assert cluster.agent.alive(), "the agent died with dockerd"
    finally:
        subprocess.run(["bash", str(ROOT / "hack" / "docker-up.sh")], check=True)
    try:
        # A container the agent was restarting as dockerd went down can be left with
        # its id stuck in Docker's runtime ("id already in use" at every start): the
        # agent replaces it, so the decky may come back on new containers.
        wait_for(
            lambda: (
                len(cluster.containers()) == 6
                and all(c.status == "running" for c in cluster.containers())
            ),
            90,
            "containers running again",
            cluster.agent,
        )
        cluster.wait_ready(names)
        assert_no_duplicates(cluster)
    finally:
        remove_runtime_leftovers(ours - {c.id for c in cluster.containers()})


CTR = ["ctr", "--address", "/run/docker/containerd/containerd.sock", "--namespace", "moby"]


def remove_runtime_leftovers(gone: set[str]) -> None:
    """What dockerd's containerd keeps of this test's containers Docker no longer has (a
    restart cut by dockerd's stop leaves an object, and sometimes its shim, behind)."""
    listed = subprocess.run([*CTR, "containers", "ls", "-q"], capture_output=True, text=True)
    for container_id in set(listed.stdout.split()) & gone:
        subprocess.run([*CTR, "tasks", "rm", "-f", container_id], capture_output=True)
        subprocess.run([*CTR, "containers", "rm", container_id], capture_output=True)
    shims = subprocess.run(["pgrep", "-a", "containerd-shim"], capture_output=True, text=True)
    for line in shims.stdout.splitlines():
        pid, _, argv = line.partition(" ")
        if any(f"-id {container_id}" in argv for container_id in gone):
            subprocess.run(["kill", pid], capture_output=True)


@pytest.fixture(autouse=True)
def _watchdog(request: pytest.FixtureRequest) -> Any:
    """Long fault tests print where they hang instead of dying silently at the timeout."""
    timer = threading.Timer(
        500, lambda: print(f"[watchdog] {request.node.name} still running", flush=True)
    )
    timer.start()
    yield
    timer.cancel()
