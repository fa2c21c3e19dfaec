"""Shared building blocks of the v1alpha1 types.

The pydantic models are the single source of truth for the CRDs: `decnet.api.crdgen`
turns them into OpenAPI schemas, so every `Field(description=...)` is `kubectl explain`
text and every `json_schema_extra` carries Kubernetes-only keywords (CEL rules, list
types) into the generated schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

GROUP = "decnet.io"
VERSION = "v1alpha1"
API_VERSION: Final = "decnet.io/v1alpha1"

# Condition types (kstatus convention: `kubectl wait` and Argo CD understand them).
CONDITION_READY = "Ready"
CONDITION_SCHEDULED = "Scheduled"
CONDITION_RECONCILING = "Reconciling"
CONDITION_STALLED = "Stalled"
CONDITION_TYPES = (CONDITION_READY, CONDITION_SCHEDULED, CONDITION_RECONCILING, CONDITION_STALLED)
# metav1.Condition's own rule for a reason: one CamelCase word (`,` `:` `_` allowed inside).
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)


class Word(StrEnum):
    """A contract word: CamelCase on the wire, like Kubernetes' own enums (Pod phases).

    Parsing accepts any case, so a value written before v1alpha1 went CamelCase
    (`pending`, `converged`) still reads back as its member for one release.
    """

    @classmethod
    def _missing_(cls, value: object) -> Word | None:
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.lower():
                    return member
        return None


class Operation(Word):
    """A lifecycle operation on a decky (one status.lifecycle record each)."""

    DEPLOY = "Deploy"
    UPDATE = "Update"
    MUTATE = "Mutate"
    RESCHEDULE = "Reschedule"
    TEARDOWN = "Teardown"


class Phase(Word):
    """A lifecycle record's phase: Pending -> Running -> Succeeded | Failed."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


OPEN_PHASES = (Phase.PENDING, Phase.RUNNING)
TERMINAL_PHASES = (Phase.SUCCEEDED, Phase.FAILED)


class AgentState(Word):
    """What the node agent reports about the plan it worked on (status.agent.state)."""

    CONVERGED = "Converged"
    FAILED = "Failed"
    REFUSED = "Refused"  # the change needs the base recreated: allow-recreate opts in
    REMOVED = "Removed"  # teardown done: no container of the decky is left on the node


class MutationTrigger(Word):
    """Why the service set changed (status.lastMutation.trigger)."""

    MANUAL = "Manual"  # the decnet.io/mutate-request annotation
    SCHEDULED = "Scheduled"  # spec.mutation.intervalMinutes


class Severity(Word):
    """How bad a Topology validation issue is."""

    ERROR = "Error"
    WARNING = "Warning"


class FileSource(Word):
    """Where a planned file's bytes come from (status.plan.files[].source).

    Lowercase on purpose: the values are hashed into every plan with files, and a new
    plan hash makes every agent re-converge every such running decky on upgrade.
    """

    INLINE = "inline"
    SECRET = "secret"
    CONFIG_MAP = "configMap"


# Why an agent report is "failed" when the agent knows better than "Docker said no";
# the operator uses it as the Ready/Stalled reason (AgentFailed when empty).
AGENT_REASON_SERVICE_EXITED = "ServiceExited"
AGENT_REASON_BASE_EXITED = "BaseExited"
AGENT_REASON_FIREWALL_FAILED = "FirewallFailed"
AGENT_REASONS = (
    AGENT_REASON_SERVICE_EXITED,
    AGENT_REASON_BASE_EXITED,
    AGENT_REASON_FIREWALL_FAILED,
)

# Lifecycle and agent messages carry Docker's error text; DECNET caps it at 2,000 chars.
MESSAGE_MAX = 2000

AgentReason = Literal["", "ServiceExited", "BaseExited", "FirewallFailed"]
ConditionStatus = Literal["True", "False", "Unknown"]

# Patterns shared by several kinds. The API server uses Go's RE2: no look-arounds.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN_MAX = 253
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"^({_OCTET}\.){{3}}{_OCTET}$"
CIDR_PATTERN = rf"^({_OCTET}\.){{3}}{_OCTET}/(3[0-2]|[12]?[0-9])$"
IP_OR_CIDR_PATTERN = rf"^({_OCTET}\.){{3}}{_OCTET}(/(3[0-2]|[12]?[0-9]))?$"
DATE_TIME = "date-time"

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=DNS_LABEL_MAX)]
DnsSubdomain = Annotated[
    str, StringConstraints(pattern=DNS_SUBDOMAIN_PATTERN, max_length=DNS_SUBDOMAIN_MAX)
]
# A key inside a Secret or ConfigMap (the API server's own rule for data keys).
ObjectKey = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
]
IPv4 = Annotated[str, StringConstraints(pattern=IPV4_PATTERN, max_length=15)]
CIDR = Annotated[str, StringConstraints(pattern=CIDR_PATTERN, max_length=18)]
IpOrCidr = Annotated[str, StringConstraints(pattern=IP_OR_CIDR_PATTERN, max_length=18)]


def cel(rule: str, message: str, **extra: Any) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry; every rule names its field in its message."""
    return {"rule": rule, "message": message, **extra}


def validations(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class Model(BaseModel):
    """Base of every wire type: camelCase on the wire, snake_case in Python.

    Unknown keys are ignored so that an object read back from the API server (which
    prunes unknown fields anyway) never fails to parse in the operator or the agent.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=True,
    )


class Condition(Model):
    """A metav1.Condition: the kstatus summary of one aspect of the object."""

    type: str = Field(
        description="Condition type: Ready, Scheduled, Reconciling or Stalled.",
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
    )
    status: ConditionStatus = Field(description='"True", "False" or "Unknown".')
    reason: str = Field(
        description="One-word CamelCase reason for the condition's last transition.",
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
    )
    message: str = Field(
        description="Human-readable details of the last transition (never secret).",
        max_length=32768,
    )
    observed_generation: int | None = Field(
        default=None,
        description="metadata.generation the condition was computed from.",
        ge=0,
    )
    last_transition_time: str = Field(
        description="When the condition last changed status (RFC 3339).",
        json_schema_extra={"format": DATE_TIME},
    )


def conditions_field() -> Any:
    """`conditions` as a map list keyed by type, so two SSA field managers can share it."""
    return Field(
        default_factory=list,
        description="Current state: Ready, Scheduled, Reconciling and Stalled (kstatus).",
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry of `kubectl get`."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class CrdInfo:
    """How a top-level model becomes a CustomResourceDefinition."""

    kind: str
    plural: str
    singular: str
    scope: Literal["Namespaced", "Cluster"] = "Namespaced"
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    status_subresource: bool = True
    # CEL rules on the whole object (only metadata.name/generateName are visible in metadata).
    root_validations: tuple[dict[str, Any], ...] = field(default_factory=tuple)


AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
USER_CATEGORIES = ("decnet",)

def cap_message(message: str, limit: int = MESSAGE_MAX) -> str:
    """A lifecycle, agent or status message cut to what its field holds (Docker's error
    text can be long); a cut message ends in an ellipsis."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


NAME_IS_DNS_LABEL = cel(
    f"self.metadata.name.matches('{DNS_LABEL_PATTERN}') && size(self.metadata.name) <= 63",
    "metadata.name must be a DNS label: lowercase letters, digits and '-', at most 63 characters",
)
