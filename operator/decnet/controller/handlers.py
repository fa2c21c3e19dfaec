"""kopf wiring: indexes, level-based event handlers and the background loop.

Every handler recomputes an object's operator-owned status from the full
object plus the indexes, with the pure planners, and writes only when the
result differs from what is in status (zero writes at idle). Status is
written with server-side apply under the operator's field manager; spec is
never written. The finalizer and the node label are the only metadata
writes, each done once.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import kopf
import structlog
from lightkube import ApiError
from lightkube.models import core_v1, meta_v1
from lightkube.resources import core_v1 as core_resources
from lightkube.types import PatchType

from decnet.api import v1alpha1
from decnet.controller import (
    allocation,
    leadership,
    lifecycle,
    metrics,
    mutation,
    planning,
    runtime,
    scheduling,
    topology,
    validation,
    views,
)
from decnet.kube import client as kclient
from decnet.kube import conditions, names

log = structlog.get_logger("decnet.controller")
RT: runtime.Runtime = runtime.Runtime(runtime.Config())

G, V = names.GROUP, names.VERSION
LEASE_GROUP, LEASE_VERSION = "coordination.k8s.io", "v1"
MAX_ALLOCATION_TRIES = 64


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _compact(body: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(body))
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def _key(body: Mapping[str, Any]) -> runtime.Key:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _event(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    """Post a core/v1 Event on the object, without waiting for it (best effort).

    Posted directly rather than with kopf.event(), which only works inside a
    kopf handler's context, not from the background loop.
    """
    meta = body.get("metadata") or {}
    stamp = _now()
    event = core_resources.Event(
        metadata=meta_v1.ObjectMeta(
            name=f"{meta.get('name')}.{uuid.uuid4().hex[:12]}", namespace=meta.get("namespace")
        ),
        involvedObject=core_v1.ObjectReference(
            apiVersion=names.API_VERSION,
            kind=str(body.get("kind") or "Decky"),
            name=meta.get("name"),
            namespace=meta.get("namespace"),
            uid=meta.get("uid"),
        ),
        reason=reason,
        message=message[:1024],
        type=kind,
        source=core_v1.EventSource(component=names.OPERATOR_MANAGER),
        firstTimestamp=stamp,
        lastTimestamp=stamp,
        count=1,
        reportingComponent=names.OPERATOR_MANAGER,
    )

    async def post() -> None:
        try:
            await RT.client.create(event, namespace=meta.get("namespace"))
            metrics.WRITES.labels("event").inc()
        except Exception:  # noqa: BLE001 - events never fail a reconcile
            log.warning("event.failed", reason=reason, exc_info=True)

    task = asyncio.get_running_loop().create_task(post())
    RT.background.add(task)
    task.add_done_callback(RT.background.discard)


# -- settings and startup ---------------------------------------------------------


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="operator.decnet.io"
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="operator.decnet.io", key="last-handled"
    )
    settings.persistence.finalizer = "decnet.io/kopf"
    settings.batching.batch_window = 0.05
    settings.batching.idle_timeout = 60.0
    settings.posting.level = logging.CRITICAL  # only our explicit kopf.event() calls post
    settings.watching.server_timeout = 300
    RT.client = kclient.async_client(RT.config.kubeconfig, names.OPERATOR_MANAGER)
    RT.indices = {
        k: kwargs[k]
        for k in ("decky_idx", "lan_idx", "template_idx", "claim_idx", "lease_idx", "topo_idx")
    }
    RT.loop_task = asyncio.get_running_loop().create_task(_loop())
    sweep = asyncio.get_running_loop().create_task(_sweep_at_start())
    RT.background.add(sweep)
    sweep.add_done_callback(RT.background.discard)
    log.info("operator.started", base_image=RT.config.base_image)


@kopf.on.cleanup()
async def _cleanup(**_: Any) -> None:
    if RT.loop_task is not None:
        RT.loop_task.cancel()
    if RT.client is not None:
        await RT.client.close()


# -- indexes -------------------------------------------------------------------------


def _in_system(namespace: str | None, **_: Any) -> bool:
    return namespace == RT.config.system_namespace


@kopf.index(
    LEASE_GROUP,
    LEASE_VERSION,
    "leases",
    labels={names.LABEL_AGENT_LEASE: kopf.PRESENT},
    when=_in_system,
)
def lease_idx(spec: Mapping[str, Any], labels: Mapping[str, str], **_: Any) -> Any:
    node = labels.get(names.LABEL_AGENT_LEASE) or spec.get("holderIdentity")
    renew = conditions.parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    return {node: scheduling.Lease(str(node), renew, int(spec.get("leaseDurationSeconds") or 40))}


@kopf.index(G, V, names.DECKIES)
def decky_idx(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace or "", name): _compact(body)}


@kopf.index(G, V, names.LANS)
def lan_idx(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace or "", name): _compact(body)}


@kopf.index(G, V, names.TOPOLOGIES)
def topo_idx(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> Any:
    return {(namespace or "", name): _compact(body)}


@kopf.index(G, V, names.SERVICE_TEMPLATES)
def template_idx(body: kopf.Body, name: str, **_: Any) -> Any:
    return {name: views.Template.from_obj(body)}


@kopf.index(G, V, names.ADDRESS_CLAIMS)
def claim_idx(*, spec: Mapping[str, Any], namespace: str | None, name: str, **_: Any) -> Any:
    holder = dict(spec.get("holder") or {})
    return {
        (namespace, name): {
            "address": spec.get("address"),
            "lan": spec.get("lan"),
            "holder": holder,
            "name": name,
            "namespace": namespace,
        }
    }


# -- index views -----------------------------------------------------------------------


def templates() -> dict[str, views.Template]:
    return {str(k): v for k, v in RT.values("template_idx")}


def lans_in(namespace: str) -> dict[str, views.Lan]:
    return {
        key[1]: views.Lan.from_obj(body)
        for key, body in RT.values("lan_idx")
        if key[0] == namespace
    }


def live_nodes() -> set[str]:
    now = _now()
    live = scheduling.live_nodes((lease for _, lease in RT.values("lease_idx")), now)
    for node in live:
        RT.last_live[node] = now
    return live


def lease_of(node: str) -> scheduling.Lease | None:
    value = RT.one("lease_idx", node)
    return value if isinstance(value, scheduling.Lease) else None


def node_gone(node: str) -> bool:
    lease = lease_of(node)
    since = RT.last_live.get(node, RT.started)
    if lease is not None and lease.renew_time is not None:
        since = max(since, lease.renew_time + datetime.timedelta(seconds=lease.duration_seconds))
    return (_now() - since).total_seconds() > RT.config.node_gone_seconds


def claims_on(namespace: str, lan: str) -> dict[str, dict[str, Any]]:
    """Held IP addresses on one LAN: address -> claim."""
    return {
        str(c["address"]): c
        for (ns, _), c in RT.values("claim_idx")
        if ns == namespace and c.get("lan") == lan
    }


def holder_of(namespace: str, lan: str, ip: str) -> str | None:
    """Who holds (or pins) an address, from claims and specs, for messages and admission."""
    claim = RT.one("claim_idx", (namespace, names.ip_claim_name(lan, ip)))
    if claim:
        return str(claim["holder"].get("name"))
    return None


# -- metadata writes ---------------------------------------------------------------------


async def _patch_meta(body: Mapping[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
    ns, name = _key(body)
    patch.setdefault("metadata", {})["resourceVersion"] = body["metadata"]["resourceVersion"]
    try:
        obj = await RT.client.patch(
            kclient.Decky, name, patch, namespace=ns, patch_type=PatchType.MERGE
        )
    except ApiError as err:
        if err.status.code in (404, 409):
            return None
        raise
    metrics.WRITES.labels("metadata").inc()
    return dict(obj.to_dict() if hasattr(obj, "to_dict") else obj)


# -- address claims ------------------------------------------------------------------------


async def _claim(
    ns: str, claim_name: str, address: str, lan: str | None, holder: Mapping[str, str]
) -> str | None:
    """Create the claim; returns None when we hold it, else the other holder's name."""
    spec: dict[str, Any] = {"address": address, "holder": dict(holder)}
    if lan:
        spec["lan"] = lan
    body = {
        "apiVersion": names.API_VERSION,
        "kind": "AddressClaim",
        "metadata": {
            "name": claim_name,
            "namespace": ns,
            "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY},
            # A cluster's garbage collector releases a claim whose holder is gone even
            # when the operator was down; sweep_claims() does it where none runs.
            "ownerReferences": [
                {
                    "apiVersion": names.API_VERSION,
                    "kind": holder["kind"],
                    "name": holder["name"],
                    "uid": holder["uid"],
                }
            ],
        },
        "spec": spec,
    }
    try:
        await RT.client.create(kclient.AddressClaim.from_dict(body), namespace=ns)
        metrics.CLAIMS.inc()
        return None
    except ApiError as err:
        if err.status.code != 409:
            raise
    try:
        existing = await RT.client.get(kclient.AddressClaim, claim_name, namespace=ns)
    except ApiError as err:
        if err.status.code == 404:
            return await _claim(ns, claim_name, address, lan, holder)
        raise
    other = dict(existing.to_dict()).get("spec", {}).get("holder", {})
    if other.get("uid") == holder["uid"]:
        return None
    return str(other.get("name", "?"))


