"""The plan: everything an agent needs besides the Decky's own spec, as a `v1alpha1.Plan`.

Defined in docs/internals.md. The plan carries references and hashes, never
a serviceConfig value or a file's content, because status is readable by
every viewer. Its hash is `v1alpha1.Plan.digest`, over the canonical wire form,
so equal plans hash equally on every operator replica and restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from decnet.api import v1alpha1
from decnet.controller import allocation, views
from decnet.kube import names

DEFAULT_BASE_IMAGE = "decnet/base:0.1.0"


class PlanError(Exception):
    """The spec cannot be planned as it stands (Stalled until the user changes something)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _file(spec: v1alpha1.FileSpec) -> v1alpha1.PlanFile:
    content = spec.content
    source = v1alpha1.FileSource.INLINE
    name, key, sha = "", "", ""
    if content.secret_key_ref:
        source = v1alpha1.FileSource.SECRET
        name, key = content.secret_key_ref.name, content.secret_key_ref.key
    elif content.config_map_key_ref:
        ref = content.config_map_key_ref
        source, name, key = v1alpha1.FileSource.CONFIG_MAP, ref.name, ref.key
    else:
        sha = hashlib.sha256((content.inline or "").encode()).hexdigest()
    return v1alpha1.PlanFile(
        path=spec.path,
        mode=spec.mode,
        mtime_offset_seconds=spec.mtime_offset_seconds,
        source=source,
        name=name,
        key=key,
        sha256=sha,
    )


def _network(decky: views.Decky, lan: views.Lan, ip: str, subnet: str) -> v1alpha1.PlanNetwork:
    """Topology, egress, a sniffer opt-out and labels only when set (they stay off the
    wire otherwise), so plans (and hashes) of LANs without them stay what they were."""
    extras: dict[str, Any] = {}
    if lan.topology:
        extras["topology"] = lan.topology
    if lan.egress:
        # what the agent enforces; the descriptions stay on the LAN
        extras["egress"] = [
            v1alpha1.PlanEgress(cidr=e.cidr, protocol=e.protocol, ports=sorted(e.ports))
            for e in lan.egress
        ]
    if not lan.sniffer:
        extras["sniffer"] = False
    if lan.labels:
        # the agent selects EventSinks for the LAN's scan events on them
        extras["labels"] = dict(lan.labels)
    return v1alpha1.PlanNetwork(
        lan=lan.name,
        network=names.network_name(decky.namespace, lan.name),
        ip=ip,
        subnet=subnet,
        gateway=allocation.gateway(subnet),
        dmz=lan.dmz,
        driver=lan.driver,
        parent=lan.parent,
        **extras,
    )


def _service(name: str, tpl: views.Template, config: Any) -> v1alpha1.PlanService:
    extras: dict[str, Any] = {"security": tpl.security} if tpl.security else {}
    return v1alpha1.PlanService(
        name=name,
        image=tpl.image,
        # both keys always: a template port without a protocol plans as tcp
        ports=[v1alpha1.PortSpec(port=p.port, protocol=p.protocol) for p in tpl.ports],
        command=list(tpl.command),
        env=dict(tpl.env),
        config_hash=v1alpha1.digest(config) if config is not None else "",
        **extras,
    )


def build(
    decky: views.Decky,
    *,
    lans: Mapping[str, views.Lan],
    templates: Mapping[str, views.Template],
    addresses: Mapping[str, str],
    services: Sequence[str],
    base_image: str = DEFAULT_BASE_IMAGE,
) -> v1alpha1.Plan:
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
        networks.append(_network(decky, lan, ip, subnet))
    planned_services = []
    for svc in services:
        tpl = templates.get(svc)
        if tpl is None:
            raise PlanError("UnknownService", f"service {svc} has no ServiceTemplate")
        if tpl.fleet_singleton:
            raise PlanError("UnknownService", f"service {svc} is a fleet singleton")
        planned_services.append(_service(svc, tpl, decky.service_config.get(svc)))
    return v1alpha1.Plan(
        hash="",
        hostname=decky.hostname,
        forwards_l3=decky.forwards_l3,
        base_image=base_image,
        networks=networks,
        services=planned_services,
        files=[_file(f) for f in decky.files],
    ).sealed()
