"""Decky: place it, hold its addresses, apply mutations, plan it, and report its lifecycle.

Every reconcile recomputes the operator-owned status from the full object plus the
indexes, with the pure planners (scheduling, validation, planning, mutation,
lifecycle), and writes only when the result differs from what is in status (zero
writes at idle). Status is written with server-side apply under the operator's field
manager; spec is never written. The finalizer and the node label are the only
metadata writes, each done once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
import structlog
from lightkube import ApiError
from lightkube.types import PatchType

from decnet.api import v1alpha1
from decnet.controller import (
    claims,
    indexes,
    lifecycle,
    metrics,
    mutation,
    planning,
    scheduling,
    state,
    validation,
    views,
    workqueue,
    writes,
)
from decnet.kube import client as kclient
from decnet.kube import conditions, names

log = structlog.get_logger("decnet.controller")
KIND = workqueue.Kind.DECKY
PLAN_WAITS = ("SubnetPending", "AddressPending", "LANNotFound")


def spec_services(decky: views.Decky) -> list[str]:
    if decky.services:
        return sorted(set(decky.services))
    return sorted(set(v1alpha1.ARCHETYPES.get(decky.archetype or "", [])))


def topology_node(
    st: state.State, decky: views.Decky, lans: Mapping[str, views.Lan]
) -> tuple[bool, str | None]:
    """(belongs to a topology, the topology's node)."""
    home = lans.get(decky.networks[0].lan) if decky.networks else None
    topo_name = (home.topology if home else None) or decky.topology_label
    if not topo_name:
        return False, None
    topo = st.one("topo_idx", (decky.namespace, topo_name))
    return True, views.Topology.from_obj(topo).node if topo else None


def lans_problem(st: state.State, decky: views.Decky) -> validation.Problem | None:
    """A LAN of this decky refused by the limits or overlapping an older LAN."""
    for net in decky.networks:
        lan = st.one("lan_views", (decky.namespace, net.lan))
        if lan is None:
            continue
        problem = validation.lan(lan, st.config.limits) or indexes.lan_overlap(st, lan)
        if problem is not None:
            return validation.Problem(
                problem.code, problem.reason, f"LAN {net.lan}: {problem.message}"
            )
    return None


def mutate(
    st: state.State,
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
    if last and last.get("trigger"):
        # An older operator wrote the trigger lowercase: write it back CamelCase.
        last = {**last, "trigger": v1alpha1.MutationTrigger(last["trigger"])}
    if deleting:
        return active, last, handled, False
    trigger = None
    if token and token != handled:
        trigger = v1alpha1.MutationTrigger.MANUAL
    elif mutation.scheduled(
        decky.mutation,
        status,
        default_interval=st.config.mutation_interval_minutes,
        now=indexes.now(),
    ):
        trigger = v1alpha1.MutationTrigger.SCHEDULED
    if trigger is None:
        return active, last, handled, False
    pool = mutation.pool(
        explicit=decky.mutation_pool,
        archetype=decky.archetype,
        archetypes=v1alpha1.ARCHETYPES,
        templates={name: t.fleet_singleton for name, t in indexes.templates(st).items()},
    )
    chosen = mutation.pick(pool, active, st.rng)
    new_token = token if trigger == v1alpha1.MutationTrigger.MANUAL else handled
    at = conditions.now_rfc3339()
    if chosen is None:
        writes.event(
            st,
            body,
            "Warning",
            "MutationSkipped",
            f"{trigger} mutation found no service set different from {active}",
        )
        record = {"trigger": trigger, "at": at, "from": active, "to": active}
        return active, record, new_token, False
    record = {"trigger": trigger, "at": at, "from": active, "to": chosen}
    writes.event(st, body, "Normal", "Mutated", f"{trigger} mutation: {active} -> {chosen}")
    return chosen, record, new_token, True


async def _read(st: state.State, key: workqueue.Key) -> dict[str, Any] | None:
    """The object as the API server has it now (None when it is gone)."""
    try:
        obj = await st.client.get(kclient.Decky, key.name, namespace=key.namespace)
    except ApiError as err:
        if err.status.code == 404:
            return None
        raise
    return indexes.compact(obj.to_dict() if hasattr(obj, "to_dict") else obj)


async def _patch_meta(
    st: state.State, body: Mapping[str, Any], patch: dict[str, Any]
) -> dict[str, Any] | None:
    key = indexes.key(KIND, body)
    patch.setdefault("metadata", {})["resourceVersion"] = body["metadata"]["resourceVersion"]
    try:
        obj = await st.client.patch(
            kclient.Decky, key.name, patch, namespace=key.namespace, patch_type=PatchType.MERGE
        )
    except ApiError as err:
        if err.status.code in (404, 409):
            return None
        raise
    metrics.WRITES.labels("metadata").inc()
    return dict(obj.to_dict() if hasattr(obj, "to_dict") else obj)


async def reconcile(st: state.State, given: Mapping[str, Any]) -> None:
    key = indexes.key(KIND, given)
    async with st.locks[key]:
        body = st.freshest(key, given)
        if body is None:  # someone else wrote since our last write: ask the API server
            body = await _read(st, key)
            if body is None:
                return
        await _reconcile(st, key, body)


async def _reconcile(st: state.State, key: workqueue.Key, body: dict[str, Any]) -> None:
    meta = body.get("metadata") or {}
    uid = str(meta.get("uid"))
    status: dict[str, Any] = dict(body.get("status") or {})
    deleting = bool(meta.get("deletionTimestamp"))
    finalizers = list(meta.get("finalizers") or [])
    if deleting and names.FINALIZER not in finalizers:
        return
    decky = views.Decky.from_obj(body)
    first_visit = uid not in st.seen
    st.seen.add(uid)
    blog = log.bind(object=f"{decky.namespace}/{decky.name}")
    lans = indexes.lans_in(st, decky.namespace)

    # Placement.
    in_topology, topo_node = topology_node(st, decky, lans)
    live = indexes.live_nodes(st)
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
            load=st.load(),
            node_loss=None
            if deleting
            else indexes.node_loss(st, decky, status.get("node") or None, live),
        )
    if decision.node and not deleting:
        st.place(uid, decision.node)

    stall: lifecycle.Stall | None = None
    waiting: lifecycle.Stall | None = None
    for net in decky.networks:
        if net.lan not in lans:
            waiting = lifecycle.Stall("LANNotFound", f"LAN {net.lan} does not exist (yet)")

    # What admission checks, checked again: the webhook may have been bypassed (or
    # failed open), and nothing it would refuse may be allocated, planned or run.
    templates = indexes.templates(st)
    if not deleting:
        problem = validation.decky(decky, lans, templates) or lans_problem(st, decky)
        if problem is not None and problem.reason != validation.LAN_NOT_FOUND:
            stall = lifecycle.Stall(problem.reason, problem.message)

    # Addresses (not while deleting or refused: keep what is published).
    if deleting or stall is not None:
        addresses = [dict(a) for a in status.get("addresses") or ()]
    else:
        addresses, held = await claims.allocate(st, decky, uid, status, lans)
        stall = stall or held

    # Active services and mutation.
    spec_set = spec_services(decky)
    rebase = status.get("observedGeneration") != meta.get("generation")
    active = spec_set if rebase or not status.get("services") else list(status["services"])
    services, last_mutation, token, mutated = mutate(st, body, decky, status, active, deleting)
    if deleting:
        services = list(status.get("services") or active)

    plan: v1alpha1.Plan | None = None
    if not deleting and stall is None:
        try:
            plan = planning.build(
                decky,
                lans=lans,
                templates=templates,
                addresses={a["lan"]: a["ip"] for a in addresses},
                services=services,
                base_image=st.config.base_image,
            )
        except planning.PlanError as err:
            if err.reason in PLAN_WAITS:
                waiting = waiting or lifecycle.Stall(err.reason, err.message)
            else:
                stall = lifecycle.Stall(err.reason, err.message)

    node = decision.node
    current = lifecycle.Current(
        generation=int(meta.get("generation") or 1),
        status=status,
        deleting=deleting,
        node_live=node is None or node in live,
        node_gone=bool(node) and node not in live and indexes.node_gone(st, str(node)),
        first_visit=first_visit,
    )
    desired = lifecycle.Desired(
        schedule=decision,
        addresses=tuple(addresses),
        services=tuple(services),
        plan=plan.wire() if plan is not None else None,
        last_mutation=last_mutation,
        mutation_request=token,
        mutated=mutated,
        stall=stall,
        waiting=waiting,
    )
    out = lifecycle.step(current, desired)

    # Metadata first: the finalizer before anything that needs cleaning up.
    labels = meta.get("labels") or {}
    patch: dict[str, Any] = {}
    if not deleting and names.FINALIZER not in finalizers:
        patch.setdefault("metadata", {})["finalizers"] = finalizers + [names.FINALIZER]
    if node and labels.get(names.LABEL_NODE) != node and not deleting:
        patch.setdefault("metadata", {})["labels"] = {names.LABEL_NODE: node}
    if patch:
        fresh = await _patch_meta(st, body, patch)
        if fresh is None:
            return  # conflict: the next event carries the newer object
        st.remember(key, body, fresh)
        body = fresh

    if out.changed(status):
        obj = await writes.status(st, "Decky", decky.name, decky.namespace, out.status)
        st.remember(key, body, obj.to_dict())
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
        writes.event(st, body, kind, reason, message)

    if not deleting:
        await claims.release_stale(st, decky.namespace, uid, addresses)
    if out.release:
        await _finish_delete(st, key, body, uid)
        blog.info("decky.released", node=node)


async def _finish_delete(
    st: state.State, key: workqueue.Key, body: Mapping[str, Any], uid: str
) -> None:
    await claims.release_stale(st, key.namespace, uid, [])
    finalizers = [f for f in (body["metadata"].get("finalizers") or []) if f != names.FINALIZER]
    await _patch_meta(st, body, {"metadata": {"finalizers": finalizers}})
    st.forget(key, uid)


@kopf.on.event(indexes.G, indexes.V, names.DECKIES)
async def decky_event(event: Mapping[str, Any], body: kopf.Body, memo: Any, **_: Any) -> None:
    """Reconcile at once (the fast path to Ready); a failure is retried by the queue."""
    st = state.of(memo)
    key = indexes.key(KIND, body)
    if event.get("type") == "DELETED":
        st.forget(key, body.get("metadata", {}).get("uid"))
        st.queue.forget(key)
    else:
        given = indexes.compact(body)
        await workqueue.attempt(st.queue, key, lambda _: reconcile(st, given))
    st.queue.add(*indexes.topologies_in(st, key.namespace))
