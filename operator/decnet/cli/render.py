"""What `kubectl decnet` prints, as pure functions of the objects it read.

The plugin reads plain object dicts (as the API server returns them) rather
than validated models: a status is often partial while an operation runs, and
a read-only view must never refuse to show an object because one field is odd.
Keeping the rendering pure lets the unit tests pin the output without a cluster.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from decnet.api import v1alpha1
from decnet.kube import names

Obj = Mapping[str, Any]

# Severity order of `status`: what needs a person's attention comes first.
FAILING = 0
PROGRESSING = 1
READY = 2
_STATE_WORDS = {FAILING: "failing", PROGRESSING: "progressing", READY: "ready"}
UNSCHEDULED = "<unscheduled>"
MESSAGE_WIDTH = 80


def mutation_token(now: datetime.datetime | None = None) -> str:
    """A fresh value for decnet.io/mutate-request: any new value asks for one mutation."""
    moment = now or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mutate_patch(token: str) -> dict[str, Any]:
    """The merge patch that requests a mutation: only the annotation, never spec."""
    return {"metadata": {"annotations": {names.ANNOTATION_MUTATE_REQUEST: token}}}


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def condition(obj: Obj, ctype: str) -> Mapping[str, Any] | None:
    for cond in _status(obj).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def _cond_status(obj: Obj, ctype: str) -> str:
    cond = condition(obj, ctype)
    return str(cond.get("status", "Unknown")) if cond else "Unknown"


def _failed(lifecycle: Mapping[str, Any]) -> bool:
    """The record failed (an older operator wrote `failed`: any case reads)."""
    return str(lifecycle.get("phase") or "").lower() == v1alpha1.Phase.FAILED.lower()


def severity(obj: Obj) -> int:
    """failing (Stalled, Failed lifecycle), ready (Ready=True, spec observed), else progressing."""
    status = _status(obj)
    lifecycle = status.get("lifecycle") or {}
    if _cond_status(obj, "Stalled") == "True" or _failed(lifecycle):
        return FAILING
    generation = _meta(obj).get("generation")
    observed = status.get("observedGeneration")
    current = generation is None or (observed is not None and observed >= generation)
    if current and _cond_status(obj, "Ready") == "True":
        return READY
    return PROGRESSING


def _one_line(text: str, width: int = MESSAGE_WIDTH) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def decky_message(obj: Obj) -> str:
    """Why a decky is where it is: the Stalled message, the lifecycle error, else Ready's."""
    stalled = condition(obj, "Stalled")
    if stalled and stalled.get("status") == "True" and stalled.get("message"):
        return _one_line(str(stalled["message"]))
    lifecycle = _status(obj).get("lifecycle") or {}
    if _failed(lifecycle) and lifecycle.get("message"):
        return _one_line(str(lifecycle["message"]))
    ready = condition(obj, "Ready")
    if ready and ready.get("status") != "True":
        return _one_line(str(ready.get("message") or ready.get("reason") or ""))
    return ""


def home_ip(obj: Obj) -> str:
    addresses = _status(obj).get("addresses") or []
    if addresses:
        return str(addresses[0].get("ip", "-"))
    networks = _spec(obj).get("networks") or []
    if networks and networks[0].get("ip"):
        return str(networks[0]["ip"])
    return "-"


def active_services(obj: Obj) -> list[str]:
    status_services = _status(obj).get("services")
    if status_services is not None:
        return [str(s) for s in status_services]
    return [str(s) for s in _spec(obj).get("services") or []]


def node_of(obj: Obj) -> str:
    status_node = _status(obj).get("node")
    labels = _meta(obj).get("labels") or {}
    return str(status_node or labels.get(names.LABEL_NODE) or UNSCHEDULED)


@dataclass(frozen=True)
class StatusRow:
    node: str
    namespace: str
    name: str
    severity: int
    ready: str
    lifecycle: str
    services: str
    ip: str
    message: str


