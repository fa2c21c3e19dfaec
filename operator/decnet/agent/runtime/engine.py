"""The only place that talks to Docker: observe into plain dataclasses, run planner actions.

It uses the SDK's low-level APIClient: listing containers with the list endpoint
(no per-container inspect) keeps an observation to one request, which matters
when a resync re-observes hundreds of deckies. Errors come out as `DockerError`
(Docker refused; the text is reported) or `EngineUnavailable` (no answer; retry,
never conclude that anything is gone).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import docker
import docker.errors
import requests.exceptions

from decnet.agent import images, planner
from decnet.kube import names

# The base container: PID 1 is a shell that sleeps and exits at once on SIGTERM.
BASE_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
# Where the base remembers which files the agent placed (path -> digest).
MANIFEST_DIR = ".decnet"
MANIFEST_PATH = f"/{MANIFEST_DIR}/files.json"
CONFIG_ENV = "DECNET_CONFIG"


class DockerError(Exception):
    """Docker refused an operation; the message is Docker's text (reported, capped)."""


class EngineUnavailable(Exception):
    """Docker did not answer: back off and retry, assume nothing."""


def _explain(error: Exception) -> str:
    if isinstance(error, docker.errors.APIError):
        return str(error.explanation or error)
    return str(error)


class Engine:
    def __init__(self, client: docker.DockerClient, node: str) -> None:
        self.client = client
        self.api: docker.APIClient = client.api
        self.node = node
        self._net_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._images: set[str] = set()
        # base id -> its file manifest; read from the container once per agent process.
        self._manifests: dict[str, dict[str, str]] = {}
        # Called with a container id before it is removed: the event collector stops the
        # container and reads its last output (no removal loses an attacker's last words).
        self.before_remove: Callable[[str], None] | None = None

    @classmethod
    def from_env(cls, node: str, timeout: int = 120) -> Engine:
        try:
            return cls(docker.from_env(timeout=timeout), node)
        except docker.errors.DockerException as error:
            raise EngineUnavailable(str(error)) from error

    # ------------------------------------------------------------------ helpers

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except docker.errors.APIError as error:
            raise DockerError(_explain(error)) from error
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            raise EngineUnavailable(str(error)) from error

    def _ours(self) -> list[str]:
        return [
            f"{names.LABEL_MANAGED_BY}={names.MANAGED_BY}",
            f"{names.LABEL_AGENT_NODE}={self.node}",
        ]

    def ping(self) -> None:
        self._call(self.api.ping)

    # ------------------------------------------------------------------ observe

    def list_containers(self, extra_labels: Sequence[str] = ()) -> list[planner.ContainerSeen]:
        raw = self._call(
            self.api.containers, all=True, filters={"label": self._ours() + list(extra_labels)}
        )
        return [_container_seen(c) for c in raw]

    def list_networks(self) -> list[planner.NetworkSeen]:
        raw = self._call(self.api.networks, filters={"label": self._ours()})
        return [_network_seen(n) for n in raw]

    def observe_decky(self, namespace: str, name: str, with_files: bool) -> planner.Observed:
        containers = self.list_containers(
            [f"{names.LABEL_NAMESPACE}={namespace}", f"{names.LABEL_DECKY}={name}"]
        )
        files: dict[str, Mapping[str, str]] = {}
        if with_files:
            for c in containers:
                if c.state == "running":
                    files[c.id] = self.read_manifest(c.id)
        return planner.Observed(tuple(containers), tuple(self.list_networks()), files)

    def observe_node(self) -> planner.Observed:
        return planner.Observed(tuple(self.list_containers()), tuple(self.list_networks()))

    def read_manifest(self, container_id: str) -> dict[str, str]:
        cached = self._manifests.get(container_id)
        if cached is not None:
            return dict(cached)
        manifest = self._read_manifest(container_id)
        self._manifests[container_id] = manifest
        return dict(manifest)

    def _read_manifest(self, container_id: str) -> dict[str, str]:
        try:
            stream, _ = self.api.get_archive(container_id, MANIFEST_PATH)
        except docker.errors.NotFound:
            return {}
        except docker.errors.APIError as error:
            raise DockerError(_explain(error)) from error
        except requests.exceptions.ConnectionError as error:
            raise EngineUnavailable(str(error)) from error
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member else None
            if handle is None:
                return {}
            loaded = json.loads(handle.read() or b"{}")
        return {str(k): str(v) for k, v in loaded.items()}

    # ------------------------------------------------------------------ act

    def execute(self, action: planner.Action) -> planner.Created | None:
        """Carry out one action; what it created (for planner.predict), or None."""
        if isinstance(action, planner.EnsureNetwork):
            return self.ensure_network(action.namespace, action.net)
        if isinstance(action, planner.CreateBase):
            base_id = self.create_base(action.want, action.hash)
            return planner.ContainerSeen(
                id=base_id,
                name=action.want.base_name,
                labels=self._labels(action.want, names.ROLE_BASE, "", action.hash),
                state="running",
                networks={n.network: n.ip for n in action.want.networks},
                network_mode=action.want.networks[0].network,
            )
        if isinstance(action, planner.CreateService):
            svc = action.service
            service_id = self.create_service(action.want, svc, action.base_id, action.hash)
            return planner.ContainerSeen(
                id=service_id,
                name=action.want.service_name(svc.name),
                labels=self._labels(action.want, names.ROLE_SERVICE, svc.name, action.hash),
                state="running",
                network_mode=f"container:{action.base_id}",
            )
        if isinstance(action, planner.RemoveNetwork):
            self.remove_network(action.id)
        elif isinstance(action, planner.RemoveContainer):
            self.remove_container(action.id)
        elif isinstance(action, planner.StartContainer):
            self._call(self.api.start, action.id)
        elif isinstance(action, planner.RestartContainer):
            self._call(self.api.restart, action.id, timeout=2)
        elif isinstance(action, planner.Connect):
            self._call(
                self.api.connect_container_to_network,
                action.container_id,
                action.network,
                ipv4_address=action.ip,
            )
        elif isinstance(action, planner.Disconnect):
            self._call(
                self.api.disconnect_container_from_network,
                action.container_id,
                action.network,
                force=True,
            )
        elif isinstance(action, planner.SyncFiles):
            self.sync_files(action)
        else:  # Refuse and Fail are decisions, not Docker work.
            raise TypeError(f"not an executable action: {action!r}")
        return None

    def _net_lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._net_locks.setdefault(name, threading.Lock())

    def ensure_network(self, namespace: str, net: planner.NetworkWant) -> planner.NetworkSeen:
        """Create the LAN's network once; deckies of one LAN race here, hence the lock."""
        with self._net_lock(net.network):
            existing = self._call(self.api.networks, names=[net.network])
            for found in existing:
                if found.get("Name") == net.network:
                    return _network_seen(found)
            pool = docker.types.IPAMPool(subnet=net.subnet, gateway=net.gateway or None)
            options = {"parent": net.parent} if net.driver == "macvlan" and net.parent else None
            labels = {
                names.LABEL_MANAGED_BY: names.MANAGED_BY,
                names.LABEL_NAMESPACE: namespace,
                names.LABEL_LAN: net.lan,
                names.LABEL_AGENT_NODE: self.node,
            }
            created = self._call(
                self.api.create_network,
                net.network,
                driver=net.driver,
                options=options,
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                internal=net.internal,
                check_duplicate=True,
                labels=labels,
            )
            return planner.NetworkSeen(
                id=str(created["Id"]),
                name=net.network,
                labels=labels,
                driver=net.driver,
                subnet=net.subnet,
                gateway=net.gateway,
                internal=net.internal,
                parent=net.parent,
            )

    def remove_network(self, network_id: str) -> None:
        try:
            self.api.remove_network(network_id)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as error:
            # Someone else's container still uses it: keep it, the next resync looks again.
            if "active endpoints" in _explain(error):
                return
            raise DockerError(_explain(error)) from error
        except requests.exceptions.ConnectionError as error:
            raise EngineUnavailable(str(error)) from error

    def _labels(
        self, want: planner.DeckyWant, role: str, service: str, hash_: str
    ) -> dict[str, str]:
        return {
            names.LABEL_MANAGED_BY: names.MANAGED_BY,
            names.LABEL_NAMESPACE: want.namespace,
            names.LABEL_DECKY: want.name,
            names.LABEL_UID: want.uid,
            names.LABEL_ROLE: role,
            names.LABEL_SERVICE: service,
            names.LABEL_PLAN_HASH: hash_,
            names.LABEL_AGENT_NODE: self.node,
        }

    def ensure_image(self, image: str) -> None:
        """Local image, else a pull; a missing image is an error with a clear message."""
        if image in self._images:
            return
        try:
            self.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            try:
                self.api.pull(image)
            except docker.errors.APIError as error:
                raise DockerError(
                    f"image {image} is not present on node {self.node} and could not be pulled: "
                    f"{_explain(error)}"
                ) from error
            except requests.exceptions.ConnectionError as error:
                raise EngineUnavailable(str(error)) from error
        except requests.exceptions.ConnectionError as error:
            raise EngineUnavailable(str(error)) from error
        self._images.add(image)

    def create_base(self, want: planner.DeckyWant, hash_: str) -> str:
        home = want.home
        assert home is not None  # the planner fails a plan without networks
        self.ensure_image(want.base_image)
        host_config = self.api.create_host_config(
            cap_add=["NET_ADMIN"],
            network_mode=home.network,
            restart_policy={"Name": "no"},
            sysctls={"net.ipv4.ip_forward": "1"} if want.forwards_l3 else None,
        )
        networking = self.api.create_networking_config(
            {home.network: self.api.create_endpoint_config(ipv4_address=home.ip)}
        )
        created = self._call(
            self.api.create_container,
            want.base_image,
            command=BASE_COMMAND,
            name=want.base_name,
            hostname=want.hostname,
            labels=self._labels(want, names.ROLE_BASE, "", hash_),
            host_config=host_config,
            networking_config=networking,
            stop_signal="SIGTERM",
        )
        base_id = str(created["Id"])
        for net in want.networks[1:]:
            self._call(
                self.api.connect_container_to_network, base_id, net.network, ipv4_address=net.ip
            )
        self._call(self.api.start, base_id)
        self._manifests[base_id] = {}  # a fresh base holds no placed files
        return base_id

    def create_service(
        self, want: planner.DeckyWant, svc: planner.ServiceWant, base_id: str, hash_: str
    ) -> str:
        self.ensure_image(svc.image)
        env = dict(svc.env)
        env[CONFIG_ENV] = want.config.get(svc.name, "{}")
        created = self._call(
            self.api.create_container,
            svc.image,
            command=list(svc.command) or None,
            name=want.service_name(svc.name),
            labels=self._labels(want, names.ROLE_SERVICE, svc.name, hash_),
            environment=env,
            host_config=self.api.create_host_config(
                network_mode=f"container:{base_id}", restart_policy={"Name": "no"}
            ),
        )
        service_id = str(created["Id"])
        self._call(self.api.start, service_id)
        self._manifests[service_id] = {}  # a fresh container holds no placed files
        return service_id

    def remove_container(self, container_id: str) -> None:
        self._manifests.pop(container_id, None)
        if self.before_remove is not None:
            self.before_remove(container_id)
        try:
            self.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as error:
            if "already in progress" in _explain(error):
                return
            raise DockerError(_explain(error)) from error
        except requests.exceptions.ConnectionError as error:
            raise EngineUnavailable(str(error)) from error

    def sync_files(self, action: planner.SyncFiles, now: float | None = None) -> None:
        """Remove dropped files, then place files and the manifest in one archive."""
        target = action.container_id
        if action.remove:
            exec_id = self._call(self.api.exec_create, target, ["rm", "-f", "--", *action.remove])
            self._call(self.api.exec_start, exec_id)
        self._manifests.pop(target, None)
        self._call(self.api.put_archive, target, "/", files_archive(action, now or time.time()))
        self._manifests[target] = dict(action.manifest)

    # ------------------------------------------------------------------ images built from a context

    def build_image(self, tag: str, context: str, dockerfile: str = "") -> None:
        """`docker build`, retried once with the legacy builder on BuildKit's read-only error."""
        args = ["docker", "build", "-q", "-t", tag]
        if dockerfile:
            args += ["-f", dockerfile]
        args.append(context)
        result = subprocess.run(args, capture_output=True, text=True, timeout=1800)
        if result.returncode == 0:
            return
        output = result.stdout + result.stderr
        if images.is_buildkit_readonly_activity_error(output):
            images.log_legacy_builder_fallback(tag)
            env = images.legacy_builder_env()
            result = subprocess.run(args, capture_output=True, text=True, timeout=1800, env=env)
            if result.returncode == 0:
                return
            output = result.stdout + result.stderr
        raise DockerError(f"building image {tag} from {context} failed: {output.strip()}")


