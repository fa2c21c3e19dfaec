"""LAN: one Docker network per (namespace, LAN) on the node its deckies run on.

`subnet` and `dmz` are immutable once set: deckies' addresses and the DMZ's egress were
planned against them. CEL transition rules enforce that in the API server itself.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from decnet.api.v1alpha1 import common
from decnet.api.v1alpha1.common import CIDR, Condition, DnsLabel, Model

Port = Annotated[int, Field(ge=1, le=65535)]
IFACE_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"


class EgressRule(Model):
    """One destination the LAN's deckies may open connections to beyond their topology."""

    cidr: CIDR = Field(
        description=(
            "Destination network (CIDR). Node, cluster/pod/service and link-local addresses"
            " stay denied even when listed here."
        ),
        json_schema_extra=common.validations(
            common.cel(
                "isCIDR(self) && cidr(self) == cidr(self).masked()",
                "cidr must be a network address (no host bits set), e.g. 198.51.100.0/24",
            ),
        ),
    )
    protocol: Literal["tcp", "udp"] = Field(default="tcp", description="tcp or udp.")
    ports: list[Port] = Field(
        default_factory=list,
        description="Destination ports; empty = every port of the protocol.",
        max_length=16,
    )
    description: str = Field(
        description="Why this egress is allowed (for the security review).",
        min_length=1,
        max_length=256,
    )


class SnifferSpec(Model):
    """Passive scan detection on the LAN (docs/events.md, "Scan events")."""

    enabled: bool = Field(
        default=True,
        description=(
            "The node agent watches the LAN's bridge and reports scans: ARP requests and"
            " TCP SYN/UDP/ICMP echo towards addresses no decky holds, and port sweeps of"
            " deckies, as `sniffer`/`scan` events to the EventSinks. false: not watched."
            " Bridge LANs only; the agent's own switch (agent.sniffer.enabled) overrides."
        ),
    )


class LANSpec(Model):
    """The network the user wants."""

    model_config = ConfigDict(
        json_schema_extra=common.validations(
            common.cel(
                "!has(self.driver) || self.driver != 'macvlan' || has(self.parent)",
                "spec.parent is required when spec.driver is macvlan",
            ),
            common.cel(
                "(has(self.driver) && self.driver == 'macvlan') || !has(self.parent)",
                "spec.parent is only allowed when spec.driver is macvlan",
            ),
            common.cel(
                "!has(self.egress) || size(self.egress) == 0 || (has(self.dmz) && self.dmz"
                " && (!has(self.driver) || self.driver == 'bridge'))",
                "spec.egress needs a DMZ bridge LAN (dmz: true, driver: bridge);"
                " other LANs are internal",
            ),
            common.cel(
                "!has(oldSelf.subnet) || (has(self.subnet) && self.subnet == oldSelf.subnet)",
                "spec.subnet is immutable once set",
                fieldPath=".subnet",
                reason="FieldValueForbidden",
            ),
            common.cel(
                "!has(oldSelf.dmz) || (has(self.dmz) && self.dmz == oldSelf.dmz)",
                "spec.dmz is immutable once set",
                fieldPath=".dmz",
                reason="FieldValueForbidden",
            ),
        )
    )

    subnet: CIDR | None = Field(
        default=None,
        description=(
            "IPv4 subnet (CIDR) of the LAN; a free /24 from the pool when absent."
            " Immutable once set."
        ),
        json_schema_extra=common.validations(
            common.cel(
                "isCIDR(self) && cidr(self) == cidr(self).masked()",
                "spec.subnet must be a network address (no host bits set), e.g. 10.20.0.0/24",
            ),
        ),
    )
    dmz: bool = Field(
        default=False,
        description=(
            "The DMZ LAN has egress and hosts gateway deckies; other LANs are internal."
            " Immutable once set."
        ),
    )
    driver: Literal["bridge", "macvlan"] = Field(
        default="bridge", description="Docker network driver: bridge, or macvlan with a parent."
    )
    parent: str | None = Field(
        default=None,
        description="Parent interface of a macvlan LAN (required for macvlan only).",
        max_length=15,
        pattern=IFACE_PATTERN,
    )
    topology: DnsLabel | None = Field(
        default=None, description="Topology (in the same namespace) this LAN belongs to."
    )
    egress: list[EgressRule] = Field(
        default_factory=list,
        description=(
            "What the LAN's deckies may reach outside their topology. Empty (the default):"
            " nothing - the node's firewall rejects every other destination. Only for"
            " bridge LANs: a macvlan LAN's traffic never crosses the node's firewall."
        ),
        max_length=32,
    )
    sniffer: SnifferSpec = Field(
        default_factory=SnifferSpec,
        description="Passive scan detection on the LAN; on unless enabled is false.",
    )


class LANStatus(Model):
    """Observed state, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation last processed by the operator.", ge=0
    )
    conditions: list[Condition] = common.conditions_field()
    subnet: str | None = Field(default=None, description="Allocated subnet (CIDR).")
    gateway: str | None = Field(default=None, description="Gateway address of the subnet.")
    deckies: int | None = Field(default=None, description="Deckies attached to this LAN.", ge=0)
    topology: str | None = Field(default=None, description="Topology the LAN belongs to.")


class LAN(Model):
    """A network deckies attach to."""

    crd: ClassVar[common.CrdInfo] = common.CrdInfo(
        kind="LAN",
        plural="lans",
        singular="lan",
        categories=common.USER_CATEGORIES,
        printer_columns=(
            common.PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="The subnet is allocated and the LAN is usable.",
            ),
            common.PrinterColumn("Subnet", ".status.subnet", description="Allocated subnet."),
            common.PrinterColumn("DMZ", ".spec.dmz", "boolean", description="DMZ LAN."),
            common.PrinterColumn(
                "Deckies", ".status.deckies", "integer", description="Attached deckies."
            ),
            common.AGE_COLUMN,
        ),
        root_validations=(common.NAME_IS_DNS_LABEL,),
    )

    api_version: Literal["decnet.io/v1alpha1"] = Field(default=common.API_VERSION)
    kind: Literal["LAN"] = Field(default="LAN")
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: LANSpec = Field(default_factory=LANSpec, description="The network the user wants.")
    status: LANStatus | None = Field(
        default=None, description="Observed state, written by the operator."
    )
