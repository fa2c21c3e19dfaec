"""The agent's Docker runtime against the real dockerd: what `docker inspect` shows.

These drive `converge.converge` (observe -> plan -> act until nothing is left)
with hand-written plans; the Kubernetes side is covered in test_agent.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from decnet.agent import converge, lures, planner
from decnet.agent.runtime import engine as runtime
from decnet.kube import names

pytestmark = pytest.mark.integration

SLEEP = ("sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done")


@pytest.fixture
def docker_ns(docker_client: Any, test_image: str) -> Iterator[str]:
    """A namespace label for Docker objects only; removed with everything labelled with it."""
    ns = f"rt-{uuid.uuid4().hex[:8]}"
    yield ns
    label = f"{names.LABEL_NAMESPACE}={ns}"
    for c in docker_client.containers.list(all=True, filters={"label": label}):
        c.remove(force=True)
    for n in docker_client.networks.list(filters={"label": label}):
        n.remove()


@pytest.fixture
def eng(docker_client: Any, tmp_path: Any) -> runtime.Engine:
    return runtime.Engine(
        docker_client, f"node-{uuid.uuid4().hex[:6]}", lures.LureStore(str(tmp_path / "lures"))
    )


def lan(ns: str, name: str, **kw: Any) -> planner.NetworkWant:
    a, b = random.randint(150, 250), random.randint(0, 250)
    return planner.NetworkWant(
        name,
        names.network_name(ns, name),
        f"10.{a}.{b}.10",
        f"10.{a}.{b}.0/24",
        f"10.{a}.{b}.1",
        **kw,
    )


def svc(name: str, image: str = "decnet-test/busybox:latest", **kw: Any) -> planner.ServiceWant:
    return planner.ServiceWant(name, image, SLEEP, **kw)


def decky(ns: str, networks: tuple[planner.NetworkWant, ...], **kw: Any) -> planner.DeckyWant:
    base: dict[str, Any] = dict(
        namespace=ns,
        name="ws-01",
        uid=str(uuid.uuid4()),
        plan_hash="p1",
        hostname="WS-01",
        base_image="decnet/base:0.1.0",
        networks=networks,
        services=(svc("smb"), svc("rdp")),
    )
    base.update(kw)
    return planner.DeckyWant(**base)


def ids(docker_client: Any, ns: str) -> dict[str, str]:
    found = docker_client.containers.list(
        all=True, filters={"label": f"{names.LABEL_NAMESPACE}={ns}"}
    )
    return {c.name: c.id for c in found}


def converged(eng: runtime.Engine, want: planner.DeckyWant) -> converge.Outcome:
    outcome = converge.converge(eng, want)
    assert outcome.state == "Converged", outcome.message
    return outcome


def sh(docker_client: Any, container: str, cmd: str) -> str:
    result = docker_client.containers.get(container).exec_run(["sh", "-c", cmd])
    assert result.exit_code == 0, result.output
    return str(result.output.decode())


def test_deploy_creates_a_base_holding_the_ip_and_services_in_its_namespace(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    office = lan(docker_ns, "office")
    want = decky(docker_ns, (office,))
    converged(eng, want)

    base = docker_client.containers.get(want.base_name)
    assert base.status == "running"
    assert base.attrs["Config"]["Hostname"] == "WS-01"
    assert "NET_ADMIN" in base.attrs["HostConfig"]["CapAdd"]
    assert base.attrs["NetworkSettings"]["Networks"][office.network]["IPAddress"] == office.ip
    assert base.labels[names.LABEL_ROLE] == "base"
    assert base.labels[names.LABEL_UID] == want.uid
    net = docker_client.networks.get(office.network)
    assert net.attrs["Internal"] is True
    assert net.attrs["IPAM"]["Config"][0]["Subnet"] == office.subnet
    for s in ("smb", "rdp"):
        c = docker_client.containers.get(want.service_name(s))
        assert c.status == "running"
        assert c.attrs["HostConfig"]["NetworkMode"] == f"container:{base.id}"
        assert c.labels[names.LABEL_SERVICE] == s
        # the service sees the base's address: one network namespace
        assert office.ip in sh(docker_client, c.name, "ip -4 addr")
    assert len(ids(docker_client, docker_ns)) == 3


def test_adding_and_removing_a_service_leaves_sibling_ids_alone(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    want = decky(docker_ns, (lan(docker_ns, "office"),))
    converged(eng, want)
    before = ids(docker_client, docker_ns)

    added = decky(docker_ns, want.networks, uid=want.uid, services=(*want.services, svc("ldap")))
    converged(eng, added)
    after_add = ids(docker_client, docker_ns)
    assert {k: after_add[k] for k in before} == before
    assert set(after_add) - set(before) == {want.service_name("ldap")}

    removed = decky(docker_ns, want.networks, uid=want.uid, services=(svc("smb"), svc("ldap")))
    converged(eng, removed)
    after_remove = ids(docker_client, docker_ns)
    assert want.service_name("rdp") not in after_remove
    for kept in (want.base_name, want.service_name("smb"), want.service_name("ldap")):
        assert after_remove[kept] == after_add[kept]


def test_changing_one_service_recreates_only_that_container(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    want = decky(docker_ns, (lan(docker_ns, "office"),))
    converged(eng, want)
    before = ids(docker_client, docker_ns)
    changed = decky(
        docker_ns, want.networks, uid=want.uid, services=(svc("smb", config_hash="new"), svc("rdp"))
    )
    converged(eng, changed)
    after = ids(docker_client, docker_ns)
    assert after[want.service_name("smb")] != before[want.service_name("smb")]
    assert after[want.service_name("rdp")] == before[want.service_name("rdp")]
    assert after[want.base_name] == before[want.base_name]


def test_lan_attach_and_detach_are_live_on_the_running_base(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    office, lab = lan(docker_ns, "office"), lan(docker_ns, "lab")
    want = decky(docker_ns, (office,))
    converged(eng, want)
    before = ids(docker_client, docker_ns)

    attached = decky(docker_ns, (office, lab), uid=want.uid)
    converged(eng, attached)
    base = docker_client.containers.get(want.base_name)
    nets = base.attrs["NetworkSettings"]["Networks"]
    assert nets[office.network]["IPAddress"] == office.ip
    assert nets[lab.network]["IPAddress"] == lab.ip
    assert ids(docker_client, docker_ns) == before  # nothing recreated
    # a service container sees the new interface live
    assert lab.ip in sh(docker_client, want.service_name("smb"), "ip -4 addr")

    converged(eng, want)
    base.reload()
    assert set(base.attrs["NetworkSettings"]["Networks"]) == {office.network}
    assert lab.ip not in sh(docker_client, want.service_name("smb"), "ip -4 addr")
    assert ids(docker_client, docker_ns) == before


def test_files_get_mode_and_aged_mtime_and_go_when_dropped(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    content = b"admin:Winter2024!\n"
    lure = planner.FileWant(
        "/home/admin/passwords.txt", 0o600, -864000, hashlib.sha256(content).hexdigest(), content
    )
    other = planner.FileWant("/etc/motd", 0o644, 0, hashlib.sha256(b"hi\n").hexdigest(), b"hi\n")
    want = decky(docker_ns, (lan(docker_ns, "office"),), files=(lure, other))
    started = time.time()
    converged(eng, want)
    smb = want.service_name("smb")

    out = sh(docker_client, smb, "stat -c '%a %Y %s' /home/admin/passwords.txt")
    mode, mtime, size = out.split()
    assert mode == "600"
    assert int(size) == len(content)
    assert abs(int(mtime) - (started - 864000)) < 30
    assert sh(docker_client, smb, "cat /home/admin/passwords.txt").encode() == content
    # the image's own /etc is still there beside the lure (a per-file mount)
    assert "root:" in sh(docker_client, smb, "cat /etc/passwd")
    # an attacker in the container cannot change or remove a lure
    tamper = docker_client.containers.get(smb).exec_run(
        ["sh", "-c", "echo x > /home/admin/passwords.txt || rm -f /home/admin/passwords.txt"]
    )
    assert tamper.exit_code != 0
    assert sh(docker_client, smb, "cat /home/admin/passwords.txt").encode() == content

    # same plan again: nothing written again (mtime unchanged), no container touched
    before = ids(docker_client, docker_ns)
    assert converge.converge(eng, want).state == "Converged"
    assert sh(docker_client, smb, "stat -c %Y /home/admin/passwords.txt").split()[0] == mtime
    assert ids(docker_client, docker_ns) == before

    # new content on the same path: live in the running container, no recreate
    new = b"admin:Spring2025!\n"
    changed = planner.FileWant(lure.path, 0o640, -86400, hashlib.sha256(new).hexdigest(), new)
    converged(eng, dataclasses.replace(want, files=(changed, other)))
    assert ids(docker_client, docker_ns) == before
    assert sh(docker_client, smb, "cat /home/admin/passwords.txt").encode() == new
    assert sh(docker_client, smb, "stat -c %a /home/admin/passwords.txt").strip() == "640"

    dropped = dataclasses.replace(want, files=(other,))
    converged(eng, dropped)
    after = ids(docker_client, docker_ns)
    assert after[want.base_name] == before[want.base_name]  # the base is never recreated
    check = docker_client.containers.get(smb).exec_run(["test", "-e", lure.path])
    assert check.exit_code == 1
    assert sh(docker_client, smb, "cat /etc/motd") == "hi\n"


def test_a_container_removed_or_stopped_by_hand_comes_back(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    office = lan(docker_ns, "office")
    want = decky(docker_ns, (office,))
    converged(eng, want)
    before = ids(docker_client, docker_ns)

    docker_client.containers.get(want.service_name("smb")).remove(force=True)
    docker_client.containers.get(want.service_name("rdp")).stop(timeout=1)
    converged(eng, want)
    after = ids(docker_client, docker_ns)
    assert after[want.service_name("smb")] != before[want.service_name("smb")]
    assert after[want.service_name("rdp")] == before[want.service_name("rdp")]
    assert docker_client.containers.get(want.service_name("rdp")).status == "running"

    # a stopped base: started again, and its services rejoin its network namespace
    docker_client.containers.get(want.base_name).stop(timeout=1)
    converged(eng, want)
    assert ids(docker_client, docker_ns) == after
    assert office.ip in sh(docker_client, want.service_name("rdp"), "ip -4 addr")

    # the base removed by hand: a new base, and services rebuilt on it
    docker_client.containers.get(want.base_name).remove(force=True)
    converged(eng, want)
    final = ids(docker_client, docker_ns)
    assert final[want.base_name] != after[want.base_name]
    assert office.ip in sh(docker_client, want.service_name("smb"), "ip -4 addr")
    assert len(final) == 3


def test_a_restarted_agent_adopts_running_containers(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    want = decky(docker_ns, (lan(docker_ns, "office"),))
    converged(eng, want)
    before = ids(docker_client, docker_ns)
    fresh = runtime.Engine(runtime.docker.from_env(), eng.node, eng.lures)  # same node
    observed = fresh.observe_decky(docker_ns, want.name, with_files=True, uid=want.uid)
    assert planner.plan_decky(want, observed) == []
    converged(fresh, want)
    assert ids(docker_client, docker_ns) == before


def test_a_forwards_l3_flip_is_refused_then_done_with_the_annotation(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    want = decky(docker_ns, (lan(docker_ns, "dmz", dmz=True),))
    converged(eng, want)
    before = ids(docker_client, docker_ns)
    flipped = decky(docker_ns, want.networks, uid=want.uid, forwards_l3=True)
    outcome = converge.converge(eng, flipped)
    assert outcome.state == "Refused"
    assert names.ANNOTATION_ALLOW_RECREATE in outcome.message
    assert ids(docker_client, docker_ns) == before

    allowed = decky(docker_ns, want.networks, uid=want.uid, forwards_l3=True, allow_recreate=True)
    converged(eng, allowed)
    after = ids(docker_client, docker_ns)
    assert after[want.base_name] != before[want.base_name]
    assert sh(docker_client, want.base_name, "cat /proc/sys/net/ipv4/ip_forward").strip() == "1"
    dmz_net = docker_client.networks.get(want.networks[0].network)
    assert dmz_net.attrs["Internal"] is False


def test_a_missing_image_fails_with_a_clear_message(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    want = decky(
        docker_ns, (lan(docker_ns, "office"),), services=(svc("x", "127.0.0.1:9/decnet-none/missing:9"),)
    )
    with pytest.raises(runtime.DockerError) as error:
        converge.converge(eng, want)
    assert "decnet-none/missing:9" in str(error.value)
    assert "could not be pulled" in str(error.value)


def test_deletion_and_network_collection_leave_nothing_behind(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    office, lab = lan(docker_ns, "office"), lan(docker_ns, "lab")
    a = decky(docker_ns, (office, lab))
    b = decky(docker_ns, (dataclasses.replace(office, ip=office.ip[:-1] + "1"),), name="ws-02")
    converged(eng, a)
    converged(eng, b)

    assert converge.remove(eng, docker_ns, a.name, a.uid).state == "Removed"
    gc = planner.plan_gc({office.network}, eng.observe_node(), set(), {}, 0.0, 1.0)
    for action in gc:
        eng.execute(action)
    # a's containers are gone, lab went with it, office stays for b
    assert set(ids(docker_client, docker_ns)) == {
        b.base_name,
        *(b.service_name(s.name) for s in b.services),
    }
    labelled = {
        n.name
        for n in docker_client.networks.list(
            filters={"label": f"{names.LABEL_NAMESPACE}={docker_ns}"}
        )
    }
    assert labelled == {office.network}

    converge.remove(eng, docker_ns, b.name, b.uid)
    for action in planner.plan_gc(set(), eng.observe_node(), set(), {}, 0.0, 1.0):
        eng.execute(action)
    assert ids(docker_client, docker_ns) == {}
    assert (
        docker_client.networks.list(filters={"label": f"{names.LABEL_NAMESPACE}={docker_ns}"}) == []
    )


def test_orphans_are_reaped_after_their_grace_period(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    want = decky(docker_ns, (lan(docker_ns, "office"),))
    converged(eng, want)
    observed = eng.observe_node()
    first_seen = {c.id: 100.0 for c in planner.find_orphans(observed, set())}
    assert len(first_seen) == 3
    assert planner.plan_gc(set(), observed, set(), first_seen, 110.0, 60.0) == []
    assert len(ids(docker_client, docker_ns)) == 3
    for action in planner.plan_gc(set(), observed, set(), first_seen, 161.0, 60.0):
        eng.execute(action)
    assert ids(docker_client, docker_ns) == {}


@pytest.fixture
def veth() -> Iterator[str]:
    """A veth pair of our own as the macvlan parent; never the machine's uplink."""
    suffix = uuid.uuid4().hex[:6]
    a, b = f"dnA{suffix}", f"dnB{suffix}"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    subprocess.run(["ip", "link", "set", a, "up"], check=True)
    subprocess.run(["ip", "link", "set", b, "up"], check=True)
    try:
        yield a
    finally:
        subprocess.run(["ip", "link", "del", a], check=False)


