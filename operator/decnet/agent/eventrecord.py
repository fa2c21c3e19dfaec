"""The collected attacker event: the emulator's record plus where it happened, with an id.

The emulator knows the interaction; only the agent knows the decky's namespace,
name, node, archetype and LAN. Those come from the container's labels and the
Decky object, never from the line: a service container is attacker-reachable, so
a line claiming `namespace="other"` must not be able to re-home itself (the
agent's fields win over the line's).

The `id` is deterministic (container id + Docker's timestamp + the line), so an
agent that re-reads a line after a restart produces the same id and receivers
can drop the duplicate that at-least-once delivery allows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from decnet.emulators import events

# The fields the agent adds; a line's own fields of these names are overridden.
ORIGIN_FIELDS = ("id", "namespace", "decky", "node", "archetype", "lan")


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a service container's events come from (labels + the Decky object)."""

    namespace: str
    decky: str
    node: str
    service: str
    container_id: str
    archetype: str = ""
    lan: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Record:
    """One enriched event, as spooled and delivered."""

    id: str
    namespace: str
    decky: str
    node: str
    archetype: str
    lan: str
    event: events.Event

    def origin_fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "namespace": self.namespace,
            "decky": self.decky,
            "node": self.node,
            "archetype": self.archetype,
            "lan": self.lan,
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (webhook body items, spool lines, `kubectl decnet events -o json`)."""
        e = self.event
        return {
            **self.origin_fields(),
            "time": _rfc3339(e.time),
            "service": e.service,
            "kind": e.kind,
            "src_ip": e.src_ip,
            "src_port": e.src_port,
            "dst_port": e.dst_port,
            "proto": e.proto,
            "session": e.session,
            "hostname": e.hostname,
            "fields": dict(e.fields),
            "message": e.message,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=False)

    def to_syslog(self) -> str:
        """The RFC 5424 line for a syslog sink: the emulator's record plus the origin fields."""
        e = self.event
        extra = {k: v for k, v in self.origin_fields().items() if v}
        fields = {**extra, **{k: v for k, v in e.fields.items() if k not in ORIGIN_FIELDS}}
        return events.to_line(dataclasses.replace(e, fields=fields))


def event_id(container_id: str, docker_ts: str, line: str) -> str:
    """32 hex digits, equal for the same line read twice from the same container."""
    digest = hashlib.sha256(f"{container_id}\0{docker_ts}\0{line}".encode()).hexdigest()
    return digest[:32]


def enrich(event: events.Event, origin: Origin, docker_ts: str, line: str) -> Record:
    """The record of one parsed line; the service comes from the container, not the line."""
    fields = {k: v for k, v in event.fields.items() if k not in ORIGIN_FIELDS}
    return Record(
        id=event_id(origin.container_id, docker_ts, line),
        namespace=origin.namespace,
        decky=origin.decky,
        node=origin.node,
        archetype=origin.archetype,
        lan=origin.lan,
        event=dataclasses.replace(event, service=origin.service or event.service, fields=fields),
    )


def from_dict(data: Mapping[str, Any]) -> Record:
    """A record read back from the spool (written by to_json)."""
    when = dt.datetime.strptime(str(data["time"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    event = events.Event(
        service=str(data.get("service", "")),
        kind=str(data.get("kind", "")),
        src_ip=str(data.get("src_ip", "")),
        src_port=int(data.get("src_port", 0)),
        dst_port=int(data.get("dst_port", 0)),
        session=str(data.get("session", "")),
        time=when,
        proto=str(data.get("proto", "tcp")),
        hostname=str(data.get("hostname", "-")),
        fields={str(k): str(v) for k, v in (data.get("fields") or {}).items()},
        message=str(data.get("message", "")),
    )
    return Record(
        id=str(data["id"]),
        namespace=str(data.get("namespace", "")),
        decky=str(data.get("decky", "")),
        node=str(data.get("node", "")),
        archetype=str(data.get("archetype", "")),
        lan=str(data.get("lan", "")),
        event=event,
    )


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
