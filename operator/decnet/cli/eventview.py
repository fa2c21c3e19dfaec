"""`kubectl decnet events`: the aggregated AttackerContact Events as a table or JSON.

The source is what the node agents already write for `kubectl describe decky`: one
Warning Event per decky + attacker source + service whose count grows. So this
shows who touched which decky on which service, how often, first and last seen,
and the latest kinds of interaction, without a second store. Full per-event
records (usernames, passwords, commands) go to the EventSinks, not to Kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

REASON = "AttackerContact"
ANNOTATION_SOURCE = "decnet.io/source"
ANNOTATION_SERVICE = "decnet.io/service"


def row(event: Mapping[str, Any]) -> dict[str, Any]:
    meta = event.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    involved = event.get("involvedObject") or {}
    return {
        "namespace": str(meta.get("namespace") or involved.get("namespace") or ""),
        "decky": str(involved.get("name") or ""),
        "source": str(annotations.get(ANNOTATION_SOURCE, "")),
        "service": str(annotations.get(ANNOTATION_SERVICE, "")),
        "count": int(event.get("count") or 1),
        "firstSeen": str(event.get("firstTimestamp") or ""),
        "lastSeen": str(event.get("lastTimestamp") or event.get("eventTime") or ""),
        "node": str((event.get("source") or {}).get("host") or ""),
        "message": str(event.get("message") or ""),
    }


def rows(events: Iterable[Mapping[str, Any]], decky: str | None = None) -> list[dict[str, Any]]:
    """AttackerContact rows, newest last; only one decky's when given."""
    out = [
        row(e)
        for e in events
        if e.get("reason") == REASON
        and (decky is None or (e.get("involvedObject") or {}).get("name") == decky)
    ]
    return sorted(out, key=lambda r: (r["lastSeen"], r["namespace"], r["decky"]))


def table(items: list[dict[str, Any]], all_namespaces: bool, header: bool = True) -> str:
    columns = ["DECKY", "SOURCE", "SERVICE", "COUNT", "FIRST SEEN", "LAST SEEN", "NODE"]
    keys = ["decky", "source", "service", "count", "firstSeen", "lastSeen", "node"]
    if all_namespaces:
        columns.insert(0, "NAMESPACE")
        keys.insert(0, "namespace")
    lines = [[str(r[k]) for k in keys] for r in items]
    widths = [max([len(c)] + [len(line[i]) for line in lines]) for i, c in enumerate(columns)]
    out = []
    if header:
        out.append("   ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in lines:
        out.append("   ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    if not items and header:
        return "No attacker contact found.\n"
    return "\n".join(out) + "\n"
