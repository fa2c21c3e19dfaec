"""The service image's cost: idle memory per emulator container, and apply → Ready with it.

1. Idle memory: one container of the service image per service that has an emulator
   module, started with the service's launcher exactly as the built-in template runs
   it, left idle for a few seconds; then the container's cgroup memory (what `docker
   stats` shows: usage minus page cache) and the RSS of its one process. Target from
   DESIGN.md: ≤ 30 MB per emulator container.
2. apply → Ready of N deckies (default 50) running the real service image (the
   built-in ServiceTemplates), beside a plain Docker SDK script creating the same
   containers (busybox base + the same service containers with the same launchers)
   in the same run. BENCH_EMULATOR_DECKIES=0 skips it.

    python3 bench/bench_emulators.py        # writes bench/results/emulators.json
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import docker  # noqa: E402
import raw_docker  # noqa: E402
import stack  # noqa: E402

from decnet.emulators import main as emulators  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "decnet/emulator:0.1.0"
BASE_IMAGE = "decnet-test/busybox:latest"
NODE = "bench-emulator-node"
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "5"))
LABEL = "decnet.io/namespace"


def launchers() -> dict[str, str]:
    out = {}
    for line in (ROOT / "images" / "emulator" / "daemons.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            service, path, _title = line.split("\t")
            out[service] = path
    return out


def services_with_modules() -> list[str]:
    return sorted(
        s for s, mod in emulators.SERVICES.items()
        if importlib.util.find_spec(f"decnet.emulators.services.{mod}") is not None
    )


def memory_of(api: Any, cid: str) -> dict[str, float]:
    stats = api.stats(cid, stream=False)
    mem = stats.get("memory_stats", {})
    usage = mem.get("usage", 0)
    detail = mem.get("stats", {})
    cache = detail.get("inactive_file", detail.get("cache", detail.get("total_inactive_file", 0)))
    exec_id = api.exec_create(cid, ["sh", "-c", "grep VmRSS /proc/1/status"])
    rss_kib = int(api.exec_start(exec_id).decode().split()[1])
    return {"cgroup_mib": round((usage - cache) / 2**20, 1), "rss_mib": round(rss_kib / 1024, 1)}


def idle_memory(client: docker.DockerClient) -> list[dict[str, Any]]:
    api = client.api
    table = launchers()
    run = f"bench-emu-{uuid.uuid4().hex[:6]}"
    ids: dict[str, str] = {}
    try:
        for service in services_with_modules():
            cid = api.create_container(
                IMAGE, command=[table[service]], name=f"{run}-{service}",
                labels={LABEL: run}, environment={"SVC_CONFIG": "{}"},
                host_config=api.create_host_config(network_mode="none"),
            )["Id"]
            api.start(cid)
            ids[service] = cid
        time.sleep(IDLE_SECONDS)
        rows = []
        for service, cid in ids.items():
            state = api.inspect_container(cid)["State"]
            if not state["Running"]:
                logs = api.logs(cid).decode(errors="replace")[-500:]
                rows.append({"service": service, "error": f"exited {state['ExitCode']}: {logs}"})
                continue
            rows.append({"service": service, **memory_of(api, cid)})
        return rows
    finally:
        for cid in ids.values():
            api.remove_container(cid, force=True)


def fleet_services() -> list[str]:
    """Up to two services per decky, with no port used twice."""
    chosen: list[str] = []
    used: set[tuple[int, str]] = set()
    for service in ["http", *services_with_modules()]:
        ports = {(int(p), str(q)) for p, q in emulators.module(service).PORTS}
        if service not in chosen and not ports & used:
            chosen.append(service)
            used |= ports
        if len(chosen) == 2:
            break
    return chosen


def raw_fleet(client: docker.DockerClient, n: int, services: list[str], subnet: str) -> float:
    """Seconds for a plain SDK script to create the same containers (8 threads)."""
    api = client.api
    table = launchers()
    namespace = f"raw-emu-{uuid.uuid4().hex[:6]}"
    network = f"raw-{namespace}"
    hosts = list(ipaddress.ip_network(subnet).hosts())
    pool = docker.types.IPAMPool(subnet=subnet, gateway=str(hosts[0]))
    api.create_network(network, driver="bridge", internal=True, labels={LABEL: namespace},
                       ipam=docker.types.IPAMConfig(pool_configs=[pool]))

    def decky(i: int) -> None:
        labels = {LABEL: namespace}
        base = api.create_container(
            BASE_IMAGE, command=raw_docker.SLEEP, name=f"{namespace}-{i}-base", hostname=f"h{i}",
            labels=labels, host_config=api.create_host_config(cap_add=["NET_ADMIN"],
                                                              network_mode=network),
            networking_config=api.create_networking_config(
                {network: api.create_endpoint_config(ipv4_address=str(hosts[i + 1]))}),
        )["Id"]
        api.start(base)
        for service in services:
            sid = api.create_container(
                IMAGE, command=[table[service]], name=f"{namespace}-{i}-{service}", labels=labels,
                environment={"SVC_CONFIG": "{}"},
                host_config=api.create_host_config(network_mode=f"container:{base}"),
            )["Id"]
            api.start(sid)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as ex:
        list(ex.map(decky, range(n)))
    seconds = time.monotonic() - start
    found = api.containers(all=True, filters={"label": f"{LABEL}={namespace}"})
    with ThreadPoolExecutor(max_workers=8) as ex:
        list(ex.map(lambda c: api.remove_container(c["Id"], force=True), found))
    api.remove_network(network)
    return seconds


def operator_fleet(s: stack.Stack, n: int, services: list[str], subnet: str) -> float:
    namespace = f"bench-emu-{n}"
    s.kubectl("create", "namespace", namespace)
    s.apply(namespace, [stack.lan("lan", subnet)])
    names = [f"e-{i:03d}" for i in range(n)]
    start = time.monotonic()
    s.apply(namespace, [stack.decky(name, NODE, services) for name in names])
    done = stack.ready_watch(s, namespace, set(names), timeout=120 + 3 * n)
    seconds = done - start
    s.kubectl("delete", "deckies", "--all", "-n", namespace, f"--timeout={120 + n}s")
    return seconds


def main() -> None:
    subprocess.run(["bash", str(ROOT / "hack" / "emulator-image.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    client = docker.from_env(timeout=300)
    memory = idle_memory(client)
    for row in memory:
        print(f"{row['service']:14s} " + (row.get("error") or
              f"cgroup {row['cgroup_mib']:5.1f} MiB   RSS {row['rss_mib']:5.1f} MiB"), flush=True)
    result: dict[str, Any] = {"image": IMAGE, "idle_seconds": IDLE_SECONDS, "idle_memory": memory}
    n = int(os.environ.get("BENCH_EMULATOR_DECKIES", "50"))
    if n:
        services = fleet_services()
        with stack.stack() as s:
            s.kubectl("apply", "--server-side", "--force-conflicts", "-f",
                      str(ROOT / "examples" / "servicetemplates.yaml"))
            s.start_operator()
            s.start_agent(NODE, workers=8)
            raw = raw_fleet(client, n, services, "10.252.0.0/24")
            ours = operator_fleet(s, n, services, "10.253.0.0/24")
        result["apply"] = {
            "deckies": n, "services_per_decky": services,
            "raw_docker_seconds": round(raw, 2), "operator_seconds": round(ours, 2),
            "ratio": round(ours / raw, 3),
        }
        print(f"N={n} services={services}: raw docker {raw:.2f} s, apply→Ready {ours:.2f} s, "
              f"ratio {ours / raw:.2f}", flush=True)
    path = stack.write_result("emulators", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