def orphaned_claims(
    claims: Sequence[Mapping[str, Any]], live_uids: set[str]
) -> list[tuple[str, str]]:
    """(namespace, name) of claims whose holder no longer exists."""
    out = []
    for claim in claims:
        meta = claim.get("metadata") or {}
        holder = (claim.get("spec") or {}).get("holder") or {}
        if str(holder.get("uid") or "") not in live_uids:
            out.append((str(meta.get("namespace")), str(meta.get("name"))))
    return out


async def sweep_claims() -> int:
    """Release AddressClaims whose holder vanished while the operator was down.

    Claims are listed before their possible holders: a holder created after the
    claim listing cannot own a listed claim it does not appear with, so a claim
    being made right now is never taken for an orphan.
    """
    claims = [dict(c.to_dict()) async for c in RT.client.list(kclient.AddressClaim, namespace="*")]
    live: set[str] = set()
    for kind in (kclient.Decky, kclient.LAN):
        async for obj in RT.client.list(kind, namespace="*"):
            live.add(str(obj.metadata.uid))
    orphans = orphaned_claims(claims, live)
    for ns, name in orphans:
        await _release(ns, name)
        log.info("claim.orphan_released", claim=f"{ns}/{name}")
    return len(orphans)


async def _sweep_at_start() -> None:
    await leadership.wait_active()  # a paused replica's indexes are not current
    try:
        await sweep_claims()
    except Exception:  # noqa: BLE001 - a failed sweep only delays; claims stay held
        log.warning("claim.sweep_failed", exc_info=True)


