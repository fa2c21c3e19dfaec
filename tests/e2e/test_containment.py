"""Containment, as an attacker inside a decky sees it.

`docker exec` into a service container stands in for the shell an attacker got. The
deckies are deployed the user's way (kubectl apply -> operator -> agent) by an agent of
this module's own with its firewall on. "The world" is a network namespace this module
creates (a veth into it holding TEST-NET addresses with a listener); nothing is ever
sent off this machine. Everything made here (netns, veth, routes, iptables chains,
containers, the ServiceTemplates) is removed at the end, and that is checked.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import Cluster, Proc, env_for, wait_for

from decnet.agent import egress
from decnet.kube import names

pytestmark = pytest.mark.e2e

WORLD_PORT, WORLD_CLOSED_PORT = 8080, 8081
NODE_PORT_BANNER = b"node-listener\n"
WORLD_BANNER = "world"
TEMPLATE = f"ct-{uuid.uuid4().hex[:6]}"  # a shell-like service, hardened by default
WRITABLE = f"ctw-{uuid.uuid4().hex[:6]}"  # same, with a writable root (forged-manifest test)

WORLD_SERVER = """
import socket, sys, threading
def serve(addr, port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(b"world\\n"); c.close()
for spec in sys.argv[1:]:
    addr, port = spec.rsplit(":", 1)
    threading.Thread(target=serve, args=(addr, int(port)), daemon=True).start()
threading.Event().wait()
"""


def sh(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=60)


def chains_of(node: str) -> list[str]:
    prefix = egress.chain_prefix(node)
    out = sh(["iptables", "-w", "-S"]).stdout + sh(["ip6tables", "-w", "-S"]).stdout
    return [line for line in out.splitlines() if prefix in line]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, str]]:
    """A netns holding a TEST-NET-2 address (and one in a denied range) with listeners."""
    tag = uuid.uuid4().hex[:6]
    netns, host_if, ns_if = f"dnw{tag}", f"vw{tag}a", f"vw{tag}b"
    base = 4 * random.randint(1, 60)
    world_ip, host_ip = f"198.51.100.{base + 1}", f"198.51.100.{base + 2}"
    denied_ip = f"10.96.{random.randint(1, 250)}.{random.randint(2, 250)}"  # a "Service" IP
    proc: subprocess.Popen[bytes] | None = None
    try:
        sh(["ip", "netns", "add", netns])
        sh(["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if])
        sh(["ip", "link", "set", ns_if, "netns", netns])
        sh(["ip", "addr", "add", f"{host_ip}/30", "dev", host_if])
        sh(["ip", "link", "set", host_if, "up"])
        sh(["ip", "route", "add", f"{denied_ip}/32", "dev", host_if])
        inside = ["ip", "netns", "exec", netns]
        sh([*inside, "ip", "addr", "add", f"{world_ip}/30", "dev", ns_if])
        sh([*inside, "ip", "addr", "add", f"{denied_ip}/32", "dev", ns_if])
        sh([*inside, "ip", "link", "set", ns_if, "up"])
        sh([*inside, "ip", "link", "set", "lo", "up"])
        sh([*inside, "ip", "route", "add", "default", "via", host_ip])
        listen = [f"{world_ip}:{WORLD_PORT}", f"{world_ip}:{WORLD_CLOSED_PORT}"]
        listen.append(f"{denied_ip}:{WORLD_PORT}")
        proc = subprocess.Popen([*inside, sys.executable, "-c", WORLD_SERVER, *listen])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if sh([*inside, "ss", "-ltn"], False).stdout.count(f":{WORLD_PORT}") >= 2:
                break
            time.sleep(0.2)
        yield {"ip": world_ip, "host_ip": host_ip, "denied_ip": denied_ip, "netns": netns}
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
        sh(["ip", "route", "del", f"{denied_ip}/32"], check=False)
        sh(["ip", "link", "del", host_if], check=False)
        sh(["ip", "netns", "del", netns], check=False)
        assert netns not in sh(["ip", "netns", "list"]).stdout
        assert host_if not in sh(["ip", "-o", "link"]).stdout


@pytest.fixture(scope="module")
def node_listener() -> Iterator[int]:
    """A TCP listener on every address of the node (what an attacker would look for)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(64)
    server.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(NODE_PORT_BANNER)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    server.close()


@pytest.fixture(scope="module")
def templates(kubectl: Any, service_templates: None, test_image: str) -> Iterator[None]:
    command = ["httpd", "-f", "-p", "80", "-h", "/etc"]
    docs = [
        {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "ServiceTemplate",
            "metadata": {"name": TEMPLATE},
            "spec": {
                "image": test_image,
                "command": command,
                "ports": [{"port": 80}],
                "security": {"pidsLimit": 64, "memoryMiB": 64},
            },
        },
        {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "ServiceTemplate",
            "metadata": {"name": WRITABLE},
            "spec": {
                "image": test_image,
                "command": command,
                "ports": [{"port": 80}],
                "security": {"readOnlyRootFilesystem": False},
            },
        },
    ]
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    yield
    kubectl("delete", "servicetemplate", TEMPLATE, WRITABLE, "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def contained_agent(
    identities: Any, kubectl: Any, operator: Proc, docker_client: Any, logdir: Path
) -> Iterator[Proc]:
    """An agent of this module's own, with the firewall on and a private state dir, under the
    chart's agent ServiceAccount (a token bound to its node), like every agent in the tests."""
    node = f"ct-{uuid.uuid4().hex[:6]}"
    # neutral: the path shows in the deckies' /proc/self/mountinfo (checked below)
    state = tempfile.mkdtemp(prefix="cfiles-")
    argv = [sys.executable, "-m", "decnet.agent", "--node", node, "--metrics-port", "0"]
    argv += ["--resync-seconds", "5", "--orphan-grace-seconds", "5", "--firewall"]
    argv += ["--state-dir", state, "--log-max-size", "1m", "--log-max-files", "2"]
    env = env_for(
        identities.agent_kubeconfig(node),
        NODE_NAME=node,
        DECNET_SYSTEM_NAMESPACE=identities.namespace,
    )
    proc = Proc(f"agent-{node}", argv, env, logdir)
    proc.node = node  # type: ignore[attr-defined]
    proc.start()
    lease = f"decnet-agent-{node}"
    try:
        wait_for(
            lambda: (
                kubectl("get", "lease", lease, "-n", identities.namespace, check=False).returncode
                == 0
            ),
            60,
            "the contained agent's lease",
            proc,
        )
        yield proc
    finally:
        proc.stop()
        done = subprocess.run(
            [sys.executable, "-m", "decnet.agent", "--node", node, "--cleanup-firewall"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert chains_of(node) == [], "the agent's iptables rules are left behind"
        kubectl("delete", "lease", lease, "-n", "decnet-system", "--ignore-not-found", check=False)
        subprocess.run(["rm", "-rf", state], check=False)


@pytest.fixture
def ct(
    kubectl: Any,
    namespace: str,
    docker_client: Any,
    operator: Proc,
    contained_agent: Proc,
    templates: None,
) -> Cluster:
    if not contained_agent.alive():
        contained_agent.start()
    node = contained_agent.node  # type: ignore[attr-defined]
    return Cluster(kubectl, namespace, docker_client, operator, contained_agent, node)


# --------------------------------------------------------------------------- helpers


def subnet() -> str:
    return f"10.{random.randint(150, 250)}.{random.randint(0, 250)}.0/24"


def shell(ct: Cluster, decky: str, service: str = TEMPLATE) -> Any:
    """The service container an attacker landed in."""
    return ct.docker.containers.get(names.service_container_name(ct.ns, decky, service))


def attempt(container: Any, ip: str, port: int, timeout: int = 3) -> tuple[int, str]:
    """Connect like an attacker would (busybox nc); (exit code, what came back)."""
    code, out = container.exec_run(["sh", "-c", f"nc -w {timeout} {ip} {port} </dev/null"])
    return int(code), out.decode(errors="replace")


def reaches(container: Any, ip: str, port: int, banner: str) -> bool:
    return banner in attempt(container, ip, port)[1]


def http_ok(container: Any, ip: str, timeout: int = 3) -> bool:
    """A GET to the peer's httpd (busybox wget segfaults in this image: nc instead)."""
    cmd = f"printf 'GET /passwd HTTP/1.0\\r\\n\\r\\n' | nc -w {timeout} {ip} 80"
    out = container.exec_run(["sh", "-c", cmd]).output
    return b"200 OK" in out and b"root:" in out


def ip_of(ct: Cluster, decky: str, lan: str = "lan") -> str:
    for address in ct.status(decky).get("addresses", []):
        if address["lan"] == lan:
            return str(address["ip"])
    raise AssertionError(f"{decky} has no address on {lan}")


def gateway(cidr: str) -> str:
    return cidr.rsplit(".", 1)[0] + ".1"


def node_address() -> str:
    out = sh(["ip", "-4", "-o", "addr", "show", "scope", "global"]).stdout
    for line in out.splitlines():
        iface, addr = line.split()[1], line.split()[3].split("/")[0]
        if not iface.startswith(("dn", "br-", "docker", "veth", "vw")):
            return addr
    raise AssertionError("no global IPv4 address on the node")


# --------------------------------------------------------------------------- the network


def test_an_attacker_reaches_its_peers_and_nothing_of_the_node_cluster_or_world(
    ct: Cluster, world: dict[str, str], node_listener: int, control_plane: dict[str, Any]
) -> None:
    office, dmz = subnet(), subnet()
    ct.apply(
        ct.lan("lan", office),
        ct.lan("dmz", dmz, dmz=True),
        ct.decky("ws-01", [TEMPLATE]),
        ct.decky("ws-02", [TEMPLATE]),
        ct.decky("gw-01", [TEMPLATE], lan="dmz"),
    )
    ct.wait_ready(["ws-01", "ws-02", "gw-01"], timeout=180)
    attacker, edge = shell(ct, "ws-01"), shell(ct, "gw-01")

    # its own LAN peers answer (the peer's httpd serves /etc)
    peer = ip_of(ct, "ws-02")
    assert http_ok(attacker, peer)

    # the node: a listener on every node address, the bridge gateways included
    node_ips = [gateway(office), gateway(dmz), node_address(), world["host_ip"]]
    host = socket.create_connection(("127.0.0.1", node_listener), timeout=5)
    assert host.recv(64) == NODE_PORT_BANNER  # the listener itself works
    host.close()
    control = ct.docker.containers.run(
        "decnet-test/busybox:latest",
        ["sh", "-c", f"nc -w 3 {node_address()} {node_listener} </dev/null"],
        remove=True,
    )
    assert NODE_PORT_BANNER in control  # a container that is not a decky does reach it
    for who in (attacker, edge):
        for ip in node_ips:
            code, out = attempt(who, ip, node_listener)
            assert NODE_PORT_BANNER.decode() not in out, f"reached the node at {ip}"

    # the API server (the test control plane's port on the host)
    kubeconfig = yaml.safe_load(Path(str(control_plane["kubeconfig"])).read_text())
    api_port = int(str(kubeconfig["clusters"][0]["cluster"]["server"]).rsplit(":", 1)[-1])
    for ip in node_ips:
        code, _ = attempt(attacker, ip, api_port)
        assert code != 0, f"reached the API server port at {ip}"

    # the world, from an internal LAN and from a DMZ without an egress allowance
    for who in (attacker, edge):
        assert not reaches(who, world["ip"], WORLD_PORT, WORLD_BANNER)
    # a cluster Service address, even routed to a real listener
    assert not reaches(edge, world["denied_ip"], WORLD_PORT, WORLD_BANNER)

    # link-local / metadata addresses
    code, _ = attempt(edge, "169.254.169.254", 80)
    assert code != 0


def test_a_lans_egress_allowance_opens_exactly_what_it_lists(
    ct: Cluster, world: dict[str, str]
) -> None:
    dmz = subnet()
    ct.apply(ct.lan("dmz", dmz, dmz=True), ct.decky("gw-01", [TEMPLATE], lan="dmz"))
    ct.wait_ready(["gw-01"], timeout=180)
    edge = shell(ct, "gw-01")
    assert not reaches(edge, world["ip"], WORLD_PORT, WORLD_BANNER)

    allowance = [
        {
            "cidr": f"{world['ip']}/32",
            "protocol": "tcp",
            "ports": [WORLD_PORT],
            "description": "test: the decoy's update server",
        },
        {
            "cidr": "10.96.0.0/12",
            "protocol": "tcp",
            "ports": [WORLD_PORT],
            "description": "test: a denied range stays denied",
        },
    ]
    ct.apply(ct.lan("dmz", dmz, dmz=True, egress=allowance))
    wait_for(
        lambda: reaches(edge, world["ip"], WORLD_PORT, WORLD_BANNER),
        90,
        "the egress allowance to take effect",
        ct.agent,
    )
    assert not reaches(edge, world["ip"], WORLD_CLOSED_PORT, WORLD_BANNER)  # not listed
    assert not reaches(edge, world["denied_ip"], WORLD_PORT, WORLD_BANNER)  # always denied

    # and taken back
    ct.apply(ct.lan("dmz", dmz, dmz=True, egress=[]))
    wait_for(
        lambda: not reaches(edge, world["ip"], WORLD_PORT, WORLD_BANNER),
        90,
        "the egress allowance to be withdrawn",
        ct.agent,
    )


def test_egress_is_refused_on_a_lan_that_is_not_a_dmz_bridge(ct: Cluster) -> None:
    rule = {"cidr": "198.51.100.0/24", "description": "x"}
    refused = ct.apply(ct.lan("lan", subnet(), egress=[rule]), check=False)
    assert refused.returncode != 0
    assert "spec.egress needs a DMZ bridge LAN" in refused.stderr


def test_a_lan_outside_the_topology_is_out_of_reach(ct: Cluster) -> None:
    inside, outside = subnet(), subnet()
    ct.apply(
        ct.lan("lan", inside),
        ct.lan("other", outside),
        ct.decky("ws-01", [TEMPLATE]),
        ct.decky("fs-01", [TEMPLATE], lan="other"),
    )
    ct.wait_ready(["ws-01", "fs-01"], timeout=180)
    attacker = shell(ct, "ws-01")
    target = ip_of(ct, "fs-01", "other")
    assert not http_ok(attacker, target)
    assert http_ok(shell(ct, "fs-01"), target)  # the target is up


# --------------------------------------------------------------------------- the container


def test_the_root_filesystem_is_read_only_and_scratch_space_is_noexec(ct: Cluster) -> None:
    ct.apply(ct.lan("lan", subnet()), ct.decky("ws-01", [TEMPLATE]))
    ct.wait_ready(["ws-01"], timeout=180)
    attacker = shell(ct, "ws-01")
    for path in ("/evil", "/etc/cron.d-evil", "/bin/evil"):
        code, out = attacker.exec_run(["sh", "-c", f"echo x > {path}"])
        assert code != 0, f"wrote {path}"
        assert b"Read-only file system" in out
    assert attacker.exec_run(["sh", "-c", "echo x > /tmp/ok"]).exit_code == 0
    # a dropped binary does not run from the scratch space
    code, _ = attacker.exec_run(["sh", "-c", "cp /bin/busybox /tmp/bb && /tmp/bb true"])
    assert code != 0
    # no capabilities at all in the attacker's shell
    status = attacker.exec_run(["cat", "/proc/self/status"]).output.decode()
    caps = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if "Cap" in line}
    assert int(caps["CapEff"], 16) == 0
    assert int(caps["CapBnd"], 16) == 0
    assert "NoNewPrivs:\t1" in status


def test_a_fork_bomb_stops_at_the_pids_limit_and_leaves_the_rest_alone(ct: Cluster) -> None:
    ct.apply(
        ct.lan("lan", subnet()),
        ct.decky("ws-01", [TEMPLATE]),
        ct.decky("ws-02", [TEMPLATE]),
    )
    ct.wait_ready(["ws-01", "ws-02"], timeout=180)
    attacker, bystander = shell(ct, "ws-01"), shell(ct, "ws-02")
    peer = ip_of(ct, "ws-02")
    attacker.exec_run(["sh", "-c", "bomb() { bomb | bomb & }; bomb"], detach=True)
    time.sleep(8)
    attacker.reload()
    pids = ct.docker.api.inspect_container(attacker.id)["HostConfig"]["PidsLimit"]
    assert pids == 64  # the template's security.pidsLimit
    stats = ct.docker.api.stats(attacker.id, stream=False)
    assert stats["pids_stats"]["current"] <= 64
    # the node and the other decky carry on
    started = time.monotonic()
    assert http_ok(bystander, peer, timeout=5)
    assert time.monotonic() - started < 5
    sh(["true"])
    # and new deckies still come up
    ct.apply(ct.decky("ws-03", [TEMPLATE]))
    ct.wait_ready(["ws-03"], timeout=180)
    ct.docker.api.kill(attacker.id)  # the agent repairs it; the namespace clean-up removes it


def test_a_1gb_log_flood_stays_within_the_log_cap(ct: Cluster) -> None:
    ct.apply(ct.lan("lan", subnet()), ct.decky("ws-01", [TEMPLATE]))
    ct.wait_ready(["ws-01"], timeout=180)
    attacker = shell(ct, "ws-01")
    # the container's own stdout is what Docker logs: PID 1's fd 1
    flood = (
        "yes AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA | head -c 1073741824"
    )
    started = time.monotonic()
    code, out = attacker.exec_run(["sh", "-c", f"{flood} > /proc/1/fd/1"])
    took = time.monotonic() - started
    assert code == 0, out
    log_path = Path(ct.docker.api.inspect_container(attacker.id)["LogPath"])
    total = sum(p.stat().st_size for p in log_path.parent.glob(log_path.name + "*"))
    cap = 2 * 1024 * 1024  # the agent's --log-max-size 1m x --log-max-files 2
    assert total <= cap + 256 * 1024, f"{total} bytes of log after 1 GiB in {took:.0f} s"
    print(f"1 GiB flood in {took:.1f} s left {total} bytes of log (cap {cap})")


def test_a_forged_manifest_and_a_2gb_file_in_a_decky_do_not_touch_the_agent(
    ct: Cluster,
) -> None:
    lure = {
        "path": "/home/admin/passwords.txt",
        "mode": 0o600,
        "content": {"inline": "YWRtaW46V2ludGVyMjAyNCEK"},  # admin:Winter2024!
    }
    ct.apply(
        ct.lan("lan", subnet()),
        ct.decky("ws-01", [WRITABLE], files=[lure]),
    )
    ct.wait_ready(["ws-01"], timeout=180)
    attacker = shell(ct, "ws-01", WRITABLE)
    # what the agent used to trust: a manifest claiming 2,000 files, then garbage
    script = (
        "mkdir -p /.decnet && i=0 && { printf '{'; while [ $i -lt 2000 ]; do "
        'printf \'"/x%d":"%064d",\' $i 0; i=$((i+1)); done; } > /.decnet/files.json && '
        "head -c 100000 /dev/urandom >> /.decnet/files.json && "
        "dd if=/dev/zero of=/.decnet/huge bs=1M count=1 seek=2047 2>/dev/null && "
        "ln -sf /.decnet/huge /home/admin/evil"
    )
    code, out = attacker.exec_run(["sh", "-c", script])
    assert code == 0, out
    # a converge of that decky (new lure content) and a new decky, both promptly
    lure["content"] = {"inline": "YWRtaW46U3ByaW5nMjAyNSEK"}  # admin:Spring2025!
    started = time.monotonic()
    ct.apply(ct.decky("ws-01", [WRITABLE], files=[lure]), ct.decky("ws-02", [TEMPLATE]))

    def updated() -> bool:
        out = attacker.exec_run(["cat", "/home/admin/passwords.txt"]).output
        return b"Spring2025" in out

    wait_for(updated, 60, "the lure's new content", ct.agent)
    # the lure's mount gives nothing away
    mountinfo = attacker.exec_run(["cat", "/proc/self/mountinfo"]).output.decode().lower()
    assert "/home/admin/passwords.txt" in mountinfo
    for tell in ("decnet", "lure", "honeypot", "decoy"):
        assert tell not in mountinfo
    ct.wait_ready(["ws-01", "ws-02"], timeout=60)
    took = time.monotonic() - started
    assert ct.agent.alive()
    assert took < 30, f"converging next to a hostile decky took {took:.1f} s"
    log = ct.agent.log.read_text(errors="replace")
    assert "converge.crashed" not in log
    # the agent read nothing of it: its memory stayed small
    rss_kib = int(
        next(
            line.split()[1]
            for line in Path(f"/proc/{ct.agent.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS")
        )
    )
    assert rss_kib < 400 * 1024


def test_nothing_of_the_agent_is_left_in_iptables_for_a_node_never_seen() -> None:
    # the clean-up entry point is safe on a node with no rules at all
    node = f"none-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [sys.executable, "-m", "decnet.agent", "--node", node, "--cleanup-firewall"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "operator")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert chains_of(node) == []


# --------------------------------------------------------------------------- names


@pytest.fixture
def sibling_namespace(kubectl: Any, namespace: str) -> Iterator[str]:
    """`<namespace>-x`: with LAN/decky `yy` (a bare `y` is a YAML 1.1 boolean to kubectl) it collided with `<namespace>` + `x-yy`."""
    name = f"{namespace}-x"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        for plural in ("deckies", "lans"):
            listed = kubectl("get", plural, "-n", name, "-o", "name", check=False).stdout
            for obj in listed.split():
                kubectl(
                    "patch", obj, "-n", name, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}', check=False,
                )  # fmt: skip
            kubectl("delete", plural, "--all", "-n", name, "--wait=false", check=False)
        kubectl("delete", "namespace", name, "--wait=false", check=False)
        import docker

        client = docker.from_env()
        label = f"{names.LABEL_NAMESPACE}={name}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = client.containers.list(all=True, filters={"label": label})
            nets = client.networks.list(filters={"label": label})
            # the agent is removing them too ("removal already in progress", gone): next round
            for c in left:
                try:
                    c.remove(force=True)
                except docker.errors.APIError:
                    pass
            for n in nets if not left else []:
                try:
                    n.remove()
                except docker.errors.APIError:
                    pass
            if not left and not nets:
                break
            time.sleep(0.5)
        client.close()


def test_the_namespace_collision_pair_gets_two_networks_and_two_container_sets(
    ct: Cluster, sibling_namespace: str
) -> None:
    # old scheme: both were decnet-<ns>-x-yy (network) and decnet-<ns>-x-yy-base
    other = Cluster(ct.kubectl, sibling_namespace, ct.docker, ct.operator, ct.agent, ct.node)
    ct.apply(ct.lan("x-yy", subnet()), ct.decky("x-yy", [TEMPLATE], lan="x-yy"))
    other.apply(other.lan("yy", subnet()), other.decky("yy", [TEMPLATE], lan="yy"))
    ct.wait_ready(["x-yy"], timeout=180)
    other.wait_ready(["yy"], timeout=180)

    mine = {c.name for c in ct.containers("x-yy")}
    theirs = {c.name for c in other.containers("yy")}
    assert len(mine) == 2 and len(theirs) == 2
    assert not mine & theirs
    nets = {
        n.name: n.attrs["Labels"][names.LABEL_NAMESPACE]
        for n in ct.docker.networks.list(filters={"label": names.LABEL_LAN})
        if n.attrs["Labels"].get(names.LABEL_NAMESPACE) in (ct.ns, sibling_namespace)
    }
    assert nets == {
        names.network_name(ct.ns, "x-yy"): ct.ns,
        names.network_name(sibling_namespace, "yy"): sibling_namespace,
    }
    for name in (*mine, *theirs, *nets):  # Docker's DNS tells them to the deckies
        assert "decnet" not in name and ct.ns not in name, name
    # each decky sits on its own network, and both keep running side by side
    for cluster, decky, lan in ((ct, "x-yy", "x-yy"), (other, "yy", "yy")):
        base = next(c for c in cluster.containers(decky) if c.labels[names.LABEL_ROLE] == "base")
        assert list(base.attrs["NetworkSettings"]["Networks"]) == [
            names.network_name(cluster.ns, lan)
        ]
