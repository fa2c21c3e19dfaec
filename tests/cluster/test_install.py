"""A user's journey through the chart on a real one-node cluster, in order.

README's install lines (helm install --wait, the examples) → the operator and the agent
Running and Ready under the chart's ServiceAccounts → the agent's Lease renewed from its
pod → the fleet Ready with its containers on the host's dockerd → the webhook rejects an
IP clash through its Service → an attacker's login reaches the security team's syslog →
a mutation → a prune → `helm upgrade` with a changed value recreates no decky container
→ README's uninstall lines leave nothing behind in Docker, iptables or the API.

The tests share one installed release and run in file order; each one states what a user
would see.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cluster.kit import ROOT, Cluster, controlplane, readme_block, wait_for
from tests.e2e.receivers import Rsyslog
from tests.support import require

from decnet.controller import certs

pytestmark = pytest.mark.cluster

RELEASE_NS = "decnet-system"
DECOYS = "decoys"
ATTACKED = "ws-02"  # examples/fleet.yaml: ssh + http


@pytest.fixture(scope="module")
def installed(cluster: Cluster) -> Iterator[Cluster]:
    began = time.monotonic()
    try:
        cluster.sh(readme_block("cluster-install"))
    except AssertionError as error:
        said = cluster.kubectl(
            "get",
            "deckies",
            "-A",
            "-o",
            "custom-columns=NAME:.metadata.name,COND:.status.conditions[*].message",
            check=False,
        )
        logs = cluster.kubectl(
            "logs",
            "-n",
            RELEASE_NS,
            "-l",
            "app.kubernetes.io/component=agent",
            "--tail=30",
            check=False,
        )
        raise AssertionError(f"{error}\ndeckies:\n{said}\nagent:\n{logs}") from None
    cluster.record["install_seconds"] = round(time.monotonic() - began, 1)
    print(
        f"\nREADME install (helm install --wait, fleet Ready): {cluster.record['install_seconds']} s"
    )
    try:
        yield cluster
    finally:
        # when a test failed before the uninstall test: the same lines, best effort
        cluster.sh(readme_block("cluster-uninstall"), check=False)


def manifest(cluster: Cluster) -> list[dict[str, Any]]:
    out = cluster.sh(f"helm get manifest decnet --namespace {RELEASE_NS}")
    return [d for d in yaml.safe_load_all(out) if d]


def chart_service_accounts(cluster: Cluster) -> dict[str, str]:
    """component → ServiceAccount name, as the release's own workloads declare them."""
    accounts = {}
    for doc in manifest(cluster):
        if doc["kind"] in ("Deployment", "DaemonSet"):
            component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
            accounts[component] = doc["spec"]["template"]["spec"]["serviceAccountName"]
    return accounts


