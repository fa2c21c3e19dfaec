"""Graph validation of a Topology: its LANs and the deckies attached to them.

Codes are stable (users and tests match on them). Shape rules (one DMZ,
every LAN reachable from it, no orphan decky) describe a maze still being
built: before the topology is live they are errors, on a live topology they
are warnings, so a live edit that breaks one marks the topology degraded
and tears nothing down. Everything else is always an error.
"""

from __future__ import annotations

import collections
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from decnet.api import v1alpha1
from decnet.controller import allocation, configschema, views

# The stable issue codes are part of the API (Topology status); named here for the rules.
DMZ_MISSING = v1alpha1.DMZ_MISSING
DMZ_MULTIPLE = v1alpha1.DMZ_MULTIPLE
DMZ_ORPHAN = v1alpha1.DMZ_ORPHAN
DECKY_ORPHAN = v1alpha1.DECKY_ORPHAN
NAME_DUPLICATE = v1alpha1.NAME_DUPLICATE
IP_COLLISION = v1alpha1.IP_COLLISION
IP_OUT_OF_SUBNET = v1alpha1.IP_OUT_OF_SUBNET
IP_UNKNOWN_LAN = v1alpha1.IP_UNKNOWN_LAN
SUBNET_OVERLAP = v1alpha1.SUBNET_OVERLAP
UNKNOWN_SERVICE = v1alpha1.UNKNOWN_SERVICE
SERVICE_CONFIG_INVALID = v1alpha1.SERVICE_CONFIG_INVALID
GATEWAY_NOT_IN_DMZ = v1alpha1.GATEWAY_NOT_IN_DMZ

SHAPE_CODES = frozenset({DMZ_MISSING, DMZ_MULTIPLE, DMZ_ORPHAN, DECKY_ORPHAN})

ERROR = v1alpha1.Severity.ERROR
WARNING = v1alpha1.Severity.WARNING

Issue = dict[str, str]


def _issue(code: str, message: str, obj: str, live: bool) -> Issue:
    severity = WARNING if live and code in SHAPE_CODES else ERROR
    return {"code": code, "severity": severity, "message": message, "object": obj}


def members(
    topology: str, lans: Iterable[views.Lan], deckies: Iterable[views.Decky]
) -> tuple[list[views.Lan], list[views.Decky]]:
    """The topology's LANs (spec.topology) and deckies (attached to one, or labelled).

    Deckies being deleted are already leaving the maze and are not members.
    """
    own = sorted((lan for lan in lans if lan.topology == topology), key=lambda x: x.name)
    names = {lan.name for lan in own}
    own_deckies = sorted(
        (
            d
            for d in deckies
            if not d.deleting
            and belongs(topology, names, d.topology_label, (n.lan for n in d.networks))
        ),
        key=lambda d: d.name,
    )
    return own, own_deckies


def belongs(
    topology: str, topology_lans: set[str], label: str | None, decky_lans: Iterable[str]
) -> bool:
    """A decky is the topology's when labelled for it or attached to one of its LANs."""
    return label == topology or any(lan in topology_lans for lan in decky_lans)


def validate(
    lans: Sequence[views.Lan],
    deckies: Sequence[views.Decky],
    templates: Mapping[str, views.Template],
    *,
    live: bool = False,
) -> list[Issue]:
    """All issues of one topology, in a stable order."""
    issues: list[Issue] = []
    by_name = {lan.name: lan for lan in lans}

    issues.extend(_names(lans, deckies, live))
    issues.extend(_subnets(lans, live))

    dmzs = [lan for lan in lans if lan.dmz]
    if not dmzs:
        issues.append(_issue(DMZ_MISSING, "the topology has no DMZ LAN", "topology", live))
    elif len(dmzs) > 1:
        names = ", ".join(lan.name for lan in dmzs)
        issues.append(
            _issue(DMZ_MULTIPLE, f"exactly one DMZ LAN allowed, found {names}", "topology", live)
        )
    if len(dmzs) == 1:
        reached = _reachable(dmzs[0].name, deckies, set(by_name))
        for lan in lans:
            if lan.name not in reached:
                issues.append(
                    _issue(
                        DMZ_ORPHAN,
                        f"LAN {lan.name} is not reachable from DMZ {dmzs[0].name} "
                        "through multi-homed deckies",
                        f"LAN/{lan.name}",
                        live,
                    )
                )

    for decky in deckies:
        issues.extend(_decky(decky, by_name, templates, live))
    issues.extend(collisions(deckies))
    return issues


def _names(lans: Sequence[views.Lan], deckies: Sequence[views.Decky], live: bool) -> list[Issue]:
    out: list[Issue] = []
    for kind, names in (
        ("LAN", [lan.name for lan in lans]),
        ("Decky", [d.name for d in deckies]),
    ):
        for name, count in sorted(collections.Counter(names).items()):
            if count > 1:
                out.append(
                    _issue(
                        NAME_DUPLICATE,
                        f"{kind} name {name} used {count} times",
                        f"{kind}/{name}",
                        live,
                    )
                )
    hosts: dict[str, list[str]] = collections.defaultdict(list)
    for d in deckies:
        hosts[d.hostname.lower()].append(d.name)
    for host, holders in sorted(hosts.items()):
        if len(holders) > 1:
            out.append(
                _issue(
                    NAME_DUPLICATE,
                    f"hostname {host} used by deckies {', '.join(holders)}",
                    f"Decky/{holders[1]}",
                    live,
                )
            )
    return out