def status_rows(deckies: Iterable[Obj]) -> list[StatusRow]:
    rows = []
    for obj in deckies:
        lifecycle = _status(obj).get("lifecycle") or {}
        op, phase = lifecycle.get("operation"), lifecycle.get("phase")
        rows.append(
            StatusRow(
                node=node_of(obj),
                namespace=str(_meta(obj).get("namespace", "")),
                name=str(_meta(obj).get("name", "")),
                severity=severity(obj),
                ready=_cond_status(obj, "Ready"),
                lifecycle=f"{op}/{phase}" if op and phase else "-",
                services=",".join(active_services(obj)) or "-",
                ip=home_ip(obj),
                message=decky_message(obj),
            )
        )
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append((indent + "   ".join(cells)).rstrip())
    return lines


def status_table(deckies: Iterable[Obj], all_namespaces: bool = False) -> str:
    """Deckies grouped per node; nodes with failures first, failing deckies first in a node."""
    rows = status_rows(deckies)
    if not rows:
        return "No deckies found.\n"
    by_node: dict[str, list[StatusRow]] = {}
    for row in rows:
        by_node.setdefault(row.node, []).append(row)

    def node_key(node: str) -> tuple[int, bool, str]:
        return (min(r.severity for r in by_node[node]), node == UNSCHEDULED, node)

    header = ["NAME", "READY", "LIFECYCLE", "SERVICES", "IP", "MESSAGE"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    out: list[str] = []
    for node in sorted(by_node, key=node_key):
        group = sorted(by_node[node], key=lambda r: (r.severity, r.namespace, r.name))
        counts = {sev: sum(1 for r in group if r.severity == sev) for sev in _STATE_WORDS}
        summary = ", ".join(f"{n} {_STATE_WORDS[s]}" for s, n in counts.items() if n)
        noun = "decky" if len(group) == 1 else "deckies"
        out.append(f"NODE {node}: {len(group)} {noun} ({summary})")
        cells = []
        for r in group:
            line = [r.name, r.ready, r.lifecycle, r.services, r.ip, r.message]
            if all_namespaces:
                line.insert(0, r.namespace)
            cells.append(line)
        out.extend(_table(header, cells, indent="  "))
        out.append("")
    return "\n".join(out)


@dataclass(frozen=True)
class Attachment:
    decky: str
    ip: str
    home: bool
    services: tuple[str, ...]
    gateway: bool
    severity: int


@dataclass(frozen=True)
class LanView:
    name: str
    subnet: str
    dmz: bool
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True)
class TopologyView:
    name: str
    namespace: str
    node: str
    ready: str
    lans: tuple[LanView, ...]
    issues: tuple[str, ...]


def _in_topology(lan: Obj, topology: str) -> bool:
    labels = _meta(lan).get("labels") or {}
    return _spec(lan).get("topology") == topology or labels.get(names.LABEL_TOPOLOGY) == topology


def topology_view(topology: Obj, lans: Iterable[Obj], deckies: Iterable[Obj]) -> TopologyView:
    """The maze: the topology's LANs (DMZ first) and every decky attached to each."""
    name = str(_meta(topology).get("name", ""))
    members = [lan for lan in lans if _in_topology(lan, name)]
    deckies = list(deckies)
    lan_views = []
    for lan in members:
        lan_name = str(_meta(lan).get("name", ""))
        attachments = []
        for decky in deckies:
            networks = _spec(decky).get("networks") or []
            addresses = {a.get("lan"): a.get("ip") for a in _status(decky).get("addresses") or []}
            for index, net in enumerate(networks):
                if net.get("lan") != lan_name:
                    continue
                attachments.append(
                    Attachment(
                        decky=str(_meta(decky).get("name", "")),
                        ip=str(addresses.get(lan_name) or net.get("ip") or "-"),
                        home=index == 0,
                        services=tuple(active_services(decky)),
                        gateway=bool(_spec(decky).get("forwardsL3")),
                        severity=severity(decky),
                    )
                )
        subnet = _status(lan).get("subnet") or _spec(lan).get("subnet") or "-"
        lan_views.append(
            LanView(
                name=lan_name,
                subnet=str(subnet),
                dmz=bool(_spec(lan).get("dmz")),
                attachments=tuple(sorted(attachments, key=lambda a: a.decky)),
            )
        )
    lan_views.sort(key=lambda v: (not v.dmz, v.name))
    issues = tuple(
        f"{i.get('severity', v1alpha1.Severity.ERROR)} {i.get('code', '?')}: {i.get('message', '')}"
        + (f" ({i['object']})" if i.get("object") else "")
        for i in _status(topology).get("issues") or []
    )
    node = _status(topology).get("node") or _spec(topology).get("nodeName") or "-"
    return TopologyView(
        name=name,
        namespace=str(_meta(topology).get("namespace", "")),
        node=str(node),
        ready=_cond_status(topology, "Ready"),
        lans=tuple(lan_views),
        issues=issues,
    )