def pods(cluster: Cluster, component: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.get(
        "pods", "-n", RELEASE_NS, "-l", f"app.kubernetes.io/component={component}"
    )["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(obj: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def docker_containers(**labels: str) -> list[dict[str, Any]]:
    args = ["docker", "ps", "-a", "--no-trunc", "--format", "{{json .}}"]
    for key, value in labels.items():
        args += ["--filter", f"label={key}={value}" if value else f"label={key}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def decky_containers(decky: str) -> dict[str, str]:
    """container name → id of one decky of the decoys namespace."""
    found = docker_containers(**{"decnet.io/namespace": DECOYS, "decnet.io/decky": decky})
    return {c["Names"]: c["ID"] for c in found}


def started_at(container_ids: list[str]) -> dict[str, str]:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}}", *container_ids],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def host_addresses() -> set[str]:
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


def test_operator_and_agent_are_running_and_ready_under_the_charts_service_accounts(
    installed: Cluster,
) -> None:
    accounts = chart_service_accounts(installed)
    assert accounts == {"operator": "decnet-operator", "agent": "decnet-agent"}  # no stutter
    for component, account in accounts.items():
        running = pods(installed, component)
        assert running, f"no {component} pod"
        for pod in running:
            assert pod["status"]["phase"] == "Running", pod["status"]
            assert ready(pod), f"{component} pod not Ready: {pod['status'].get('conditions')}"
            assert pod["spec"]["serviceAccountName"] == account
            assert pod["spec"]["nodeName"] == installed.record["node"]
    # who really wrote: the API server's audit log names the ServiceAccounts, never admin
    writers = {
        e["user"]["username"]
        for e in installed.audit()
        if (e.get("objectRef") or {}).get("apiGroup") == "decnet.io"
        and (e.get("objectRef") or {}).get("subresource") == "status"
    }
    assert f"system:serviceaccount:{RELEASE_NS}:{accounts['operator']}" in writers, writers
    assert f"system:serviceaccount:{RELEASE_NS}:{accounts['agent']}" in writers, writers
    assert writers <= {
        f"system:serviceaccount:{RELEASE_NS}:{accounts['operator']}",
        f"system:serviceaccount:{RELEASE_NS}:{accounts['agent']}",
    }, f"someone else wrote decky status: {writers}"


def test_the_readmes_pod_security_label_is_what_lets_the_agent_run(installed: Cluster) -> None:
    """The cluster enforces `baseline` where a namespace says nothing (as many do): the
    agent's pod (hostNetwork, the Docker socket, NET_ADMIN) needs the label the README
    puts on the release namespace; the operator's pod needs nothing."""
    templates = {
        doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc["spec"]["template"]
        for doc in manifest(installed)
        if doc["kind"] in ("Deployment", "DaemonSet")
    }
    labels = installed.get("namespace", RELEASE_NS)["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "privileged"
    unlabelled = "psa-check"
    installed.kubectl("create", "namespace", unlabelled)
    try:
        for component, template in templates.items():
            template["spec"].pop("serviceAccountName", None)  # the release's are elsewhere
            template["spec"]["automountServiceAccountToken"] = False
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": component, "namespace": unlabelled},
                "spec": template["spec"],
            }
            said = installed.kubectl(
                "apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
            )
            if component == "agent":
                assert 'violates PodSecurity "baseline' in said, said
                assert "hostNetwork" in said, said
            else:
                assert "created (server dry run)" in said, said
                assert "PodSecurity" not in said, said
    finally:
        installed.kubectl("delete", "namespace", unlabelled, "--wait=false")


def test_the_agents_lease_is_renewed_from_its_pod(installed: Cluster) -> None:
    node = installed.record["node"]
    agent = chart_service_accounts(installed)["agent"]
    lease = installed.get("lease", "-n", RELEASE_NS, "-l", f"decnet.io/agent={node}")["items"]
    assert len(lease) == 1, lease
    name, first = lease[0]["metadata"]["name"], lease[0]["spec"]["renewTime"]
    assert lease[0]["spec"]["holderIdentity"] == node

    def renewed() -> str | None:
        now = installed.get("lease", name, "-n", RELEASE_NS)["spec"]["renewTime"]
        return now if now != first else None

    wait_for("the Lease's renewTime to move", renewed, timeout=30)
    renewals = [
        e
        for e in installed.audit()
        if (e.get("objectRef") or {}).get("resource") == "leases"
        and (e.get("objectRef") or {}).get("name") == name
        and e["verb"] == "patch"
    ]
    assert renewals, "no PATCH of the Lease in the audit log"
    # from the agent's ServiceAccount, bound to the pod (its token names it), from the node
    last = renewals[-1]
    assert last["user"]["username"] == f"system:serviceaccount:{RELEASE_NS}:{agent}"
    pod_names = last["user"].get("extra", {}).get("authentication.kubernetes.io/pod-name", [])
    assert pod_names and pod_names[0] in {p["metadata"]["name"] for p in pods(installed, "agent")}
    # hostNetwork: it comes from one of the node's own addresses
    assert set(last["sourceIPs"]) <= host_addresses(), last["sourceIPs"]
    # the agent's DaemonSet owns it: uninstall deletes it
    owners = installed.get("lease", name, "-n", RELEASE_NS)["metadata"].get("ownerReferences")
    assert owners and owners[0]["kind"] == "DaemonSet", owners


def test_the_fleet_is_ready_with_its_containers_on_the_hosts_dockerd(installed: Cluster) -> None:
    fleet = [
        d
        for d in yaml.safe_load_all((ROOT / "examples" / "fleet.yaml").read_text())
        if d and d["kind"] == "Decky"
    ]
    deckies = {d["metadata"]["name"]: d for d in installed.get("deckies", "-n", DECOYS)["items"]}
    assert set(deckies) == {d["metadata"]["name"] for d in fleet}
    for name, decky in deckies.items():
        assert ready(decky), (name, decky["status"].get("conditions"))
        assert decky["status"]["node"] == installed.record["node"]
        services = decky["status"]["services"]
        running = docker_containers(**{"decnet.io/namespace": DECOYS, "decnet.io/decky": name})
        assert {c["State"] for c in running} == {"running"}, running
        assert len(running) == 1 + len(services), (name, [c["Names"] for c in running])
        reported = {c["id"] for c in decky["status"]["containers"]}
        assert {c["ID"] for c in running} == reported


def test_the_webhook_rejects_an_ip_clash_through_its_service(installed: Cluster) -> None:
    hooks = installed.get(
        "validatingwebhookconfigurations", "-l", "app.kubernetes.io/instance=decnet"
    )
    configs = [w for item in hooks["items"] for w in item["webhooks"]]
    assert configs, "the chart made no ValidatingWebhookConfiguration"
    for hook in configs:
        assert "url" not in hook["clientConfig"], hook["clientConfig"]
        assert hook["clientConfig"]["service"]["namespace"] == RELEASE_NS
        assert hook["failurePolicy"] == "Fail"
    taken = installed.get("decky", "ws-01", "-n", DECOYS)["status"]["addresses"][0]
    clash = {
        "apiVersion": "decnet.io/v1alpha1",
        "kind": "Decky",
        "metadata": {"name": "clash", "namespace": DECOYS},
        "spec": {"services": ["ssh"], "networks": [{"lan": taken["lan"], "ip": taken["ip"]}]},
    }
    said = installed.kubectl("apply", "-f", "-", input=json.dumps(clash), check=False)
    assert 'admission webhook "decky.decnet.io" denied the request' in said, said
    assert f"{taken['ip']} on LAN {taken['lan']} is held by decky ws-01" in said, said
    assert "NotFound" in installed.kubectl("get", "decky", "clash", "-n", DECOYS, check=False)


@pytest.fixture
def soc_syslog(installed: Cluster) -> Iterator[Rsyslog]:
    """The security team's rsyslog (TLS) on the node's loopback, and an EventSink to it.

    The agent runs in the host's network namespace (hostNetwork), so 127.0.0.1 is the node.
    """
    require(shutil.which("rsyslogd") is not None, "rsyslogd missing (hack/clients.sh)")
    pki = certs.generate(Path(tempfile.mkdtemp(prefix="decnet-soc-pki-")), ["127.0.0.1"])
    receiver = Rsyslog(
        Path(tempfile.mkdtemp(prefix="decnet-soc-")),
        controlplane.free_port(),
        pki.certfile,
        pki.pkeyfile,
        pki.cafile,
    )
    receiver.start()
    objects = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "soc-ca", "namespace": RELEASE_NS},
            "data": {"ca.crt": base64.b64encode(pki.cafile.read_bytes()).decode()},
        },
        {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "EventSink",
            "metadata": {"name": "soc"},
            "spec": {
                "selector": {"namespaces": [DECOYS]},
                "syslog": {
                    "address": f"tls://127.0.0.1:{receiver.port}",
                    "tls": {
                        "caSecretRef": {"namespace": RELEASE_NS, "name": "soc-ca", "key": "ca.crt"}
                    },
                },
            },
        },
    ]
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    installed.kubectl("apply", "-f", "-", input=listed)
    try:
        yield receiver
    finally:
        installed.kubectl("delete", "-f", "-", "--ignore-not-found", input=listed, check=False)
        receiver.stop()


