"""The heart of the agent: what must Docker do so that it matches the plan?

Everything here is pure. The caller observes Docker (containers, networks,
the base's file manifest) into plain dataclasses, asks for the actions, runs
them, and observes again; the loop ends when the planner has nothing left to
do. Keeping the decisions out of the I/O code means every rule below is a
unit test, not an integration test:

- a service container's hash is *that service's* part of the plan plus the
  base id, so adding or removing a service never touches its siblings;
- a LAN attach/detach is a live connect/disconnect on the base;
- a change that needs the base recreated is refused unless the decky opts in;
- a stopped base is started and its services restarted (they must rejoin the
  base's new network namespace);
- networks are shared per (namespace, LAN) and only garbage-collected when no
  container uses them and no decky plans them;
- orphans (ours, but no decky behind them) are reaped only by the caller's
  decision, after a fresh list from the API server and a grace period.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from decnet.agent import hardening
from decnet.api import v1alpha1
from decnet.kube import names

# --------------------------------------------------------------------------- desired state


@dataclass(frozen=True)
class NetworkWant:
    lan: str
    network: str
    ip: str
    subnet: str
    gateway: str
    dmz: bool = False
    driver: str = "bridge"
    parent: str = ""
    topology: str = ""
    egress: tuple[EgressWant, ...] = ()
    sniffer: bool = True  # the LAN's spec.sniffer.enabled
    labels: tuple[tuple[str, str], ...] = ()  # the LAN's labels (EventSink selection)

    @property
    def internal(self) -> bool:
        return self.driver == "bridge" and not self.dmz


@dataclass(frozen=True)
class EgressWant:
    """One allowance of a LAN's spec.egress (the description stays in the API object)."""

    cidr: str
    protocol: str = "tcp"
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class ServiceWant:
    name: str
    image: str
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    config_hash: str = ""
    security: hardening.Security = hardening.Security()


@dataclass(frozen=True)
class FileWant:
    path: str
    mode: int
    mtime_offset_seconds: int
    content_sha256: str
    content: bytes = field(default=b"", repr=False, compare=False)

    @property
    def digest(self) -> str:
        """What the manifest remembers: content, mode and age together."""
        raw = f"{self.content_sha256}:{self.mode}:{self.mtime_offset_seconds}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DeckyWant:
    """One decky as the agent needs it: its plan plus what only the spec knows."""

    namespace: str
    name: str
    uid: str
    plan_hash: str
    hostname: str
    base_image: str
    networks: tuple[NetworkWant, ...]
    services: tuple[ServiceWant, ...] = ()
    forwards_l3: bool = False
    # None: the file contents could not be resolved now, leave files alone.
    files: tuple[FileWant, ...] | None = ()
    allow_recreate: bool = False
    # service name -> JSON text of the service's config (persona defaults under
    # spec.serviceConfig[name]); never logged.
    config: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # The archetype persona, applied when the base is created (not part of base_hash:
    # an archetype change does not recreate a running base).
    mac_address: str = ""
    sysctls: Mapping[str, str] = field(default_factory=dict, compare=False)
    # the base's packet persona profile (decnet.shaper), "" for none
    packet_persona: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def base_name(self) -> str:
        return names.base_container_name(self.namespace, self.name)

    def service_name(self, service: str) -> str:
        return names.service_container_name(self.namespace, self.name, service)

    @property
    def home(self) -> NetworkWant | None:
        return self.networks[0] if self.networks else None

    @property
    def lure_paths(self) -> tuple[str, ...]:
        """Where lure files are bind-mounted in each service container (fixed at create)."""
        return tuple(sorted(f.path for f in self.files or ()))


def base_hash(want: DeckyWant) -> str:
    """The part of the plan that cannot change without recreating the base."""
    home = want.home
    return v1alpha1.digest(
        {
            "image": want.base_image,
            "hostname": want.hostname,
            "forwardsL3": want.forwards_l3,
            "home": home.network if home else "",
            "ip": home.ip if home else "",
        }
    )


def service_hash(svc: ServiceWant, base_id: str, lure_paths: Sequence[str] = ()) -> str:
    """A service's own part of the plan; lure paths are in it because their bind mounts
    are fixed at create (a file's content, mode and age change live, a new path does not)."""
    return v1alpha1.digest(
        {
            "name": svc.name,
            "image": svc.image,
            "command": list(svc.command),
            "env": [list(kv) for kv in svc.env],
            "configHash": svc.config_hash,
            "base": base_id,
            "security": svc.security.as_hash_input(),
            "lures": list(lure_paths),
        }
    )


# --------------------------------------------------------------------------- observed state


