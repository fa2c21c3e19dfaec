"""A node is lost: its deckies are marked, moved under the Reschedule policy, and the
node's agent, when it returns, removes its copies. Nothing runs twice at the end.

Node A is a real agent on the host's dockerd; node B is a simulated agent (the real
agent with `--engine fake`): two agents on one dockerd would share Docker's container
names, which on real nodes are separate engines. The operator is the session's, under
the chart's ServiceAccount; both agents use their node-bound chart identities.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Cluster, Proc, condition, env_for, wait_for

LEASE_SECONDS = 8
GRACE_SECONDS = 5


@pytest.fixture
def start_agent(
    identities: Any, kubectl: Any, logdir: Path, operator: Proc
) -> Iterator[Callable[..., Proc]]:
    started: list[Proc] = []

    def start(node: str, *extra: str) -> Proc:
        argv = [sys.executable, "-m", "decnet.agent", "--node", node, "--metrics-port", "0"]
        argv += ["--resync-seconds", "5", "--orphan-grace-seconds", "3600"]
        argv += ["--lease-duration-seconds", str(LEASE_SECONDS), *extra]
        argv += ["--state-dir", tempfile.mkdtemp(prefix="decnet-agent-state-")]
        env = env_for(
            identities.agent_kubeconfig(node),
            NODE_NAME=node,
            DECNET_SYSTEM_NAMESPACE=identities.namespace,
        )
        proc = Proc(f"agent-{node}-{len(started)}", argv, env, logdir)
        proc.start()
        started.append(proc)
        lease = f"decnet-agent-{node}"
        wait_for(
            lambda: (
                kubectl("get", "lease", lease, "-n", identities.namespace, check=False).returncode
                == 0
            ),
            60,
            f"{node}'s lease",
            proc,
        )
        return proc

    yield start
    for proc in started:
        proc.stop()
    for node in {p.argv[p.argv.index("--node") + 1] for p in started}:
        kubectl("delete", "lease", f"decnet-agent-{node}", "-n", identities.namespace, check=False)


def ready_reason(obj: dict[str, Any]) -> str:
    for item in obj.get("status", {}).get("conditions", []):
        if item["type"] == "Ready":
            return str(item.get("reason", ""))
    return ""


@pytest.fixture
def session_agent_away(
    identities: Any, kubectl: Any, agent: Proc, node_name: str
) -> Iterator[None]:
    """The session's agent stopped and its Lease gone for one test, so that B is the only
    live node a decky can move to (two real agents on one dockerd would share Docker's
    container names); started again afterwards (the `cluster` fixture would too)."""
    agent.stop()
    kubectl("delete", "lease", f"decnet-agent-{node_name}", "-n", identities.namespace, check=False)
    try:
        yield
    finally:
        if not agent.alive():
            agent.start()


def test_a_lost_nodes_deckies_move_to_a_live_agent_and_its_return_leaves_no_copy(
    kubectl: Any,
    namespace: str,
    docker_client: Any,
    operator: Proc,
    session_agent_away: None,
    start_agent: Callable[..., Proc],
) -> None:
    tag = uuid.uuid4().hex[:6]
    node_a, node_b = f"e2e-lost-{tag}", f"b-sim-{tag}"
    agent_a = start_agent(node_a)
    cluster = Cluster(kubectl, namespace, docker_client, operator, agent_a, node_a)
    movers = ["m1", "m2"]
    cluster.apply(
        cluster.lan(),
        *(cluster.decky(n, ["smb"]) for n in movers),
        cluster.decky("stays", ["smb"]),
    )
    cluster.wait_ready([*movers, "stays"])
    before = {n: cluster.container_ids(n) for n in [*movers, "stays"]}
    addresses = {n: cluster.status(n)["addresses"] for n in movers}
    assert all(len(ids) == 2 for ids in before.values())

    # the movers give up their pin and take the Reschedule policy; "stays" waits
    policy = {"policy": "Reschedule", "graceSeconds": GRACE_SECONDS}
    cluster.apply(*(cluster.decky(n, ["smb"], nodeName=None, nodeLoss=policy) for n in movers))
    agent_b = start_agent(node_b, "--engine", "fake")

    agent_a.kill()  # the node is lost: its containers keep running, its Lease runs out
    lost_at = time.monotonic()
    wait_for(
        lambda: all(
            ready_reason(cluster.get("decky", n)) == "AgentLost" for n in [*movers, "stays"]
        ),
        LEASE_SECONDS + 30,
        "every decky of the lost node marked AgentLost",
        operator,
    )
    marked = time.monotonic() - lost_at
    print(f"marked AgentLost {marked:.1f} s after the agent died (lease {LEASE_SECONDS} s)")

    def moved_and_ready() -> bool:
        return all(
            cluster.status(n).get("node") == node_b
            and condition(cluster.get("decky", n), "Ready") == "True"
            for n in movers
        )

    wait_for(moved_and_ready, LEASE_SECONDS + GRACE_SECONDS + 60, "the movers Ready on B", agent_b)
    print(f"rescheduled and Ready {time.monotonic() - lost_at:.1f} s after the agent died")
    for n in movers:
        status = cluster.status(n)
        assert status["addresses"] == addresses[n]
        assert status["lifecycle"]["operation"] == "Reschedule"
        assert status["agent"]["node"] == node_b
        assert cluster.get("decky", n)["metadata"]["labels"]["decnet.io/node"] == node_b
    stays = cluster.get("decky", "stays")
    assert stays["status"]["node"] == node_a and ready_reason(stays) == "AgentLost"
    # while A is away its copies still run on its dockerd: that is what its return fixes
    assert all(cluster.container_ids(n) == before[n] for n in movers)

    agent_a = start_agent(node_a)  # the node comes back
    cluster.agent = agent_a
    wait_for(
        lambda: all(cluster.container_ids(n) == {} for n in movers),
        30,
        "the returning agent removing the moved deckies' containers",
        agent_a,
    )
    # nothing runs twice: the movers run only on B, "stays" is back on A untouched
    cluster.wait_ready(["stays"])
    assert cluster.container_ids("stays") == before["stays"]
    for n in movers:
        assert cluster.status(n)["node"] == node_b
        assert condition(cluster.get("decky", n), "Ready") == "True"
    on_a = {c.labels["decnet.io/decky"] for c in cluster.containers()}
    assert on_a == {"stays"}