def test_an_attackers_login_reaches_the_security_teams_syslog(
    installed: Cluster, soc_syslog: Rsyslog
) -> None:
    require(shutil.which("sshpass") is not None, "sshpass missing (hack/clients.sh)")
    ip = installed.get("decky", ATTACKED, "-n", DECOYS)["status"]["addresses"][0]["ip"]
    time.sleep(2)  # the agent picks the new sink up on its watch
    attack = subprocess.run(
        [
            "sshpass",
            "-p",
            "123456",
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            f"root@{ip}",
            "id",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "uid=0(root)" in attack.stdout, attack.stderr

    def login_seen() -> list[Any]:
        return [
            e
            for e in soc_syslog.messages()
            if e.kind == "auth" and e.service == "ssh" and e.fields.get("username") == "root"
        ]

    seen = wait_for("the login in the SOC's syslog", login_seen, timeout=60)
    assert seen[0].fields.get("password") == "123456"

    def contacted() -> dict[str, Any] | None:
        activity = installed.get("decky", ATTACKED, "-n", DECOYS)["status"].get("activity") or {}
        return activity if activity.get("contacts", 0) >= 1 else None

    activity = wait_for("status.activity of the attacked decky", contacted, timeout=60)
    assert activity["lastService"] == "ssh"


def test_a_sweep_of_the_lan_reaches_the_security_teams_syslog(
    installed: Cluster, soc_syslog: Rsyslog
) -> None:
    """The agent's sniffer (on by default) reports touches of addresses no decky holds."""
    require(shutil.which("nmap") is not None, "nmap missing (hack/clients.sh)")
    lan = installed.get("lan", "office", "-n", DECOYS)
    subnet = lan["spec"]["subnet"]
    held = {
        a["ip"]
        for d in installed.get("deckies", "-n", DECOYS)["items"]
        for a in d["status"]["addresses"]
    }
    time.sleep(2)  # the agent picks the new sink up on its watch
    subprocess.run(["nmap", "-sn", "-n", subnet], capture_output=True, timeout=120, check=True)

    def scans() -> list[Any]:
        return [e for e in soc_syslog.messages() if e.service == "sniffer" and e.kind == "scan"]

    seen = wait_for("a scan event in the SOC's syslog", scans, timeout=60)
    touched = {ip for e in seen for ip in e.get("dst_ips").split(",") if ip}
    assert touched, seen[0].fields
    assert not touched & held, "an address a decky holds was reported as unassigned"
    assert {e.get("subnet") for e in seen} == {subnet}
    assert all("scan of LAN office" in e.message for e in seen), [e.message for e in seen]


def test_a_mutation_swaps_services_and_keeps_the_decky(installed: Cluster) -> None:
    before = installed.get("decky", "ws-01", "-n", DECOYS)["status"]
    base_before = next(c["id"] for c in before["containers"] if c["role"] == "base")
    installed.kubectl(
        "annotate",
        "decky",
        "ws-01",
        "-n",
        DECOYS,
        f"decnet.io/mutate-request={int(time.time())}",
        "--overwrite",
    )

    seen: dict[str, Any] = {}

    def mutated() -> dict[str, Any] | None:
        seen.update(installed.get("decky", "ws-01", "-n", DECOYS))
        status = seen["status"]
        done = (status.get("lifecycle") or {}).get("operation") == "Mutate" and (
            status["lifecycle"].get("phase") == "Succeeded"
        )
        return status if done and ready({"status": status}) else None

    try:
        after = wait_for("ws-01 mutated and Ready", mutated, timeout=120)
    except AssertionError:
        logs = installed.kubectl(
            "logs",
            "-n",
            RELEASE_NS,
            "-l",
            "app.kubernetes.io/component=operator",
            "--tail=40",
            check=False,
        )
        raise AssertionError(f"not mutated: {json.dumps(seen, indent=1)}\n{logs}") from None
    assert after["lastMutation"]["trigger"] == "Manual"
    assert after["services"] != before["services"]
    base_after = next(c["id"] for c in after["containers"] if c["role"] == "base")
    assert base_after == base_before, "a mutation must keep the decky's base (its IP, its MAC)"
    running = decky_containers("ws-01")
    assert set(running.values()) == {c["id"] for c in after["containers"]}


def test_a_prune_removes_the_decky_left_out_of_the_file(installed: Cluster) -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / "fleet.yaml").read_text()) if d]
    kept = [d for d in docs if d["metadata"]["name"] != "ws-03"]
    assert len(kept) == len(docs) - 1
    assert decky_containers("ws-03"), "ws-03 had no containers before the prune"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(kept, f)
    installed.sh(
        f"kubectl apply -n {DECOYS} -f {f.name} --prune -l decnet.io/fleet=office "
        "--prune-allowlist=decnet.io/v1alpha1/Decky"
    )
    wait_for(
        "ws-03 gone from the API",
        lambda: "NotFound" in installed.kubectl("get", "decky", "ws-03", "-n", DECOYS, check=False),
        timeout=120,
    )
    assert decky_containers("ws-03") == {}, "ws-03's containers outlived its Decky"
    assert {d["metadata"]["name"] for d in installed.get("deckies", "-n", DECOYS)["items"]} == {
        "ws-01",
        "ws-02",
    }


