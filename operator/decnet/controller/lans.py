"""LAN: hold its subnet (requested, or a free /24 from its pool) and report it in status.

The pure decision is controller/lanstatus.py; this module gathers its inputs
(the indexes, the subnet's AddressClaim) and writes the result with server-side
apply only when it differs from what is in status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import kopf

from decnet.controller import (
    allocation,
    claims,
    indexes,
    lanstatus,
    state,
    validation,
    views,
    workqueue,
    writes,
)
from decnet.kube import names

KIND = workqueue.Kind.LAN


def pool(st: state.State, lan: views.Lan) -> str:
    if lan.topology:
        topo = st.one("topo_idx", (lan.namespace, lan.topology))
        if topo:
            return views.Topology.from_obj(topo).subnet_pool
    return allocation.DEFAULT_POOL


def pool_problem(st: state.State, lan: views.Lan) -> validation.Problem | None:
    """An automatic /24 must come from a pool the admin allows."""
    chosen, limits = pool(st, lan), st.config.limits
    problem = validation.subnet_allowed(
        chosen, dataclasses.replace(limits, min_prefix=0, max_prefix=32)
    )
    if problem is None:  # the pool is allowed; is a /24 out of it?
        problem = validation.subnet_allowed(chosen.split("/")[0] + "/24", limits)
    if problem is None:
        return None
    return validation.Problem(
        problem.code, problem.reason, f"automatic subnet from pool {chosen}: {problem.message}"
    )


async def reconcile(st: state.State, given: Mapping[str, Any]) -> None:
    key = indexes.key(KIND, given)
    async with st.locks[key]:
        body = dict(given)
        meta = body["metadata"]
        lan = views.Lan.from_obj(body)
        current = dict(body.get("status") or {})
        holder = {"kind": "LAN", "name": lan.name, "uid": str(meta.get("uid"))}
        subnet = lan.subnet or current.get("subnet")
        held_by: str | None = None
        problem = validation.lan(lan, st.config.limits) or indexes.lan_overlap(st, lan)
        if problem is None and not lan.subnet and not current.get("subnet"):
            problem = pool_problem(st, lan)
        if problem is None and lan.subnet:
            held_by = await claims.claim(
                st, lan.namespace, names.subnet_claim_name(lan.subnet), lan.subnet, None, holder
            )
        elif problem is None and not subnet:
            subnet = await claims.allocate_subnet(st, lan, pool(st, lan), holder)
        wanted = lanstatus.status(
            current=current,
            generation=int(meta.get("generation") or 1),
            requested=lan.subnet,
            subnet=subnet,
            held_by=held_by,
            problem=problem,
            deckies=len(indexes.deckies_on(st, lan.namespace, lan.name)),
            topology=lan.topology,
        )
        if lanstatus.changed(current, wanted):
            await writes.status(st, "LAN", lan.name, lan.namespace, wanted)


async def release(st: state.State, body: Mapping[str, Any]) -> None:
    """A deleted LAN gives its subnet back (its claim, when it still holds it)."""
    ns = str(body["metadata"].get("namespace", ""))
    subnet = views.Lan.from_obj(body).effective_subnet
    if not subnet:
        return
    claim = st.one("claim_idx", (ns, names.subnet_claim_name(subnet)))
    if claim and claim.holder_uid == body["metadata"].get("uid"):
        await claims.release(st, ns, names.subnet_claim_name(subnet))
    st.reserved_subnets.discard(subnet)


@kopf.on.event(indexes.G, indexes.V, names.LANS)
async def lan_event(event: Mapping[str, Any], body: kopf.Body, memo: Any, **_: Any) -> None:
    st = state.of(memo)
    key = indexes.key(KIND, body)
    if event.get("type") == "DELETED":
        st.queue.forget(key)
        await release(st, body)
    else:
        given = indexes.compact(body)
        await workqueue.attempt(st.queue, key, lambda _: reconcile(st, given))
    st.queue.add(
        *indexes.deckies_on(st, key.namespace, key.name),
        *indexes.topologies_in(st, key.namespace),
    )