def _decky_label(a: Attachment) -> str:
    parts = [a.decky, a.ip]
    if a.services:
        parts.append("[" + ", ".join(a.services) + "]")
    if a.gateway:
        parts.append("gateway")
    if not a.home:
        parts.append("(multi-homed)")
    if a.severity == FAILING:
        parts.append("FAILING")
    elif a.severity == PROGRESSING:
        parts.append("(not ready)")
    return " ".join(parts)


def topology_text(view: TopologyView) -> str:
    lines = [f"Topology {view.namespace}/{view.name}  node={view.node}  Ready={view.ready}"]
    if not view.lans:
        lines.append("└── (no LANs)")
    for li, lan in enumerate(view.lans):
        last_lan = li == len(view.lans) - 1
        tag = " [DMZ]" if lan.dmz else ""
        lines.append(f"{'└──' if last_lan else '├──'} LAN {lan.name} {lan.subnet}{tag}")
        pad = "    " if last_lan else "│   "
        if not lan.attachments:
            lines.append(f"{pad}└── (no deckies)")
        for ai, a in enumerate(lan.attachments):
            branch = "└──" if ai == len(lan.attachments) - 1 else "├──"
            lines.append(f"{pad}{branch} {_decky_label(a)}")
    if view.issues:
        lines.append("Issues:")
        lines.extend(f"  {issue}" for issue in view.issues)
    return "\n".join(lines) + "\n"


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def topology_dot(view: TopologyView) -> str:
    """Graphviz: LANs are boxes (the DMZ filled), deckies ellipses, one edge per attachment."""
    lines = [
        f"graph {_dot_id(view.name)} {{",
        "  graph [rankdir=LR, fontname=Helvetica,"
        f" label={_dot_id(f'{view.namespace}/{view.name} (node {view.node})')}];",
        "  node [fontname=Helvetica];",
    ]
    seen: set[str] = set()
    colours = {FAILING: "red", PROGRESSING: "orange", READY: "darkgreen"}
    for lan in view.lans:
        style = ', style=filled, fillcolor="#ffe0e0"' if lan.dmz else ""
        label = f"{lan.name}\\n{lan.subnet}" + ("\\nDMZ" if lan.dmz else "")
        lines.append(f'  {_dot_id("lan/" + lan.name)} [shape=box, label="{label}"{style}];')
    for lan in view.lans:
        for a in lan.attachments:
            if a.decky not in seen:
                seen.add(a.decky)
                label = a.decky + ("\\n" + ", ".join(a.services) if a.services else "")
                shape = "doubleoctagon" if a.gateway else "ellipse"
                lines.append(
                    f'  {_dot_id("decky/" + a.decky)} [shape={shape}, label="{label}",'
                    f" color={colours[a.severity]}];"
                )
            edge_style = "" if a.home else ", style=dashed"
            lines.append(
                f"  {_dot_id('decky/' + a.decky)} -- {_dot_id('lan/' + lan.name)}"
                f" [label={_dot_id(a.ip)}{edge_style}];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"
