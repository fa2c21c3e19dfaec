"""Topology: a maze of LANs and deckies pinned to one node, validated as a graph.

Its status is where a user learns why the maze does not hold together (DMZ missing,
addresses colliding, ...): one ValidationIssue per problem, with a stable code.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from decnet.api.v1alpha1 import common
from decnet.api.v1alpha1.common import CIDR, Condition, Model

DMZ_MISSING = "DMZ_MISSING"
DMZ_MULTIPLE = "DMZ_MULTIPLE"
DMZ_ORPHAN = "DMZ_ORPHAN"
DECKY_ORPHAN = "DECKY_ORPHAN"
NAME_DUPLICATE = "NAME_DUPLICATE"
IP_COLLISION = "IP_COLLISION"
IP_OUT_OF_SUBNET = "IP_OUT_OF_SUBNET"
IP_UNKNOWN_LAN = "IP_UNKNOWN_LAN"
SUBNET_OVERLAP = "SUBNET_OVERLAP"
UNKNOWN_SERVICE = "UNKNOWN_SERVICE"
SERVICE_CONFIG_INVALID = "SERVICE_CONFIG_INVALID"
GATEWAY_NOT_IN_DMZ = "GATEWAY_NOT_IN_DMZ"
ISSUE_CODES = (
    DMZ_MISSING,
    DMZ_MULTIPLE,
    DMZ_ORPHAN,
    DECKY_ORPHAN,
    NAME_DUPLICATE,
    IP_COLLISION,
    IP_OUT_OF_SUBNET,
    IP_UNKNOWN_LAN,
    SUBNET_OVERLAP,
    UNKNOWN_SERVICE,
    SERVICE_CONFIG_INVALID,
    GATEWAY_NOT_IN_DMZ,
)
DEFAULT_SUBNET_POOL = "172.16.0.0/12"


class ValidationIssue(Model):
    """One problem found in the topology graph."""

    code: str = Field(description="Stable code, e.g. DMZ_MISSING or IP_COLLISION.")
    severity: common.Severity = Field(description="Error or Warning.")
    message: str = Field(description="What is wrong, for humans.", max_length=2000)
    object: str = Field(default="", description="The offending object, e.g. Decky/ws-01.")


class TopologySpec(Model):
    """The maze the user wants."""

    node_name: common.DnsSubdomain | None = Field(
        default=None, description="Node every LAN and decky of the maze runs on; else picked."
    )
    subnet_pool: CIDR = Field(
        default=DEFAULT_SUBNET_POOL,
        description="Pool the maze's LANs get a free /24 from when they set no subnet.",
        json_schema_extra=common.validations(
            common.cel(
                "isCIDR(self) && cidr(self).prefixLength() <= 24",
                "spec.subnetPool must be a CIDR of prefix length 24 or shorter",
            ),
        ),
    )


class TopologyStatus(Model):
    """Observed state, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation last processed by the operator.", ge=0
    )
    conditions: list[Condition] = common.conditions_field()
    valid: bool | None = Field(default=None, description="The graph passed validation.")
    issues: list[ValidationIssue] | None = Field(
        default=None, description="Validation problems; empty when valid.", max_length=500
    )
    lans: int | None = Field(default=None, description="LANs in the topology.", ge=0)
    deckies: int | None = Field(default=None, description="Deckies in the topology.", ge=0)
    node: str | None = Field(default=None, description="Node the topology runs on.")


class Topology(Model):
    """A maze of LANs and deckies on one node."""

    crd: ClassVar[common.CrdInfo] = common.CrdInfo(
        kind="Topology",
        plural="topologies",
        singular="topology",
        short_names=("topo",),
        categories=common.USER_CATEGORIES,
        printer_columns=(
            common.PrinterColumn("Node", ".status.node", description="Node it runs on."),
            common.PrinterColumn("Valid", ".status.valid", "boolean", description="Graph valid."),
            common.PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="Every member is ready.",
            ),
            common.AGE_COLUMN,
        ),
        root_validations=(common.NAME_IS_DNS_LABEL,),
    )

    api_version: Literal["decnet.io/v1alpha1"] = Field(default=common.API_VERSION)
    kind: Literal["Topology"] = Field(default="Topology")
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: TopologySpec = Field(default_factory=TopologySpec, description="The maze.")
    status: TopologyStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