async def _release(ns: str, claim_name: str) -> None:
    try:
        await RT.client.delete(kclient.AddressClaim, claim_name, namespace=ns)
    except ApiError as err:
        if err.status.code != 404:
            raise


async def _allocate(
    decky: views.Decky, uid: str, status: Mapping[str, Any], lans: Mapping[str, views.Lan]
) -> tuple[list[dict[str, str]], lifecycle.Stall | None]:
    """One address per attached LAN, claimed before it is published."""
    current = {a.get("lan"): a.get("ip") for a in status.get("addresses") or ()}
    holder = {"kind": "Decky", "name": decky.name, "uid": uid}
    out: list[dict[str, str]] = []
    for net in decky.networks:
        lan = lans.get(net.lan)
        subnet = lan.effective_subnet if lan else None
        if lan is None or subnet is None:
            continue
        have = current.get(net.lan)
        if have and allocation.contains(subnet, have) and (not net.ip or net.ip == have):
            out.append({"lan": net.lan, "ip": str(have)})
            continue
        if net.ip:
            other = await _claim(
                decky.namespace, names.ip_claim_name(net.lan, net.ip), net.ip, net.lan, holder
            )
            if other is not None:
                return out, lifecycle.Stall(
                    "AddressHeld", f"{net.ip} on LAN {net.lan} is held by decky {other}"
                )
            out.append({"lan": net.lan, "ip": net.ip})
            continue
        ip = await _allocate_one(decky, net.lan, subnet, holder)
        if ip is None:
            return out, lifecycle.Stall("NoFreeAddress", f"LAN {net.lan} has no free address")
        out.append({"lan": net.lan, "ip": ip})
    return out, None


async def _allocate_one(
    decky: views.Decky, lan: str, subnet: str, holder: Mapping[str, str]
) -> str | None:
    reserved = RT.reserved[(decky.namespace, lan)]
    pinned = {
        str(n.get("ip"))
        for (ns, _), body in RT.values("decky_idx")
        if ns == decky.namespace
        for n in (body.get("spec") or {}).get("networks") or ()
        if n.get("lan") == lan and n.get("ip")
    }
    held = set(claims_on(decky.namespace, lan)) | reserved | pinned
    for tries, ip in enumerate(allocation.candidate_ips(subnet, held)):
        if tries >= MAX_ALLOCATION_TRIES:
            return None
        if ip in reserved:
            continue
        reserved.add(ip)
        other = await _claim(decky.namespace, names.ip_claim_name(lan, ip), ip, lan, holder)
        if other is None:
            return ip
    return None


