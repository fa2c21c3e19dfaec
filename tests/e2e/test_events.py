"""Attacker events reach the security team: rsyslog over TLS, an HTTPS webhook, kubectl.

Most tests here use a fixture login service (busybox: `nc -ll -e sh -c ...`) that answers
each connection and prints one RFC 5424 event line, in the emulators' format, with the
client's real source address and port, user name and password: cheap enough for a
1,000-attempt brute force. One test runs the real thing end to end: the built-in ssh and
http templates (the emulator image) attacked by OpenSSH's client with a wrong password
and by urllib with basic auth. The receivers are a real Debian rsyslogd (TLS, RFC 5425,
certificates made here) and an HTTPS server.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from harness import (
    LOGIN_SERVICE,
    LOGIN_TEMPLATE,
    ROOT,
    Cluster,
    attack,
    condition,
    env_for,
    listening,
    wait_for,
)
from receivers import Rsyslog, Webhook
from tests.probes.shell import SSH_OPTIONS
from tests.support import require

from decnet.controller import certs

SERVICE = LOGIN_SERVICE
TEMPLATE = LOGIN_TEMPLATE


@pytest.fixture(scope="module")
def login_template(kubectl: Any, service_templates: None) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(TEMPLATE))


EMULATOR_IMAGE = "decnet/emulator:0.1.0"
# The built-in templates under names of their own: the session's busybox test templates
# own `ssh` and `http`, and the other tests (and modules) rely on them.
REAL_TEMPLATES = {"ssh": "real-ssh", "http": "real-http"}


@pytest.fixture(scope="module")
def real_templates(kubectl: Any, service_templates: None, docker_client: Any) -> Iterator[None]:
    """Copies of the built-in ssh and http ServiceTemplates (examples/servicetemplates.yaml)."""
    import docker.errors

    try:
        docker_client.images.get(EMULATOR_IMAGE)
        built = True
    except docker.errors.ImageNotFound:
        built = False
    require(built, f"{EMULATOR_IMAGE} is not built (hack/emulator-image.sh)")
    require(
        shutil.which("sshpass") is not None and shutil.which("ssh") is not None,
        "sshpass and OpenSSH's client (hack/clients.apt)",
    )
    builtin = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((ROOT / "examples" / "servicetemplates.yaml").read_text())
        if d
    }
    docs = []
    for service, name in REAL_TEMPLATES.items():
        doc = copy.deepcopy(builtin[service])
        assert doc["spec"]["image"] == EMULATOR_IMAGE, doc["spec"]
        doc["metadata"] = {"name": name}
        docs.append(doc)
    kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(docs)
    )
    try:
        yield
    finally:
        kubectl(
            "delete", "servicetemplate", *REAL_TEMPLATES.values(), "--ignore-not-found", check=False
        )





class Sinks:
    """A TLS syslog sink and a webhook sink for one test namespace (cleaned up after)."""

    def __init__(self, cluster: Cluster, pki: certs.Bundle, rsyslog: Rsyslog, webhook: Webhook):
        self.cluster, self.rsyslog, self.webhook = cluster, rsyslog, webhook
        tag = uuid.uuid4().hex[:6]
        self.syslog_name, self.webhook_name = f"soc-syslog-{tag}", f"soc-webhook-{tag}"
        self.token = f"t-{uuid.uuid4().hex}"
        ns = cluster.ns
        ca = base64.b64encode(pki.cafile.read_bytes()).decode()
        secrets = [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "soc-ca", "namespace": ns},
                "data": {"ca.crt": ca},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "soc-headers", "namespace": ns},
                "stringData": {"Authorization": f"Bearer {self.token}"},
            },
        ]
        cluster.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps({"kind": "List", "apiVersion": "v1", "items": secrets}),
        )
        selector = {"namespaces": [ns]}
        sinks = [
            {
                "apiVersion": "decnet.io/v1alpha1",
                "kind": "EventSink",
                "metadata": {"name": self.syslog_name},
                "spec": {
                    "selector": selector,
                    "syslog": {
                        "address": f"tls://127.0.0.1:{rsyslog.port}",
                        "tls": {
                            "caSecretRef": {"namespace": ns, "name": "soc-ca", "key": "ca.crt"}
                        },
                    },
                },
            },
            {
                "apiVersion": "decnet.io/v1alpha1",
                "kind": "EventSink",
                "metadata": {"name": self.webhook_name},
                "spec": {
                    "selector": selector,
                    "webhook": {
                        "url": f"https://127.0.0.1:{webhook.server.server_address[1]}/events",
                        "headersSecretRef": {"namespace": ns, "name": "soc-headers"},
                        "caSecretRef": {"namespace": ns, "name": "soc-ca", "key": "ca.crt"},
                    },
                },
            },
        ]
        cluster.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps({"kind": "List", "apiVersion": "v1", "items": sinks}),
        )
        wait_for(
            lambda: self.ready(self.syslog_name) == "True",
            60,
            "the syslog sink Ready",
            cluster.agent,
        )

    def sink(self, name: str) -> dict[str, Any]:
        out = self.cluster.kubectl("get", "eventsink", name, "-o", "json").stdout
        return dict(json.loads(out))

    def ready(self, name: str) -> str | None:
        return condition(self.sink(name), "Ready")

    def syslog_ids(self) -> dict[str, dict[str, str]]:
        return {
            e.fields["id"]: {**e.params(), **e.fields}
            for e in self.rsyslog.messages()
            if e.fields.get("namespace") == self.cluster.ns
        }

    def webhook_events(self) -> list[dict[str, Any]]:
        return [e for e in self.webhook.events() if e["namespace"] == self.cluster.ns]

    def delete(self) -> None:
        for name in (self.syslog_name, self.webhook_name):
            self.cluster.kubectl("delete", "eventsink", name, "--ignore-not-found", check=False)


@pytest.fixture
def sinks(
    cluster: Cluster, pki: certs.Bundle, rsyslog: Rsyslog, webhook: Webhook, login_template: None
) -> Iterator[Sinks]:
    made = Sinks(cluster, pki, rsyslog, webhook)
    try:
        yield made
    finally:
        made.delete()


def deploy(cluster: Cluster, name: str, **spec: Any) -> str:
    cluster.apply(cluster.lan(), cluster.decky(name, [SERVICE], **spec))
    cluster.wait_ready([name])
    ip = str(cluster.status(name)["addresses"][0]["ip"])
    wait_for(lambda: listening(cluster, name), 30, f"{name}'s login service listening")
    return ip


def test_an_attack_reaches_rsyslog_over_tls_and_the_webhook_within_2_s(
    cluster: Cluster, sinks: Sinks
) -> None:
    ip = deploy(cluster, "hit-01")
    password = f"pw-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    src_ip, src_port = attack(ip, "root", password)

    def arrived() -> bool:
        in_syslog = any(e.get("password") == password for e in sinks.syslog_ids().values())
        in_webhook = any(e["fields"].get("password") == password for e in sinks.webhook_events())
        return in_syslog and in_webhook

    wait_for(arrived, 30, "the event in rsyslog and the webhook", cluster.agent)
    latency = time.monotonic() - started
    assert latency <= 2.0, f"took {latency:.2f} s"

    syslog = next(e for e in sinks.syslog_ids().values() if e.get("password") == password)
    hook = next(e for e in sinks.webhook_events() if e["fields"].get("password") == password)
    for record in (syslog, hook):
        assert record["decky"] == "hit-01"
        assert record["namespace"] == cluster.ns
        assert record["node"] == cluster.node
        assert record["lan"] == "lan"
        assert record["service"] == SERVICE
        assert record["kind"] == "auth"
        assert record["src_ip"] == src_ip
        assert str(record["src_port"]) == str(src_port)
    assert syslog["username"] == "root" and hook["fields"]["username"] == "root"
    assert syslog["id"] == hook["id"]
    assert any(h.get("Authorization") == f"Bearer {sinks.token}" for h in sinks.webhook.headers)

    status = sinks.sink(sinks.webhook_name)["status"]
    wait_for(
        lambda: (sinks.sink(sinks.webhook_name)["status"].get("delivered") or 0) >= 1,
        30,
        "delivered counted",
    )
    assert condition(sinks.sink(sinks.webhook_name), "Ready") == "True", status


def source_address(ip: str) -> str:
    """The host's address on the route to ip: what the decky sees as the client (no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((ip, 9))
        return str(s.getsockname()[0])


