"""Decky: one decoy host, a base container plus one container per service.

Spec belongs to the user (and Git); everything the operator or the agent decides lives
in status, with disjoint field ownership (see docs/internals.md).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from decnet.api.v1alpha1 import common
from decnet.api.v1alpha1.archetypes import ARCHETYPES
from decnet.api.v1alpha1.common import (
    AgentState,
    Condition,
    DnsLabel,
    FileSource,
    IPv4,
    Model,
    MutationTrigger,
    Operation,
    Phase,
)
from decnet.api.v1alpha1.servicetemplate import PortSpec, SecuritySpec

MAX_SERVICES = 32
MAX_NETWORKS = 16
MAX_FILES = 64
PATH_MAX = 1024
# 1 MiB of file content, base64 encoded.
INLINE_MAX = 1_398_104
MODE_MAX = 0o7777
DEFAULT_QUIET_SECONDS = 300
HOSTNAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$"

Archetype = Literal[tuple(sorted(ARCHETYPES))]  # type: ignore[valid-type]


class NetworkAttachment(Model):
    """One LAN the decky is attached to; the first entry is its home LAN."""

    lan: DnsLabel = Field(description="Name of a LAN in the decky's namespace.")
    ip: IPv4 | None = Field(
        default=None,
        description="IPv4 address on that LAN; allocated from the LAN's subnet when absent.",
    )


class MutationPolicy(Model):
    """Automatic mutation: swap the decky's services for others from the pool."""

    interval_minutes: int | None = Field(
        default=None,
        description="Mutate every this many minutes; absent = only on request.",
        ge=1,
        le=525600,
    )
    pool: list[DnsLabel] | None = Field(
        default=None,
        description="Services to pick from; defaults to the archetype's services.",
        min_length=1,
        max_length=MAX_SERVICES,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    quiet_seconds: int | None = Field(
        default=None,
        description=(
            "A scheduled mutation waits until the decky has had no attacker contact for this"
            " many seconds (status.activity.lastContact), so it never cuts a live session;"
            f" absent = {DEFAULT_QUIET_SECONDS}, 0 = never wait, at least 45 (lastContact is"
            " written at most every 30 s). A manual mutation happens at once."
        ),
        ge=0,
        le=86400,
    )


NodeLossAction = Literal["Wait", "Reschedule"]
NODE_LOSS_WAIT: NodeLossAction = "Wait"
NODE_LOSS_RESCHEDULE: NodeLossAction = "Reschedule"
DEFAULT_NODE_LOSS_GRACE_SECONDS = 300


class NodeLossPolicy(Model):
    """What happens to the decky when its node's agent loses its Lease."""

    policy: NodeLossAction = Field(
        default=NODE_LOSS_WAIT,
        description=(
            "Wait (default): the decky stays bound to its node (Ready=Unknown, reason AgentLost)"
            " until the agent returns. Reschedule: after graceSeconds without the agent, the"
            " operator moves it to another live node, keeping its addresses; the old node's"
            " agent removes its containers when it returns. Not allowed with spec.nodeName."
        ),
    )
    grace_seconds: int = Field(
        default=DEFAULT_NODE_LOSS_GRACE_SECONDS,
        description=(
            "How long after the Lease expired the operator waits before rescheduling"
            f" (default {DEFAULT_NODE_LOSS_GRACE_SECONDS}); short outages such as an agent"
            " upgrade should not move decoys."
        ),
        ge=0,
        le=86400,
    )


class KeyRef(Model):
    """A key of a Secret or ConfigMap in the decky's namespace."""

    name: common.DnsSubdomain = Field(description="Name of the object.")
    key: common.ObjectKey = Field(description="Key inside the object.")


class FileContent(Model):
    """Where a file's bytes come from: exactly one of inline, secretKeyRef, configMapKeyRef."""

    model_config = ConfigDict(
        json_schema_extra=common.validations(
            common.cel(
                "(has(self.inline) ? 1 : 0) + (has(self.secretKeyRef) ? 1 : 0)"
                " + (has(self.configMapKeyRef) ? 1 : 0) == 1",
                "content must set exactly one of inline, secretKeyRef, configMapKeyRef",
            )
        )
    )

    inline: str | None = Field(
        default=None,
        description="The content, base64 encoded (at most 1 MiB decoded).",
        max_length=INLINE_MAX,
        pattern=r"^[A-Za-z0-9+/]*={0,2}$",
    )
    secret_key_ref: KeyRef | None = Field(
        default=None, description="Take the content from a Secret key."
    )
    config_map_key_ref: KeyRef | None = Field(
        default=None, description="Take the content from a ConfigMap key."
    )


class FileSpec(Model):
    """A lure file placed inside the decky."""

    path: str = Field(
        description="Absolute path inside the decky; no '..' segment.",
        min_length=2,
        max_length=PATH_MAX,
        pattern=r"^/[^\x00]*$",
        json_schema_extra=common.validations(
            common.cel(
                "!self.contains('/../') && !self.endsWith('/..')",
                "path must not contain a '..' segment",
            )
        ),
    )
    mode: int = Field(
        default=0o644, description="Permission bits, 0..0o7777 (default 0644).", ge=0, le=MODE_MAX
    )
    mtime_offset_seconds: int = Field(
        default=0,
        description="Age the file: its mtime is now plus this (negative = in the past).",
        ge=-3_153_600_000,
        le=3_153_600_000,
    )
    content: FileContent = Field(description="Where the bytes come from.")


class DeckySpec(Model):
    """The decoy host the user wants."""

    model_config = ConfigDict(
        json_schema_extra=common.validations(
            common.cel(
                "has(self.archetype) || (has(self.services) && size(self.services) > 0)",
                "spec.services must not be empty when spec.archetype is not set",
            ),
            common.cel(
                "!has(self.mutation) || !has(self.mutation.intervalMinutes)"
                " || has(self.archetype) || has(self.mutation.pool)",
                "spec.mutation.pool must not be empty when spec.mutation.intervalMinutes is set"
                " and spec.archetype is not",
            ),
            common.cel(
                "!has(self.nodeName) || !has(self.nodeLoss)"
                " || self.nodeLoss.policy != 'Reschedule'",
                "spec.nodeLoss.policy Reschedule cannot move a decky pinned with spec.nodeName:"
                " remove nodeName or use policy Wait",
            ),
        )
    )

    archetype: Archetype | None = Field(  # type: ignore[valid-type]
        default=None,
        description="A DECNET archetype (e.g. windows-workstation); gives the default services.",
    )
    services: list[DnsLabel] | None = Field(
        default=None,
        description="Services (ServiceTemplate names) to run; defaults to the archetype's.",
        max_length=MAX_SERVICES,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    service_config: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description=(
            "Per-service config, keyed by service name; validated by the operator against"
            " the ServiceTemplate's configSchema."
        ),
        json_schema_extra={
            "maxProperties": MAX_SERVICES,
            **common.validations(
                common.cel(
                    f"self.all(k, k.matches('{common.DNS_LABEL_PATTERN}') && size(k) <= 63)",
                    "spec.serviceConfig keys must be service names (DNS labels)",
                )
            ),
        },
    )
    networks: list[NetworkAttachment] = Field(
        description="LANs to attach to; the first entry is the home LAN.",
        min_length=1,
        max_length=MAX_NETWORKS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["lan"]},
    )
    hostname: str | None = Field(
        default=None,
        description=(
            "Hostname inside the decky; defaults to a name the archetype's machine would have"
            " out of the box (DESKTOP-XXXXXXX for windows-workstation, web07 for web-server),"
            " stable per decky, or to the object name when there is no archetype."
        ),
        max_length=63,
        pattern=HOSTNAME_PATTERN,
    )
    node_name: common.DnsSubdomain | None = Field(
        default=None, description="Pin the decky to this node; otherwise the operator picks one."
    )
    mutation: MutationPolicy | None = Field(default=None, description="Automatic mutation policy.")
    node_loss: NodeLossPolicy | None = Field(
        default=None,
        description="What happens when the decky's node loses its agent; absent = Wait.",
    )
    files: list[FileSpec] | None = Field(
        default=None,
        description="Lure files placed inside the decky.",
        max_length=MAX_FILES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["path"]},
    )
    forwards_l3: bool = Field(
        default=False,
        description=(
            "Gateway decky: forwards traffic between its LANs and publishes its ports;"
            " must be homed in the DMZ. Flipping it recreates the base container."
        ),
    )


