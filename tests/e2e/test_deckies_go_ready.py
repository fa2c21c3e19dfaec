"""kubectl apply → operator plans → agent converges Docker → Ready, as a user sees it."""

from __future__ import annotations

import time
from typing import Any

from harness import Cluster, condition, wait_for


def container_ids(cluster: Cluster, decky: str) -> dict[str, str]:
    return cluster.container_ids(decky)


def test_a_decky_goes_ready_with_its_containers_on_its_address(cluster: Cluster) -> None:
    cluster.apply(cluster.lan(), cluster.decky("web-01", ["http", "telnet"]))
    cluster.wait_ready(["web-01"])

    decky = cluster.get("decky", "web-01")
    status = decky["status"]
    assert status["node"] == cluster.node
    assert status["lifecycle"]["operation"] == "Deploy"
    assert status["lifecycle"]["phase"] == "Succeeded"
    assert status["observedGeneration"] == decky["metadata"]["generation"]
    ip = status["addresses"][0]["ip"]
    assert ip.startswith(f"10.{cluster.subnet_octet}.0.")
    assert ip not in {
        f"10.{cluster.subnet_octet}.0.0",
        f"10.{cluster.subnet_octet}.0.1",
        f"10.{cluster.subnet_octet}.0.255",
    }

    roles = sorted(container_ids(cluster, "web-01"))
    assert roles == ["base:", "service:http", "service:telnet"]
    base = next(c for c in cluster.containers("web-01") if c.labels["decnet.io/role"] == "base")
    networks = base.attrs["NetworkSettings"]["Networks"]
    assert [n["IPAddress"] for n in networks.values()] == [ip]
    # The http service really answers inside the decky's network namespace (the base is
    # Debian: bash's /dev/tcp rather than a wget it does not have).
    get = f"exec 3<>/dev/tcp/{ip}/80 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
    deadline = time.monotonic() + 10
    code, output = 1, b""
    while time.monotonic() < deadline and code != 0:
        code, output = base.exec_run(["timeout", "5", "bash", "-c", get])
        time.sleep(0.2)
    assert code == 0, output
    assert output.startswith(b"HTTP/1."), output


def test_editing_services_touches_only_that_container(cluster: Cluster) -> None:
    cluster.apply(cluster.lan(), cluster.decky("svc-01", ["http", "telnet"]))
    cluster.wait_ready(["svc-01"])
    before = container_ids(cluster, "svc-01")

    cluster.apply(cluster.decky("svc-01", ["http", "telnet", "ssh"]))
    wait_for(lambda: "service:ssh" in container_ids(cluster, "svc-01"), 60, "the ssh container")
    cluster.wait_ready(["svc-01"])
    after = container_ids(cluster, "svc-01")
    for key in ("base:", "service:http", "service:telnet"):
        assert after[key] == before[key], f"{key} was recreated"
    assert cluster.get("decky", "svc-01")["status"]["lifecycle"]["operation"] == "Update"

    cluster.apply(cluster.decky("svc-01", ["http", "ssh"]))
    wait_for(lambda: "service:telnet" not in container_ids(cluster, "svc-01"), 60, "telnet removed")
    final = container_ids(cluster, "svc-01")
    assert final["base:"] == before["base:"] and final["service:http"] == before["service:http"]
    assert final["service:ssh"] == after["service:ssh"]


def test_a_manual_mutation_changes_services_but_not_address_or_base(cluster: Cluster) -> None:
    cluster.apply(
        cluster.lan(),
        cluster.decky("mut-01", ["http"], mutation={"pool": ["http", "telnet", "ssh", "ftp"]}),
    )
    cluster.wait_ready(["mut-01"])
    before = cluster.get("decky", "mut-01")["status"]
    base_before = container_ids(cluster, "mut-01")["base:"]

    cluster.kubectl(
        "annotate",
        "decky",
        "mut-01",
        "-n",
        cluster.ns,
        "--overwrite",
        "decnet.io/mutate-request=e2e-1",
    )
    wait_for(
        lambda: cluster.get("decky", "mut-01")["status"].get("lastMutation") is not None,
        30,
        "the mutation",
    )
    cluster.wait_ready(["mut-01"])
    wait_for(
        lambda: cluster.get("decky", "mut-01")["status"]["lifecycle"]["phase"] == "Succeeded",
        60,
        "mutate done",
    )
    after = cluster.get("decky", "mut-01")["status"]
    assert after["lastMutation"]["trigger"] == "Manual"
    assert sorted(after["services"]) != sorted(before["services"])
    assert after["lifecycle"]["operation"] == "Mutate"
    assert after["addresses"] == before["addresses"]
    ids = container_ids(cluster, "mut-01")
    assert ids["base:"] == base_before
    assert sorted(k.split(":")[1] for k in ids if k.startswith("service:")) == sorted(
        after["services"]
    )


def test_deleting_a_decky_removes_its_containers_and_releases_its_address(cluster: Cluster) -> None:
    cluster.apply(cluster.lan(), cluster.decky("gone-01", ["http"]))
    cluster.wait_ready(["gone-01"])
    ip = cluster.get("decky", "gone-01")["status"]["addresses"][0]["ip"]
    cluster.kubectl("delete", "decky", "gone-01", "-n", cluster.ns, "--timeout=60s")
    assert cluster.containers("gone-01") == []
    # The address is free again: a new decky may pin it.
    cluster.apply(cluster.decky("again-01", ["http"], networks=[{"lan": "lan", "ip": ip}]))
    cluster.wait_ready(["again-01"])


def test_a_fleet_applied_at_once_gets_distinct_addresses_and_goes_ready(cluster: Cluster) -> None:
    names = [f"fleet-{i:02d}" for i in range(8)]
    cluster.apply(cluster.lan(), *[cluster.decky(n, ["http", "telnet"]) for n in names])
    cluster.wait_ready(names, timeout=180)
    addresses = [d["status"]["addresses"][0]["ip"] for d in cluster.deckies()]
    assert len(set(addresses)) == len(names)
    assert len(cluster.containers()) == 3 * len(names)


def ready_status(obj: dict[str, Any]) -> str | None:
    return condition(obj, "Ready")
