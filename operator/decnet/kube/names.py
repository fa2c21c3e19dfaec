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

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def _bounded(name: str, limit: int = 63) -> str:
    """Docker accepts long names, but a stable short hash keeps them readable."""
    name = _NOT_DNS.sub("-", name.lower()).strip("-")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}-{digest}"


def network_name(namespace: str, lan: str) -> str:
    """Docker network for a LAN: one per (namespace, LAN) on a node."""
    return _bounded(f"decnet-{namespace}-{lan}", 100)


def base_container_name(namespace: str, decky: str) -> str:
    return _bounded(f"decnet-{namespace}-{decky}-base", 120)


def service_container_name(namespace: str, decky: str, service: str) -> str:
    return _bounded(f"decnet-{namespace}-{decky}-svc-{service}", 120)


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