@dataclass(frozen=True)
class ContainerSeen:
    id: str
    name: str
    labels: Mapping[str, str]
    state: str  # Docker's: created, running, exited, paused, restarting, dead
    networks: Mapping[str, str] = field(default_factory=dict)  # network name -> IP
    network_mode: str = ""  # a base's home network, "container:<id>" for a service
    exit_code: int | None = None  # from an inspect (health.judge_containers); None if unknown

    @property
    def role(self) -> str:
        return self.labels.get(names.LABEL_ROLE, "")

    @property
    def service(self) -> str:
        return self.labels.get(names.LABEL_SERVICE, "")

    @property
    def uid(self) -> str:
        return self.labels.get(names.LABEL_UID, "")

    @property
    def container_hash(self) -> str:
        """The hash the container was created with (base_hash or service_hash)."""
        return self.labels.get(names.LABEL_CONTAINER_HASH, "")


@dataclass(frozen=True)
class NetworkSeen:
    id: str
    name: str
    labels: Mapping[str, str]
    driver: str
    subnet: str
    gateway: str
    internal: bool = False
    parent: str = ""
    bridge: str = ""  # the Linux bridge's name when we named it (firewall rules match it)


@dataclass(frozen=True)
class Observed:
    containers: tuple[ContainerSeen, ...] = ()
    networks: tuple[NetworkSeen, ...] = ()
    # decky uid -> {path: digest}: the agent's own record of the lure files it wrote on
    # the node (never read from a container); a uid missing here means "unknown", so
    # files are left alone.
    files: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class EnsureNetwork:
    namespace: str
    net: NetworkWant


@dataclass(frozen=True)
class RemoveNetwork:
    name: str
    id: str


@dataclass(frozen=True)
class CreateBase:
    want: DeckyWant
    hash: str


@dataclass(frozen=True)
class CreateService:
    want: DeckyWant
    service: ServiceWant
    base_id: str
    hash: str


@dataclass(frozen=True)
class RemoveContainer:
    name: str
    id: str
    reason: str


@dataclass(frozen=True)
class StartContainer:
    name: str
    id: str


@dataclass(frozen=True)
class RestartContainer:
    name: str
    id: str


@dataclass(frozen=True)
class Connect:
    container_id: str
    network: str
    ip: str


@dataclass(frozen=True)
class Disconnect:
    container_id: str
    network: str


@dataclass(frozen=True)
class SyncFiles:
    """Write lure files into the decky's directory on the node (bind-mounted read-only)."""

    uid: str
    place: tuple[FileWant, ...]
    remove: tuple[str, ...]
    manifest: Mapping[str, str]


@dataclass(frozen=True)
class Refuse:
    message: str


@dataclass(frozen=True)
class Fail:
    message: str


Action = (
    EnsureNetwork
    | RemoveNetwork
    | CreateBase
    | CreateService
    | RemoveContainer
    | StartContainer
    | RestartContainer
    | Connect
    | Disconnect
    | SyncFiles
    | Refuse
    | Fail
)

# Containers "up" from the planner's point of view; anything else is started.
_UP = frozenset({"running", "restarting"})


def recreate_message(reasons: Sequence[str]) -> str:
    return (
        f"the base container must be recreated ({', '.join(reasons)}); "
        f'set annotation {names.ANNOTATION_ALLOW_RECREATE}: "true" to allow it'
    )


def _recreate_reasons(want: DeckyWant, base: ContainerSeen) -> list[str]:
    """Best-effort explanation of a base hash mismatch, for the Stalled message."""
    home = want.home
    reasons: list[str] = []
    if home is not None:
        if home.network not in base.networks or base.network_mode not in ("", home.network):
            reasons.append("home LAN changed")
        elif base.networks.get(home.network) not in ("", home.ip):
            reasons.append("home IP changed")
    return reasons or ["hostname, forwardsL3, home LAN or base image changed"]