async def _release_stale(ns: str, uid: str, keep: list[dict[str, str]]) -> None:
    wanted = {names.ip_claim_name(a["lan"], a["ip"]) for a in keep}
    for (cns, cname), claim in list(RT.values("claim_idx")):
        if cns == ns and claim["holder"].get("uid") == uid and cname not in wanted:
            await _release(ns, cname)
            RT.reserved[(ns, str(claim.get("lan")))].discard(str(claim.get("address")))


# -- deckies ----------------------------------------------------------------------------------


def _spec_services(decky: views.Decky) -> list[str]:
    if decky.services:
        return sorted(set(decky.services))
    return sorted(set(v1alpha1.ARCHETYPES.get(decky.archetype or "", [])))


def _topology_node(decky: views.Decky, lans: Mapping[str, views.Lan]) -> tuple[bool, str | None]:
    """(belongs to a topology, the topology's node)."""
    home = lans.get(decky.networks[0].lan) if decky.networks else None
    topo_name = (home.topology if home else None) or decky.topology_label
    if not topo_name:
        return False, None
    topo = RT.one("topo_idx", (decky.namespace, topo_name)) or {}
    node = (topo.get("spec") or {}).get("nodeName") or (topo.get("status") or {}).get("node")
    return True, node


def _mutate(
    body: Mapping[str, Any],
    decky: views.Decky,
    status: Mapping[str, Any],
    active: list[str],
    deleting: bool,
) -> tuple[list[str], dict[str, Any] | None, str | None, bool]:
    """Apply a manual or scheduled mutation; returns (services, lastMutation, token, mutated)."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    token = annotations.get(names.ANNOTATION_MUTATE_REQUEST)
    handled = status.get("mutationRequest")
    last = status.get("lastMutation")
    if deleting:
        return active, last, handled, False
    trigger = None
    if token and token != handled:
        trigger = mutation.MANUAL
    else:
        interval = mutation.interval_minutes(
            decky.mutation_interval, RT.config.mutation_interval_minutes
        )
        rec = status.get("lifecycle") or {}
        since = conditions.parse_time((last or {}).get("at") or rec.get("startedAt"))
        if (
            rec.get("phase") == lifecycle.SUCCEEDED
            and mutation.due(interval=interval, last=since, now=_now())
            and _quiet(body)
        ):
            trigger = mutation.SCHEDULED
    if trigger is None:
        return active, last, handled, False
    pool = mutation.pool(
        explicit=decky.mutation_pool,
        archetype=decky.archetype,
        archetypes=v1alpha1.ARCHETYPES,
        templates={name: t.fleet_singleton for name, t in templates().items()},
    )
    chosen = mutation.pick(pool, active, RT.rng)
    new_token = token if trigger == mutation.MANUAL else handled
    at = conditions.now_rfc3339()
    if chosen is None:
        _event(
            body,
            "Warning",
            "MutationSkipped",
            f"{trigger} mutation found no service set different from {active}",
        )
        record = {"trigger": trigger, "at": at, "from": active, "to": active}
        return active, record, new_token, False
    record = {"trigger": trigger, "at": at, "from": active, "to": chosen}
    _event(body, "Normal", "Mutated", f"{trigger} mutation: {active} -> {chosen}")
    return chosen, record, new_token, True


async def reconcile_decky(given: Mapping[str, Any]) -> None:
    key = _key(given)
    async with RT.locks[key]:
        body = RT.freshest(key, given)
        await _reconcile_decky(key, body)


async def _reconcile_decky(key: runtime.Key, body: dict[str, Any]) -> None:
    meta = body.get("metadata") or {}
    uid = str(meta.get("uid"))
    status: dict[str, Any] = dict(body.get("status") or {})
    deleting = bool(meta.get("deletionTimestamp"))
    finalizers = list(meta.get("finalizers") or [])
    if deleting and names.FINALIZER not in finalizers:
        return
    decky = views.Decky.from_obj(body)
    first_visit = uid not in RT.seen
    RT.seen.add(uid)
    blog = log.bind(object=f"{decky.namespace}/{decky.name}")
    lans = lans_in(decky.namespace)

    # Placement.
    in_topology, topo_node = _topology_node(decky, lans)
    live = live_nodes()
    if in_topology and not topo_node and not status.get("node"):
        decision = scheduling.Decision(
            None, scheduling.WAITING_FOR_TOPOLOGY, "the decky's topology has no node yet"
        )
    else:
        decision = scheduling.choose(
            current=status.get("node") or None,
            topology_node=topo_node,
            pinned=decky.node_name,
            live=live,
            load=RT.load(),
        )
    if decision.node and not deleting:
        RT.placement[uid] = decision.node

    stall: lifecycle.Stall | None = None
    waiting: lifecycle.Stall | None = None
    for net in decky.networks:
        if net.lan not in lans:
            waiting = lifecycle.Stall("LANNotFound", f"LAN {net.lan} does not exist (yet)")

    # What admission checks, checked again: the webhook may have been bypassed (or
    # failed open), and nothing it would refuse may be allocated, planned or run.
    if not deleting:
        problem = validation.decky(decky, lans, templates()) or _lans_overlap(decky)
        if problem is not None and problem.reason != validation.LAN_NOT_FOUND:
            stall = lifecycle.Stall(problem.reason, problem.message)

    # Addresses (not while deleting or refused: keep what is published).
    if deleting or stall is not None:
        addresses = [dict(a) for a in status.get("addresses") or ()]
    else:
        addresses, held = await _allocate(decky, uid, status, lans)
        stall = stall or held

    # Active services and mutation.
    spec_set = _spec_services(decky)
    rebase = status.get("observedGeneration") != meta.get("generation")
    active = spec_set if rebase or not status.get("services") else list(status["services"])
    services, last_mutation, token, mutated = _mutate(body, decky, status, active, deleting)
    if deleting:
        services = list(status.get("services") or active)

    plan: dict[str, Any] | None = None
    if not deleting and stall is None:
        try:
            plan = planning.build(
                decky,
                lans=lans,
                templates=templates(),
                addresses={a["lan"]: a["ip"] for a in addresses},
                services=services,
                base_image=RT.config.base_image,
            )
        except planning.PlanError as err:
            if err.reason in ("SubnetPending", "AddressPending", "LANNotFound"):
                waiting = waiting or lifecycle.Stall(err.reason, err.message)
            else:
                stall = lifecycle.Stall(err.reason, err.message)

    node = decision.node
    observed = lifecycle.Observed(
        generation=int(meta.get("generation") or 1),
        status=status,
        deleting=deleting,
        node_live=node is None or node in live,
        node_gone=bool(node) and node not in live and node_gone(str(node)),
        first_visit=first_visit,
    )
    desired = lifecycle.Desired(
        schedule=decision,
        addresses=tuple(addresses),
        services=tuple(services),
        plan=plan,
        last_mutation=last_mutation,
        mutation_request=token,
        mutated=mutated,
        stall=stall,
        waiting=waiting,
    )
    out = lifecycle.step(observed, desired)

    # Metadata first: the finalizer before anything that needs cleaning up.
    labels = meta.get("labels") or {}
    patch: dict[str, Any] = {}
    if not deleting and names.FINALIZER not in finalizers:
        patch.setdefault("metadata", {})["finalizers"] = finalizers + [names.FINALIZER]
    if node and labels.get(names.LABEL_NODE) != node and not deleting:
        patch.setdefault("metadata", {})["labels"] = {names.LABEL_NODE: node}
    if patch:
        fresh = await _patch_meta(body, patch)
        if fresh is None:
            return  # conflict: the next event carries the newer object
        RT.remember(key, fresh)
        body = fresh

    if out.changed(status):
        obj = await kclient.apply_status_async(
            RT.client, "Decky", decky.name, decky.namespace, out.status, names.OPERATOR_MANAGER
        )
        metrics.WRITES.labels("status").inc()
        RT.remember(key, obj.to_dict())
        rec = out.status.get("lifecycle") or {}
        before = lifecycle.owned(status)
        blog.debug(
            "status.diff",
            rv=meta.get("resourceVersion"),
            fields=sorted(k for k in out.status if out.status.get(k) != before.get(k)),
        )
        blog.info(
            "status.written",
            lifecycle=rec.get("id"),
            phase=rec.get("phase"),
            operation=rec.get("operation"),
            node=node,
        )
    for kind, reason, message in out.events:
        _event(body, kind, reason, message)

    if not deleting:
        await _release_stale(decky.namespace, uid, addresses)
    if out.release:
        await _finish_delete(key, body, uid)
        blog.info("decky.released", node=node)


async def _finish_delete(key: runtime.Key, body: Mapping[str, Any], uid: str) -> None:
    ns, _ = key
    await _release_stale(ns, uid, [])
    finalizers = [f for f in (body["metadata"].get("finalizers") or []) if f != names.FINALIZER]
    await _patch_meta(body, {"metadata": {"finalizers": finalizers}})
    RT.forget(key, uid)


@kopf.on.event(G, V, names.DECKIES)
async def decky_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
    key = _key(body)
    if event.get("type") == "DELETED":
        RT.forget(key, body.get("metadata", {}).get("uid"))
        RT.poke(*_topologies_in(key[0]))
        return
    metrics.RECONCILES.labels("Decky").inc()
    try:
        with metrics.counting_errors("Decky"):
            await reconcile_decky(_compact(body))
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - kopf would log and drop it: the loop retries it
        delay = RT.retry_later(key, time.monotonic())
        log.exception("reconcile.failed", object=f"{key[0]}/{key[1]}", retry_in=delay)
    else:
        RT.succeeded(key)
    RT.poke(*_topologies_in(key[0]))


# -- LANs -------------------------------------------------------------------------------------


def _holder(body: Mapping[str, Any], subnet: str) -> validation.SubnetHolder:
    meta = body.get("metadata") or {}
    return validation.SubnetHolder(
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
        subnet,
        str(meta.get("creationTimestamp") or ""),
    )


def lan_overlap(body: Mapping[str, Any]) -> validation.Problem | None:
    """A pinned subnet overlapping an older LAN's, in any namespace."""
    subnet = views.Lan.from_obj(body).subnet
    if not subnet:
        return None
    others = [
        _holder(other, theirs)
        for _, other in RT.values("lan_idx")
        if (theirs := views.Lan.from_obj(other).effective_subnet)
    ]
    return validation.subnet_overlap(_holder(body, subnet), others)


