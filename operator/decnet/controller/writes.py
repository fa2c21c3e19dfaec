"""The operator's writes besides AddressClaims: status, and Events (each counted).

Status is written with server-side apply on the status subresource under the
operator's field manager. Events are posted in the background, best effort,
directly rather than with kopf.event(), which only works inside a kopf handler's
context, not from the background loop; an Event never fails a reconcile.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from lightkube.models import core_v1, meta_v1
from lightkube.resources import core_v1 as core_resources

from decnet.controller import indexes, metrics, state
from decnet.kube import client as kclient
from decnet.kube import names

log = structlog.get_logger("decnet.controller")
MESSAGE_CAP = 1024


async def status(
    st: state.State, kind: str, name: str, namespace: str, body: dict[str, Any]
) -> Any:
    """Apply the operator-owned status; returns the object the API server answers with."""
    obj = await kclient.apply_status_async(
        st.client, kind, name, namespace, body, names.OPERATOR_MANAGER
    )
    metrics.WRITES.labels("status").inc()
    return obj


def event(st: state.State, body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    """Post a core/v1 Event on the object, without waiting for it."""
    meta = body.get("metadata") or {}
    stamp = indexes.now()
    event = core_resources.Event(
        metadata=meta_v1.ObjectMeta(
            name=f"{meta.get('name')}.{uuid.uuid4().hex[:12]}", namespace=meta.get("namespace")
        ),
        involvedObject=core_v1.ObjectReference(
            apiVersion=names.API_VERSION,
            kind=str(body.get("kind") or "Decky"),
            name=meta.get("name"),
            namespace=meta.get("namespace"),
            uid=meta.get("uid"),
        ),
        reason=reason,
        message=message[:MESSAGE_CAP],
        type=kind,
        source=core_v1.EventSource(component=names.OPERATOR_MANAGER),
        firstTimestamp=stamp,
        lastTimestamp=stamp,
        count=1,
        reportingComponent=names.OPERATOR_MANAGER,
    )

    async def send() -> None:
        try:
            await st.client.create(event, namespace=meta.get("namespace"))
            metrics.WRITES.labels("event").inc()
        except Exception:  # noqa: BLE001 - events never fail a reconcile
            log.warning("event.failed", reason=reason, exc_info=True)

    background(st, send())


def background(st: state.State, work: Any) -> None:
    """Run a coroutine beside the handlers, held so it is not collected half-way."""
    task = asyncio.get_running_loop().create_task(work)
    st.background.add(task)
    task.add_done_callback(st.background.discard)