def files_archive(action: planner.SyncFiles, now: float) -> bytes:
    """A tar for put_archive at '/': each file with its mode and aged mtime, plus the manifest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in action.place:
            _add(tar, f.path.lstrip("/"), f.content, f.mode, now + f.mtime_offset_seconds)
        manifest = json.dumps(dict(action.manifest), sort_keys=True).encode()
        dir_info = tarfile.TarInfo(MANIFEST_DIR)
        dir_info.type = tarfile.DIRTYPE
        dir_info.mode = 0o700
        dir_info.mtime = int(now)
        tar.addfile(dir_info)
        _add(tar, MANIFEST_PATH.lstrip("/"), manifest, 0o600, now)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, content: bytes, mode: int, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = mode
    info.mtime = int(mtime)
    info.uid = info.gid = 0
    tar.addfile(info, io.BytesIO(content))


def _container_seen(raw: Mapping[str, Any]) -> planner.ContainerSeen:
    networks: dict[str, str] = {}
    for net_name, endpoint in ((raw.get("NetworkSettings") or {}).get("Networks") or {}).items():
        endpoint = endpoint or {}
        ipam = endpoint.get("IPAMConfig") or {}
        networks[net_name] = ipam.get("IPv4Address") or endpoint.get("IPAddress") or ""
    raw_names: Iterable[str] = raw.get("Names") or []
    name = next(iter(raw_names), "").lstrip("/")
    return planner.ContainerSeen(
        id=str(raw["Id"]),
        name=name,
        labels=dict(raw.get("Labels") or {}),
        state=str(raw.get("State", "")),
        networks=networks,
        network_mode=str((raw.get("HostConfig") or {}).get("NetworkMode", "")),
    )


def _network_seen(raw: Mapping[str, Any]) -> planner.NetworkSeen:
    config = ((raw.get("IPAM") or {}).get("Config") or [{}])[0] or {}
    return planner.NetworkSeen(
        id=str(raw["Id"]),
        name=str(raw["Name"]),
        labels=dict(raw.get("Labels") or {}),
        driver=str(raw.get("Driver", "")),
        subnet=str(config.get("Subnet", "")),
        gateway=str(config.get("Gateway", "")),
        internal=bool(raw.get("Internal", False)),
        parent=str((raw.get("Options") or {}).get("parent", "")),
    )