def test_macvlan_lan_on_a_veth_parent(
    docker_client: Any, docker_ns: str, eng: runtime.Engine, veth: str
) -> None:
    office = lan(docker_ns, "office", driver="macvlan", parent=veth)
    want = decky(docker_ns, (office,))
    converged(eng, want)
    net = docker_client.networks.get(office.network)
    assert net.attrs["Driver"] == "macvlan"
    assert net.attrs["Options"]["parent"] == veth
    base = docker_client.containers.get(want.base_name)
    assert base.attrs["NetworkSettings"]["Networks"][office.network]["IPAddress"] == office.ip
    assert office.ip in sh(docker_client, want.service_name("smb"), "ip -4 addr")


@pytest.mark.parametrize("sep", ["-", "."], ids=["dash-scheme", "dotted-scheme"])
def test_a_decky_under_old_names_is_replaced_under_neutral_ones(
    docker_client: Any, docker_ns: str, eng: runtime.Engine, sep: str
) -> None:
    """What an agent of either earlier scheme left ("decnet-<ns>-<lan>", then
    "decnet.<ns>.<lan>"): replaced, not adopted (Docker cannot rename a network, nor hold
    two on one subnet)."""
    office = lan(docker_ns, "office")
    want = decky(docker_ns, (office,), services=(svc("smb"),))
    common = {
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_NAMESPACE: docker_ns,
        names.LABEL_AGENT_NODE: eng.node,
    }
    old_net = docker_client.networks.create(
        sep.join(("decnet", docker_ns, "office")),
        driver="bridge",
        internal=True,
        ipam=runtime.docker.types.IPAMConfig(
            pool_configs=[runtime.docker.types.IPAMPool(subnet=office.subnet)]
        ),
        labels={**common, names.LABEL_LAN: "office"},
    )
    decky_labels = {**common, names.LABEL_DECKY: want.name, names.LABEL_UID: want.uid}
    old_base = docker_client.containers.create(
        "decnet-test/busybox:latest",
        list(SLEEP),
        name=sep.join(("decnet", docker_ns, "ws-01", "base")),
        labels={**decky_labels, names.LABEL_ROLE: "base", names.LABEL_SERVICE: ""},
        network=old_net.name,
    )
    old_base.start()
    old_svc = docker_client.containers.run(
        "decnet-test/busybox:latest",
        list(SLEEP),
        name=sep.join(("decnet", docker_ns, "ws-01", "svc-smb")),
        labels={**decky_labels, names.LABEL_ROLE: "service", names.LABEL_SERVICE: "smb"},
        network_mode=f"container:{old_base.id}",
        detach=True,
    )

    converged(eng, want)
    now = ids(docker_client, docker_ns)
    assert set(now) == {want.base_name, want.service_name("smb")}
    assert old_base.id not in now.values() and old_svc.id not in now.values()
    networks = {n.name for n in docker_client.networks.list(filters={"label": names.LABEL_LAN})}
    assert office.network in networks
    assert old_net.name not in networks
    assert office.ip in sh(docker_client, want.service_name("smb"), "ip -4 addr")
    ours = docker_client.networks.list(filters={"label": f"{names.LABEL_NAMESPACE}={docker_ns}"})
    assert [n.name for n in ours] == [office.network]
    for name in (*now, office.network):
        assert "decnet" not in name and docker_ns not in name, name


