"""EventSink: where a node's attacker events go (syslog RFC 5424/5425 or an HTTPS webhook).

Cluster-scoped because a security team owns delivery for the whole fleet; the
optional selector narrows it to namespaces and decky labels. Every node agent
delivers its own node's events, so the status is written by several agents: each
owns its entry of `status.nodes` (a list map keyed by node, one SSA field manager
per agent), and the totals are what `kubectl get eventsinks` shows from them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from decnet.api.v1alpha1 import common
from decnet.api.v1alpha1.common import Condition, Model

CONDITION_DEGRADED = "Degraded"
SYSLOG_ADDRESS_PATTERN = r"^(udp|tcp|tls)://[^/\s:]+:[0-9]{1,5}$"
MAX_NODES = 1000


class SecretKeyRef(Model):
    """A key of a Secret (EventSinks are cluster-scoped, so the namespace is explicit)."""

    namespace: common.DnsLabel = Field(description="Namespace of the Secret.")
    name: common.DnsSubdomain = Field(description="Name of the Secret.")
    key: common.ObjectKey = Field(description="Key inside the Secret.")


class SecretRef(Model):
    """A whole Secret: every key is used (e.g. each key an HTTP header)."""

    namespace: common.DnsLabel = Field(description="Namespace of the Secret.")
    name: common.DnsSubdomain = Field(description="Name of the Secret.")


class SyslogTLS(Model):
    """TLS settings of a tls:// syslog sink (RFC 5425)."""

    ca_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="PEM CA bundle that signs the receiver's certificate; system CAs when absent.",
    )
    client_cert_secret_ref: SecretRef | None = Field(
        default=None,
        description="A kubernetes.io/tls Secret (tls.crt, tls.key) for mutual TLS; optional.",
    )
    server_name: str | None = Field(
        default=None,
        description="Name to verify in the receiver's certificate; defaults to the host.",
        max_length=253,
    )


class SyslogSink(Model):
    """RFC 5424 messages over UDP, TCP (RFC 6587 octet counting) or TLS (RFC 5425)."""

    address: str = Field(
        description="udp://host:port, tcp://host:port or tls://host:port.",
        max_length=300,
        pattern=SYSLOG_ADDRESS_PATTERN,
    )
    tls: SyslogTLS | None = Field(default=None, description="TLS settings for tls://.")


class WebhookSink(Model):
    """HTTPS POST of JSON batches ({"events": [...]}), retried with backoff."""

    url: str = Field(
        description="https:// URL (http:// only for loopback receivers in tests).",
        max_length=2048,
        pattern=r"^https?://\S+$",
    )
    headers_secret_ref: SecretRef | None = Field(
        default=None,
        description="A Secret whose keys are header names and values header values"
        " (e.g. Authorization: Bearer ...).",
    )
    ca_secret_ref: SecretKeyRef | None = Field(
        default=None, description="PEM CA bundle for the receiver; system CAs when absent."
    )
    max_batch: int = Field(default=500, description="Events per POST at most.", ge=1, le=10000)


class LabelSelector(Model):
    """A subset of metav1.LabelSelector: equality matches on decky labels."""

    match_labels: dict[str, str] | None = Field(
        default=None, description="Every label must be present with this value."
    )


class Selector(Model):
    """Which deckies' events the sink takes; all when absent."""

    namespaces: list[common.DnsLabel] | None = Field(
        default=None, description="Only deckies in these namespaces.", max_length=256
    )
    decky_selector: LabelSelector | None = Field(
        default=None, description="Only deckies whose labels match."
    )


class EventSinkSpec(Model):
    """A delivery target: exactly one of syslog or webhook."""

    model_config = ConfigDict(
        json_schema_extra=common.validations(
            common.cel(
                "(has(self.syslog) ? 1 : 0) + (has(self.webhook) ? 1 : 0) == 1",
                "spec must set exactly one of syslog, webhook",
            )
        )
    )

    selector: Selector | None = Field(default=None, description="Optional event filter.")
    syslog: SyslogSink | None = Field(default=None, description="A syslog receiver.")
    webhook: WebhookSink | None = Field(default=None, description="An HTTPS receiver.")


class NodeDelivery(Model):
    """One node agent's delivery to this sink (written by that agent only)."""

    node: str = Field(description="The node whose agent delivers.", max_length=253)
    delivered: int = Field(default=0, description="Events delivered since the agent started.")
    failed: int = Field(default=0, description="Failed delivery attempts since it started.")
    backlog: int = Field(default=0, description="Events waiting in the node's spool.")
    dropped: int = Field(
        default=0, description="Events the spool cap dropped (oldest first) since it started."
    )
    last_delivered_at: str | None = Field(
        default=None,
        description="When an event last reached the sink (RFC 3339).",
        json_schema_extra={"format": common.DATE_TIME},
    )
    last_error: str | None = Field(
        default=None, description="The last delivery error (capped).", max_length=1024
    )
    ready: bool = Field(default=False, description="The last delivery attempt succeeded.")


class EventSinkStatus(Model):
    """Delivery state; per node in `nodes`, summed in the top-level fields."""

    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready (every node delivers) and Degraded (some node cannot).",
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    delivered: int | None = Field(default=None, description="Events delivered (sum of nodes).")
    backlog: int | None = Field(default=None, description="Events waiting (sum of nodes).")
    dropped: int | None = Field(default=None, description="Events dropped (sum of nodes).")
    last_delivered_at: str | None = Field(
        default=None,
        description="Latest delivery of any node (RFC 3339).",
        json_schema_extra={"format": common.DATE_TIME},
    )
    nodes: list[NodeDelivery] | None = Field(
        default=None,
        description="Per-node delivery, one entry per agent (its own SSA field manager).",
        max_length=MAX_NODES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["node"]},
    )


class EventSink(Model):
    """A destination for attacker events: syslog (RFC 5424/5425) or an HTTPS webhook."""

    crd: ClassVar[common.CrdInfo] = common.CrdInfo(
        kind="EventSink",
        plural="eventsinks",
        singular="eventsink",
        scope="Cluster",
        short_names=("es",),
        categories=common.USER_CATEGORIES,
        printer_columns=(
            common.PrinterColumn(
                "Ready",
                '.status.conditions[?(@.type=="Ready")].status',
                description="Every node delivers.",
            ),
            common.PrinterColumn(
                "Syslog", ".spec.syslog.address", description="Syslog receiver address."
            ),
            common.PrinterColumn("Webhook", ".spec.webhook.url", description="Webhook URL."),
            common.PrinterColumn(
                "Delivered", ".status.delivered", "integer", description="Events delivered."
            ),
            common.PrinterColumn(
                "Backlog", ".status.backlog", "integer", description="Events waiting."
            ),
            common.PrinterColumn(
                "Dropped", ".status.dropped", "integer", description="Events dropped by the cap."
            ),
            common.AGE_COLUMN,
        ),
    )

    api_version: Literal["decnet.io/v1alpha1"] = Field(default=common.API_VERSION)
    kind: Literal["EventSink"] = Field(default="EventSink")
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: EventSinkSpec = Field(description="Where and which events go.")
    status: EventSinkStatus | None = Field(
        default=None, description="Delivery state, written by the node agents."
    )
