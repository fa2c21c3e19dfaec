"""What admission checks, as pure functions shared by the webhook and reconcile.

The webhook is the friendly path (a 409/422 at `kubectl apply`), not the
guarantee: it can be bypassed (failurePolicy Ignore, a namespaceSelector, an
object written while the configuration was absent). Reconcile therefore runs
the same checks on every pass and reports Stalled with the check's reason
instead of allocating or planning, so a spec admission would refuse never
reaches a node. Each problem carries the HTTP code admission answers with and
the condition reason reconcile reports.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping

from decnet.controller import allocation, configschema, views

CONFIG_MAX_BYTES = 32 * 1024  # a service config is settings, not content

LAN_NOT_FOUND = "LANNotFound"


@dataclasses.dataclass(frozen=True)
class Problem:
    code: int  # what admission answers (409 clash, 422 invalid)
    reason: str  # the condition reason reconcile reports (CamelCase)
    message: str


def network(
    decky: views.Decky, net: views.Network, lans: Mapping[str, views.Lan]
) -> Problem | None:
    lan = lans.get(net.lan)
    if lan is None:
        return Problem(
            422, LAN_NOT_FOUND, f"LAN {net.lan} does not exist in namespace {decky.namespace}"
        )
    subnet = lan.effective_subnet
    if net.ip and subnet and not allocation.contains(subnet, net.ip):
        return Problem(
            422, "IPOutOfSubnet", f"{net.ip} is outside subnet {subnet} of LAN {net.lan}"
        )
    if net.ip and subnet and net.ip in allocation.reserved(subnet):
        return Problem(
            422,
            "IPReserved",
            f"{net.ip} is the network, broadcast or gateway address of LAN {net.lan}",
        )
    return None


def services(decky: views.Decky, known: Mapping[str, views.Template]) -> Problem | None:
    for svc in decky.services:
        tpl = known.get(svc)
        if tpl is None:
            return Problem(
                422, "UnknownService", f"unknown service {svc}: no ServiceTemplate of that name"
            )
        if tpl.fleet_singleton:
            return Problem(
                422,
                "FleetSingleton",
                f"service {svc} is a fleet singleton; it runs once per node, not per decky",
            )
    for svc, cfg in sorted(decky.service_config.items()):
        size = len(json.dumps(cfg, separators=(",", ":")))
        if size > CONFIG_MAX_BYTES:
            return Problem(
                422,
                "ServiceConfigTooLarge",
                f"serviceConfig for {svc} is {size} bytes; at most {CONFIG_MAX_BYTES} allowed "
                "(put large content in spec.files from a Secret)",
            )
        tpl = known.get(svc)
        if tpl is None:
            return Problem(422, "UnknownService", f"serviceConfig names unknown service {svc}")
        errors = configschema.errors(cfg, tpl.config_schema, svc)
        if errors:
            return Problem(
                422,
                "ServiceConfigInvalid",
                f"serviceConfig for {svc} does not match its schema: " + "; ".join(errors),
            )
    return None


def decky(
    decky: views.Decky, lans: Mapping[str, views.Lan], known: Mapping[str, views.Template]
) -> Problem | None:
    """The first problem of a Decky's spec (address clashes are the claims' business)."""
    for net in decky.networks:
        problem = network(decky, net, lans)
        if problem is not None:
            return problem
    return services(decky, known)


@dataclasses.dataclass(frozen=True)
class SubnetHolder:
    namespace: str
    name: str
    subnet: str
    created: str  # RFC 3339 creationTimestamp; sorts chronologically


def subnet_overlap(mine: SubnetHolder, others: Iterable[SubnetHolder]) -> Problem | None:
    """Overlap with an older LAN in any namespace (the oldest keeps its subnet).

    AddressClaims are namespaced and named after the exact subnet, so they lock
    neither another namespace nor an overlapping prefix: this check does.
    """
    key = (mine.created, mine.namespace, mine.name)
    for other in sorted(others, key=lambda o: (o.created, o.namespace, o.name)):
        if (other.namespace, other.name) == (mine.namespace, mine.name):
            continue
        if (other.created, other.namespace, other.name) >= key:
            continue
        if allocation.overlaps(mine.subnet, other.subnet):
            return Problem(
                409,
                "SubnetOverlap",
                f"subnet {mine.subnet} overlaps {other.subnet} of LAN "
                f"{other.namespace}/{other.name}",
            )
    return None
