"""What the operator keeps of each decky between its events: the facts every scan reads,
and the rest of the object packed.

kopf's indexes hold one value per object for the operator's whole life. A decky's body
as Python dicts weighs ~16 KB (status.plan, containers and conditions are most of it),
160 MB at 10,000 deckies. The scans over every decky — the loop's "is anything due"
check, who holds an address, which deckies sit on a LAN or a topology — read a handful
of fields; only a reconcile needs the whole object. So the index keeps a StoredDecky:
those fields, decided once when the watch delivers the object, and the body as
compressed JSON (~1.2 KB), unpacked only by the reconcile that needs it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import zlib
from collections.abc import Mapping
from typing import Any

from decnet.api import v1alpha1
from decnet.controller import mutation
from decnet.kube import conditions, names


@dataclasses.dataclass(frozen=True, slots=True)
class StoredDecky:
    node: str | None  # status.node
    deleting: bool
    lans: tuple[str, ...]  # of spec.networks
    topology_label: str | None
    ready: bool
    node_loss_policy: str
    node_loss_grace_seconds: int
    # when a scheduled mutation falls due, as status stands (None: not scheduled)
    mutation_due: datetime.datetime | None
    packed: bytes = dataclasses.field(repr=False)

    def body(self) -> dict[str, Any]:
        """The object as the watch delivered it (managedFields left out)."""
        body = json.loads(zlib.decompress(self.packed))
        assert isinstance(body, dict)
        return body

    def on_lan(self, lan: str) -> bool:
        return lan in self.lans


def without_managed_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy whose metadata has no managedFields (most of a body's bytes, read by
    no decision)."""
    out = dict(body)
    out["metadata"] = {
        k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"
    }
    return out


def addresses(body: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """LAN -> the decky's addresses on it: pinned in spec.networks, held in status."""
    out: dict[str, list[str]] = {}
    for net in (body.get("spec") or {}).get("networks") or ():
        if net.get("ip"):
            out.setdefault(str(net.get("lan")), []).append(str(net["ip"]))
    for held in (body.get("status") or {}).get("addresses") or ():
        if held.get("ip"):
            out.setdefault(str(held.get("lan")), []).append(str(held["ip"]))
    return {lan: tuple(dict.fromkeys(ips)) for lan, ips in out.items()}


def store(body: Mapping[str, Any], *, default_interval: float) -> StoredDecky:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    node_loss = v1alpha1.NodeLossPolicy.model_validate(spec.get("nodeLoss") or {})
    policy = spec.get("mutation")
    packed = json.dumps(without_managed_fields(body), separators=(",", ":"), default=str).encode()
    return StoredDecky(
        node=status.get("node") or None,
        deleting=bool(meta.get("deletionTimestamp")),
        lans=tuple(str(n.get("lan")) for n in spec.get("networks") or ()),
        topology_label=((meta.get("labels") or {}).get(names.LABEL_TOPOLOGY)) or None,
        ready=conditions.is_true(status.get("conditions"), conditions.READY),
        node_loss_policy=node_loss.policy,
        node_loss_grace_seconds=node_loss.grace_seconds,
        mutation_due=mutation.due_at(
            v1alpha1.MutationPolicy.model_validate(policy) if policy else None,
            status,
            default_interval=default_interval,
        ),
        packed=zlib.compress(packed, 1),
    )
