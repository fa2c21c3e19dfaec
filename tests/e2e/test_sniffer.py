"""The fleet sniffer end to end: nmap on a decoy LAN -> a scan event at rsyslog and a webhook.

The session's real agent (the chart's ServiceAccount, a 2 s scan window) watches the LAN
bridges of its deckies. The attacker is a network namespace this test makes, its veth
plugged into the test LAN's own bridge (an attacker already inside the LAN), holding an
address no decky has; nmap runs in it against that LAN's subnet only, and the namespace
has no route anywhere else. Debian's nmap, rsyslog (TLS) and an HTTPS webhook.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from harness import Cluster, wait_for
from receivers import Rsyslog, Webhook
from tests.support import require

from decnet.controller import certs
from decnet.kube import names

LABELS = {"team": "blue"}


@pytest.fixture
def sinks(
    cluster: Cluster, pki: certs.Bundle, rsyslog: Rsyslog, webhook: Webhook
) -> Iterator[tuple[str, str]]:
    """A TLS syslog sink taking the namespace; a webhook sink taking the LAN's labels."""
    ns, tag = cluster.ns, uuid.uuid4().hex[:6]
    ca = base64.b64encode(pki.cafile.read_bytes()).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "soc-ca", "namespace": ns},
        "data": {"ca.crt": ca},
    }
    ref = {"namespace": ns, "name": "soc-ca", "key": "ca.crt"}
    syslog_name, hook_name = f"scan-syslog-{tag}", f"scan-webhook-{tag}"
    docs = [
        secret,
        {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "EventSink",
            "metadata": {"name": syslog_name},
            "spec": {
                "selector": {"namespaces": [ns]},
                "syslog": {
                    "address": f"tls://127.0.0.1:{rsyslog.port}",
                    "tls": {"caSecretRef": ref},
                },
            },
        },
        {
            "apiVersion": "decnet.io/v1alpha1",
            "kind": "EventSink",
            "metadata": {"name": hook_name},
            "spec": {
                "selector": {"namespaces": [ns], "deckySelector": {"matchLabels": LABELS}},
                "webhook": {
                    "url": f"https://127.0.0.1:{webhook.server.server_address[1]}/events",
                    "caSecretRef": ref,
                },
            },
        },
    ]
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"kind": "List", "apiVersion": "v1", "items": docs})
    )
    try:
        yield syslog_name, hook_name
    finally:
        for name in (syslog_name, hook_name):
            cluster.kubectl("delete", "eventsink", name, "--ignore-not-found", check=False)


class Intruder:
    """A network namespace with one veth into a LAN's bridge (an attacker inside the LAN)."""

    def __init__(self, bridge: str, address: str, prefix: int) -> None:
        tag = uuid.uuid4().hex[:6]
        self.netns, self.host_end, self.inner = f"snf-{tag}", f"snfh{tag}", f"snfi{tag}"
        self.address = address
        run = self._ip
        run("netns", "add", self.netns)
        try:
            run("link", "add", self.host_end, "type", "veth", "peer", "name", self.inner)
            run("link", "set", self.inner, "netns", self.netns)
            run("link", "set", self.host_end, "master", bridge)
            run("link", "set", self.host_end, "up")
            run("-n", self.netns, "addr", "add", f"{address}/{prefix}", "dev", self.inner)
            run("-n", self.netns, "link", "set", self.inner, "up")
            run("-n", self.netns, "link", "set", "lo", "up")
            out = subprocess.run(
                ["ip", "-n", self.netns, "-j", "link", "show", self.inner],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            self.mac = str(json.loads(out)[0]["address"])
        except BaseException:
            self.remove()
            raise

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def nmap(self, *args: str) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.netns, "nmap", "-n", *args],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def remove(self) -> None:
        # the veth pair goes with the namespace; the host end is removed too if it was left
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.host_end], capture_output=True)