def _pool(lan: views.Lan) -> str:
    if lan.topology:
        topo = RT.one("topo_idx", (lan.namespace, lan.topology)) or {}
        return str((topo.get("spec") or {}).get("subnetPool") or allocation.DEFAULT_POOL)
    return allocation.DEFAULT_POOL


def _pool_problem(lan: views.Lan) -> validation.Problem | None:
    """An automatic /24 must come from a pool the admin allows."""
    pool, limits = _pool(lan), RT.config.limits
    problem = validation.subnet_allowed(
        pool, dataclasses.replace(limits, min_prefix=0, max_prefix=32)
    )
    if problem is None:  # the pool is allowed; is a /24 out of it?
        problem = validation.subnet_allowed(pool.split("/")[0] + "/24", limits)
    if problem is None:
        return None
    return validation.Problem(
        problem.code, problem.reason, f"automatic subnet from pool {pool}: {problem.message}"
    )


def _lans_overlap(decky: views.Decky) -> validation.Problem | None:
    """A LAN of this decky refused by the limits or overlapping an older LAN."""
    for net in decky.networks:
        body = RT.one("lan_idx", (decky.namespace, net.lan))
        if not body:
            continue
        lan = views.Lan.from_obj(body)
        problem = validation.lan(lan, RT.config.limits) or lan_overlap(body)
        if problem is not None:
            return validation.Problem(
                problem.code, problem.reason, f"LAN {net.lan}: {problem.message}"
            )
    return None


