"""The Kubernetes calls of attacker-event handling: EventSinks, their Secrets, surfaces.

Separate from agent/kube.py (deckies, Lease) because these writes use their own
field manager: status.activity on a Decky and one entry of an EventSink's
status.nodes belong to `decnet-agent-events`, so they never disturb the
reporter's fields (an SSA apply owns exactly the fields it sends).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from lightkube import ApiError, Client
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Secret
from lightkube.types import PatchType

from decnet.kube import names

EVENTS_MANAGER = "decnet-agent-events"
REASON = "AttackerContact"
ANNOTATION_SOURCE = "decnet.io/source"
ANNOTATION_SERVICE = "decnet.io/service"
EventSink = create_global_resource(names.GROUP, names.VERSION, "EventSink", "eventsinks")
Decky = create_namespaced_resource(names.GROUP, names.VERSION, "Decky", names.DECKIES)


def _as_dict(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)


def list_sinks(client: Client) -> tuple[list[dict[str, Any]], str]:
    listing = client.list(EventSink)
    return [_as_dict(o) for o in listing], listing.resourceVersion


def watch_sinks(client: Client, resource_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind, obj in client.watch(EventSink, resource_version=resource_version):
        yield kind, _as_dict(obj)


def secret_data(client: Client, namespace: str, name: str) -> dict[str, bytes] | None:
    """Every key of a Secret, decoded; None when it does not exist."""
    try:
        secret = client.get(Secret, name, namespace=namespace)
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise
    out = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
    out.update({k: v.encode() for k, v in (secret.stringData or {}).items()})
    return out


def apply_sink_status(client: Client, name: str, node: str, status: Mapping[str, Any]) -> None:
    """One agent's view: its own status.nodes entry (its own field manager) and the sums."""
    body = {
        "apiVersion": names.API_VERSION,
        "kind": "EventSink",
        "metadata": {"name": name},
        "status": dict(status),
    }
    client.patch(
        EventSink.Status,
        name,
        body,
        patch_type=PatchType.APPLY,
        field_manager=f"{EVENTS_MANAGER}-{node}"[:128],
        force=True,
    )


def apply_activity(client: Client, namespace: str, decky: str, activity: Mapping[str, Any]) -> None:
    body = {
        "apiVersion": names.API_VERSION,
        "kind": "Decky",
        "metadata": {"name": decky, "namespace": namespace},
        "status": {"activity": dict(activity)},
    }
    client.patch(
        Decky.Status,
        decky,
        body,
        namespace=namespace,
        patch_type=PatchType.APPLY,
        field_manager=EVENTS_MANAGER,
        force=True,
    )


def write_contact_event(
    client: Client,
    *,
    namespace: str,
    decky: str,
    source: str,
    service: str,
    decky_uid: str,
    name: str,
    count: int,
    first: str,
    last: str,
    message: str,
    node: str,
) -> None:
    """Create the aggregated AttackerContact Event, or raise its count (core/v1 count)."""
    last_time = dt.datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    patch = {"count": count, "lastTimestamp": last, "message": message}
    try:
        client.patch(Event, name, patch, namespace=namespace, patch_type=PatchType.MERGE)
        return
    except ApiError as error:
        if error.status.code != 404:
            raise
    first_time = dt.datetime.strptime(first, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    event = Event(
        metadata=ObjectMeta(
            name=name,
            namespace=namespace,
            # structured, for `kubectl decnet events` (the message is for humans)
            annotations={ANNOTATION_SOURCE: source[:64], ANNOTATION_SERVICE: service[:63]},
        ),
        involvedObject=ObjectReference(
            apiVersion=names.API_VERSION,
            kind="Decky",
            name=decky,
            namespace=namespace,
            uid=decky_uid or None,
        ),
        reason=REASON,
        message=message,
        type="Warning",
        count=count,
        firstTimestamp=first_time,
        lastTimestamp=last_time,
        source=EventSource(component="decnet-agent", host=node),
        reportingComponent="decnet.io/agent",
        reportingInstance=node[:128],
    )
    try:
        client.create(event)
    except ApiError as error:
        if error.status.code != 409:
            raise
        client.patch(Event, name, patch, namespace=namespace, patch_type=PatchType.MERGE)