def _subnets(lans: Sequence[views.Lan], live: bool) -> list[Issue]:
    out: list[Issue] = []
    nets = [(lan, lan.effective_subnet) for lan in lans if lan.effective_subnet]
    for i, (a, sa) in enumerate(nets):
        for b, sb in nets[i + 1 :]:
            assert sa and sb
            if allocation.overlaps(sa, sb):
                out.append(
                    _issue(
                        SUBNET_OVERLAP,
                        f"subnet {sb} of LAN {b.name} overlaps {sa} of LAN {a.name}",
                        f"LAN/{b.name}",
                        live,
                    )
                )
    return out


def _reachable(start: str, deckies: Sequence[views.Decky], lans: set[str]) -> set[str]:
    edges: dict[str, set[str]] = collections.defaultdict(set)
    for d in deckies:
        attached = [n.lan for n in d.networks if n.lan in lans]
        for a in attached:
            edges[a].update(attached)
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _decky(
    decky: views.Decky,
    lans: Mapping[str, views.Lan],
    templates: Mapping[str, views.Template],
    live: bool,
) -> list[Issue]:
    out: list[Issue] = []
    obj = f"Decky/{decky.name}"
    if not any(n.lan in lans for n in decky.networks):
        out.append(
            _issue(
                DECKY_ORPHAN, f"decky {decky.name} is attached to no LAN of the topology", obj, live
            )
        )
    for net in decky.networks:
        lan = lans.get(net.lan)
        if lan is None:
            out.append(
                _issue(
                    IP_UNKNOWN_LAN,
                    f"decky {decky.name} names LAN {net.lan}, which is not part of the topology",
                    obj,
                    live,
                )
            )
            continue
        subnet = lan.effective_subnet
        if not net.ip or not subnet:
            continue
        try:
            ipaddress.ip_address(net.ip)
        except ValueError:
            out.append(_issue(IP_OUT_OF_SUBNET, f"{net.ip} is not an IP address", obj, live))
            continue
        if not allocation.contains(subnet, net.ip):
            out.append(
                _issue(
                    IP_OUT_OF_SUBNET,
                    f"{net.ip} is outside subnet {subnet} of LAN {lan.name}",
                    obj,
                    live,
                )
            )
        elif net.ip in allocation.reserved(subnet):
            out.append(
                _issue(
                    IP_COLLISION,
                    f"{net.ip} on LAN {lan.name} is reserved (network, broadcast or gateway)",
                    obj,
                    live,
                )
            )
    out.extend(_services(decky, templates, live))
    if decky.forwards_l3:
        home = lans.get(decky.networks[0].lan) if decky.networks else None
        if home is None or not home.dmz:
            out.append(
                _issue(
                    GATEWAY_NOT_IN_DMZ,
                    f"gateway decky {decky.name} must have the DMZ as its home LAN",
                    obj,
                    live,
                )
            )
    return out


def _services(
    decky: views.Decky, templates: Mapping[str, views.Template], live: bool
) -> list[Issue]:
    out: list[Issue] = []
    obj = f"Decky/{decky.name}"
    for svc in decky.default_services:
        tpl = templates.get(svc)
        if tpl is None or tpl.fleet_singleton:
            why = "a fleet singleton" if tpl else "not a known ServiceTemplate"
            out.append(_issue(UNKNOWN_SERVICE, f"service {svc} is {why}", obj, live))
    for svc, cfg in sorted(decky.service_config.items()):
        if svc not in decky.possible_services:
            out.append(
                _issue(
                    SERVICE_CONFIG_INVALID,
                    f"serviceConfig names {svc}, which the decky can never run"
                    " (not in its services, archetype or mutation pool)",
                    obj,
                    live,
                )
            )
            continue
        tpl = templates.get(svc)
        if tpl is None:
            continue
        for err in configschema.errors(cfg, tpl.config_schema, svc):
            out.append(_issue(SERVICE_CONFIG_INVALID, err, obj, live))
    return out


def collisions(deckies: Iterable[views.Decky]) -> list[Issue]:
    """Two deckies pinning one address on one LAN (admission normally stops this)."""
    seen: dict[tuple[str, str], str] = {}
    out: list[Issue] = []
    for d in sorted(deckies, key=lambda x: x.name):
        for n in d.networks:
            if not n.ip:
                continue
            holder = seen.setdefault((n.lan, n.ip), d.name)
            if holder != d.name:
                out.append(
                    _issue(
                        IP_COLLISION,
                        f"{n.ip} on LAN {n.lan} is held by decky {holder}",
                        f"Decky/{d.name}",
                        False,
                    )
                )
    return out


def summary(issues: Sequence[Mapping[str, Any]]) -> str:
    """Topology phase: invalid on any error, degraded on warnings only, else valid."""
    if any(i["severity"] == ERROR for i in issues):
        return "Invalid"
    if issues:
        return "Degraded"
    return "Valid"
