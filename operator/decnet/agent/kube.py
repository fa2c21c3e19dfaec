"""The agent's few Kubernetes calls (lightkube, sync): deckies, status, refs, its Lease.

Kept inside decnet.agent on purpose: the agent must not depend on the
operator's client code, and it needs only list/watch with a server-side label
selector, one SSA on the status subresource, Secret/ConfigMap reads and a Lease.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from lightkube import ApiError, Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.types import PatchType

from decnet.api import v1alpha1
from decnet.kube import names

Decky = create_namespaced_resource(names.GROUP, names.VERSION, "Decky", names.DECKIES)

LEASE_DURATION_SECONDS = 40


def make_client(kubeconfig: str | None) -> Client:
    if kubeconfig:
        return Client(KubeConfig.from_file(kubeconfig), field_manager=names.AGENT_MANAGER)
    return Client(field_manager=names.AGENT_MANAGER)


def _as_dict(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)


def list_deckies(client: Client, node: str) -> tuple[list[dict[str, Any]], str]:
    """This node's deckies in every namespace, and the list's resourceVersion."""
    listing = client.list(Decky, namespace="*", labels={names.LABEL_NODE: node})
    items = [_as_dict(o) for o in listing]
    return items, listing.resourceVersion


def not_on_node(client: Client, namespace: str, name: str, uid: str, node: str) -> bool:
    """True only when the API server says the decky (by uid) is not this node's: it is
    deleted, replaced by a new object of that name, or labelled for another node.
    Any other answer (an API error included) is False: nothing is removed on doubt."""
    try:
        obj = _as_dict(client.get(Decky, name, namespace=namespace))
    except ApiError as error:
        return error.status.code == 404
    except Exception:  # noqa: BLE001 - unreachable: no verdict
        return False
    meta = obj.get("metadata") or {}
    if meta.get("uid") != uid:
        return True
    return (meta.get("labels") or {}).get(names.LABEL_NODE) != node


def watch_deckies(
    client: Client, node: str, resource_version: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Events after resource_version; raises (410 Gone included) so the caller re-lists."""
    for kind, obj in client.watch(
        Decky,
        namespace="*",
        labels={names.LABEL_NODE: node},
        resource_version=resource_version,
    ):
        yield kind, _as_dict(obj)


def apply_status(client: Client, body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    result = client.patch(
        Decky.Status,
        meta["name"],
        dict(body),
        namespace=meta["namespace"],
        patch_type=PatchType.APPLY,
        field_manager=names.AGENT_MANAGER,
        force=True,
    )
    return _as_dict(result)


def read_ref(client: Client, kind: str, namespace: str, name: str, key: str) -> bytes | None:
    """A Secret or ConfigMap key's bytes, or None when the object or key is missing."""
    try:
        if kind == v1alpha1.FileSource.SECRET:
            secret = client.get(Secret, name, namespace=namespace)
            data = (secret.data or {}).get(key)
            if data is not None:
                return base64.b64decode(data)
            string = (secret.stringData or {}).get(key)
            return string.encode() if string is not None else None
        cm = client.get(ConfigMap, name, namespace=namespace)
        if key in (cm.data or {}):
            return str((cm.data or {})[key]).encode()
        if key in (cm.binaryData or {}):
            return base64.b64decode((cm.binaryData or {})[key])
        return None
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise


def lease_owner(client: Client, namespace: str, daemonset: str) -> OwnerReference:
    """The agent's DaemonSet, as the owner of its Leases: when `helm uninstall` deletes
    the DaemonSet, the garbage collector deletes the Leases (an agent restart or a
    rolling update keeps them: the DaemonSet stays)."""
    found = client.get(DaemonSet, daemonset, namespace=namespace)
    assert found.metadata is not None and found.metadata.uid and found.metadata.name
    return OwnerReference(
        apiVersion="apps/v1", kind="DaemonSet", name=found.metadata.name, uid=found.metadata.uid
    )


def renew_lease(
    client: Client,
    node: str,
    acquired: dt.datetime,
    namespace: str,
    owner: OwnerReference | None = None,
    duration: int = LEASE_DURATION_SECONDS,
) -> None:
    """Server-side apply of the whole Lease: holder, duration and a fresh renewTime.

    One PATCH (application/apply-patch+yaml) that creates the Lease when it is
    missing: the chart's Role grants exactly create and patch on Leases in the
    system namespace, which must already exist (the agent never creates namespaces).
    """
    now = dt.datetime.now(dt.UTC)
    lease = Lease(
        metadata=ObjectMeta(
            name=names.lease_name(node),
            namespace=namespace,
            labels={names.LABEL_AGENT_LEASE: node},
            ownerReferences=[owner] if owner else None,
        ),
        spec=LeaseSpec(
            holderIdentity=node,
            leaseDurationSeconds=duration,
            acquireTime=acquired,
            renewTime=now,
        ),
    )
    client.apply(lease, field_manager=names.AGENT_MANAGER, force=True)
