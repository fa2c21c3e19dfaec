"""Malformed and hostile manifests are refused with a clear message, and nothing running is disturbed.

A decky runs while each bad manifest is applied; after every rejection its
containers keep their ids and its object keeps its resourceVersion.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import pytest
import yaml
from harness import Cluster, wait_for


@pytest.fixture
def running(cluster: Cluster) -> Cluster:
    cluster.apply(cluster.lan(), cluster.decky("victim", ["http", "telnet"]))
    cluster.wait_ready(["victim"])
    return cluster


def bad_decky(cluster: Cluster, **spec: Any) -> dict[str, Any]:
    doc = cluster.decky("bad-01", ["http"])
    doc["spec"].update(spec)
    return doc


def file_entry(path: str, content: str = "aGVsbG8=") -> dict[str, Any]:
    return {"path": path, "content": {"inline": content}}


CASES: list[tuple[str, Any, str]] = [
    (
        "path traversal in a file",
        lambda c: bad_decky(c, files=[file_entry("/etc/../../root/.ssh/authorized_keys")]),
        "..",
    ),
    (
        "relative file path",
        lambda c: bad_decky(c, files=[file_entry("etc/passwd")]),
        "spec.files[0].path",
    ),
    (
        "oversized inline file",
        lambda c: bad_decky(c, files=[file_entry("/big", "A" * 1_500_000)]),
        "spec.files[0].content.inline",
    ),
    (
        "huge service list",
        lambda c: bad_decky(c, services=[f"svc-{i}" for i in range(200)]),
        "spec.services",
    ),
    ("wrong type for services", lambda c: bad_decky(c, services="http"), "spec.services"),
    (
        "service name not a DNS label",
        lambda c: bad_decky(c, services=["HTTP; rm -rf /"]),
        "spec.services[0]",
    ),
    (
        "pinned IP outside the LAN's subnet",
        lambda c: bad_decky(c, networks=[{"lan": "lan", "ip": "192.168.77.5"}]),
        "192.168.77.5",
    ),
    (
        "malformed IP",
        lambda c: bad_decky(c, networks=[{"lan": "lan", "ip": "10.0.0.300"}]),
        "spec.networks[0].ip",
    ),
    ("unknown LAN", lambda c: bad_decky(c, networks=[{"lan": "nowhere"}]), "nowhere"),
    ("unknown service", lambda c: bad_decky(c, services=["no-such-service"]), "no-such-service"),
    ("the running decky's IP", None, "victim"),
    ("overlapping subnet", None, "overlap"),
    ("unicode name", lambda c: {**c.decky("dëcky", ["http"])}, "metadata.name"),
    (
        "oversized service config",
        lambda c: bad_decky(c, serviceConfig={"http": {"banner": "x" * 300_000}}),
        "serviceConfig",
    ),
]


@pytest.mark.parametrize("label,make,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_manifest_is_rejected_and_running_decky_untouched(
    running: Cluster, label: str, make: Any, expected: str
) -> None:
    cluster = running
    before_ids = cluster.container_ids("victim")
    before_rv = cluster.get("decky", "victim")["metadata"]["resourceVersion"]
    victim_ip = cluster.status("victim")["addresses"][0]["ip"]
    if label == "the running decky's IP":
        doc = bad_decky(cluster, networks=[{"lan": "lan", "ip": victim_ip}])
    elif label == "overlapping subnet":
        doc = cluster.lan("overlapping", subnet=f"10.{cluster.subnet_octet}.0.0/16")
    else:
        doc = make(cluster)
    # Server-side apply: client-side apply would first trip over its own
    # last-applied annotation for the oversized cases.
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "-n",
        cluster.ns,
        "--validate=strict",
        "-f",
        "-",
        input=yaml.safe_dump(doc),
        check=False,
    )
    assert result.returncode != 0, f"{label} was accepted:\n{result.stdout}"
    assert expected in result.stderr, result.stderr
    assert len(result.stderr) < 4000, "the message should be readable, not a dump"
    assert cluster.container_ids("victim") == before_ids
    assert cluster.get("decky", "victim")["metadata"]["resourceVersion"] == before_rv
    names = {d["metadata"]["name"] for d in cluster.deckies()}
    assert names == {"victim"}


def test_unknown_field_is_rejected_by_strict_validation(running: Cluster) -> None:
    doc = copy.deepcopy(running.decky("bad-02", ["http"]))
    doc["spec"]["sevrices"] = ["http"]
    result = running.kubectl(
        "apply",
        "-n",
        running.ns,
        "--validate=strict",
        "-f",
        "-",
        input=yaml.safe_dump(doc),
        check=False,
    )
    assert result.returncode != 0
    assert 'unknown field "spec.sevrices"' in result.stderr


def test_a_secret_in_a_file_never_reaches_status_or_events(running: Cluster) -> None:
    secret = "hunter2-super-secret"
    content = base64.b64encode(secret.encode()).decode()
    running.apply(
        running.decky("lure-01", ["http"], files=[file_entry("/home/admin/passwords.txt", content)])
    )
    running.wait_ready(["lure-01"])
    obj = running.get("decky", "lure-01")
    assert secret not in yaml.safe_dump(obj.get("status", {}))
    assert content not in yaml.safe_dump(obj.get("status", {}))
    events = running.kubectl("get", "events", "-n", running.ns, "-o", "yaml").stdout
    assert secret not in events and content not in events

    # The lure is where an attacker lands: in every service container (bind-mounted
    # read-only from the node; the base only holds the network namespace).
    def lure_everywhere() -> bool:
        containers = [
            c for c in running.containers("lure-01") if c.labels["decnet.io/role"] == "service"
        ]
        outputs = [c.exec_run(["cat", "/home/admin/passwords.txt"]) for c in containers]
        return len(containers) == 1 and all(
            code == 0 and out.decode() == secret for code, out in outputs
        )

    wait_for(lure_everywhere, 30, "the lure in the service container")


def test_with_the_webhook_bypassed_reconcile_refuses_an_out_of_subnet_ip(
    running: Cluster, identities: Any
) -> None:
    """Admission skipped on purpose (its configuration deleted): reconcile still refuses
    the spec, reports Stalled with the reason, and the agent creates nothing for it."""
    cluster = running
    name = identities.fullname
    saved = json.loads(
        cluster.kubectl("get", "validatingwebhookconfiguration", name, "-o", "json").stdout
    )
    before_ids = cluster.container_ids("victim")
    identities.remove_webhook()
    try:
        cluster.apply(bad_decky(cluster, networks=[{"lan": "lan", "ip": "192.168.77.5"}]))

        def stalled() -> dict[str, Any] | None:
            for c in cluster.status("bad-01").get("conditions", []):
                if c["type"] == "Stalled" and c["status"] == "True":
                    return dict(c)
            return None

        wait_for(lambda: stalled() is not None, 60, "bad-01 Stalled", cluster.operator)
        reason = stalled() or {}
        assert reason["reason"] == "IPOutOfSubnet"
        assert "192.168.77.5 is outside subnet" in reason["message"]
        time.sleep(7)  # past an agent resync (5 s here): it still has nothing to run
        assert cluster.containers("bad-01") == []
        assert not cluster.status("bad-01").get("plan")
        assert cluster.container_ids("victim") == before_ids
    finally:
        for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
            saved["metadata"].pop(key, None)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(saved))