def test_helm_upgrade_with_a_changed_value_recreates_no_decky_container(
    installed: Cluster,
) -> None:
    ids = [c["ID"] for c in docker_containers(**{"decnet.io/namespace": DECOYS})]
    assert ids
    started = started_at(ids)

    def chart_objects() -> dict[str, str]:
        """The release's own cluster-scoped objects (ServiceTemplates, peering) by uid."""
        found = installed.get(
            "servicetemplates.decnet.io,clusterkopfpeerings.kopf.dev",
            "-l",
            "app.kubernetes.io/instance=decnet",
        )["items"]
        return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["uid"] for o in found}

    before = chart_objects()
    assert "ServiceTemplate/ssh" in before and "ClusterKopfPeering/decnet-operator" in before

    old_pods = {p["metadata"]["uid"] for c in ("operator", "agent") for p in pods(installed, c)}
    installed.sh(
        f"helm upgrade decnet charts/decnet-operator --namespace {RELEASE_NS} --reuse-values "
        "--set operator.logLevel=debug --set agent.logLevel=debug --wait --timeout 5m"
    )

    def rolled() -> bool:
        now = [p for c in ("operator", "agent") for p in pods(installed, c)]
        return (
            bool(now)
            and all(ready(p) for p in now)
            and not ({p["metadata"]["uid"] for p in now} & old_pods)
        )

    wait_for("new operator and agent pods, Ready", rolled, timeout=120)
    # the new agent has looked at every decky (a full resync) and left them as they were
    time.sleep(5)
    for decky in installed.get("deckies", "-n", DECOYS)["items"]:
        assert ready(decky), decky["status"].get("conditions")
    assert sorted(c["ID"] for c in docker_containers(**{"decnet.io/namespace": DECOYS})) == sorted(
        ids
    )
    assert started_at(ids) == started, "a container was restarted by the upgrade"
    # plain release objects, patched in place: a hook would be deleted and re-created,
    # and every decky re-reconciled
    assert chart_objects() == before


