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
import ipaddress
import json
from collections.abc import Iterable, Mapping

from decnet.api import v1alpha1
from decnet.controller import allocation, configschema, views

CONFIG_MAX_BYTES = 32 * 1024  # a service config is settings, not content

LAN_NOT_FOUND = "LANNotFound"


@dataclasses.dataclass(frozen=True)
class Problem:
    code: int  # what admission answers (409 clash, 422 invalid)
    reason: str  # the condition reason reconcile reports (CamelCase)
    message: str


def network(
    decky: views.Decky, net: v1alpha1.NetworkAttachment, lans: Mapping[str, views.Lan]
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
                f"service {svc} is a fleet singleton; it runs once per node, not per decky"
                + (
                    ": the node agent watches every LAN for scans (turn it off per LAN with"
                    " spec.sniffer.enabled: false)"
                    if svc == v1alpha1.SNIFFER
                    else ""
                ),
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
    return services(decky, known) or files(decky)


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


# -- admin-owned limits ---------------------------------------------------------------

SETID_BITS = 0o6000  # setuid | setgid: a lure must never be a privilege escalation


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the cluster admin allows namespace editors (chart values -> operator env).

    Empty pools mean anywhere, and no parent list means any parent: that is the
    default for local runs; the chart always sets all three.
    """

    subnet_pools: tuple[str, ...] = ()
    min_prefix: int = 0
    max_prefix: int = 32
    macvlan_parents: tuple[str, ...] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        pools = tuple(p.strip() for p in env.get("DECNET_SUBNET_POOLS", "").split(",") if p.strip())
        low, high = 0, 32
        lengths = env.get("DECNET_PREFIX_LENGTHS", "").strip()
        if lengths:
            first, _, last = lengths.partition("-")
            low, high = int(first), int(last or first)
        parents: tuple[str, ...] | None = None
        if "DECNET_MACVLAN_PARENTS" in env:
            raw = env["DECNET_MACVLAN_PARENTS"].split(",")
            parents = tuple(p.strip() for p in raw if p.strip())
        return cls(pools, low, high, parents)


def subnet_allowed(subnet: str, limits: Limits) -> Problem | None:
    net = ipaddress.ip_network(subnet, strict=False)
    if not limits.min_prefix <= net.prefixlen <= limits.max_prefix:
        return Problem(
            422,
            "PrefixNotAllowed",
            f"subnet {subnet}: prefix length must be between /{limits.min_prefix} and "
            f"/{limits.max_prefix} (the operator's limits)",
        )
    if limits.subnet_pools and not any(
        net.version == pool.version and net.subnet_of(pool)  # type: ignore[arg-type]
        for pool in (ipaddress.ip_network(p, strict=False) for p in limits.subnet_pools)
    ):
        return Problem(
            422,
            "SubnetNotAllowed",
            f"subnet {subnet} is outside the allowed pools {', '.join(limits.subnet_pools)}",
        )
    return None


def lan(lan: views.Lan, limits: Limits) -> Problem | None:
    """A LAN against the admin's limits (pinned subnet, macvlan parent)."""
    if lan.subnet:
        problem = subnet_allowed(lan.subnet, limits)
        if problem is not None:
            return problem
    if lan.driver == "macvlan" and limits.macvlan_parents is not None:
        if lan.parent not in limits.macvlan_parents:
            allowed = ", ".join(limits.macvlan_parents) or "none"
            return Problem(
                422,
                "ParentNotAllowed",
                f"macvlan parent {lan.parent or '(none)'} is not allowed (allowed: {allowed})",
            )
    return None


def files(decky: views.Decky) -> Problem | None:
    for i, spec in enumerate(decky.files):
        if spec.mode & SETID_BITS:
            return Problem(
                422,
                "FileModeNotAllowed",
                f"spec.files[{i}].mode {oct(spec.mode)}: setuid/setgid bits are not allowed",
            )
    return None