def plan_decky(want: DeckyWant, observed: Observed) -> list[Action]:
    """Actions that move this decky's containers toward its plan.

    `observed.containers` should hold this decky's containers (by namespace
    and decky name, whatever their uid) and `observed.networks` every
    managed network; anything else is ignored.
    """
    home = want.home
    if home is None:
        return [Fail("the plan has no network")]
    mine = [c for c in observed.containers if _belongs(c, want)]
    nets = {n.name: n for n in observed.networks}
    actions: list[Action] = []

    legacy = _legacy_networks(want, observed.networks)
    if legacy:
        return _replace_legacy(mine, legacy)

    # Networks first: a clash with an existing network is a failure, not a fix.
    for net in want.networks:
        existing = nets.get(net.network)
        if existing is None:
            actions.append(EnsureNetwork(want.namespace, net))
        elif not is_lans_network(existing, want.namespace, net.lan):
            return [Fail(f"Docker network {net.network} exists and belongs to another LAN")]
        elif existing.subnet != net.subnet or existing.driver != net.driver:
            return [
                Fail(
                    f"Docker network {net.network} exists with driver {existing.driver} "
                    f"subnet {existing.subnet}, the plan wants {net.driver} {net.subnet}"
                )
            ]

    # Lure files live on the node, written before any container that mounts them.
    if want.files is not None:
        sync = _sync_files(want.uid, want.files, observed.files.get(want.uid))
        if sync is not None:
            actions.append(sync)

    # Anything with our name but another uid (a deleted and re-created decky)
    # or an unknown role is in the way.
    stale = [
        c for c in mine if c.uid != want.uid or c.role not in (names.ROLE_BASE, names.ROLE_SERVICE)
    ]
    for c in stale:
        actions.append(RemoveContainer(c.name, c.id, "not of this decky"))
    mine = [c for c in mine if c not in stale]

    bases = [c for c in mine if c.role == names.ROLE_BASE]
    services = [c for c in mine if c.role == names.ROLE_SERVICE]
    want_base_hash = base_hash(want)
    base = next((b for b in bases if b.name == want.base_name), None)
    for extra in bases:
        if extra is not base:
            actions.append(RemoveContainer(extra.name, extra.id, "duplicate base"))

    if base is not None and base.container_hash != want_base_hash:
        if not want.allow_recreate:
            return [Refuse(recreate_message(_recreate_reasons(want, base)))]
        actions.append(RemoveContainer(base.name, base.id, "base recreate allowed"))
        base = None

    if base is None:
        # Services joined to a dead namespace cannot be repaired; they are
        # recreated once the new base exists (next planning round).
        for joined in services:
            actions.append(RemoveContainer(joined.name, joined.id, "base is being recreated"))
        actions.append(CreateBase(want, want_base_hash))
        return actions

    base_restarted = base.state not in _UP
    if base_restarted:
        actions.append(StartContainer(base.name, base.id))

    # Live LAN attach/detach on the base.
    wanted_nets = {n.network: n for n in want.networks}
    for net_name, ip in sorted(base.networks.items()):
        wanted = wanted_nets.get(net_name)
        if wanted is None:
            actions.append(Disconnect(base.id, net_name))
        elif ip and ip != wanted.ip:
            actions.append(Disconnect(base.id, net_name))
            actions.append(Connect(base.id, net_name, wanted.ip))
    for net in want.networks:
        if net.network not in base.networks:
            actions.append(Connect(base.id, net.network, net.ip))

    # Services: each judged alone, against its own hash.
    wanted_svcs = {s.name: s for s in want.services}
    by_service: dict[str, list[ContainerSeen]] = {}
    for c in services:
        by_service.setdefault(c.service, []).append(c)
    for svc_name, group in sorted(by_service.items()):
        for c in group:
            if svc_name not in wanted_svcs:
                actions.append(RemoveContainer(c.name, c.id, "service removed"))
            elif c.name != want.service_name(svc_name):
                actions.append(RemoveContainer(c.name, c.id, "duplicate service"))
    for svc in want.services:
        expected = want.service_name(svc.name)
        current = next((c for c in by_service.get(svc.name, []) if c.name == expected), None)
        h = service_hash(svc, base.id, want.lure_paths)
        if current is None:
            actions.append(CreateService(want, svc, base.id, h))
        elif current.container_hash != h:
            actions.append(RemoveContainer(current.name, current.id, "service changed"))
            actions.append(CreateService(want, svc, base.id, h))
        elif current.state not in _UP:
            actions.append(StartContainer(current.name, current.id))
        elif base_restarted:
            actions.append(RestartContainer(current.name, current.id))

    return actions


def _sync_files(
    uid: str, files: tuple[FileWant, ...], manifest: Mapping[str, str] | None
) -> SyncFiles | None:
    """What the decky's lure directory needs to match the plan; None when nothing."""
    if manifest is None:
        return None
    place = tuple(f for f in files if manifest.get(f.path) != f.digest)
    wanted_paths = {f.path for f in files}
    remove = tuple(sorted(p for p in manifest if p not in wanted_paths))
    if not place and not remove:
        return None
    return SyncFiles(uid, place, remove, {f.path: f.digest for f in files})


def is_lans_network(net: NetworkSeen, namespace: str, lan: str) -> bool:
    """Whether a network under a LAN's name is that LAN's: names are hashes, so two
    (namespace, LAN) pairs can share one, and a decky must never join the other's."""
    labels = net.labels
    return labels.get(names.LABEL_NAMESPACE) == namespace and labels.get(names.LABEL_LAN) == lan


def _legacy_networks(want: DeckyWant, seen: Sequence[NetworkSeen]) -> list[NetworkSeen]:
    """Networks of this decky's LANs under an old-scheme name, when the new one is missing.

    Docker cannot rename a network and refuses a second one on the same subnet, so the
    old one has to go first: legacy objects are replaced, not adopted.
    """
    planned = {n.network for n in want.networks}
    lans = {n.lan for n in want.networks}
    present = {n.name for n in seen}
    if planned <= present:
        return []
    return [
        n
        for n in seen
        if n.name not in planned
        and names.is_legacy_name(n.name)
        and n.labels.get(names.LABEL_NAMESPACE) == want.namespace
        and n.labels.get(names.LABEL_LAN) in lans
    ]


