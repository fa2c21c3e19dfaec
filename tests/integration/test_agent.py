"""The node agent as a real process against the real control plane and dockerd.

The test plays the operator: it creates Deckies labelled decnet.io/node=<node>
and writes the operator's part of the status (plan, planHash, node, lifecycle)
by server-side apply under the operator's field manager. Then it asserts what
the agent reported in status and what Docker shows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.coordination_v1 import Lease
from lightkube.types import PatchType

from decnet.kube import names

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
Decky = create_namespaced_resource(names.GROUP, names.VERSION, "Decky", names.DECKIES)
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
RESYNC = 2.0
GRACE = 3.0


# --------------------------------------------------------------------------- the agent process


class AgentProc:
    """An agent we started; stopped only by its own pid."""

    def __init__(
        self,
        kubeconfig: str,
        node: str,
        logdir: Path,
        system_namespace: str,
        orphan_grace: float = GRACE,
        state_dir: str | None = None,
    ) -> None:
        self.node = node
        self.log = logdir / f"agent-{node}.log"
        self.argv = [sys.executable, "-m", "decnet.agent", "--node", node, "--metrics-port", "0"]
        self.argv += ["--resync-seconds", str(RESYNC), "--orphan-grace-seconds", str(orphan_grace)]
        # a state dir per node, as each node has its own: agents of other nodes started by
        # tests running beside this one would prune lure files they do not know of
        state_dir = state_dir or tempfile.mkdtemp(prefix=f"decnet-agent-state-{node}-")
        self.argv += ["--state-dir", state_dir]
        self.env = dict(os.environ, KUBECONFIG=kubeconfig, PYTHONUNBUFFERED="1")
        self.env[names.SYSTEM_NAMESPACE_ENV] = system_namespace
        self.env["PYTHONPATH"] = f"{ROOT / 'operator'}:{self.env.get('PYTHONPATH', '')}"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.popen = subprocess.Popen(
            self.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(30)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def start_agent(
    identities: Any, crds: list[str], test_image: str, namespace: str
) -> Iterator[Callable[..., AgentProc]]:
    """Agents on a fresh node, each with the chart's agent ServiceAccount and a token bound
    to its Node (never admin); stopped before the namespace fixture cleans up."""
    logdir = Path(tempfile.mkdtemp(prefix="decnet-agent-test-"))
    default_node = f"node-{uuid.uuid4().hex[:6]}"
    started: list[AgentProc] = []
    states: dict[str, str] = {}  # node -> its state dir, kept when its agent restarts

    def start(node: str | None = None, orphan_grace: float = GRACE) -> AgentProc:
        node = node or default_node
        kubeconfig = identities.agent_kubeconfig(node)
        state = states.setdefault(node, tempfile.mkdtemp(prefix=f"decnet-agent-state-{node}-"))
        proc = AgentProc(kubeconfig, node, logdir, identities.namespace, orphan_grace, state)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def wait_for(
    check: Callable[[], Any], timeout: float, what: str, agent: AgentProc | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    tail = "\n".join(agent.text().splitlines()[-30:]) if agent else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tail}")


# --------------------------------------------------------------------------- playing the operator


class Fleet:
    """Deckies of one namespace on one node, with the operator's status written by hand."""

    def __init__(self, client: Any, ns: str, node: str) -> None:
        self.client, self.ns, self.node = client, ns, node
        a, b = random.randint(150, 250), random.randint(0, 250)
        self.prefix = f"10.{a}.{b}"
        self.lab_prefix = f"10.{a}.{(b + 1) % 250}"

    def net(self, lan: str = "office", host: int = 10) -> dict[str, Any]:
        prefix = self.prefix if lan == "office" else self.lab_prefix
        return {
            "lan": lan,
            "network": names.network_name(self.ns, lan),
            "ip": f"{prefix}.{host}",
            "subnet": f"{prefix}.0/24",
            "gateway": f"{prefix}.1",
            "dmz": False,
            "driver": "bridge",
            "parent": "",
        }

    def create(self, name: str, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
        body = {
            "apiVersion": names.API_VERSION,
            "kind": "Decky",
            "metadata": {
                "name": name,
                "namespace": self.ns,
                "labels": {names.LABEL_NODE: self.node},
                **meta,
            },
            "spec": spec or {"services": ["smb", "rdp"], "networks": [{"lan": "office"}]},
        }
        return dict(self.client.create(Decky(body)).to_dict())

    def plan(
        self,
        name: str,
        services: list[str],
        networks: list[dict[str, Any]],
        files: list[dict[str, Any]] | None = None,
        forwards_l3: bool = False,
        image: str = "decnet-test/busybox:latest",
        node: str | None = None,
        commands: dict[str, list[str]] | None = None,
    ) -> str:
        plan: dict[str, Any] = {
            "hostname": name.upper(),
            "forwardsL3": forwards_l3,
            "baseImage": "decnet/base:0.1.0",
            "networks": networks,
            "services": [
                {
                    "name": s,
                    "image": image,
                    "ports": [],
                    "command": (commands or {}).get(s, SLEEP),
                    "env": {},
                    "configHash": "",
                }
                for s in services
            ],
            "files": files or [],
        }
        plan_hash = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
        plan["hash"] = plan_hash
        status = {
            "node": node or self.node,
            "planHash": plan_hash,
            "plan": plan,
            "lifecycle": {"id": str(uuid.uuid4()), "operation": "Deploy", "phase": "Running"},
        }
        body = {
            "apiVersion": names.API_VERSION,
            "kind": "Decky",
            "metadata": {"name": name, "namespace": self.ns},
            "status": status,
        }
        self.client.patch(
            Decky.Status,
            name,
            body,
            namespace=self.ns,
            patch_type=PatchType.APPLY,
            field_manager=names.OPERATOR_MANAGER,
            force=True,
        )
        return plan_hash

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.client.get(Decky, name, namespace=self.ns).to_dict())

    def agent_report(self, name: str) -> dict[str, Any]:
        return dict((self.get(name).get("status") or {}).get("agent") or {})

    def wait_state(
        self, name: str, state: str, plan_hash: str, agent: AgentProc, timeout: float = 60
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            obj = self.get(name)
            report = (obj.get("status") or {}).get("agent") or {}
            if report.get("state") == state and report.get("planHash") == plan_hash:
                return obj
            return None

        return dict(
            wait_for(reached, timeout, f"{name} agent.state={state} for {plan_hash}", agent)
        )


def docker_ids(docker_client: Any, ns: str, decky: str | None = None) -> dict[str, str]:
    labels = [f"{names.LABEL_NAMESPACE}={ns}"]
    if decky:
        labels.append(f"{names.LABEL_DECKY}={decky}")
    # one list request, no per-container inspect: a snapshot, not a race with the engine
    found = docker_client.api.containers(all=True, filters={"label": labels})
    return {c["Names"][0].lstrip("/"): c["Id"] for c in found}


@pytest.fixture
def fleet_factory(kube_client: Any, namespace: str) -> Callable[[AgentProc], Fleet]:
    return lambda agent: Fleet(kube_client, namespace, agent.node)


# --------------------------------------------------------------------------- tests


def test_a_planned_decky_converges_and_is_reported_once(
    start_agent: Callable[[], AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    kube_client: Any,
    namespace: str,
) -> None:
    agent = start_agent()
    fleet = fleet_factory(agent)
    fleet.create("ws-01")
    fleet.create("unplanned")  # labelled for this node, but the operator wrote no plan yet
    plan_hash = fleet.plan("ws-01", ["smb", "rdp"], [fleet.net()])
    obj = fleet.wait_state("ws-01", "Converged", plan_hash, agent)

    status = obj["status"]
    ids = docker_ids(docker_client, namespace, "ws-01")
    assert {c["name"]: c["id"] for c in status["containers"]} == ids
    assert [c["role"] for c in status["containers"]] == ["base", "service", "service"]
    assert all(c["state"] == "running" and c["planHash"] == plan_hash for c in status["containers"])
    assert status["agent"]["node"] == agent.node
    assert status["agent"]["lifecycleId"] == status["lifecycle"]["id"]
    # the agent owns exactly its two fields of status
    managers = {
        m["manager"]: m
        for m in obj["metadata"]["managedFields"]
        if m.get("subresource") == "status"
    }
    agent_fields = set(managers[names.AGENT_MANAGER]["fieldsV1"]["f:status"])
    assert agent_fields == {"f:agent", "f:containers"}

    # no heartbeat writes: the object does not change across resyncs
    rv = obj["metadata"]["resourceVersion"]
    time.sleep(RESYNC * 2 + 1)
    assert fleet.get("ws-01")["metadata"]["resourceVersion"] == rv
    # the unplanned decky was ignored
    assert docker_ids(docker_client, namespace, "unplanned") == {}
    assert "agent" not in (fleet.get("unplanned").get("status") or {})

    lease = kube_client.get(Lease, names.lease_name(agent.node), namespace=names.SYSTEM_NAMESPACE)
    assert lease.spec.holderIdentity == agent.node
    assert lease.spec.leaseDurationSeconds == 40
    assert lease.metadata.labels[names.LABEL_AGENT_LEASE] == agent.node
    renewed = lease.spec.renewTime
    time.sleep(11)
    lease = kube_client.get(Lease, names.lease_name(agent.node), namespace=names.SYSTEM_NAMESPACE)
    assert lease.spec.renewTime > renewed
    kube_client.delete(Lease, names.lease_name(agent.node), namespace=names.SYSTEM_NAMESPACE)


def test_plan_changes_touch_only_what_changed(
    start_agent: Callable[[], AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    namespace: str,
) -> None:
    agent = start_agent()
    fleet = fleet_factory(agent)
    fleet.create("ws-01")
    h1 = fleet.plan("ws-01", ["smb", "rdp"], [fleet.net()])
    fleet.wait_state("ws-01", "Converged", h1, agent)
    before = docker_ids(docker_client, namespace)

    # add a service and attach a second LAN in one plan change
    h2 = fleet.plan("ws-01", ["smb", "rdp", "ldap"], [fleet.net(), fleet.net("lab", 20)])
    fleet.wait_state("ws-01", "Converged", h2, agent)
    after = docker_ids(docker_client, namespace)
    assert {k: after[k] for k in before} == before
    assert len(after) == 4
    base = docker_client.containers.get(names.base_container_name(namespace, "ws-01"))
    nets = base.attrs["NetworkSettings"]["Networks"]
    assert nets[names.network_name(namespace, "lab")]["IPAddress"] == f"{fleet.lab_prefix}.20"

    # remove a service and detach the LAN
    h3 = fleet.plan("ws-01", ["smb", "ldap"], [fleet.net()])
    fleet.wait_state("ws-01", "Converged", h3, agent)
    final = docker_ids(docker_client, namespace)
    assert names.service_container_name(namespace, "ws-01", "rdp") not in final
    assert all(final[k] == after[k] for k in final)
    base.reload()
    assert set(base.attrs["NetworkSettings"]["Networks"]) == {
        names.network_name(namespace, "office")
    }


def test_a_forwards_l3_flip_is_refused_until_the_annotation(
    start_agent: Callable[[], AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    kube_client: Any,
    namespace: str,
) -> None:
    agent = start_agent()
    fleet = fleet_factory(agent)
    fleet.create("gw")
    h1 = fleet.plan("gw", ["smb"], [fleet.net()])
    fleet.wait_state("gw", "Converged", h1, agent)
    before = docker_ids(docker_client, namespace)

    h2 = fleet.plan("gw", ["smb"], [fleet.net()], forwards_l3=True)
    obj = fleet.wait_state("gw", "Refused", h2, agent)
    assert names.ANNOTATION_ALLOW_RECREATE in obj["status"]["agent"]["message"]
    assert docker_ids(docker_client, namespace) == before

    kube_client.patch(
        Decky,
        "gw",
        {"metadata": {"annotations": {names.ANNOTATION_ALLOW_RECREATE: "true"}}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    fleet.wait_state("gw", "Converged", h2, agent)
    after = docker_ids(docker_client, namespace)
    base = names.base_container_name(namespace, "gw")
    assert after[base] != before[base]


def test_files_from_the_spec_and_a_secret_are_placed_and_never_logged(
    start_agent: Callable[[], AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    kubectl: Any,
    namespace: str,
) -> None:
    secret_text = "svc_backup:Zq-unique-7741"
    kubectl(
        "create",
        "secret",
        "generic",
        "lures",
        "-n",
        namespace,
        f"--from-literal=passwords={secret_text}",
    )
    inline = b"inline-lure-5521\n"
    agent = start_agent()
    fleet = fleet_factory(agent)
    spec = {
        "services": ["smb"],
        "networks": [{"lan": "office"}],
        "files": [
            {
                "path": "/root/notes.txt",
                "mode": 0o640,
                "mtimeOffsetSeconds": -3600,
                "content": {"inline": base64.b64encode(inline).decode()},
            },
            {
                "path": "/home/admin/passwords.txt",
                "mode": 0o600,
                "mtimeOffsetSeconds": -864000,
                "content": {"secretKeyRef": {"name": "lures", "key": "passwords"}},
            },
        ],
    }
    fleet.create("fs-01", spec)
    files = [
        {
            "path": "/root/notes.txt",
            "mode": 0o640,
            "mtimeOffsetSeconds": -3600,
            "source": "inline",
            "name": "",
            "key": "",
            "sha256": hashlib.sha256(inline).hexdigest(),
        },
        {
            "path": "/home/admin/passwords.txt",
            "mode": 0o600,
            "mtimeOffsetSeconds": -864000,
            "source": "secret",
            "name": "lures",
            "key": "passwords",
            "sha256": "",
        },
    ]
    started = time.time()
    h1 = fleet.plan("fs-01", ["smb"], [fleet.net()], files=files)
    fleet.wait_state("fs-01", "Converged", h1, agent)
    # lures are bind-mounted into the service containers (where an attacker lands)
    base = docker_client.containers.get(names.service_container_name(namespace, "fs-01", "smb"))
    out = base.exec_run(
        ["stat", "-c", "%a %Y", "/home/admin/passwords.txt", "/root/notes.txt"]
    ).output.decode()
    (mode1, mtime1), (mode2, mtime2) = (line.split() for line in out.splitlines())
    assert mode1 == "600" and abs(int(mtime1) - (started - 864000)) < 60
    assert mode2 == "640" and abs(int(mtime2) - (started - 3600)) < 60
    assert base.exec_run(["cat", "/home/admin/passwords.txt"]).output.decode() == secret_text

    h2 = fleet.plan("fs-01", ["smb"], [fleet.net()], files=files[:1])
    fleet.wait_state("fs-01", "Converged", h2, agent)
    # a path gone is a bind mount gone: the service container was recreated without it
    base = docker_client.containers.get(names.service_container_name(namespace, "fs-01", "smb"))
    assert base.exec_run(["test", "-e", "/home/admin/passwords.txt"]).exit_code == 1
    assert secret_text not in agent.text() and "inline-lure" not in agent.text()
    assert secret_text not in json.dumps(fleet.get("fs-01").get("status"))


def test_drift_is_repaired_within_the_resync_period(
    start_agent: Callable[[], AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    namespace: str,
) -> None:
    agent = start_agent()
    fleet = fleet_factory(agent)
    fleet.create("ws-01")
    h1 = fleet.plan("ws-01", ["smb", "rdp"], [fleet.net()])
    fleet.wait_state("ws-01", "Converged", h1, agent)
    smb = names.service_container_name(namespace, "ws-01", "smb")
    rdp = names.service_container_name(namespace, "ws-01", "rdp")
    before = docker_ids(docker_client, namespace)
    docker_client.containers.get(smb).remove(force=True)
    docker_client.containers.get(rdp).stop(timeout=1)

    def repaired() -> bool:
        ids = docker_ids(docker_client, namespace)
        return (
            smb in ids
            and docker_client.containers.get(smb).status == "running"
            and (docker_client.containers.get(rdp).status == "running")
        )

    wait_for(repaired, RESYNC * 3 + 10, "smb recreated and rdp restarted", agent)
    after = docker_ids(docker_client, namespace)
    assert after[smb] != before[smb]
    assert after[rdp] == before[rdp]


def test_deletion_removes_containers_then_networks_and_reports_removed(
    start_agent: Callable[[], AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    kube_client: Any,
    namespace: str,
) -> None:
    agent = start_agent()
    fleet = fleet_factory(agent)
    fleet.create("ws-01", finalizers=[names.FINALIZER])
    h1 = fleet.plan("ws-01", ["smb", "rdp"], [fleet.net()])
    fleet.wait_state("ws-01", "Converged", h1, agent)
    kube_client.delete(Decky, "ws-01", namespace=namespace)
    obj = fleet.wait_state("ws-01", "Removed", h1, agent)
    assert obj["status"]["containers"] == []
    assert docker_ids(docker_client, namespace) == {}
    label = f"{names.LABEL_NAMESPACE}={namespace}"
    assert docker_client.networks.list(filters={"label": label}) == []
    kube_client.patch(
        Decky,
        "ws-01",
        {"metadata": {"finalizers": None}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )


def test_a_container_whose_decky_cannot_be_named_is_reaped_only_after_the_grace_period(
    start_agent: Callable[..., AgentProc],
    docker_client: Any,
    test_image: str,
    namespace: str,
) -> None:
    agent = start_agent()
    # ours by its labels, but no decky name: the API server cannot confirm it is gone
    labels = {
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_AGENT_NODE: agent.node,
        names.LABEL_UID: str(uuid.uuid4()),
        names.LABEL_ROLE: names.ROLE_SERVICE,
        names.LABEL_NAMESPACE: namespace,
    }
    stray = docker_client.containers.create(
        test_image, SLEEP, labels=labels, name=f"stray-{uuid.uuid4().hex[:8]}"
    )
    seen_at = time.monotonic()
    try:
        wait_for(
            lambda: docker_ids(docker_client, namespace) == {},
            GRACE + RESYNC * 3 + 10,
            "the stray container reaped",
            agent,
        )
        assert time.monotonic() - seen_at >= GRACE - 0.5
    finally:
        try:
            stray.remove(force=True)
        except Exception:  # noqa: BLE001 - already reaped
            pass


def test_a_returning_agent_removes_at_once_what_was_deleted_or_moved_while_it_was_down(
    start_agent: Callable[..., AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    kube_client: Any,
    namespace: str,
) -> None:
    # an orphan grace far beyond the test: only the API server's confirmation removes them
    agent = start_agent(orphan_grace=3600)
    fleet = fleet_factory(agent)
    for name, host in (("stays", 10), ("moved", 11), ("deleted", 12)):
        fleet.create(name, spec={"services": ["smb"], "networks": [{"lan": "office"}]})
        plan_hash = fleet.plan(name, ["smb"], [fleet.net(host=host)])
        fleet.wait_state(name, "Converged", plan_hash, agent)
    before = docker_ids(docker_client, namespace)
    assert len(before) == 6

    agent.kill()  # the node is lost: its containers keep running
    # meanwhile the operator moved one decky to another node and released a deleted one
    kube_client.patch(
        Decky,
        "moved",
        {"metadata": {"labels": {names.LABEL_NODE: "node-elsewhere"}}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    fleet.plan("moved", ["smb"], [fleet.net(host=11)], node="node-elsewhere")
    kube_client.delete(Decky, "deleted", namespace=namespace)

    back = start_agent(orphan_grace=3600)  # the same node's agent returns
    wait_for(
        lambda: (
            set(docker_ids(docker_client, namespace))
            == {n for n in before if n.startswith(names.base_container_name(namespace, "stays"))}
        ),
        30,
        "the moved and the deleted decky's containers removed",
        back,
    )
    # what stays on the node was not touched
    assert {n: i for n, i in docker_ids(docker_client, namespace).items()} == {
        n: i
        for n, i in before.items()
        if n.startswith(names.base_container_name(namespace, "stays"))
    }
    assert "orphan.confirmed" in back.text()


def test_a_docker_error_is_reported_as_failed_with_its_text(
    start_agent: Callable[[], AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
) -> None:
    agent = start_agent()
    fleet = fleet_factory(agent)
    fleet.create("bad")
    h1 = fleet.plan("bad", ["smb"], [fleet.net()], image="decnet-none/missing:0.0.1")
    obj = fleet.wait_state("bad", "Failed", h1, agent)
    message = obj["status"]["agent"]["message"]
    assert "decnet-none/missing:0.0.1" in message and len(message) <= 2000


def test_a_service_that_exits_at_once_is_reported_failed_with_its_exit_code_and_backed_off(
    start_agent: Callable[[], AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    namespace: str,
) -> None:
    agent = start_agent()
    fleet = fleet_factory(agent)
    fleet.create("crash")
    h1 = fleet.plan(
        "crash", ["smb", "crashy"], [fleet.net()], commands={"crashy": ["sh", "-c", "exit 3"]}
    )
    obj = fleet.wait_state("crash", "Failed", h1, agent)
    report = obj["status"]["agent"]
    assert report["reason"] == "ServiceExited"
    assert report["message"] == "service crashy exited (exit code 3) after start"
    rows = {c["service"]: c["state"] for c in obj["status"]["containers"]}
    assert rows == {"": "running", "smb": "running", "crashy": "exited"}

    # restarted with backoff, not on every resync (every 2 s here) nor in a hot loop
    since = time.time()
    time.sleep(20)
    until = time.time()
    labels = [f"{names.LABEL_NAMESPACE}={namespace}", f"{names.LABEL_DECKY}=crash"]
    events = docker_client.api.events(
        since=int(since),
        until=int(until) + 1,
        filters={"type": "container", "label": labels},
        decode=True,
    )
    starts = [e for e in events if e.get("Action") == "start" and e.get("time", 0) >= since]
    print(f"crash: {len(starts)} container starts in {until - since:.0f} s after the report")
    assert 1 <= len(starts) <= 5, len(starts)
    assert fleet.agent_report("crash")["state"] == "Failed"


def test_sigkill_mid_deploy_of_20_then_restart_converges_without_duplicates_or_recreates(
    start_agent: Callable[[], AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    namespace: str,
) -> None:
    agent = start_agent()
    fleet = fleet_factory(agent)
    hashes = {}
    for i in range(20):
        fleet.create(f"d{i:02d}")
        hashes[f"d{i:02d}"] = fleet.plan(f"d{i:02d}", ["smb", "rdp"], [fleet.net(host=10 + i)])
    wait_for(lambda: len(docker_ids(docker_client, namespace)) >= 15, 60, "deploy under way", agent)
    agent.kill()
    at_kill = docker_ids(docker_client, namespace)
    assert len(at_kill) < 60, "the agent finished before it was killed; kill earlier"

    restarted = start_agent()
    for name, plan_hash in hashes.items():
        fleet.wait_state(name, "Converged", plan_hash, restarted, timeout=120)
    final = docker_ids(docker_client, namespace)
    assert len(final) == 60
    for name in hashes:
        assert len(docker_ids(docker_client, namespace, name)) == 3
    kept = {n: i for n, i in at_kill.items() if final.get(n) == i}
    # every container that existed at the kill is still the same container
    assert kept == at_kill
    listed = docker_client.api.containers(
        all=True, filters={"label": f"{names.LABEL_NAMESPACE}={namespace}"}
    )
    assert [c["Names"][0] for c in listed if c["State"] != "running"] == []


# --------------------------------------------------------------------------- identity and node binding


def _client_as(kubeconfig: str) -> Any:
    from lightkube import Client, KubeConfig

    return Client(KubeConfig.from_file(kubeconfig), field_manager=names.AGENT_MANAGER)


def _status_patch(client: Any, ns: str, name: str, status: dict[str, Any]) -> Any:
    body = {
        "apiVersion": names.API_VERSION,
        "kind": "Decky",
        "metadata": {"name": name, "namespace": ns},
        "status": status,
    }
    return client.patch(
        Decky.Status,
        name,
        body,
        namespace=ns,
        patch_type=PatchType.APPLY,
        field_manager=names.AGENT_MANAGER,
        force=True,
    )


def test_the_agent_under_the_charts_rbac_keeps_its_lease_and_creates_no_namespace(
    start_agent: Callable[..., AgentProc], kube_client: Any, identities: Any
) -> None:
    """The chart's agent identity (helm template RBAC, node-bound token) gets its Lease.

    Before the fix the agent first created namespace decnet-system (403: the chart
    grants no namespace writes) and renewed by server-side apply, which the Role did
    not grant: no Lease, no live node, no decky ever scheduled.
    """
    from lightkube import ApiError
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    agent = start_agent()
    ns = identities.namespace

    def lease() -> Any:
        try:
            return kube_client.get(Lease, names.lease_name(agent.node), namespace=ns)
        except ApiError:
            return None

    found = wait_for(lease, 30, "the agent's Lease", agent)
    assert found.spec.holderIdentity == agent.node
    renewed = found.spec.renewTime
    wait_for(
        lambda: (lease() or found).spec.renewTime > renewed, 25, "a renewal of the Lease", agent
    )
    assert "lease.renew_failed" not in agent.text()
    # The identity really is the chart's: it may not create namespaces or read the Lease.
    own = _client_as(identities.agent_kubeconfig(agent.node))
    with pytest.raises(ApiError) as denied:
        own.create(Namespace(metadata=ObjectMeta(name=f"x-{uuid.uuid4().hex[:6]}")))
    assert denied.value.status.code == 403
    with pytest.raises(ApiError) as denied:
        own.get(Lease, names.lease_name(agent.node), namespace=ns)
    assert denied.value.status.code == 403
    kube_client.delete(Lease, names.lease_name(agent.node), namespace=ns)


def test_an_agent_may_write_only_its_own_nodes_deckies_and_only_its_fields(
    start_agent: Callable[..., AgentProc],
    kube_client: Any,
    identities: Any,
    namespace: str,
) -> None:
    """Two agents, each with a token bound to its own Node: each reports its own decky;
    the chart's ValidatingAdmissionPolicy refuses A's identity writing B's decky or the
    operator's part of its own."""
    from lightkube import ApiError

    node_a, node_b = f"node-a-{uuid.uuid4().hex[:4]}", f"node-b-{uuid.uuid4().hex[:4]}"
    running_a, running_b = start_agent(node_a), start_agent(node_b)
    fleet_a = Fleet(kube_client, namespace, node_a)
    fleet_b = Fleet(kube_client, namespace, node_b)
    fleet_a.create("mine")
    fleet_b.create("theirs")
    h_a = fleet_a.plan("mine", ["smb"], [fleet_a.net()])
    h_b = fleet_b.plan("theirs", ["smb"], [fleet_a.net(host=11)])
    fleet_a.wait_state("mine", "Converged", h_a, running_a)
    fleet_b.wait_state("theirs", "Converged", h_b, running_b)
    before_b = fleet_b.agent_report("theirs")
    agent_a = _client_as(identities.agent_kubeconfig(node_a))
    report = {"agent": {"node": node_a, "state": "Converged", "planHash": "x"}}

    # its own decky, its own field: admitted
    _status_patch(agent_a, namespace, "mine", report)
    assert fleet_a.agent_report("mine")["node"] == node_a

    # another node's decky: refused by the policy
    with pytest.raises(ApiError) as denied:
        _status_patch(agent_a, namespace, "theirs", report)
    assert denied.value.status.code == 403
    assert f'may not write the status of a decky of node "{node_b}"' in str(
        denied.value.status.message
    )
    assert fleet_b.agent_report("theirs") == before_b
    running_a.stop()  # it would repair its own report; the forged one was only a probe

    # its own decky, but the operator's plan: refused
    with pytest.raises(ApiError) as denied:
        _status_patch(agent_a, namespace, "mine", {"node": node_a, "planHash": "forged"})
    assert denied.value.status.code == 403
    assert "may write only status.agent" in str(denied.value.status.message)
    assert (fleet_a.get("mine")["status"]["planHash"]) != "forged"


def test_an_agent_ignores_a_decky_labelled_for_it_but_scheduled_on_another_node(
    start_agent: Callable[..., AgentProc],
    fleet_factory: Callable[[AgentProc], Fleet],
    docker_client: Any,
    namespace: str,
) -> None:
    agent = start_agent()
    fleet = fleet_factory(agent)
    fleet.create("control")
    fleet.create("stray")  # labelled for this node by hand; the operator put it elsewhere
    fleet.plan("stray", ["smb"], [fleet.net(host=20)], node="some-other-node")
    h = fleet.plan("control", ["smb"], [fleet.net(host=10)])
    fleet.wait_state("control", "Converged", h, agent)
    time.sleep(RESYNC * 2 + 1)  # a resync pass visits every decky again
    assert docker_ids(docker_client, namespace, "stray") == {}
    assert "agent" not in (fleet.get("stray").get("status") or {})
    assert "decky.not_ours" in agent.text()


def test_a_release_in_another_namespace_keeps_its_leases_there(
    kubeconfig: str, crds: list[str], test_image: str, kube_client: Any, tmp_path: Path
) -> None:
    """The system namespace is the chart's release namespace, not a fixed name."""
    import chart_identities
    from lightkube import ApiError

    release = f"alt{uuid.uuid4().hex[:4]}"
    ids = chart_identities.install(kubeconfig, tmp_path, release=release, namespace=f"{release}-ns")
    node = f"node-{uuid.uuid4().hex[:6]}"
    agent = AgentProc(ids.agent_kubeconfig(node), node, tmp_path, ids.namespace)
    agent.start()
    try:

        def lease() -> Any:
            try:
                return kube_client.get(Lease, names.lease_name(node), namespace=ids.namespace)
            except ApiError:
                return None

        assert wait_for(lease, 30, f"the Lease in {ids.namespace}", agent)
        assert "lease.renew_failed" not in agent.text()
    finally:
        agent.stop()
        ids.uninstall_nodes()
        docs = chart_identities.rbac_objects(chart_identities.render(release, ids.namespace))
        for doc in docs:
            kind, name = doc["kind"], doc["metadata"]["name"]
            ns = doc["metadata"].get("namespace")
            ids.kubectl("delete", kind, name, *(["-n", ns] if ns else []), check=False)
