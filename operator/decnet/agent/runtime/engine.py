"""The only place that talks to Docker: observe into plain dataclasses, run planner actions.

It uses the SDK's low-level APIClient: listing containers with the list endpoint
(no per-container inspect) keeps an observation to one request, which matters
when a resync re-observes hundreds of deckies. Errors come out as `DockerError`
(Docker refused; the text is reported) or `EngineUnavailable` (no answer; retry,
never conclude that anything is gone).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import docker
import docker.errors
import requests.exceptions

from decnet.agent import hardening, lures, planner
from decnet.agent.runtime import dockerconn
from decnet.kube import names

# The base container: PID 1 is a shell that sleeps and exits at once on SIGTERM.
BASE_COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
# With a packet persona, PID 1 also keeps the rewriter (decnet.shaper, "netshape" in the
# base image) running: restarted 2 s after it dies; in between, and on a base image
# without it, packets pass unchanged (its NFQUEUE rules bypass a queue nobody reads).
SHAPER_PACKAGE = "netshape"
_SHAPED = (
    "trap 'exit 0' TERM; "
    "if python3 -c 'import {package}' 2>/dev/null; then "
    "while :; do python3 -m {package} --profile {profile} & wait $!; sleep 2 & wait $!; done; "
    "else while :; do sleep 3600 & wait $!; done; fi"
)
# The service's config (JSON); a neutral name, as everything inside a service container.
CONFIG_ENV = "SVC_CONFIG"


def base_sysctls(want: planner.DeckyWant) -> dict[str, str] | None:
    """The persona's per-netns sysctls, plus forwarding for a gateway."""
    sysctls = {**hardening.base_sysctls(want.forwards_l3), **dict(want.sysctls)}
    return sysctls or None


def base_command(want: planner.DeckyWant) -> list[str]:
    """PID 1 of the base: a sleep loop, supervising the packet persona when there is one."""
    profile = want.packet_persona
    if not profile:
        return BASE_COMMAND
    if not profile.isalnum():  # a word from the personas table, never a user's text
        raise ValueError(f"bad packet persona {profile!r}")
    return ["sh", "-c", _SHAPED.format(package=SHAPER_PACKAGE, profile=profile)]


class DockerError(Exception):
    """Docker refused an operation; the message is Docker's text (reported, capped)."""


class EngineUnavailable(Exception):
    """Docker did not answer: back off and retry, assume nothing."""