def _replace_legacy(mine: Sequence[ContainerSeen], legacy: Sequence[NetworkSeen]) -> list[Action]:
    """This decky's containers go (services first), then the old networks if now unused
    (Docker keeps one another decky still holds; the last decky's round, or the resync's
    network collection, removes it)."""
    if not mine:
        held = ", ".join(n.name for n in legacy)
        return [Fail(f"waiting for other deckies to release the old-named network(s) {held}")]
    actions: list[Action] = [
        RemoveContainer(c.name, c.id, "renamed: collision-free names")
        for c in sorted(mine, key=lambda c: c.role == names.ROLE_BASE)
    ]
    actions.extend(RemoveNetwork(n.name, n.id) for n in legacy)
    return actions


def _belongs(c: ContainerSeen, want: DeckyWant) -> bool:
    if c.uid == want.uid:
        return True
    return (
        c.labels.get(names.LABEL_NAMESPACE) == want.namespace
        and c.labels.get(names.LABEL_DECKY) == want.name
    )


def plan_removal(namespace: str, name: str, uid: str, observed: Observed) -> list[Action]:
    """A deleted decky: its services, then its base. Networks go in `plan_gc`."""
    del namespace, name  # by uid only: a re-created decky of that name is another one
    mine = [c for c in observed.containers if c.uid == uid]
    services = [c for c in mine if c.role != names.ROLE_BASE]
    bases = [c for c in mine if c.role == names.ROLE_BASE]
    return [RemoveContainer(c.name, c.id, "decky deleted") for c in services + bases]


def find_orphans(observed: Observed, live_uids: Iterable[str]) -> list[ContainerSeen]:
    """Our containers whose decky (by uid) is not in the API server's fresh list."""
    live = set(live_uids)
    return [c for c in observed.containers if c.uid not in live]


def plan_gc(
    planned_networks: Iterable[str],
    observed: Observed,
    live_uids: Iterable[str] | None,
    orphan_first_seen: Mapping[str, float],
    now: float,
    grace_seconds: float,
    gone_uids: Iterable[str] = (),
) -> list[Action]:
    """Reap orphans past their grace period, then networks nobody uses or plans.

    `live_uids` is None when the API server could not be listed just now:
    nothing is deleted on uncertainty. `gone_uids` are orphans the API server
    confirmed, one by one, are not this node's (deleted, or rescheduled to another
    node): they go at once, since the same decoy may already run elsewhere.
    """
    if live_uids is None:
        return []
    actions: list[Action] = []
    removed: set[str] = set()
    orphans = find_orphans(observed, live_uids)
    gone = set(gone_uids)
    # Services before bases, so a base never goes while a sibling holds its namespace.
    for c in sorted(orphans, key=lambda c: c.role == names.ROLE_BASE):
        first = orphan_first_seen.get(c.id)
        if c.uid in gone or (first is not None and now - first >= grace_seconds):
            actions.append(RemoveContainer(c.name, c.id, "orphan"))
            removed.add(c.id)
    used = {net for c in observed.containers if c.id not in removed for net in c.networks}
    planned = set(planned_networks)
    for net in observed.networks:
        if net.name not in used and net.name not in planned:
            actions.append(RemoveNetwork(net.name, net.id))
    return actions


Created = ContainerSeen | NetworkSeen

# Actions whose effect on Docker is fully known from Docker's answer to them.
_PREDICTABLE = (EnsureNetwork, CreateBase, CreateService, SyncFiles, StartContainer)


def predict(
    observed: Observed, actions: Sequence[Action], results: Sequence[Created | None]
) -> Observed | None:
    """Docker after `actions` succeeded, from what they returned; None when only a fresh
    observation can tell (a removal, a network change). Saves a label-filtered container
    list per convergence round, which is what dominates the agent's Docker time."""
    if not all(isinstance(a, _PREDICTABLE) for a in actions):
        return None
    containers = {c.id: c for c in observed.containers}
    networks = {n.name: n for n in observed.networks}
    files = dict(observed.files)
    for action, result in zip(actions, results, strict=True):
        if isinstance(result, ContainerSeen):
            containers[result.id] = result
        elif isinstance(result, NetworkSeen):
            networks[result.name] = result
        elif isinstance(action, SyncFiles):
            files[action.uid] = dict(action.manifest)
        elif isinstance(action, StartContainer) and action.id in containers:
            containers[action.id] = replace(containers[action.id], state="running")
    return Observed(tuple(containers.values()), tuple(networks.values()), files)
