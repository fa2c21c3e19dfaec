"""Read-only views of the objects the planners need, built from raw dicts.

Handlers receive plain dicts from kopf and indexes; the planners need a few
fields of them with defaults applied. These small frozen views keep the
planners independent of how a watch event is shaped, and hashable for
indexes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from decnet.api import v1alpha1
from decnet.api.v1alpha1 import personas


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


@dataclasses.dataclass(frozen=True)
class Lan:
    name: str
    namespace: str
    subnet: str | None
    dmz: bool = False
    driver: str = "bridge"
    parent: str = ""
    topology: str | None = None
    status_subnet: str | None = None
    egress: tuple[Mapping[str, Any], ...] = dataclasses.field(default=(), hash=False)
    sniffer: bool = True
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def effective_subnet(self) -> str | None:
        """The pinned subnet, else the one the operator allocated."""
        return self.subnet or self.status_subnet

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Lan:
        spec = _spec(obj)
        status = obj.get("status") or {}
        return cls(
            name=str(_meta(obj).get("name", "")),
            namespace=str(_meta(obj).get("namespace", "")),
            subnet=spec.get("subnet") or None,
            dmz=bool(spec.get("dmz", False)),
            driver=str(spec.get("driver") or "bridge"),
            parent=str(spec.get("parent") or ""),
            topology=spec.get("topology") or None,
            status_subnet=status.get("subnet") or None,
            egress=tuple(dict(e) for e in spec.get("egress") or ()),
            sniffer=(spec.get("sniffer") or {}).get("enabled", True) is not False,
            labels=tuple(sorted((_meta(obj).get("labels") or {}).items())),
        )


@dataclasses.dataclass(frozen=True)
class Network:
    lan: str
    ip: str | None = None


@dataclasses.dataclass(frozen=True)
class Decky:
    name: str
    namespace: str
    hostname: str
    archetype: str | None
    services: tuple[str, ...]
    service_config: Mapping[str, Any]
    networks: tuple[Network, ...]
    node_name: str | None
    forwards_l3: bool
    mutation_pool: tuple[str, ...]
    mutation_interval: int | None
    files: tuple[Mapping[str, Any], ...]
    topology_label: str | None
    deleting: bool = False
    node_loss_policy: str = v1alpha1.NODE_LOSS_WAIT
    node_loss_grace_seconds: int = v1alpha1.DEFAULT_NODE_LOSS_GRACE_SECONDS

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
        spec = _spec(obj)
        mutation = spec.get("mutation") or {}
        node_loss = spec.get("nodeLoss") or {}
        name = str(meta.get("name", ""))
        namespace = str(meta.get("namespace", ""))
        labels = meta.get("labels") or {}
        archetype = spec.get("archetype") or None
        # Without spec.hostname, the name the archetype's machine would have out of the box.
        hostname = spec.get("hostname") or personas.default_hostname(
            archetype, f"{namespace}/{name}", fallback=name
        )
        return cls(
            name=name,
            namespace=namespace,
            hostname=str(hostname),
            archetype=archetype,
            services=tuple(spec.get("services") or ()),
            service_config=dict(spec.get("serviceConfig") or {}),
            networks=tuple(
                Network(lan=str(n.get("lan", "")), ip=n.get("ip") or None)
                for n in spec.get("networks") or ()
            ),
            node_name=spec.get("nodeName") or None,
            forwards_l3=bool(spec.get("forwardsL3", False)),
            mutation_pool=tuple(mutation.get("pool") or ()),
            mutation_interval=mutation.get("intervalMinutes"),
            files=tuple(spec.get("files") or ()),
            topology_label=labels.get("decnet.io/topology") or None,
            deleting=bool(meta.get("deletionTimestamp")),
            node_loss_policy=str(node_loss.get("policy") or v1alpha1.NODE_LOSS_WAIT),
            node_loss_grace_seconds=int(
                node_loss.get("graceSeconds", v1alpha1.DEFAULT_NODE_LOSS_GRACE_SECONDS)
            ),
        )


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    image: str
    ports: tuple[Mapping[str, Any], ...] = ()
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    config_schema: Mapping[str, Any] | None = None
    fleet_singleton: bool = False
    security: Mapping[str, Any] | None = None

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Template:
        spec = _spec(obj)
        return cls(
            name=str(_meta(obj).get("name", "")),
            image=str(spec.get("image") or ""),
            ports=tuple(
                {"port": int(p.get("port", 0)), "protocol": str(p.get("protocol") or "tcp")}
                for p in spec.get("ports") or ()
            ),
            command=tuple(str(c) for c in spec.get("command") or ()),
            env={str(k): str(v) for k, v in (spec.get("env") or {}).items()},
            config_schema=spec.get("configSchema") or None,
            fleet_singleton=bool(spec.get("fleetSingleton", False)),
            security=dict(spec["security"]) if spec.get("security") else None,
        )