def scan_events(
    cluster: Cluster, rsyslog: Rsyslog, webhook: Webhook
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The sniffer's events of this test's namespace, flat, as rsyslog and the webhook got them."""
    syslog = [
        {**e.params(), **e.fields}
        for e in rsyslog.messages()
        if e.fields.get("namespace") == cluster.ns and e.service == "sniffer"
    ]
    hook = [
        {**e, **e["fields"]}
        for e in webhook.events()
        if e["namespace"] == cluster.ns and e["service"] == "sniffer"
    ]
    return syslog, hook


def capturing(cluster: Cluster, bridge: str, what: str) -> bool:
    return any(
        f'"{what}"' in line and bridge in line
        for line in cluster.agent.log.read_text(errors="replace").splitlines()
    )


def deploy(cluster: Cluster, subnet: str, **lan_spec: Any) -> tuple[str, str]:
    lan = cluster.lan(subnet=subnet, **lan_spec)
    lan["metadata"]["labels"] = dict(LABELS)
    cluster.apply(lan, cluster.decky("target", ["ssh"]))
    cluster.wait_ready(["target"])
    decky_ip = str(cluster.status("target")["addresses"][0]["ip"])
    return decky_ip, names.bridge_name(cluster.node, cluster.ns, "lan")


def _subnet() -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{random.randint(150, 250)}.{random.randint(0, 250)}.0/27")


def test_an_nmap_sweep_inside_a_lan_reaches_rsyslog_and_the_webhook_and_capture_ends_with_it(
    cluster: Cluster, sinks: tuple[str, str], rsyslog: Rsyslog, webhook: Webhook
) -> None:
    require(shutil.which("nmap") is not None, "nmap (hack/clients.apt)")
    net = _subnet()
    decky_ip, bridge = deploy(cluster, str(net))
    hosts = [str(h) for h in net.hosts()]
    gateway, attacker = hosts[0], hosts[-1]
    wait_for(lambda: capturing(cluster, bridge, "sniffer.started"), 30, "capture", cluster.agent)

    # Normal traffic first: the host (the LAN's gateway) connects to the decky's ssh a few
    # times; the decky answers. Nothing of it is a scan.
    for _ in range(5):
        with socket.create_connection((decky_ip, 22), timeout=10) as conn:
            conn.sendall(b"hello\n")
            conn.recv(16)
    time.sleep(5)  # more than two windows
    assert scan_events(cluster, rsyslog, webhook) == ([], [])

    intruder = Intruder(bridge, attacker, net.prefixlen)
    try:
        started = time.monotonic()
        up = intruder.nmap("-sn", str(net))
        assert f"Nmap scan report for {decky_ip}" in up, up
        ports = intruder.nmap("-sS", "-p", "22,80", str(net))
        assert "22/tcp open" in ports, ports

        def arrived() -> bool:
            syslog, hook = scan_events(cluster, rsyslog, webhook)
            return any(e["src_ip"] == attacker for e in syslog) and any(
                e["src_ip"] == attacker for e in hook
            )

        wait_for(arrived, 30, "the scan event at rsyslog and the webhook", cluster.agent)
        print(f"scan -> both receivers in {time.monotonic() - started:.1f} s (nmap included)")
        syslog, hook = scan_events(cluster, rsyslog, webhook)
        assert {e["src_ip"] for e in syslog + hook} == {attacker}, (syslog, hook)
        first = next(e for e in syslog if e["src_ip"] == attacker)
        same = next(e for e in hook if e["id"] == first["id"])
        for record in (first, same):
            assert record["kind"] == "scan" and record["service"] == "sniffer"
            assert record["namespace"] == cluster.ns and record["lan"] == "lan"
            assert record["node"] == cluster.node
            assert record["src_mac"] == intruder.mac
            assert record["reason"] == "unassigned" and "arp" in record["proto"]
            touched = set(record["dst_ips"].split(","))
            assert decky_ip not in touched and gateway not in touched and attacker not in touched
            assert touched <= set(hosts) and len(touched) >= 10
            assert int(record["dst_count"]) >= len(touched)
        # one event per source and window, whatever nmap sent: a handful, not hundreds
        assert len({e["id"] for e in syslog}) <= 1 + (time.monotonic() - started) / 2
    finally:
        intruder.remove()

    # Deleting the decky and its LAN ends the capture on that bridge.
    cluster.kubectl("delete", "decky", "target", "-n", cluster.ns, "--wait=false")
    cluster.kubectl("delete", "lan", "lan", "-n", cluster.ns, "--wait=false")
    wait_for(
        lambda: capturing(cluster, bridge, "sniffer.stopped"), 60, "capture end", cluster.agent
    )


def test_a_lan_that_opts_out_is_not_watched(cluster: Cluster) -> None:
    net = _subnet()
    _, bridge = deploy(cluster, str(net), sniffer={"enabled": False})
    plan = cluster.status("target")["plan"]["networks"][0]
    assert plan["sniffer"] is False and plan["labels"] == LABELS
    time.sleep(3)  # the sniffer reconciles its captures every second
    assert not capturing(cluster, bridge, "sniffer.started")