def received(sinks: Sinks, **want: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The one event with these field values as rsyslog and as the webhook got it (flat;
    a duplicate of the same id, which at-least-once delivery allows, counts once)."""
    hooks = ({**e, **e["fields"]} for e in sinks.webhook_events())
    found = []
    for records in (sinks.syslog_ids().values(), hooks):
        match = {r["id"]: r for r in records if all(str(r.get(k)) == v for k, v in want.items())}
        assert len(match) <= 1, match
        found.append(next(iter(match.values()), None))
    return found[0], found[1]


def test_a_real_ssh_login_and_http_request_reach_rsyslog_and_the_webhook_within_2_s(
    cluster: Cluster, sinks: Sinks, real_templates: None
) -> None:
    ssh, http = REAL_TEMPLATES["ssh"], REAL_TEMPLATES["http"]
    cluster.apply(cluster.lan(), cluster.decky("real-01", [ssh, http]))
    cluster.wait_ready(["real-01"], timeout=240)
    ip = str(cluster.status("real-01")["addresses"][0]["ip"])
    for port in (22, 80):
        wait_for(lambda p=port: listening(cluster, "real-01", p), 60, f"port {port} listening")
    src_ip = source_address(ip)
    tag = uuid.uuid4().hex[:8]
    latency: dict[str, float] = {}

    def arrive(what: str, finished: float, **want: str) -> tuple[dict[str, Any], dict[str, Any]]:
        wait_for(lambda: None not in received(sinks, **want), 30, f"{what} in both", cluster.agent)
        latency[what] = time.monotonic() - finished
        syslog, hook = received(sinks, **want)
        assert syslog is not None and hook is not None
        return syslog, hook

    # OpenSSH's client, one password try (first -o wins), the wrong password.
    password = f"wrong-{tag}"
    login = subprocess.run(
        [
            "sshpass",
            "-p",
            password,
            "ssh",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
            *SSH_OPTIONS,
            "-p",
            "22",
            f"root@{ip}",
            "id",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    finished = time.monotonic()
    assert login.returncode != 0 and "Permission denied" in login.stderr, login
    ssh_auth = arrive("ssh auth", finished, kind="auth", password=password)

    # urllib, basic auth, no proxy: a GET of a page that does not exist.
    path, web_password = f"/admin-{tag}", f"pw-{tag}"
    request = urllib.request.Request(f"http://{ip}{path}")
    basic = base64.b64encode(f"admin:{web_password}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    request.add_header("User-Agent", f"curious/{tag}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        status = opener.open(request, timeout=20).status
    except urllib.error.HTTPError as error:
        status = error.code
    finished = time.monotonic()
    assert status in (200, 401, 403, 404), status
    http_request = arrive("http request", finished, kind="request", path=path)
    http_auth = arrive("http auth", finished, kind="auth", password=web_password)

    for what, seconds in latency.items():
        assert seconds <= 2.0, f"{what} took {seconds:.2f} s"
    print(f"latency after the client finished: {latency}")

    for (syslog, hook), service, port in (
        (ssh_auth, ssh, "22"),
        (http_request, http, "80"),
        (http_auth, http, "80"),
    ):
        for record in (syslog, hook):
            assert record["decky"] == "real-01"
            assert record["namespace"] == cluster.ns
            assert record["node"] == cluster.node
            assert record["lan"] == "lan"
            assert record["service"] == service
            assert record["src_ip"] == src_ip
            assert str(record["dst_port"]) == port
        assert syslog["id"] == hook["id"]
        assert str(syslog["src_port"]) == str(hook["src_port"])
    for syslog, hook in (ssh_auth,):
        for record in (syslog, hook):
            assert (record["username"], record["password"]) == ("root", password)
            assert (record["success"], record["mechanism"]) == ("false", "password")
    for record in http_request:
        assert (record["method"], record["user_agent"]) == ("GET", f"curious/{tag}")
    for record in http_auth:
        assert (record["username"], record["password"]) == ("admin", web_password)
    # One connection: the request and the credentials it carried.
    assert http_request[1]["session"] == http_auth[1]["session"]


def test_a_sink_down_for_60_s_gets_every_event_afterwards(
    cluster: Cluster, sinks: Sinks, rsyslog: Rsyslog
) -> None:
    ip = deploy(cluster, "down-01")
    rsyslog.stop()
    tag = uuid.uuid4().hex[:6]
    sent = []
    try:
        deadline = time.monotonic() + 60
        i = 0
        saw_degraded = False
        while time.monotonic() < deadline:
            attack(ip, "admin", f"{tag}-{i}")
            sent.append(f"{tag}-{i}")
            i += 1
            status = sinks.sink(sinks.syslog_name).get("status") or {}
            if (
                condition(sinks.sink(sinks.syslog_name), "Degraded") == "True"
                and (status.get("backlog") or 0) > 0
            ):
                saw_degraded = True
            time.sleep(2)
        assert saw_degraded, sinks.sink(sinks.syslog_name).get("status")
    finally:
        rsyslog.start()

    def all_in() -> bool:
        got = {e.get("password") for e in sinks.syslog_ids().values()}
        return set(sent) <= got

    wait_for(all_in, 90, "every event in rsyslog after it came back", cluster.agent)
    # Same events (by id) as the webhook, which never went down.
    hook_ids = {
        e["id"] for e in sinks.webhook_events() if e["fields"].get("password", "").startswith(tag)
    }
    syslog_ids = {i for i, e in sinks.syslog_ids().items() if e.get("password", "").startswith(tag)}
    assert hook_ids == syslog_ids and len(hook_ids) == len(sent)
    wait_for(lambda: sinks.ready(sinks.syslog_name) == "True", 60, "the sink Ready again")
    assert condition(sinks.sink(sinks.syslog_name), "Degraded") == "False"


def test_every_event_arrives_after_the_agent_is_sigkilled_mid_attack(
    cluster: Cluster, sinks: Sinks
) -> None:
    ip = deploy(cluster, "kill-01")
    tag = uuid.uuid4().hex[:6]
    sent: list[str] = []

    def run() -> None:
        for i in range(150):
            try:
                attack(ip, "root", f"{tag}-{i}")
                sent.append(f"{tag}-{i}")
            except OSError:
                continue

    attacker = threading.Thread(target=run)
    attacker.start()
    time.sleep(1.5)
    cluster.agent.kill()
    time.sleep(1.0)
    cluster.agent.start()
    attacker.join(timeout=120)
    assert len(sent) > 100

    def all_in() -> bool:
        hook = {e["fields"].get("password") for e in sinks.webhook_events()}
        syslog = {e.get("password") for e in sinks.syslog_ids().values()}
        return set(sent) <= hook and set(sent) <= syslog

    wait_for(all_in, 90, "every event after the agent restart", cluster.agent)


def test_a_deleted_deckys_last_events_still_arrive(cluster: Cluster, sinks: Sinks) -> None:
    ip = deploy(cluster, "bye-01")
    tag = uuid.uuid4().hex[:6]
    sent = [f"{tag}-{i}" for i in range(5)]
    for password in sent:
        attack(ip, "root", password)
    cluster.kubectl("delete", "decky", "bye-01", "-n", cluster.ns, "--wait=false")
    wait_for(lambda: cluster.containers("bye-01") == [], 60, "the decky's containers gone")
    wait_for(
        lambda: set(sent) <= {e["fields"].get("password") for e in sinks.webhook_events()},
        30,
        "the last events",
        cluster.agent,
    )


def test_a_brute_force_is_one_aggregated_event_and_last_contact_moves(
    cluster: Cluster, sinks: Sinks, kubectl_binary: str, kubeconfig: str
) -> None:
    ip = deploy(cluster, "brute-01")
    assert "activity" not in cluster.status("brute-01")  # no contact, no write
    watch = subprocess.Popen(
        [kubectl_binary, f"--kubeconfig={kubeconfig}", "get", "deckies", "-n", cluster.ns, "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        header = watch.stdout.readline() if watch.stdout else ""
        assert "LAST-CONTACT" in header
        first = watch.stdout.readline() if watch.stdout else ""
        assert len(first.split()) == 7, first  # no LAST-CONTACT yet (kubectl prints it empty)
        src = ""
        for i in range(1000):
            src, _ = attack(ip, "root", f"guess-{i}")
        seen_change = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and watch.stdout:
            line = watch.stdout.readline()
            if line.startswith("brute-01") and len(line.split()) == 8:
                seen_change = line
                break
        assert seen_change, "kubectl get -w showed no LAST-CONTACT change"
    finally:
        watch.terminate()
        watch.wait(timeout=10)

    def one_event() -> list[dict[str, Any]]:
        out = cluster.kubectl(
            "get",
            "events",
            "-n",
            cluster.ns,
            "--field-selector",
            "reason=AttackerContact",
            "-o",
            "json",
        ).stdout
        return [e for e in json.loads(out)["items"] if e["involvedObject"]["name"] == "brute-01"]

    wait_for(lambda: sum(int(e.get("count") or 0) for e in one_event()) >= 1000, 60, "count 1000")
    found = one_event()
    assert len(found) == 1, found
    assert found[0]["type"] == "Warning"
    assert src in found[0]["message"]
    described = cluster.kubectl("describe", "decky", "brute-01", "-n", cluster.ns).stdout
    assert "AttackerContact" in described
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "decnet.cli.main",
            "events",
            "brute-01",
            "-n",
            cluster.ns,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env_for(kubeconfig),
        check=True,
    )
    (row,) = json.loads(cli.stdout)["items"]
    assert (row["decky"], row["source"], row["service"]) == ("brute-01", src, SERVICE)
    assert row["count"] >= 1000
    table = subprocess.run(
        [sys.executable, "-m", "decnet.cli.main", "events", "-n", cluster.ns],
        capture_output=True,
        text=True,
        env=env_for(kubeconfig),
        check=True,
    ).stdout
    assert "brute-01" in table and src in table
    activity = cluster.status("brute-01")["activity"]
    assert activity["lastSource"] == src and activity["lastService"] == SERVICE
    wait_for(
        lambda: cluster.status("brute-01")["activity"]["contacts"] >= 1000, 60, "contacts 1000"
    )


def test_a_scheduled_mutation_waits_until_the_attacker_is_quiet(
    cluster: Cluster, sinks: Sinks, login_template: None
) -> None:
    # Due 60 s after deploy; the attack runs from 20 s to 110 s and holds one session open.
    started = time.monotonic()
    ip = deploy(
        cluster,
        "quiet-01",
        mutation={"pool": [SERVICE, "http"], "intervalMinutes": 1, "quietSeconds": 45},
    )
    time.sleep(max(0.0, 20 - (time.monotonic() - started)))
    session = socket.create_connection((ip, 22), timeout=10)
    try:
        i = 0
        while time.monotonic() - started < 110:
            attack(ip, "root", f"q-{i}")
            i += 1
            time.sleep(2)
            assert cluster.status("quiet-01").get("lastMutation") is None, "mutated mid-attack"
        # The session opened before the mutation was due still talks to the same service.
        session.sendall(b"root still-here\n")
        assert session.recv(100) == b"Permission denied\n"
    finally:
        session.close()
    stopped = time.monotonic()
    wait_for(
        lambda: (
            (cluster.status("quiet-01").get("lastMutation") or {}).get("trigger") == "Scheduled"
        ),
        150,
        "the scheduled mutation after the attack",
        cluster.operator,
    )
    assert time.monotonic() - stopped >= 10  # not at once: after a quiet period
    assert (
        any(e["fields"].get("password") == "still-here" for e in sinks.webhook_events())
        or wait_for(
            lambda: any(
                e["fields"].get("password") == "still-here" for e in sinks.webhook_events()
            ),
            30,
            "the late session's event",
        )
        is None
    )


def test_an_idle_decky_and_an_idle_sink_cause_no_writes(cluster: Cluster, sinks: Sinks) -> None:
    deploy(cluster, "idle-01")
    wait_for(lambda: sinks.ready(sinks.webhook_name) is not None, 30, "the webhook sink's status")
    time.sleep(6)  # the agent's last sink status writes settle (at most every 5 s)

    def versions() -> dict[str, str]:
        return {
            "decky": cluster.get("decky", "idle-01")["metadata"]["resourceVersion"],
            "syslog": sinks.sink(sinks.syslog_name)["metadata"]["resourceVersion"],
            "webhook": sinks.sink(sinks.webhook_name)["metadata"]["resourceVersion"],
        }

    before = versions()
    time.sleep(40)  # longer than the activity interval and the agent's resync
    assert versions() == before
    assert "activity" not in cluster.status("idle-01")  # never contacted, never written
