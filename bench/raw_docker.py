"""The physical limit: a plain Docker SDK script creating the containers the agent would.

Per decky: a base container (the operator's base image, a sleep loop, a hostname,
a pinned IP on one internal bridge network) plus `services` containers sharing its
network namespace (`network_mode=container:<base>`), created and started
with `threads` worker threads. Each gets the agent's own hardening (no capability
but the base's NET_ADMIN, read-only root with its tmpfs, pids/memory/CPU limits,
log rotation, the base's sysctls): the same containers, made the plainest way.
No Kubernetes, no planning, no observation: what the agent is compared against.

    python3 bench/raw_docker.py 50        # create, time, remove; prints seconds
"""

from __future__ import annotations

import ipaddress
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker

from decnet.agent import hardening
from decnet.controller import planning

IMAGE = "decnet-test/busybox:latest"  # the services' image in examples/servicetemplates-test.yaml
BASE_IMAGE = planning.DEFAULT_BASE_IMAGE
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
LABEL = "decnet.io/namespace"


@dataclass
class Fleet:
    namespace: str
    network: str
    container_ids: list[str] = field(default_factory=list)


def _decky(api: Any, fleet: Fleet, index: int, ip: str, services: int, image: str) -> list[str]:
    labels = {LABEL: fleet.namespace, "app.kubernetes.io/managed-by": "raw-docker-bench"}
    logs = hardening.LogLimits()
    base = api.create_container(
        BASE_IMAGE,
        command=SLEEP,
        name=f"raw-{fleet.namespace}-{index}-base",
        hostname=f"raw-{index}",
        labels=labels,
        host_config=api.create_host_config(
            network_mode=fleet.network,
            sysctls=hardening.base_sysctls(forwards_l3=False),
            **hardening.base_host_config_options(logs),
        ),
        networking_config=api.create_networking_config(
            {fleet.network: api.create_endpoint_config(ipv4_address=ip)}
        ),
    )["Id"]
    api.start(base)
    ids = [base]
    for s in range(services):
        sid = api.create_container(
            image,
            command=SLEEP,
            name=f"raw-{fleet.namespace}-{index}-svc-{s}",
            labels=labels,
            environment={"SVC_CONFIG": "{}"},
            host_config=api.create_host_config(
                network_mode=f"container:{base}",
                **hardening.host_config_options(hardening.Security(), logs),
            ),
        )["Id"]
        api.start(sid)
        ids.append(sid)
    return ids


def create_fleet(
    n: int,
    services: int = 2,
    threads: int = 8,
    image: str = IMAGE,
    subnet: str = "10.251.0.0/20",
    client: docker.DockerClient | None = None,
) -> Fleet:
    """n deckies of 1 + services containers on one internal network; returns what to remove."""
    client = client or docker.from_env(timeout=300)
    namespace = f"raw-{uuid.uuid4().hex[:6]}"
    net = ipaddress.ip_network(subnet)
    hosts = list(net.hosts())
    if n + 1 > len(hosts):
        raise ValueError(f"{subnet} has room for {len(hosts) - 1} deckies, not {n}")
    fleet = Fleet(namespace, f"raw-{namespace}")
    pool = docker.types.IPAMPool(subnet=subnet, gateway=str(hosts[0]))
    client.api.create_network(
        fleet.network,
        driver="bridge",
        internal=True,
        ipam=docker.types.IPAMConfig(pool_configs=[pool]),
        labels={LABEL: namespace},
    )
    with ThreadPoolExecutor(max_workers=threads) as ex:
        futures = [
            ex.submit(_decky, client.api, fleet, i, str(hosts[i + 1]), services, image)
            for i in range(n)
        ]
        for f in futures:
            fleet.container_ids.extend(f.result())
    return fleet


def remove_fleet(fleet: Fleet, threads: int = 8, client: docker.DockerClient | None = None) -> None:
    client = client or docker.from_env(timeout=300)
    found = client.api.containers(all=True, filters={"label": f"{LABEL}={fleet.namespace}"})
    with ThreadPoolExecutor(max_workers=threads) as ex:
        list(ex.map(lambda c: client.api.remove_container(c["Id"], force=True), found))
    client.api.remove_network(fleet.network)


def timed_fleet(n: int, services: int = 2, threads: int = 8) -> float:
    """Seconds to create and start n deckies; the fleet is removed afterwards (not timed)."""
    client = docker.from_env(timeout=300)
    start = time.monotonic()
    fleet = create_fleet(n, services=services, threads=threads, client=client)
    seconds = time.monotonic() - start
    remove_fleet(fleet, threads=threads, client=client)
    return seconds


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    took = timed_fleet(count)
    print(
        f"{count} deckies (base + 2 services), 8 threads: {took:.2f} s ({took / count:.3f} s/decky)"
    )
