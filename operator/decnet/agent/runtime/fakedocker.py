"""An in-memory Docker engine behind the real `Engine`, for simulated nodes at scale.

A benchmark of many nodes on one machine cannot start tens of thousands of
containers, yet it must exercise the real agent: its watch, queue, planner,
converge rounds and status reports. So only the Docker API client is replaced:
`Engine` keeps parsing listings, building labels and mapping errors exactly as
with dockerd, and this class answers the low-level calls Engine makes with
Docker's shapes (ids, names, labels, states, networks, IPAM) from a dict.
Each call can take a configurable latency, and mutating calls can fail at a
configurable rate with Docker's own error types. State lives in the process:
an agent restarted under the fake engine finds an empty engine (as after a
node reboot) and recreates its deckies.

Never a default: the agent selects it with `--engine fake` (DECNET_AGENT_ENGINE).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import docker
import docker.errors

from decnet.agent import hardening, lures
from decnet.agent.runtime import engine as runtime


def _matches(labels: Mapping[str, str], wanted: Sequence[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


class FakeDockerAPI:
    """The subset of docker.APIClient that runtime.Engine calls, answered from memory."""

    def __init__(self, latency: float = 0.0, failure_rate: float = 0.0, seed: int = 0) -> None:
        self.latency = latency
        self.failure_rate = failure_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.containers_by_id: dict[str, dict[str, Any]] = {}
        self.networks_by_id: dict[str, dict[str, Any]] = {}
        self.calls = 0
        # ids Docker refuses to start, as dockerd does once its runtime holds a stale
        # object under a container's id (a dockerd stopped in the middle of a restart),
        # with one of the two refusals dockerd 20.10 gives then
        self.stuck_ids: set[str] = set()
        self.stuck_refusal = "id already in use"

    # ------------------------------------------------------------------ behaviour knobs

    def _call(self, mutating: bool = False) -> None:
        with self._lock:
            self.calls += 1
            fail = mutating and self.failure_rate > 0 and self._random.random() < self.failure_rate
        if self.latency > 0:
            time.sleep(self.latency)
        if fail:
            raise docker.errors.APIError(
                "500 Server Error", explanation="fake engine: injected failure"
            )

    def _container(self, ref: str) -> dict[str, Any]:
        found = self.containers_by_id.get(ref)
        if found is None:
            found = next(
                (c for c in self.containers_by_id.values() if c["Names"][0] == f"/{ref}"), None
            )
        if found is None:
            raise docker.errors.NotFound(
                "404 Client Error", explanation=f"No such container: {ref}"
            )
        return found

    def _network(self, ref: str) -> dict[str, Any]:
        found = self.networks_by_id.get(ref) or next(
            (n for n in self.networks_by_id.values() if n["Name"] == ref), None
        )
        if found is None:
            raise docker.errors.NotFound("404 Client Error", explanation=f"network {ref} not found")
        return found

    # ------------------------------------------------------------------ system and images

    def ping(self) -> bool:
        self._call()
        return True

    def inspect_image(self, image: str) -> dict[str, Any]:
        self._call()
        return {"Id": f"sha256:{uuid.uuid5(uuid.NAMESPACE_URL, image).hex}", "RepoTags": [image]}

    def pull(self, image: str) -> str:
        self._call(mutating=True)
        return ""

    # ------------------------------------------------------------------ config builders

    def create_host_config(self, network_mode: str = "", **kwargs: Any) -> dict[str, Any]:
        return {"NetworkMode": network_mode, **kwargs}

    def create_endpoint_config(self, ipv4_address: str | None = None) -> dict[str, Any]:
        return {"IPAMConfig": {"IPv4Address": ipv4_address or ""}}

    def create_networking_config(self, endpoints: Mapping[str, Any]) -> dict[str, Any]:
        return {"EndpointsConfig": dict(endpoints)}

    # ------------------------------------------------------------------ networks

    def networks(
        self, names: Sequence[str] | None = None, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        self._call()
        wanted = list((filters or {}).get("label") or [])
        with self._lock:
            return [
                _copy(n)
                for n in self.networks_by_id.values()
                if (not names or any(name in n["Name"] for name in names))
                and _matches(n["Labels"], wanted)
            ]

    def create_network(
        self,
        name: str,
        driver: str = "bridge",
        options: Mapping[str, str] | None = None,
        ipam: Mapping[str, Any] | None = None,
        internal: bool = False,
        check_duplicate: bool = True,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        self._call(mutating=True)
        pools = list((ipam or {}).get("Config") or [])
        with self._lock:
            if check_duplicate and any(n["Name"] == name for n in self.networks_by_id.values()):
                raise docker.errors.APIError(
                    "409 Client Error", explanation=f"network with name {name} already exists"
                )
            net_id = uuid.uuid4().hex + uuid.uuid4().hex
            self.networks_by_id[net_id] = {
                "Id": net_id,
                "Name": name,
                "Driver": driver,
                "Labels": dict(labels or {}),
                "Options": dict(options or {}),
                "Internal": internal,
                "IPAM": {"Driver": "default", "Config": [dict(p) for p in pools]},
            }
        return {"Id": net_id, "Warning": ""}

    def remove_network(self, net_id: str) -> None:
        self._call(mutating=True)
        with self._lock:
            net = self._network(net_id)
            if any(
                net["Name"] in c["NetworkSettings"]["Networks"]
                for c in self.containers_by_id.values()
            ):
                raise docker.errors.APIError(
                    "403 Client Error",
                    explanation=f"error while removing network: network {net['Name']} "
                    "has active endpoints",
                )
            del self.networks_by_id[net["Id"]]

    def connect_container_to_network(
        self, container: str, net_id: str, ipv4_address: str | None = None
    ) -> None:
        self._call(mutating=True)
        with self._lock:
            c = self._container(container)
            net = self._network(net_id)
            c["NetworkSettings"]["Networks"][net["Name"]] = {
                "IPAMConfig": {"IPv4Address": ipv4_address or ""},
                "IPAddress": ipv4_address or "",
                "NetworkID": net["Id"],
            }

    def disconnect_container_from_network(
        self, container: str, net_id: str, force: bool = False
    ) -> None:
        self._call(mutating=True)
        with self._lock:
            c = self._container(container)
            net = self._network(net_id)
            c["NetworkSettings"]["Networks"].pop(net["Name"], None)

    # ------------------------------------------------------------------ containers

    def containers(
        self, all: bool = False, filters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        self._call()
        wanted = list((filters or {}).get("label") or [])
        with self._lock:
            return [
                _copy(c)
                for c in self.containers_by_id.values()
                if (all or c["State"] == "running") and _matches(c["Labels"], wanted)
            ]

    def create_container(
        self,
        image: str,
        command: Any = None,
        name: str = "",
        labels: Mapping[str, str] | None = None,
        host_config: Mapping[str, Any] | None = None,
        networking_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        self._call(mutating=True)
        host = dict(host_config or {})
        mode = str(host.get("NetworkMode") or "")
        endpoints = dict((networking_config or {}).get("EndpointsConfig") or {})
        with self._lock:
            if name and any(c["Names"][0] == f"/{name}" for c in self.containers_by_id.values()):
                raise docker.errors.APIError(
                    "409 Client Error",
                    explanation=f'Conflict. The container name "/{name}" is already in use',
                )
            networks: dict[str, Any] = {}
            if mode and not mode.startswith("container:"):
                net = self._network(mode)
                ip = ((endpoints.get(mode) or {}).get("IPAMConfig") or {}).get("IPv4Address", "")
                networks[net["Name"]] = {
                    "IPAMConfig": {"IPv4Address": ip},
                    "IPAddress": ip,
                    "NetworkID": net["Id"],
                }
            elif mode:
                self._container(mode.removeprefix("container:"))
            container_id = uuid.uuid4().hex + uuid.uuid4().hex
            self.containers_by_id[container_id] = {
                "Id": container_id,
                "Names": [f"/{name or container_id[:12]}"],
                "Image": image,
                "Command": " ".join(command) if isinstance(command, list) else str(command or ""),
                "Labels": dict(labels or {}),
                "State": "created",
                "Status": "Created",
                "ExitCode": 0,
                "HostConfig": {"NetworkMode": mode},
                "NetworkSettings": {"Networks": networks},
            }
        return {"Id": container_id, "Warnings": []}

    def start(self, container: str) -> None:
        self._call(mutating=True)
        with self._lock:
            c = self._container(container)
            if c["Id"] in self.stuck_ids:
                refusal = self.stuck_refusal.format(id=c["Id"])
                raise docker.errors.APIError("500 Server Error", explanation=refusal)
            c["State"], c["Status"] = "running", "Up Less than a second"

    def restart(self, container: str, timeout: int = 10) -> None:
        self.start(container)

    def inspect_container(self, container: str) -> dict[str, Any]:
        self._call()
        with self._lock:
            c = self._container(container)
            state = c["State"]
            return {
                "Id": c["Id"],
                "Name": c["Names"][0],
                "Config": {"Labels": dict(c["Labels"])},
                "State": {
                    "Status": state,
                    "Running": state == "running",
                    "ExitCode": c["ExitCode"],
                },
            }

    def remove_container(self, container: str, force: bool = False) -> None:
        self._call(mutating=True)
        with self._lock:
            c = self._container(container)
            if c["State"] == "running" and not force:
                raise docker.errors.APIError(
                    "409 Client Error", explanation="cannot remove a running container"
                )
            del self.containers_by_id[c["Id"]]


class FakeDockerClient:
    """What docker.from_env() returns, as far as Engine reads it (`.api`)."""

    def __init__(self, api: FakeDockerAPI) -> None:
        self.api = api


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep enough copy: a caller never mutates the engine's state through a listing."""
    out = dict(obj)
    if "NetworkSettings" in obj:
        attached = obj["NetworkSettings"]["Networks"].items()
        out["NetworkSettings"] = {"Networks": {k: dict(v) for k, v in attached}}
    out["Labels"] = dict(obj["Labels"])
    return out


def engine(
    node: str,
    latency: float = 0.0,
    failure_rate: float = 0.0,
    lure_store: lures.LureStore | None = None,
    logs: hardening.LogLimits | None = None,
) -> runtime.Engine:
    """The real Engine, talking to an in-memory Docker."""
    api = FakeDockerAPI(latency, failure_rate, seed=hash(node) & 0xFFFF)
    client = cast(docker.DockerClient, FakeDockerClient(api))
    return runtime.Engine(client, node, lure_store, logs)