@pytest.mark.parametrize("managed", [True, False], ids=["seen-by-the-planner", "unmanaged"])
def test_a_network_of_another_lan_under_the_lans_name_is_never_joined(
    docker_client: Any, docker_ns: str, eng: runtime.Engine, managed: bool
) -> None:
    """Names end in an 8-hex hash: were two (namespace, LAN) pairs to share one, even on
    one subnet, the second decky fails instead of joining the first one's network."""
    office = lan(docker_ns, "office")
    want = decky(docker_ns, (office,), services=(svc("smb"),))
    theirs = {names.LABEL_NAMESPACE: docker_ns, names.LABEL_LAN: "not-office"}
    if managed:
        theirs |= {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_AGENT_NODE: eng.node}
    foreign = docker_client.networks.create(
        office.network,
        driver="bridge",
        internal=True,
        ipam=runtime.docker.types.IPAMConfig(
            pool_configs=[runtime.docker.types.IPAMPool(subnet=office.subnet)]
        ),
        labels=theirs,
    )
    if managed:
        outcome = converge.converge(eng, want)
        assert outcome.state == "Failed" and "belongs to another LAN" in outcome.message
    else:
        with pytest.raises(runtime.DockerError, match="belongs to another LAN"):
            converge.converge(eng, want)
    assert ids(docker_client, docker_ns) == {}
    foreign.reload()
    assert foreign.attrs["Containers"] == {}