async def reconcile_lan(given: Mapping[str, Any]) -> None:
    key = _key(given)
    async with RT.locks[("lan",) + key]:
        body = dict(given)
        meta = body["metadata"]
        lan = views.Lan.from_obj(body)
        status = dict(body.get("status") or {})
        uid = str(meta.get("uid"))
        holder = {"kind": "LAN", "name": lan.name, "uid": uid}
        subnet = lan.subnet or status.get("subnet")
        held_by: str | None = None
        overlap = validation.lan(lan, RT.config.limits) or lan_overlap(body)
        if overlap is None and not lan.subnet and not status.get("subnet"):
            overlap = _pool_problem(lan)
        if overlap is not None:
            held_by = overlap.message
        elif lan.subnet:
            held_by = await _claim(
                lan.namespace, names.subnet_claim_name(lan.subnet), lan.subnet, None, holder
            )
        elif not subnet:
            pool = _pool(lan)
            taken = {
                s for _, b in RT.values("lan_idx") if (s := views.Lan.from_obj(b).effective_subnet)
            } | RT.reserved_subnets
            for candidate in allocation.candidate_subnets(pool, taken):
                RT.reserved_subnets.add(candidate)
                if (
                    await _claim(
                        lan.namespace, names.subnet_claim_name(candidate), candidate, None, holder
                    )
                    is None
                ):
                    subnet = candidate
                    break
        gen = int(meta.get("generation") or 1)
        deckies = sum(
            1
            for (ns, _), d in RT.values("decky_idx")
            if ns == lan.namespace
            and any(n.get("lan") == lan.name for n in (d.get("spec") or {}).get("networks") or ())
        )
        if overlap is not None:
            ready = conditions.make(
                conditions.READY, conditions.FALSE, overlap.reason, overlap.message, gen
            )
        elif held_by:
            ready = conditions.make(
                conditions.READY,
                conditions.FALSE,
                "SubnetHeld",
                f"subnet {lan.subnet} is held by LAN {held_by}",
                gen,
            )
        elif subnet:
            ready = conditions.make(
                conditions.READY, conditions.TRUE, "SubnetAllocated", f"subnet {subnet}", gen
            )
        else:
            ready = conditions.make(
                conditions.READY,
                conditions.FALSE,
                "PoolExhausted",
                "no free subnet in the pool",
                gen,
            )
        stalled = conditions.make(
            conditions.STALLED,
            conditions.TRUE if overlap is not None else conditions.FALSE,
            overlap.reason if overlap is not None else "NoFailure",
            overlap.message if overlap is not None else "",
            gen,
        )
        wanted: dict[str, Any] = {
            "observedGeneration": gen,
            "subnet": None if held_by else subnet,
            "gateway": allocation.gateway(subnet) if subnet and not held_by else None,
            "deckies": deckies,
            "topology": lan.topology,
            "conditions": conditions.merge(status.get("conditions"), [ready, stalled]),
        }
        wanted = {k: v for k, v in wanted.items() if v is not None}
        if {k: status.get(k) for k in wanted} != wanted or set(status) - set(wanted) - {
            "conditions"
        }:
            await kclient.apply_status_async(
                RT.client, "LAN", lan.name, lan.namespace, wanted, names.OPERATOR_MANAGER
            )
            metrics.WRITES.labels("status").inc()


