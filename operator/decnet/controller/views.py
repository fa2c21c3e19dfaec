"""Read-only views of the objects the planners need, derived from the API types.

Handlers receive plain dicts from kopf and indexes; each view validates the object's
spec through its `v1alpha1` model (one Decky shape: the API's, with its defaults) and
adds only what the planners derive from it (a default hostname, the effective subnet,
the services a decky may run). Metadata stays a dict in the API types too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from decnet.api import v1alpha1
from decnet.api.v1alpha1 import personas
from decnet.kube import names


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


_NETWORKS = pydantic.TypeAdapter(list[v1alpha1.NetworkAttachment])


def networks(obj: Mapping[str, Any]) -> list[v1alpha1.NetworkAttachment]:
    """A Decky's spec.networks alone, through its API type: for the scans over every decky
    of a namespace, which need no more of the spec."""
    return _NETWORKS.validate_python(_spec(obj).get("networks") or [])


@dataclasses.dataclass(frozen=True)
class Lan:
    name: str
    namespace: str
    subnet: str | None
    dmz: bool = False
    driver: Literal["bridge", "macvlan"] = "bridge"
    parent: str = ""
    topology: str | None = None
    status_subnet: str | None = None
    egress: tuple[v1alpha1.EgressRule, ...] = dataclasses.field(default=(), hash=False)
    sniffer: bool = True
    labels: tuple[tuple[str, str], ...] = ()
    created: str = ""  # metadata.creationTimestamp: the older of two overlapping LANs wins

    @property
    def effective_subnet(self) -> str | None:
        """The pinned subnet, else the one the operator allocated."""
        return self.subnet or self.status_subnet

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Lan:
        meta = _meta(obj)
        spec = v1alpha1.LANSpec.model_validate(_spec(obj))
        status = v1alpha1.LANStatus.model_validate(obj.get("status") or {})
        return cls(
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            subnet=spec.subnet or None,
            dmz=spec.dmz,
            driver=spec.driver,
            parent=spec.parent or "",
            topology=spec.topology or None,
            status_subnet=status.subnet or None,
            egress=tuple(spec.egress),
            sniffer=spec.sniffer.enabled,
            labels=tuple(sorted((meta.get("labels") or {}).items())),
            created=str(meta.get("creationTimestamp") or ""),
        )


@dataclasses.dataclass(frozen=True)
class Decky:
    name: str
    namespace: str
    hostname: str
    archetype: str | None
    services: tuple[str, ...]
    service_config: Mapping[str, Any]
    networks: tuple[v1alpha1.NetworkAttachment, ...]
    node_name: str | None
    forwards_l3: bool
    mutation_pool: tuple[str, ...]
    files: tuple[v1alpha1.FileSpec, ...]
    topology_label: str | None
    deleting: bool = False
    node_loss_policy: str = v1alpha1.NODE_LOSS_WAIT
    node_loss_grace_seconds: int = v1alpha1.DEFAULT_NODE_LOSS_GRACE_SECONDS
    mutation: v1alpha1.MutationPolicy | None = None

    @property
    def default_services(self) -> tuple[str, ...]:
        """What runs before any mutation: spec.services, else the archetype's services."""
        if self.services:
            return self.services
        return tuple(v1alpha1.ARCHETYPES.get(self.archetype or "", ()))

    @property
    def possible_services(self) -> frozenset[str]:
        """Every service this decky may run now or after a mutation (serviceConfig may name any)."""
        archetype = v1alpha1.ARCHETYPES.get(self.archetype or "", ())
        return frozenset((*self.default_services, *archetype, *self.mutation_pool))

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Decky:
        meta = _meta(obj)
        spec = v1alpha1.DeckySpec.model_validate(_spec(obj))
        mutation = spec.mutation or v1alpha1.MutationPolicy()
        node_loss = spec.node_loss or v1alpha1.NodeLossPolicy()
        name = str(meta.get("name", ""))
        namespace = str(meta.get("namespace", ""))
        labels = meta.get("labels") or {}
        # Without spec.hostname, the name the archetype's machine would have out of the box.
        hostname = spec.hostname or personas.default_hostname(
            spec.archetype, f"{namespace}/{name}", fallback=name
        )
        return cls(
            name=name,
            namespace=namespace,
            hostname=str(hostname),
            archetype=spec.archetype,
            services=tuple(spec.services or ()),
            service_config=dict(spec.service_config or {}),
            networks=tuple(spec.networks),
            node_name=spec.node_name or None,
            forwards_l3=spec.forwards_l3,
            mutation_pool=tuple(mutation.pool or ()),
            files=tuple(spec.files or ()),
            topology_label=labels.get(names.LABEL_TOPOLOGY) or None,
            deleting=bool(meta.get("deletionTimestamp")),
            node_loss_policy=node_loss.policy,
            node_loss_grace_seconds=node_loss.grace_seconds,
            mutation=spec.mutation,
        )


@dataclasses.dataclass(frozen=True)
class Topology:
    name: str
    namespace: str
    node_name: str | None
    subnet_pool: str
    status_node: str | None = None

    @property
    def node(self) -> str | None:
        """The pinned node, else the one the operator chose."""
        return self.node_name or self.status_node

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Topology:
        meta = _meta(obj)
        spec = v1alpha1.TopologySpec.model_validate(_spec(obj))
        return cls(
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            node_name=spec.node_name or None,
            subnet_pool=spec.subnet_pool,
            status_node=(obj.get("status") or {}).get("node") or None,
        )


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    image: str
    ports: tuple[v1alpha1.PortSpec, ...] = ()
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    config_schema: Mapping[str, Any] | None = None
    fleet_singleton: bool = False
    security: v1alpha1.SecuritySpec | None = None

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Template:
        spec = v1alpha1.ServiceTemplateSpec.model_validate(_spec(obj))
        return cls(
            name=str(_meta(obj).get("name", "")),
            image=spec.image,
            ports=tuple(spec.ports),
            command=tuple(spec.command),
            env=dict(spec.env),
            config_schema=spec.config_schema or None,
            fleet_singleton=spec.fleet_singleton,
            security=spec.security,
        )
