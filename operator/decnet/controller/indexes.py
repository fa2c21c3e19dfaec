"""kopf's in-memory indexes of every kind the controller reads, and the questions asked of them.

kopf lists and watches each kind once; handlers and the loop read these indexes
(through the State) instead of the API server. What is kept is sized by what is read:
a decky as a StoredDecky (controller/stored.py: the facts the scans read, the body
packed), an AddressClaim as a Claim, LAN and Topology bodies (few) without
managedFields.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import kopf

from decnet.controller import scheduling, state, stored, validation, views, workqueue
from decnet.kube import conditions, names

G, V = names.GROUP, names.VERSION
LEASE_GROUP, LEASE_VERSION = "coordination.k8s.io", "v1"
NAMES = (
    "decky_idx",
    "addresses_by_lan",
    "lan_idx",
    "lan_views",
    "template_idx",
    "claim_idx",
    "claims_by_lan",
    "claims_by_holder",
    "lease_idx",
    "topo_idx",
)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the body of our own, without managedFields."""
    return copy.deepcopy(stored.without_managed_fields(body))


def key(kind: workqueue.Kind, body: Mapping[str, Any]) -> workqueue.Key:
    meta = body.get("metadata") or {}
    return workqueue.Key(kind, str(meta.get("namespace", "")), str(meta.get("name", "")))


def in_system(namespace: str | None, memo: Any, **_: Any) -> bool:
    return namespace == state.of(memo).config.system_namespace


# -- the indexes ---------------------------------------------------------------------
# async def although none of them awaits: kopf runs a plain def in a thread pool, one
# hand-off per index per event (at a 200-decky apply, the operator's most frequent call).


@kopf.index(
    LEASE_GROUP,
    LEASE_VERSION,
    "leases",
    labels={names.LABEL_AGENT_LEASE: kopf.PRESENT},
    when=in_system,
)
async def lease_idx(spec: Mapping[str, Any], labels: Mapping[str, str], **_: Any) -> Any:
    node = labels.get(names.LABEL_AGENT_LEASE) or spec.get("holderIdentity")
    renew = conditions.parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    return {node: scheduling.Lease(str(node), renew, int(spec.get("leaseDurationSeconds") or 40))}


@kopf.index(G, V, names.DECKIES)
async def decky_idx(
    *, body: kopf.Body, namespace: str | None, name: str, memo: Any, **_: Any
) -> Any:
    default_interval = state.of(memo).config.mutation_interval_minutes
    return {(namespace or "", name): stored.store(body, default_interval=default_interval)}


@kopf.index(G, V, names.DECKIES)
async def addresses_by_lan(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    """(namespace, LAN) -> (decky, its addresses there: pinned in spec or held in status).

    Who holds an address and which are pinned on a LAN are asked per admission and per
    allocation: read from the LAN's own entries, never by walking every decky."""
    entry = stored.addresses(body)
    return {(namespace or "", lan): (name, ips) for lan, ips in entry.items()} or None


@kopf.index(G, V, names.LANS)
async def lan_idx(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace or "", name): compact(body)}


@kopf.index(G, V, names.LANS)
async def lan_views(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    """Each LAN read through its API type once per event, not once per decky reconcile."""
    return {(namespace or "", name): views.Lan.from_obj(body)}


@kopf.index(G, V, names.TOPOLOGIES)
async def topo_idx(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace or "", name): compact(body)}


@kopf.index(G, V, names.SERVICE_TEMPLATES)
async def template_idx(body: kopf.Body, name: str, **_: Any) -> Any:
    return {name: views.Template.from_obj(body)}


@kopf.index(G, V, names.ADDRESS_CLAIMS)
async def claim_idx(*, spec: Mapping[str, Any], namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace, name): claim_of(spec, namespace, name)}


# The same claims by LAN and by holder: allocation and release read only the claims they
# are about, never every claim of the cluster (a scan per reconcile is O(n²) per burst).
@kopf.index(G, V, names.ADDRESS_CLAIMS)
async def claims_by_lan(
    *, spec: Mapping[str, Any], namespace: str | None, name: str, **_: Any
) -> Any:
    return {(namespace, spec.get("lan")): claim_of(spec, namespace, name)}


@kopf.index(G, V, names.ADDRESS_CLAIMS)
async def claims_by_holder(
    *, spec: Mapping[str, Any], namespace: str | None, name: str, **_: Any
) -> Any:
    uid = (spec.get("holder") or {}).get("uid")
    return {uid: claim_of(spec, namespace, name)} if uid else None


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """One AddressClaim: an address (or a subnet) on a LAN, and who holds it."""

    namespace: str
    name: str
    address: str
    lan: str | None
    holder_name: str | None
    holder_uid: str | None