class Address(Model):
    """An address the operator allocated to the decky."""

    lan: str = Field(description="LAN name.")
    ip: str = Field(description="IPv4 address on that LAN.")


class LastMutation(Model):
    """The most recent mutation of the decky's service set."""

    trigger: MutationTrigger = Field(description="Manual (annotation) or Scheduled (interval).")
    at: str = Field(
        description="When it happened (RFC 3339).", json_schema_extra={"format": "date-time"}
    )
    from_: list[str] = Field(
        default_factory=list, alias="from", description="Services before the mutation."
    )
    to: list[str] = Field(default_factory=list, description="Services after the mutation.")


class Lifecycle(Model):
    """One operation on the decky; a terminal record is never edited."""

    id: str = Field(description="Operation id (uuid).")
    operation: Operation = Field(description="Deploy, Update, Mutate, Reschedule or Teardown.")
    phase: Phase = Field(description="Pending, Running, Succeeded or Failed.")
    message: str = Field(
        default="", description="Error text when failed (capped).", max_length=common.MESSAGE_MAX
    )
    started_at: str | None = Field(
        default=None,
        description="When it started (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    completed_at: str | None = Field(
        default=None,
        description="When it reached a terminal phase (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )


class PlanEgress(Model):
    """One egress allowance of the LAN, as the agent enforces it."""

    cidr: str = Field(description="Destination network (CIDR).", max_length=18)
    protocol: Literal["tcp", "udp"] = Field(default="tcp", description="tcp or udp.")
    ports: list[int] = Field(
        default_factory=list, description="Destination ports; empty = all.", max_length=16
    )


class PlanNetwork(Model):
    """A LAN as the agent must realise it on its node."""

    lan: str = Field(description="LAN name.")
    network: str = Field(description="Docker network name.")
    ip: str = Field(description="The decky's IPv4 address on it.")
    subnet: str = Field(description="The LAN's subnet (CIDR).")
    gateway: str = Field(description="The LAN's gateway address.")
    dmz: bool = Field(default=False, description="DMZ LANs are not internal (they have egress).")
    driver: Literal["bridge", "macvlan"] = Field(default="bridge", description="Docker driver.")
    parent: str = Field(default="", description="macvlan parent interface.")
    topology: str = Field(
        default="", description="The LAN's topology: its LANs reach each other, nothing else."
    )
    egress: list[PlanEgress] = Field(
        default_factory=list,
        description="The LAN's egress allowance (spec.egress).",
        max_length=32,
    )
    sniffer: bool = Field(
        default=True, description="The agent watches the LAN for scans (spec.sniffer.enabled)."
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="The LAN's labels: EventSink selectors match the LAN's scan events on them.",
    )


class PlanService(Model):
    """A service container as the agent must run it."""

    name: str = Field(description="Service name.")
    image: str = Field(description="Container image.")
    ports: list[PortSpec] = Field(default_factory=list, description="Ports it listens on.")
    command: list[str] = Field(default_factory=list, description="Command; empty = image default.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment (template only).")
    config_hash: str = Field(default="", description="sha256 of spec.serviceConfig[name].")
    security: SecuritySpec | None = Field(
        default=None, description="The template's confinement (absent = the defaults)."
    )


class PlanFile(Model):
    """A file the agent must place; carries a hash, never the content."""

    path: str = Field(description="Absolute path inside the decky.")
    mode: int = Field(default=0o644, description="Permission bits.")
    mtime_offset_seconds: int = Field(default=0, description="mtime offset from now.")
    source: FileSource = Field(description="Where the bytes are: inline, secret or configMap.")
    name: str = Field(default="", description="Secret/ConfigMap name.")
    key: str = Field(default="", description="Secret/ConfigMap key.")
    sha256: str = Field(default="", description="Content hash when inline, else empty.")


def digest(value: Any) -> str:
    """sha256 (first 16 hex) of value's canonical JSON: equal values hash equally on every
    operator replica, agent and restart: the plan's hash, a service config's hash and a
    container's own hash (the agent's base_hash and service_hash)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Plan(Model):
    """Everything the agent needs besides the Decky's spec (operator -> agent)."""

    hash: str = Field(description="sha256 (first 16 hex) of the canonical plan; = planHash.")
    hostname: str = Field(description="Hostname of the decky.")
    forwards_l3: bool = Field(default=False, description="Gateway decky.")
    base_image: str = Field(description="Image of the base container.")
    networks: list[PlanNetwork] = Field(default_factory=list, description="First = home LAN.")
    services: list[PlanService] = Field(default_factory=list, description="Service containers.")
    files: list[PlanFile] = Field(default_factory=list, description="Files to place.")

    def wire(self) -> dict[str, Any]:
        """status.plan: the fields that were set, camelCase. A field left unset (a LAN's
        topology, egress, sniffer opt-out and labels; a service's security) stays off the
        wire, so adding such a field never changed the hash of the plans without it."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")

    def digest(self) -> str:
        """The hash of the plan's canonical wire form without its own hash field."""
        return digest({k: v for k, v in self.wire().items() if k != "hash"})

    def sealed(self) -> Plan:
        """This plan with `hash` set to its digest."""
        return self.model_copy(update={"hash": self.digest()})


class AgentReport(Model):
    """What the agent observed on its node (agent -> operator)."""

    node: str = Field(description="The agent's node.")
    plan_hash: str = Field(description="The plan hash this report is about.")
    state: AgentState = Field(
        description="Converged, Failed, Refused (needs allow-recreate) or Removed."
    )
    message: str = Field(
        default="",
        description="Docker's error text, or why the change was refused (capped).",
        max_length=common.MESSAGE_MAX,
    )
    reason: common.AgentReason = Field(
        default="",
        description="For state Failed, what the agent found: ServiceExited or BaseExited "
        "(a container did not stay up; the message names it and its exit code) or "
        "FirewallFailed (the egress rules of its LANs are not in place). Empty otherwise.",
    )
    lifecycle_id: str = Field(default="", description="status.lifecycle.id the agent worked on.")


class ContainerStatus(Model):
    """One Docker container of the decky, as the agent sees it."""

    name: str = Field(description="Docker container name.")
    id: str = Field(default="", description="Docker container id.")
    role: Literal["base", "service"] = Field(description="base or service.")
    service: str = Field(default="", description="Service name for role=service.")
    state: str = Field(default="", description="Docker's state (running, exited, ...).")
    plan_hash: str = Field(default="", description="Plan hash label of the container.")


class Activity(Model):
    """Attacker contact with the decky, as its node agent collected it (agent-owned).

    Written at most once per decky per 30 s and only after contact: an idle decky
    never causes a write.
    """

    last_contact: str | None = Field(
        default=None,
        description="When an attacker event was last seen (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    contacts: int = Field(default=0, description="Attacker events seen since the agent started.")
    last_source: str | None = Field(
        default=None, description="Source IP of the latest event.", max_length=64
    )
    last_service: str | None = Field(
        default=None, description="Service of the latest event.", max_length=63
    )


class DeckyStatus(Model):
    """Observed state: operator fields plus the agent's report (docs/internals.md)."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation last processed by the operator.", ge=0
    )
    node: str | None = Field(default=None, description="Node the decky is scheduled to.")
    addresses: list[Address] | None = Field(
        default=None, description="Allocated addresses, home LAN first.", max_length=MAX_NETWORKS
    )
    services: list[str] | None = Field(
        default=None, description="The active service set (after mutations).", max_length=64
    )
    services_summary: str | None = Field(
        default=None,
        description="status.services joined with commas (the SERVICES column of kubectl get).",
        max_length=2048,
    )
    last_mutation: LastMutation | None = Field(default=None, description="Most recent mutation.")
    mutation_request: str | None = Field(
        default=None, description="Last decnet.io/mutate-request value handled."
    )
    plan_hash: str | None = Field(default=None, description="Hash of status.plan.")
    plan: Plan | None = Field(default=None, description="What the agent must realise.")
    lifecycle: Lifecycle | None = Field(default=None, description="Current or last operation.")
    history: list[Lifecycle] | None = Field(
        default=None, description="The last few finished operations, newest last.", max_length=20
    )
    conditions: list[Condition] = common.conditions_field()
    containers: list[ContainerStatus] | None = Field(
        default=None, description="Containers the agent observed (agent-owned).", max_length=128
    )
    agent: AgentReport | None = Field(default=None, description="The agent's report.")
    activity: Activity | None = Field(
        default=None,
        description="Attacker contact (agent-owned, field manager decnet-agent-events).",
    )


class Decky(Model):
    """A decoy host: base container plus one container per service on one node."""

    crd: ClassVar[common.CrdInfo] = common.CrdInfo(
        kind="Decky",
        plural="deckies",
        singular="decky",
        short_names=("dk",),
        categories=common.USER_CATEGORIES,
        printer_columns=(
            common.PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="Containers match the plan.",
            ),
            common.PrinterColumn("Node", ".status.node", description="Node it runs on."),
            common.PrinterColumn("IP", ".status.addresses[0].ip", description="Home LAN address."),
            common.PrinterColumn(
                "Services", ".status.servicesSummary", description="Active services."
            ),
            common.PrinterColumn(
                "Reason",
                '.status.conditions[?(@.type=="Ready")].reason',
                description="Why it is (not) ready.",
            ),
            common.PrinterColumn(
                "Last-Contact",
                ".status.activity.lastContact",
                "date",
                description="When an attacker last touched the decky.",
            ),
            common.PrinterColumn(
                "Phase",
                ".status.lifecycle.phase",
                description="Phase of the current operation.",
                priority=1,
            ),
            common.AGE_COLUMN,
        ),
        root_validations=(common.NAME_IS_DNS_LABEL,),
    )

    api_version: Literal["decnet.io/v1alpha1"] = Field(default=common.API_VERSION)
    kind: Literal["Decky"] = Field(default="Decky")
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: DeckySpec = Field(description="The decoy host the user wants.")
    status: DeckyStatus | None = Field(
        default=None, description="Observed state, written by the operator and the agent."
    )