@kopf.on.event(G, V, names.LANS)
async def lan_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
    ns, name = _key(body)
    if event.get("type") == "DELETED":
        subnet = views.Lan.from_obj(body).effective_subnet
        if subnet:
            claim = RT.one("claim_idx", (ns, names.subnet_claim_name(subnet)))
            if claim and claim["holder"].get("uid") == body["metadata"].get("uid"):
                await _release(ns, names.subnet_claim_name(subnet))
            RT.reserved_subnets.discard(subnet)
    else:
        metrics.RECONCILES.labels("LAN").inc()
        with metrics.counting_errors("LAN"):
            await reconcile_lan(_compact(body))
    attached = [
        key
        for key, d in RT.values("decky_idx")
        if key[0] == ns
        and any(n.get("lan") == name for n in (d.get("spec") or {}).get("networks") or ())
    ]
    RT.poke(*attached, *_topologies_in(ns))


# -- topologies ----------------------------------------------------------------------------------


def _topologies_in(namespace: str) -> list[runtime.Key]:
    return [
        ("topology:" + key[0], key[1]) for key, _ in RT.values("topo_idx") if key[0] == namespace
    ]


async def reconcile_topology(ns: str, name: str) -> None:
    body = RT.one("topo_idx", (ns, name))
    if body is None:
        return
    async with RT.locks[("topology", ns, name)]:
        meta = body["metadata"]
        spec = body.get("spec") or {}
        status = dict(body.get("status") or {})
        all_lans = [views.Lan.from_obj(b) for (kns, _), b in RT.values("lan_idx") if kns == ns]
        decky_bodies = [b for (kns, _), b in RT.values("decky_idx") if kns == ns]
        all_deckies = [views.Decky.from_obj(b) for b in decky_bodies]
        lans, deckies = topology.members(name, all_lans, all_deckies)
        # Live once a member runs: from then on shape rules only degrade it.
        member_names = {d.name for d in deckies}
        live = any(
            conditions.is_true((b.get("status") or {}).get("conditions"), conditions.READY)
            for b in decky_bodies
            if b["metadata"]["name"] in member_names
        )
        issues = topology.validate(lans, deckies, templates(), live=live)
        phase = topology.summary(issues)
        node = spec.get("nodeName") or status.get("node")
        if not node:
            alive = live_nodes()
            if alive:
                load = RT.load()
                node = min(sorted(alive), key=lambda n: load.get(n, 0))
        gen = int(meta.get("generation") or 1)
        ready_status = conditions.FALSE if phase == "Invalid" else conditions.TRUE
        message = "; ".join(f"{i['code']}: {i['message']}" for i in issues)[:2000]
        conds = [
            conditions.make(conditions.READY, ready_status, phase, message, gen),
            conditions.make(
                conditions.STALLED,
                conditions.TRUE if phase == "Invalid" else conditions.FALSE,
                phase,
                message,
                gen,
            ),
        ]
        wanted: dict[str, Any] = {
            "observedGeneration": gen,
            "valid": phase != "Invalid",
            "issues": issues,
            "lans": len(lans),
            "deckies": len(deckies),
            "node": node,
            "conditions": conditions.merge(status.get("conditions"), conds),
        }
        wanted = {k: v for k, v in wanted.items() if v is not None}
        if {k: status.get(k) for k in wanted} != wanted:
            await kclient.apply_status_async(
                RT.client, "Topology", name, ns, wanted, names.OPERATOR_MANAGER
            )
            metrics.WRITES.labels("status").inc()
            if status.get("node") != node:
                RT.poke(*[(ns, d.name) for d in deckies])