def test_egress_rules_follow_the_lans_and_leave_nothing_behind(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    """The firewall against the real iptables: hooked first, idempotent, cleaned up."""
    from decnet.agent import egress
    from decnet.agent.runtime import firewall

    office, lab = lan(docker_ns, "office"), lan(docker_ns, "lab")
    want = decky(docker_ns, (office, lab), services=(svc("smb"),))
    converged(eng, want)
    bridge = names.bridge_name(eng.node, docker_ns, "office")
    assert bridge in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    try:
        lans = egress.lans_from_plans([(docker_ns, want.networks)])
        v4, v6 = egress.wanted(eng.node, lans, egress.DEFAULT_DENIED)
        assert firewall.sync(eng.node, v4) != []
        assert firewall.sync(eng.node, v6, firewall.IPV6) != []
        # in sync: nothing to do, twice over
        assert firewall.sync(eng.node, v4) == []
        assert firewall.sync(eng.node, v6, firewall.IPV6) == []
        for builtin, chain in v4.hooks.items():
            first = subprocess.run(
                ["iptables", "-w", "-S", builtin], capture_output=True, text=True
            ).stdout.splitlines()[1]
            assert first == f"-A {builtin} -j {chain}"
        # someone flushes a chain by hand: the next sync restores it
        subprocess.run(["iptables", "-w", "-F", egress.input_chain(eng.node)], check=True)
        assert [type(a) for a in firewall.sync(eng.node, v4)] == [egress.Apply]
        # one LAN goes: its chain goes, the other stays
        fewer, _ = egress.wanted(
            eng.node, egress.lans_from_plans([(docker_ns, (office,))]), egress.DEFAULT_DENIED
        )
        done = firewall.sync(eng.node, fewer)
        assert (
            egress.DeleteChain(
                egress.lan_chain(eng.node, names.bridge_name(eng.node, docker_ns, "lab"))
            )
            in done
        )
    finally:
        firewall.cleanup(eng.node)
        firewall.cleanup(eng.node, firewall.IPV6)
    for tool in ("iptables", "ip6tables"):
        listed = subprocess.run([tool, "-w", "-S"], capture_output=True, text=True).stdout
        assert egress.chain_prefix(eng.node) not in listed


def test_a_macvlan_decky_is_kept_off_the_node_through_its_parent(
    docker_client: Any, docker_ns: str, eng: runtime.Engine, veth: str
) -> None:
    """The node's own address on the wire a macvlan LAN sits on: reachable from the
    decky without the firewall, refused with it (INPUT, by the decky's address)."""
    import socket
    import threading

    from decnet.agent import egress
    from decnet.agent.runtime import firewall

    office = lan(docker_ns, "office", driver="macvlan", parent=veth)
    want = decky(docker_ns, (office,), services=(svc("smb"),))
    converged(eng, want)
    peer = veth.replace("dnA", "dnB")  # the other end: the node's side of the "wire"
    node_ip = office.subnet.rsplit(".", 1)[0] + ".200"
    subprocess.run(["ip", "addr", "add", f"{node_ip}/24", "dev", peer], check=True)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((node_ip, 0))
    server.listen(8)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"node\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    attacker = docker_client.containers.get(want.service_name("smb"))

    def reaches() -> bool:
        out = attacker.exec_run(["sh", "-c", f"nc -w 3 {node_ip} {port} </dev/null"]).output
        return b"node" in out

    try:
        assert reaches(), "control: without the firewall the node answers on the wire"
        lans = egress.lans_from_plans([(docker_ns, want.networks)])
        v4, _ = egress.wanted(eng.node, lans, egress.DEFAULT_DENIED)
        firewall.sync(eng.node, v4)
        assert not reaches()
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
        firewall.cleanup(eng.node)


def test_a_service_that_exits_after_start_fails_the_converge_with_its_exit_code(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    crashing = planner.ServiceWant("crashy", "decnet-test/busybox:latest", ("sh", "-c", "exit 3"))
    want = decky(docker_ns, (lan(docker_ns, "office"),), services=(svc("smb"), crashing))
    # trusting Docker's start answer alone, the crash would be reported converged
    assert converge.converge(eng, want).state == "Converged"
    deadline = time.monotonic() + 30
    crashy = docker_client.containers.get(want.service_name("crashy"))
    while crashy.status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        crashy.reload()
    assert crashy.status == "exited"
    # the next round starts it again and, after the settle, sees it gone again
    outcome = converge.converge_and_settle(eng, want, settle_seconds=1.5)
    assert outcome.state == "Failed"
    assert outcome.reason == "ServiceExited"
    assert outcome.message == "service crashy exited (exit code 3) after start"
    seen = {c.name: c for c in outcome.observed.containers}
    assert seen[want.service_name("crashy")].exit_code == 3
    assert seen[want.service_name("smb")].state == "running"
    # the service was started again, not recreated, and its sibling left running
    assert seen[want.service_name("crashy")].id == crashy.id
    assert docker_client.containers.get(want.service_name("smb")).status == "running"


def test_confirming_a_container_removed_meanwhile_says_missing(
    docker_client: Any, docker_ns: str, eng: runtime.Engine
) -> None:
    want = decky(docker_ns, (lan(docker_ns, "office"),), services=(svc("smb"),))
    outcome = converged(eng, want)
    smb = next(c for c in outcome.observed.containers if c.service == "smb")
    docker_client.containers.get(smb.id).remove(force=True)
    (confirmed,) = eng.confirm([smb])
    assert (confirmed.state, confirmed.exit_code) == ("missing", None)