def test_the_readme_uninstall_leaves_nothing_behind(installed: Cluster) -> None:
    node = installed.record["node"]
    assert docker_containers(**{"decnet.io/agent-node": node}), "nothing to uninstall?"
    installed.sh(readme_block("cluster-uninstall"))
    # this node's only: other test beds on the machine may run deckies of their own
    assert docker_containers(**{"decnet.io/agent-node": node}) == []
    networks = subprocess.run(
        ["docker", "network", "ls", "-q", "--filter", f"label=decnet.io/agent-node={node}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert networks == []
    from decnet.agent import egress

    prefix = egress.chain_prefix(node)

    def chains_left() -> list[str]:
        left = []
        for tool in ("iptables", "ip6tables"):
            rules = subprocess.run([tool, "-S"], capture_output=True, text=True, check=True)
            left += [f"{tool} {r}" for r in rules.stdout.splitlines() if prefix in r]
        return left

    # the agent's pod removes them on its way out, which may end after helm returns
    wait_for("the agent's chains gone", lambda: not chains_left(), timeout=60)

    def gone() -> list[str]:
        left = installed.kubectl(
            "get",
            "all,leases,secrets,configmaps,serviceaccounts,roles,rolebindings",
            "-n",
            RELEASE_NS,
            "-o",
            "name",
            check=False,
        ).split()
        return [o for o in left if "kube-root-ca" not in o and "serviceaccount/default" not in o]

    wait_for("the release namespace empty (the GC deletes the Leases)", lambda: not gone(), 60)
    for kind in ("deckies", "lans", "topologies", "addressclaims", "eventsinks"):
        assert installed.kubectl("get", f"{kind}.decnet.io", "-A", "-o", "name") == "", kind
    cluster_scoped = installed.kubectl(
        "get",
        "clusterroles,clusterrolebindings,validatingwebhookconfigurations,"
        "validatingadmissionpolicies,validatingadmissionpolicybindings,"
        "servicetemplates.decnet.io,clusterkopfpeerings.kopf.dev",
        "-l",
        "app.kubernetes.io/instance=decnet",
        "-o",
        "name",
    )
    assert cluster_scoped == "", cluster_scoped