@kopf.on.event(G, V, names.TOPOLOGIES)
async def topology_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
    if event.get("type") == "DELETED":
        return
    ns, name = _key(body)
    metrics.RECONCILES.labels("Topology").inc()
    RT.poke(("topology:" + ns, name))


@kopf.on.event(G, V, names.SERVICE_TEMPLATES)
async def template_event(**_: Any) -> None:
    RT.poke(
        *[key for key, _ in RT.values("decky_idx")],
        *[("topology:" + k[0], k[1]) for k, _ in RT.values("topo_idx")],
    )


@kopf.on.event(
    LEASE_GROUP,
    LEASE_VERSION,
    "leases",
    labels={names.LABEL_AGENT_LEASE: kopf.PRESENT},
    when=_in_system,
)
async def lease_event(**_: Any) -> None:
    RT.wake.set()


# -- the background loop ----------------------------------------------------------------------


def _due(body: Mapping[str, Any], live: set[str], changed: set[str]) -> bool:
    """Does this decky need a reconcile without a watch event?"""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    node = status.get("node")
    if not node:
        return bool(changed) or bool(meta.get("deletionTimestamp"))
    if node in changed:
        return True
    if meta.get("deletionTimestamp"):
        return node not in live and node_gone(str(node))
    per_decky = ((body.get("spec") or {}).get("mutation") or {}).get("intervalMinutes")
    interval = mutation.interval_minutes(per_decky, RT.config.mutation_interval_minutes)
    if interval <= 0:
        return False
    rec = status.get("lifecycle") or {}
    if rec.get("phase") != lifecycle.SUCCEEDED:
        return False
    since = conditions.parse_time(
        (status.get("lastMutation") or {}).get("at") or rec.get("startedAt")
    )
    return mutation.due(interval=interval, last=since, now=_now()) and _quiet(body)


def _quiet(body: Mapping[str, Any]) -> bool:
    """No attacker contact within spec.mutation.quietSeconds (status.activity, agent-written)."""
    policy = (body.get("spec") or {}).get("mutation") or {}
    activity = (body.get("status") or {}).get("activity") or {}
    return mutation.quiet(
        last_contact=conditions.parse_time(activity.get("lastContact")),
        now=_now(),
        quiet_seconds=policy.get("quietSeconds"),
    )


async def _reconcile_key(key: runtime.Key) -> None:
    """One key of the loop; a failure schedules its retry and never drops another key."""
    try:
        if key[0].startswith("topology:"):
            with metrics.counting_errors("Topology"):
                await reconcile_topology(key[0].split(":", 1)[1], key[1])
        else:
            body = RT.one("decky_idx", key)
            if body is not None:
                with metrics.counting_errors("Decky"):
                    await reconcile_decky(body)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - retried with backoff
        delay = RT.retry_later(key, time.monotonic())
        log.exception("reconcile.failed", object=f"{key[0]}/{key[1]}", retry_in=delay)
    else:
        RT.succeeded(key)


async def _loop() -> None:
    previous: set[str] = set()
    while True:
        try:
            await asyncio.wait_for(RT.wake.wait(), timeout=RT.config.tick_seconds)
        except TimeoutError:
            pass
        RT.wake.clear()
        RT.heartbeat = time.monotonic()
        if not leadership.active():  # kopf paused this replica: so does its loop
            continue
        try:
            live = live_nodes()
            changed = live ^ previous
            previous = live
            keys = set(RT.poked) | RT.due_retries(time.monotonic())
            RT.poked.clear()
            for key, body in RT.values("decky_idx"):
                if key not in keys and _due(RT.latest.get(key, body), live, changed):
                    keys.add(key)
            for key in sorted(keys):
                await _reconcile_key(key)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the loop must survive one bad object
            log.exception("loop.failed")
            await asyncio.sleep(1)