def claim_of(spec: Mapping[str, Any], namespace: str | None, name: str) -> Claim:
    holder = spec.get("holder") or {}
    return Claim(
        namespace=namespace or "",
        name=name,
        address=str(spec.get("address") or ""),
        lan=spec.get("lan"),
        holder_name=holder.get("name"),
        holder_uid=holder.get("uid"),
    )


# -- questions -----------------------------------------------------------------------


def templates(st: state.State) -> dict[str, views.Template]:
    return {str(k): v for k, v in st.values("template_idx")}


def lans_in(st: state.State, namespace: str) -> dict[str, views.Lan]:
    return {key[1]: lan for key, lan in st.values("lan_views") if key[0] == namespace}


def deckies_in(st: state.State, namespace: str) -> list[tuple[str, stored.StoredDecky]]:
    """(name, what is kept of it) of every decky in the namespace."""
    return [(name, entry) for (ns, name), entry in st.values("decky_idx") if ns == namespace]


def addresses_on(st: state.State, namespace: str, lan: str) -> list[tuple[str, tuple[str, ...]]]:
    """(decky, its addresses) of every decky with an address pinned or held on the LAN."""
    return list(st.index("addresses_by_lan").get((namespace, lan)) or ())


def decky_body(st: state.State, namespace: str, name: str) -> dict[str, Any] | None:
    entry = st.one("decky_idx", (namespace, name))
    return entry.body() if isinstance(entry, stored.StoredDecky) else None


def deckies_on(st: state.State, namespace: str, lan: str) -> list[workqueue.Key]:
    return [
        workqueue.Key(workqueue.Kind.DECKY, ns, name)
        for (ns, name), entry in st.values("decky_idx")
        if ns == namespace and entry.on_lan(lan)
    ]


def topologies_in(st: state.State, namespace: str) -> list[workqueue.Key]:
    return [
        workqueue.Key(workqueue.Kind.TOPOLOGY, ns, name)
        for (ns, name), _ in st.values("topo_idx")
        if ns == namespace
    ]


def live_nodes(st: state.State) -> set[str]:
    at = now()
    live = scheduling.live_nodes((lease for _, lease in st.values("lease_idx")), at)
    for node in live:
        st.last_live[node] = at
    return live


def lease_of(st: state.State, node: str) -> scheduling.Lease | None:
    value = st.one("lease_idx", node)
    return value if isinstance(value, scheduling.Lease) else None


def lost_seconds(st: state.State, node: str) -> float:
    """How long the node has been without a live agent: since its Lease expired, or since it
    was last seen live (or the operator started) when that is later."""
    lease = lease_of(st, node)
    since = st.last_live.get(node, st.started)
    if lease is not None and lease.renew_time is not None:
        since = max(since, lease.renew_time + datetime.timedelta(seconds=lease.duration_seconds))
    return max(0.0, (now() - since).total_seconds())


def node_gone(st: state.State, node: str) -> bool:
    return lost_seconds(st, node) > st.config.node_gone_seconds


def node_loss(
    st: state.State,
    decky: views.Decky | stored.StoredDecky,
    node: str | None,
    live: set[str],
) -> scheduling.NodeLoss:
    """The decky's node-loss policy, with how long its node has been lost (None: live)."""
    return scheduling.NodeLoss(
        policy=decky.node_loss_policy,
        grace_seconds=decky.node_loss_grace_seconds,
        lost_seconds=lost_seconds(st, node) if node and node not in live else None,
    )


def claims_on(st: state.State, namespace: str, lan: str) -> dict[str, Claim]:
    """Held IP addresses on one LAN: address -> claim."""
    return {c.address: c for c in st.index("claims_by_lan").get((namespace, lan)) or ()}


def claims_held_by(st: state.State, uid: str) -> list[Claim]:
    """Every AddressClaim whose holder is this object (by uid)."""
    return list(st.index("claims_by_holder").get(uid) or ())


def lan_overlap(st: state.State, lan: views.Lan) -> validation.Problem | None:
    """A pinned subnet overlapping an older LAN's, in any namespace."""
    if not lan.subnet:
        return None
    others = [
        validation.SubnetHolder(other.namespace, other.name, theirs, other.created)
        for _, other in st.values("lan_views")
        if (theirs := other.effective_subnet)
    ]
    return validation.subnet_overlap(
        validation.SubnetHolder(lan.namespace, lan.name, lan.subnet, lan.created), others
    )