class StuckContainer(DockerError):
    """Docker refuses every start of this container: its id is stuck in Docker's runtime.
    No retry helps; only a new container (a new id) runs. The caller replaces it."""

    def __init__(self, name: str, container_id: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.container_id = container_id


def is_stuck_id(message: str, container_id: str) -> bool:
    """Whether Docker's refusal to start a container says its id is stuck in the runtime:
    containerd still holds a container object ("id already in use") or a task ("task <id>:
    already exists") of an earlier start that dockerd lost, as when dockerd stopped in the
    middle of a restart (seen with dockerd 20.10). dockerd never clears either itself."""
    return "id already in use" in message or f"task {container_id}: already exists" in message


def _explain(error: Exception) -> str:
    if isinstance(error, docker.errors.APIError):
        return str(error.explanation or error)
    return str(error)


class Engine:
    def __init__(
        self,
        client: docker.DockerClient,
        node: str,
        lure_store: lures.LureStore | None = None,
        logs: hardening.LogLimits | None = None,
    ) -> None:
        self.client = client
        self.api: docker.APIClient = client.api
        dockerconn.one_pool_per_socket(self.api)
        self.node = node
        self.lures = lure_store or lures.LureStore()
        self.logs = logs or hardening.LogLimits()
        self._net_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._images: set[str] = set()
        # Called with a container id before it is removed: the event collector stops the
        # container and reads its last output (no removal loses an attacker's last words).
        self.before_remove: Callable[[str], None] | None = None
        # Called with a container id once it was started: the event collector follows its
        # output from then on, without waiting for its next look at every container.
        self.after_start: Callable[[str], None] | None = None

    @classmethod
    def from_env(
        cls,
        node: str,
        timeout: int = 120,
        lure_store: lures.LureStore | None = None,
        logs: hardening.LogLimits | None = None,
    ) -> Engine:
        try:
            return cls(docker.from_env(timeout=timeout), node, lure_store, logs)
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
        return _parsed(_container_seen, raw, "container")

    def list_networks(self) -> list[planner.NetworkSeen]:
        raw = self._call(self.api.networks, filters={"label": self._ours()})
        return _parsed(_network_seen, raw, "network")

    def observe_decky(
        self, namespace: str, name: str, with_files: bool, uid: str = ""
    ) -> planner.Observed:
        """The decky's containers and every managed network; with_files adds the agent's
        own record of the lure files it wrote for `uid` (nothing is read from a container)."""
        containers = self.list_containers(
            [f"{names.LABEL_NAMESPACE}={namespace}", f"{names.LABEL_DECKY}={name}"]
        )
        files: dict[str, Mapping[str, str]] = {}
        if with_files and uid:
            files[uid] = self.lures.manifest(uid)
        return planner.Observed(tuple(containers), tuple(self.list_networks()), files)

    def observe_node(self) -> planner.Observed:
        return planner.Observed(tuple(self.list_containers()), tuple(self.list_networks()))

    def confirm(self, containers: Sequence[planner.ContainerSeen]) -> list[planner.ContainerSeen]:
        """The same containers with Docker's state and exit code now (one inspect each);
        a container gone meanwhile comes back as state "missing"."""
        confirmed = []
        for c in containers:
            try:
                raw = self._call(self.api.inspect_container, c.id)
            except DockerError as error:
                if isinstance(error.__cause__, docker.errors.NotFound):
                    confirmed.append(replace(c, state="missing", exit_code=None))
                    continue
                raise
            confirmed.append(_confirmed(c, raw))
        return confirmed

    # ------------------------------------------------------------------ act

    def _started(self, container_id: str) -> None:
        if self.after_start is not None:
            self.after_start(container_id)

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
            self._started(service_id)
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
            self._start(action.name, action.id, self.api.start)
        elif isinstance(action, planner.RestartContainer):
            self._start(action.name, action.id, self.api.restart, timeout=2)
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
            self.lures.sync(action, time.time())
        else:  # Refuse and Fail are decisions, not Docker work.
            raise TypeError(f"not an executable action: {action!r}")
        return None

    def _start(self, name: str, container_id: str, fn: Any, **kwargs: Any) -> None:
        try:
            self._call(fn, container_id, **kwargs)
        except DockerError as error:
            if is_stuck_id(str(error), container_id):
                raise StuckContainer(name, container_id, str(error)) from error
            raise
        self._started(container_id)

    def _net_lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._net_locks.setdefault(name, threading.Lock())

    def ensure_network(self, namespace: str, net: planner.NetworkWant) -> planner.NetworkSeen:
        """Create the LAN's network once; deckies of one LAN race here, hence the lock."""
        with self._net_lock(net.network):
            existing = self._call(self.api.networks, names=[net.network])
            for found in existing:
                if found.get("Name") == net.network:
                    seen = _network_seen(found)
                    if not planner.is_lans_network(seen, namespace, net.lan):
                        raise DockerError(
                            f"Docker network {net.network} exists and belongs to another LAN"
                        )
                    return seen
            pool = docker.types.IPAMPool(subnet=net.subnet, gateway=net.gateway or None)
            options = network_options(self.node, namespace, net)
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
                bridge=(options or {}).get(BRIDGE_NAME_OPTION, ""),
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
            names.LABEL_CONTAINER_HASH: hash_,
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
            network_mode=home.network,
            restart_policy={"Name": "no"},
            sysctls=base_sysctls(want),
            **hardening.base_host_config_options(self.logs),
        )
        networking = self.api.create_networking_config(
            {home.network: self.api.create_endpoint_config(ipv4_address=home.ip)}
        )
        created = self._call(
            self.api.create_container,
            want.base_image,
            command=base_command(want),
            name=want.base_name,
            hostname=want.hostname,
            mac_address=want.mac_address or None,  # the home network's; never Docker's 02:42
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
                network_mode=f"container:{base_id}",
                restart_policy={"Name": "no"},
                binds=self.lures.binds(want.uid, want.lure_paths) or None,
                **hardening.host_config_options(svc.security, self.logs),
            ),
        )
        service_id = str(created["Id"])
        self._call(self.api.start, service_id)
        return service_id

    def remove_container(self, container_id: str) -> None:
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


BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def network_options(node: str, namespace: str, net: planner.NetworkWant) -> dict[str, str] | None:
    """A bridge gets a name the node's firewall rules can match; macvlan its parent."""
    if net.driver == "macvlan":
        return {"parent": net.parent} if net.parent else None
    return {BRIDGE_NAME_OPTION: names.bridge_name(node, namespace, net.lan)}


# Bounds on what is taken from a Docker listing (labels and names are ours, but the
# agent trusts nothing it reads back without a limit).
LABEL_MAX = 256
LABELS_MAX = 64
NETWORKS_MAX = 64


def _parsed(parse: Any, raw: Any, what: str) -> list[Any]:
    """Every entry parsed, or a DockerError naming what was unreadable (reported on the
    decky as a failed converge, never a crash)."""
    if not isinstance(raw, list):
        raise DockerError(f"unreadable {what} list from Docker: {type(raw).__name__}")
    try:
        return [parse(entry) for entry in raw]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise DockerError(f"unreadable {what} entry from Docker: {error!r}"[:500]) from error


def _labels_of(raw: Any) -> dict[str, str]:
    items = list((raw or {}).items())[:LABELS_MAX]
    return {str(k)[:LABEL_MAX]: str(v)[:LABEL_MAX] for k, v in items}


def _container_seen(raw: Mapping[str, Any]) -> planner.ContainerSeen:
    networks: dict[str, str] = {}
    attached = ((raw.get("NetworkSettings") or {}).get("Networks") or {}).items()
    for net_name, endpoint in list(attached)[:NETWORKS_MAX]:
        endpoint = endpoint or {}
        ipam = endpoint.get("IPAMConfig") or {}
        networks[net_name] = ipam.get("IPv4Address") or endpoint.get("IPAddress") or ""
    raw_names: Iterable[str] = raw.get("Names") or []
    name = next(iter(raw_names), "").lstrip("/")
    return planner.ContainerSeen(
        id=str(raw["Id"]),
        name=name[:LABEL_MAX],
        labels=_labels_of(raw.get("Labels")),
        state=str(raw.get("State", ""))[:32],
        networks=networks,
        network_mode=str((raw.get("HostConfig") or {}).get("NetworkMode", "")),
    )


def _confirmed(c: planner.ContainerSeen, raw: Any) -> planner.ContainerSeen:
    state = raw.get("State") if isinstance(raw, Mapping) else None
    if not isinstance(state, Mapping):
        state = {}
    status = str(state.get("Status", ""))[:32]
    code = state.get("ExitCode")
    exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    return replace(c, state=status, exit_code=None if status == "running" else exit_code)


def _network_seen(raw: Mapping[str, Any]) -> planner.NetworkSeen:
    config = ((raw.get("IPAM") or {}).get("Config") or [{}])[0] or {}
    return planner.NetworkSeen(
        id=str(raw["Id"]),
        name=str(raw["Name"])[:LABEL_MAX],
        labels=_labels_of(raw.get("Labels")),
        driver=str(raw.get("Driver", "")),
        subnet=str(config.get("Subnet", "")),
        gateway=str(config.get("Gateway", "")),
        internal=bool(raw.get("Internal", False)),
        parent=str((raw.get("Options") or {}).get("parent", "")),
        bridge=str((raw.get("Options") or {}).get(BRIDGE_NAME_OPTION, "")),
    )
