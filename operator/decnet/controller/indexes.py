"""kopf's in-memory indexes of every kind the controller reads, and the questions asked of them.

kopf lists and watches each kind once; handlers and the loop read these indexes
(through the State) instead of the API server. Bodies are kept without
managedFields.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping
from typing import Any

import kopf

from decnet.controller import scheduling, state, validation, views, workqueue
from decnet.kube import conditions, names

G, V = names.GROUP, names.VERSION
LEASE_GROUP, LEASE_VERSION = "coordination.k8s.io", "v1"
NAMES = (
    "decky_idx",
    "lan_idx",
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
    out = copy.deepcopy(dict(body))
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def key(kind: workqueue.Kind, body: Mapping[str, Any]) -> workqueue.Key:
    meta = body.get("metadata") or {}
    return workqueue.Key(kind, str(meta.get("namespace", "")), str(meta.get("name", "")))


def in_system(namespace: str | None, memo: Any, **_: Any) -> bool:
    return namespace == state.of(memo).config.system_namespace


# -- the indexes ---------------------------------------------------------------------


@kopf.index(
    LEASE_GROUP,
    LEASE_VERSION,
    "leases",
    labels={names.LABEL_AGENT_LEASE: kopf.PRESENT},
    when=in_system,
)
def lease_idx(spec: Mapping[str, Any], labels: Mapping[str, str], **_: Any) -> Any:
    node = labels.get(names.LABEL_AGENT_LEASE) or spec.get("holderIdentity")
    renew = conditions.parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    return {node: scheduling.Lease(str(node), renew, int(spec.get("leaseDurationSeconds") or 40))}


@kopf.index(G, V, names.DECKIES)
def decky_idx(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace or "", name): compact(body)}


@kopf.index(G, V, names.LANS)
def lan_idx(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace or "", name): compact(body)}


@kopf.index(G, V, names.TOPOLOGIES)
def topo_idx(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace or "", name): compact(body)}


@kopf.index(G, V, names.SERVICE_TEMPLATES)
def template_idx(body: kopf.Body, name: str, **_: Any) -> Any:
    return {name: views.Template.from_obj(body)}


@kopf.index(G, V, names.ADDRESS_CLAIMS)
def claim_idx(*, spec: Mapping[str, Any], namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace, name): _claim(spec, namespace, name)}


# The same claims by LAN and by holder: allocation and release read only the claims they
# are about, never every claim of the cluster (a scan per reconcile is O(n²) per burst).
@kopf.index(G, V, names.ADDRESS_CLAIMS)
def claims_by_lan(
    *, spec: Mapping[str, Any], namespace: str | None, name: str, **_: Any
) -> Any:
    return {(namespace, spec.get("lan")): _claim(spec, namespace, name)}


@kopf.index(G, V, names.ADDRESS_CLAIMS)
def claims_by_holder(
    *, spec: Mapping[str, Any], namespace: str | None, name: str, **_: Any
) -> Any:
    uid = (spec.get("holder") or {}).get("uid")
    return {uid: _claim(spec, namespace, name)} if uid else None


def _claim(spec: Mapping[str, Any], namespace: str | None, name: str) -> dict[str, Any]:
    return {
        "address": spec.get("address"),
        "lan": spec.get("lan"),
        "holder": dict(spec.get("holder") or {}),
        "name": name,
        "namespace": namespace,
    }


# -- questions -----------------------------------------------------------------------


def templates(st: state.State) -> dict[str, views.Template]:
    return {str(k): v for k, v in st.values("template_idx")}


def lans_in(st: state.State, namespace: str) -> dict[str, views.Lan]:
    return {
        key[1]: views.Lan.from_obj(body)
        for key, body in st.values("lan_idx")
        if key[0] == namespace
    }


def deckies_in(st: state.State, namespace: str) -> list[dict[str, Any]]:
    return [body for (ns, _), body in st.values("decky_idx") if ns == namespace]


def on_lan(body: Mapping[str, Any], lan: str) -> bool:
    return any(n.lan == lan for n in views.networks(body))


def deckies_on(st: state.State, namespace: str, lan: str) -> list[workqueue.Key]:
    return [
        workqueue.Key(workqueue.Kind.DECKY, ns, name)
        for (ns, name), body in st.values("decky_idx")
        if ns == namespace and on_lan(body, lan)
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
    st: state.State, decky: views.Decky, node: str | None, live: set[str]
) -> scheduling.NodeLoss:
    """The decky's node-loss policy, with how long its node has been lost (None: live)."""
    return scheduling.NodeLoss(
        policy=decky.node_loss_policy,
        grace_seconds=decky.node_loss_grace_seconds,
        lost_seconds=lost_seconds(st, node) if node and node not in live else None,
    )


def claims_on(st: state.State, namespace: str, lan: str) -> dict[str, dict[str, Any]]:
    """Held IP addresses on one LAN: address -> claim."""
    return {str(c["address"]): c for c in st.index("claims_by_lan").get((namespace, lan)) or ()}


def claims_held_by(st: state.State, uid: str) -> list[dict[str, Any]]:
    """Every AddressClaim whose holder is this object (by uid)."""
    return list(st.index("claims_by_holder").get(uid) or ())


def _holder(body: Mapping[str, Any], subnet: str) -> validation.SubnetHolder:
    meta = body.get("metadata") or {}
    return validation.SubnetHolder(
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
        subnet,
        str(meta.get("creationTimestamp") or ""),
    )


def lan_overlap(st: state.State, body: Mapping[str, Any]) -> validation.Problem | None:
    """A pinned subnet overlapping an older LAN's, in any namespace."""
    subnet = views.Lan.from_obj(body).subnet
    if not subnet:
        return None
    others = [
        _holder(other, theirs)
        for _, other in st.values("lan_idx")
        if (theirs := views.Lan.from_obj(other).effective_subnet)
    ]
    return validation.subnet_overlap(_holder(body, subnet), others)
