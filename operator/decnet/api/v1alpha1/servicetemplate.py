"""ServiceTemplate: the cluster-wide service registry.

A decky names services; the operator looks each name up here to learn the image,
ports and config schema. The chart installs the built-in templates; users add theirs.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints

from decnet.api.v1alpha1 import common
from decnet.api.v1alpha1.common import Condition, Model


class PortSpec(Model):
    """A port a service listens on inside the decky."""

    port: int = Field(description="Port number, 1..65535.", ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = Field(default="tcp", description="tcp or udp.")


class BuildSpec(Model):
    """Where to build the service image from when it is not present on the node."""

    context: str = Field(
        description="Build context: a directory on the operator's image or a URL.",
        min_length=1,
        max_length=1024,
    )
    dockerfile: str = Field(
        default="Dockerfile",
        description="Dockerfile path relative to the context.",
        min_length=1,
        max_length=1024,
    )


# Docker's default capability set: a template may add back what its service needs from
# these, never more (no SYS_ADMIN, NET_ADMIN, SYS_PTRACE...).
Capability = Literal[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
]
ABS_PATH_PATTERN = r"^/[A-Za-z0-9._/-]*$"
AbsPath = Annotated[str, StringConstraints(pattern=ABS_PATH_PATTERN, max_length=256)]


class SecuritySpec(Model):
    """How a service container is confined; every field has a safe default."""

    capabilities: list[Capability] = Field(
        default_factory=list,
        description=(
            "Capabilities added back after dropping ALL (from Docker's default set only)."
            " Ports below 1024 need none: the decky's namespace allows unprivileged binds."
        ),
        max_length=14,
    )
    read_only_root_filesystem: bool = Field(
        default=True,
        description="Read-only root filesystem; /tmp, /run, /var/tmp and `tmpfs` are writable.",
    )
    tmpfs: list[AbsPath] = Field(
        default_factory=list,
        description="Further writable tmpfs paths (64 MiB, noexec) beside /tmp, /run, /var/tmp.",
        max_length=16,
    )
    pids_limit: int = Field(
        default=256, description="Most processes/threads the container may hold.", ge=8, le=4096
    )
    memory_mi_b: int = Field(
        default=256,
        alias="memoryMiB",
        description="Memory limit in MiB (no swap beyond it).",
        ge=16,
        le=16384,
    )
    cpu_millicores: int = Field(
        default=500, description="CPU limit in millicores (1000 = one core).", ge=50, le=8000
    )
    runtime: str | None = Field(
        default=None,
        description="OCI runtime configured in dockerd, e.g. runsc (gVisor); default runc.",
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
    )


class ServiceTemplateSpec(Model):
    """What a service is: image, ports, command, environment and config schema."""

    model_config = ConfigDict(
        json_schema_extra=common.validations(
            common.cel(
                "!has(self.ports) || self.ports.all(p, self.ports.exists_one(q,"
                " q.port == p.port && q.protocol == p.protocol))",
                "spec.ports must not list the same port and protocol twice",
            )
        )
    )

    image: str = Field(
        description="Container image of the service, e.g. decnet/ssh:0.1.0.",
        min_length=1,
        max_length=512,
    )
    ports: list[PortSpec] = Field(
        default_factory=list,
        description="Ports the service listens on (published only by gateway deckies).",
        max_length=64,
    )
    command: list[str] = Field(
        default_factory=list,
        description="Command overriding the image's default; empty keeps the default.",
        max_length=64,
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables of the service container (not secret).",
        json_schema_extra={"maxProperties": 64},
    )
    config_schema: dict[str, Any] | None = Field(
        default=None,
        description=(
            "OpenAPI v3 object schema of the per-decky config (spec.serviceConfig.<name>)."
            " The operator validates each decky's config against it."
        ),
    )
    fleet_singleton: bool = Field(
        default=False,
        description="Runs once per node for the whole fleet, never per decky (the sniffer).",
    )
    build: BuildSpec | None = Field(
        default=None, description="Build the image from this context when it is missing."
    )
    description: str | None = Field(
        default=None, description="What the service emulates.", max_length=1024
    )
    security: SecuritySpec | None = Field(
        default=None,
        description=(
            "Confinement of the service container; absent = the defaults (no capabilities,"
            " read-only root, 256 processes, 256 MiB, half a core)."
        ),
    )


class ServiceTemplateStatus(Model):
    """What the operator observed about the template."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation last processed by the operator.", ge=0
    )
    conditions: list[Condition] = common.conditions_field()


class ServiceTemplate(Model):
    """A service decoy deckies can run (cluster-scoped)."""

    crd: ClassVar[common.CrdInfo] = common.CrdInfo(
        kind="ServiceTemplate",
        plural="servicetemplates",
        singular="servicetemplate",
        scope="Cluster",
        short_names=("st",),
        categories=common.USER_CATEGORIES,
        printer_columns=(
            common.PrinterColumn("Image", ".spec.image", description="Container image."),
            common.PrinterColumn(
                "Singleton",
                ".spec.fleetSingleton",
                "boolean",
                description="Runs once per node rather than per decky.",
            ),
            common.AGE_COLUMN,
        ),
        root_validations=(common.NAME_IS_DNS_LABEL,),
    )

    api_version: Literal["decnet.io/v1alpha1"] = Field(default=common.API_VERSION)
    kind: Literal["ServiceTemplate"] = Field(default="ServiceTemplate")
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ServiceTemplateSpec = Field(description="The service definition.")
    status: ServiceTemplateStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
