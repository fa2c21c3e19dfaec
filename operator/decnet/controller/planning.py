"""The plan: everything an agent needs besides the Decky's own spec.

Defined in docs/internals.md. The plan carries references and hashes, never
a serviceConfig value or a file's content, because status is readable by
every viewer. Its hash is taken over a canonical JSON form so equal plans
hash equally on every operator replica and restart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from decnet.controller import allocation, views
from decnet.kube import names

DEFAULT_BASE_IMAGE = "decnet/base:0.1.0"


class PlanError(Exception):
    """The spec cannot be planned as it stands (Stalled until the user changes something)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _file(spec: Mapping[str, Any]) -> dict[str, Any]:
    content = spec.get("content") or {}
    source, name, key, sha = "inline", "", "", ""
    if content.get("secretKeyRef"):
        ref = content["secretKeyRef"]
        source, name, key = "secret", str(ref.get("name", "")), str(ref.get("key", ""))
    elif content.get("configMapKeyRef"):
        ref = content["configMapKeyRef"]
        source, name, key = "configMap", str(ref.get("name", "")), str(ref.get("key", ""))
    else:
        sha = hashlib.sha256(str(content.get("inline", "")).encode()).hexdigest()
    mode = spec.get("mode", 0o644)
    if isinstance(mode, str):
        mode = int(mode, 8)
    return {
        "path": str(spec.get("path", "")),
        "mode": int(mode),
        "mtimeOffsetSeconds": int(spec.get("mtimeOffsetSeconds") or 0),
        "source": source,
        "name": name,
        "key": key,
        "sha256": sha,
    }


def _lan_extras(lan: views.Lan) -> dict[str, Any]:
    """Topology, egress, a sniffer opt-out and labels only when set, so plans (and hashes)
    of LANs without them stay what they were."""
    extras: dict[str, Any] = {}
    if lan.topology:
        extras["topology"] = lan.topology
    if lan.egress:
        # what the agent enforces; the descriptions stay on the LAN
        extras["egress"] = [
            {
                "cidr": str(e.get("cidr", "")),
                "protocol": str(e.get("protocol") or "tcp"),
                "ports": sorted(int(p) for p in e.get("ports") or ()),
            }
            for e in lan.egress
        ]
    if not lan.sniffer:
        extras["sniffer"] = False
    if lan.labels:
        # the agent selects EventSinks for the LAN's scan events on them
        extras["labels"] = dict(lan.labels)
    return extras


def build(
    decky: views.Decky,
    *,
    lans: Mapping[str, views.Lan],
    templates: Mapping[str, views.Template],
    addresses: Mapping[str, str],
    services: Sequence[str],
    base_image: str = DEFAULT_BASE_IMAGE,
) -> dict[str, Any]:
    """The plan for a decky whose LANs have subnets and whose addresses are allocated."""
    networks = []
    for net in decky.networks:
        lan = lans.get(net.lan)
        if lan is None:
            raise PlanError("LANNotFound", f"LAN {net.lan} does not exist")
        subnet = lan.effective_subnet
        if not subnet:
            raise PlanError("SubnetPending", f"LAN {net.lan} has no subnet yet")
        ip = addresses.get(net.lan)
        if not ip:
            raise PlanError("AddressPending", f"no address on LAN {net.lan} yet")
        networks.append(
            {
                "lan": lan.name,
                "network": names.network_name(decky.namespace, lan.name),
                "ip": ip,
                "subnet": subnet,
                "gateway": allocation.gateway(subnet),
                "dmz": lan.dmz,
                "driver": lan.driver,
                "parent": lan.parent,
                **_lan_extras(lan),
            }
        )
    planned_services = []
    for svc in services:
        tpl = templates.get(svc)
        if tpl is None:
            raise PlanError("UnknownService", f"service {svc} has no ServiceTemplate")
        if tpl.fleet_singleton:
            raise PlanError("UnknownService", f"service {svc} is a fleet singleton")
        cfg = decky.service_config.get(svc)
        planned_services.append(
            {
                "name": svc,
                "image": tpl.image,
                "ports": [dict(p) for p in tpl.ports],
                "command": list(tpl.command),
                "env": dict(tpl.env),
                "configHash": digest(cfg) if cfg is not None else "",
                **({"security": dict(tpl.security)} if tpl.security else {}),
            }
        )
    plan: dict[str, Any] = {
        "hostname": decky.hostname,
        "forwardsL3": decky.forwards_l3,
        "baseImage": base_image,
        "networks": networks,
        "services": planned_services,
        "files": [_file(f) for f in decky.files],
    }
    plan["hash"] = digest(plan)
    return plan
