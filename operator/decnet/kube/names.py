"""The names users, Argo CD, agents and Docker objects depend on.

They live in one module so the operator, the agent, the CLI and the tests
can never disagree on a label key or a Docker object name.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping

GROUP = "decnet.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Plurals of the custom resources.
DECKIES = "deckies"
LANS = "lans"
TOPOLOGIES = "topologies"
SERVICE_TEMPLATES = "servicetemplates"
ADDRESS_CLAIMS = "addressclaims"

# Labels on Kubernetes objects.
LABEL_NODE = "decnet.io/node"
LABEL_FLEET = "decnet.io/fleet"
LABEL_TOPOLOGY = "decnet.io/topology"
LABEL_AGENT_LEASE = "decnet.io/agent"

# Labels on every Docker object the agent creates.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "decnet-operator"
LABEL_NAMESPACE = "decnet.io/namespace"
LABEL_DECKY = "decnet.io/decky"
LABEL_UID = "decnet.io/uid"
LABEL_ROLE = "decnet.io/role"
LABEL_SERVICE = "decnet.io/service"
LABEL_PLAN_HASH = "decnet.io/plan-hash"
LABEL_LAN = "decnet.io/lan"
LABEL_AGENT_NODE = "decnet.io/agent-node"
ROLE_BASE = "base"
ROLE_SERVICE = "service"

# Annotations.
ANNOTATION_MUTATE_REQUEST = "decnet.io/mutate-request"
ANNOTATION_ALLOW_RECREATE = "decnet.io/allow-recreate"

# Finalizers (the operator's; agents never add finalizers).
FINALIZER = "decnet.io/teardown"

# Field managers for server-side apply on the status subresource.
OPERATOR_MANAGER = "decnet-operator"
AGENT_MANAGER = "decnet-agent"
# Decky status fields the agent owns; the rest of status is the operator's. The chart's
# ValidatingAdmissionPolicy refuses an agent write that changes anything else.
AGENT_STATUS_FIELDS = ("agent", "containers", "activity")

# Agent leases live in the system namespace, one per node, named LEASE_PREFIX + node.
# The chart passes its release namespace in SYSTEM_NAMESPACE_ENV to the operator and
# the agents; SYSTEM_NAMESPACE is the default for local runs. Nobody creates it at run
# time: the agent has no right to create namespaces.
SYSTEM_NAMESPACE = "decnet-system"
SYSTEM_NAMESPACE_ENV = "DECNET_SYSTEM_NAMESPACE"
LEASE_PREFIX = "decnet-agent-"

_NOT_NAME = re.compile(r"[^a-z0-9.-]+")
# Namespaces, deckies, LANs and services are DNS labels: none can hold a ".", so joining
# them with "." cannot make two (namespace, name) pairs collide ("a-b"/"c" vs "a"/"b-c"
# was the old "-"-joined clash).
SEP = "."
PREFIX = "decnet"
# Names of the scheme before that separator; the agent replaces what it finds under them.
LEGACY_PREFIX = "decnet-"
# Linux interface names hold at most 15 characters: "dn" + 5 hex of the node + 8 hex of
# (namespace, LAN). The node part lets one host run several agents (tests) whose
# catch-all firewall rules (`-i dn<node>+`) never cover each other's bridges.
BRIDGE_PREFIX = "dn"


def _hex(*parts: str, length: int) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def _bounded(*parts: str, limit: int) -> str:
    """Deterministic and readable; over `limit`, a hash of the parts keeps it unique."""
    name = SEP.join(_NOT_NAME.sub("-", p.lower()) for p in parts)
    if len(name) <= limit:
        return name
    return f"{name[: limit - 17]}-{_hex(*parts, length=16)}"


def network_name(namespace: str, lan: str) -> str:
    """Docker network for a LAN: one per (namespace, LAN) on a node."""
    return _bounded(PREFIX, namespace, lan, limit=100)


def base_container_name(namespace: str, decky: str) -> str:
    return _bounded(PREFIX, namespace, decky, "base", limit=120)


def service_container_name(namespace: str, decky: str, service: str) -> str:
    return _bounded(PREFIX, namespace, decky, f"svc-{service}", limit=120)


def is_legacy_name(name: str) -> bool:
    """A Docker object named by the old "-"-joined scheme (replaced, never adopted)."""
    return name.startswith(LEGACY_PREFIX)


def node_tag(node: str) -> str:
    """5 hex of the node name: scopes an agent's bridges and iptables chains."""
    return _hex(node, length=5)


def bridge_prefix(node: str) -> str:
    return f"{BRIDGE_PREFIX}{node_tag(node)}"


def bridge_name(node: str, namespace: str, lan: str) -> str:
    """The Linux bridge of a LAN's network (com.docker.network.bridge.name), 15 chars."""
    return f"{bridge_prefix(node)}{_hex(namespace, lan, length=8)}"


def system_namespace(env: Mapping[str, str] | None = None) -> str:
    """The namespace of the agents' Leases: the environment's choice, else the default."""
    value = (os.environ if env is None else env).get(SYSTEM_NAMESPACE_ENV, "").strip()
    return value or SYSTEM_NAMESPACE


def lease_name(node: str) -> str:
    return f"{LEASE_PREFIX}{node}"


def ip_claim_name(lan: str, ip: str) -> str:
    """One AddressClaim per held address; the API server's name uniqueness is the lock."""
    return f"ip.{lan}.{ip.replace('.', '-')}"


def subnet_claim_name(subnet: str) -> str:
    network, prefix = subnet.split("/")
    return f"subnet.{network.replace('.', '-')}-{prefix}"
