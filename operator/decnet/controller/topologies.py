"""Topology: validate the maze of LANs and deckies it groups, and place it on one node.

The pure decisions are controller/topology.py (the graph's issues), controller/
topostatus.py (the status) and controller/scheduling.py (the node). A change of
node requeues its deckies, which follow their topology's node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from decnet.controller import (
    indexes,
    scheduling,
    state,
    topology,
    topostatus,
    views,
    workqueue,
    writes,
)
from decnet.kube import names

KIND = workqueue.Kind.TOPOLOGY


def node_of(st: state.State, topo: views.Topology) -> str | None:
    """The pinned node, else the one it has, else the least-loaded live node (or none yet)."""
    decision = scheduling.choose(
        current=topo.node,
        topology_node=None,
        pinned=None,
        live=indexes.live_nodes(st),
        load=st.load(),
    )
    return decision.node


async def reconcile(st: state.State, key: workqueue.Key) -> None:
    ns, name = key.namespace, key.name
    body = st.one("topo_idx", (ns, name))
    if body is None:
        return
    async with st.locks[key]:
        current = dict(body.get("status") or {})
        all_lans = list(indexes.lans_in(st, ns).values())
        own_lans = {lan.name for lan in all_lans if lan.topology == name}
        # only the deckies that can be members are unpacked (members() decides)
        candidates = {
            decky_name: entry
            for decky_name, entry in indexes.deckies_in(st, ns)
            if topology.belongs(name, own_lans, entry.topology_label, entry.lans)
        }
        lans, deckies = topology.members(
            name, all_lans, [views.Decky.from_obj(e.body()) for e in candidates.values()]
        )
        # Live once a member runs: from then on shape rules only degrade it.
        live = any(candidates[d.name].ready for d in deckies)
        issues = topology.validate(lans, deckies, indexes.templates(st), live=live)
        node = node_of(st, views.Topology.from_obj(body))
        wanted = topostatus.status(
            current=current,
            generation=int(body["metadata"].get("generation") or 1),
            issues=issues,
            lans=len(lans),
            deckies=len(deckies),
            node=node,
        )
        if topostatus.changed(current, wanted):
            await writes.status(st, "Topology", name, ns, wanted)
            if current.get("node") != node:
                st.queue.add(*[workqueue.Key(workqueue.Kind.DECKY, ns, d.name) for d in deckies])


@kopf.on.event(indexes.G, indexes.V, names.TOPOLOGIES)
async def topology_event(event: Mapping[str, Any], body: kopf.Body, memo: Any, **_: Any) -> None:
    st = state.of(memo)
    key = indexes.key(KIND, body)
    if event.get("type") == "DELETED":
        st.queue.forget(key)
        return
    st.queue.add(key)
