"""lightkube plumbing shared by the operator, the agent and the CLI.

Generic resource classes for our kinds (no generated models needed), a
client factory honouring --kubeconfig, and the one way anyone writes status:
server-side apply on the status subresource under a named field manager,
always with every field that manager owns (SSA drops owned fields that are
omitted).
"""

from __future__ import annotations

from typing import Any

import lightkube
from lightkube import generic_resource
from lightkube.config.kubeconfig import KubeConfig
from lightkube.types import PatchType

from decnet.kube import names

Decky = generic_resource.create_namespaced_resource(
    names.GROUP, names.VERSION, "Decky", names.DECKIES
)
LAN = generic_resource.create_namespaced_resource(names.GROUP, names.VERSION, "LAN", names.LANS)
Topology = generic_resource.create_namespaced_resource(
    names.GROUP, names.VERSION, "Topology", names.TOPOLOGIES
)
ServiceTemplate = generic_resource.create_global_resource(
    names.GROUP, names.VERSION, "ServiceTemplate", names.SERVICE_TEMPLATES
)
AddressClaim = generic_resource.create_namespaced_resource(
    names.GROUP, names.VERSION, "AddressClaim", names.ADDRESS_CLAIMS
)

KINDS: dict[str, Any] = {
    "Decky": Decky,
    "LAN": LAN,
    "Topology": Topology,
    "ServiceTemplate": ServiceTemplate,
    "AddressClaim": AddressClaim,
}


def config(kubeconfig: str | None = None) -> KubeConfig:
    """The kubeconfig file when given, else in-cluster, else $KUBECONFIG / ~/.kube/config."""
    if kubeconfig:
        return KubeConfig.from_file(kubeconfig)
    return KubeConfig.from_env()


def async_client(kubeconfig: str | None = None, field_manager: str | None = None) -> Any:
    return lightkube.AsyncClient(config(kubeconfig), field_manager=field_manager)


def status_patch(
    kind: str, name: str, namespace: str | None, status: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": names.API_VERSION,
        "kind": kind,
        "metadata": {"name": name},
        "status": status,
    }
    if namespace:
        body["metadata"]["namespace"] = namespace
    return body


def apply_status(
    client: Any,
    kind: str,
    name: str,
    namespace: str | None,
    status: dict[str, Any],
    field_manager: str,
) -> Any:
    """SSA the status subresource with a sync client; returns the updated object."""
    return client.patch(
        KINDS[kind].Status,
        name,
        status_patch(kind, name, namespace, status),
        namespace=namespace,
        patch_type=PatchType.APPLY,
        field_manager=field_manager,
        force=True,
    )


async def apply_status_async(
    client: Any,
    kind: str,
    name: str,
    namespace: str | None,
    status: dict[str, Any],
    field_manager: str,
) -> Any:
    """SSA the status subresource with an async client; returns the updated object."""
    return await client.patch(
        KINDS[kind].Status,
        name,
        status_patch(kind, name, namespace, status),
        namespace=namespace,
        patch_type=PatchType.APPLY,
        field_manager=field_manager,
        force=True,
    )
