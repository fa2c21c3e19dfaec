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
# A container's own hash (planner.base_hash / service_hash): what it was created from.
# The value keeps its first name, since running containers carry it.
LABEL_CONTAINER_HASH = "decnet.io/plan-hash"
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

# Docker object names are seen from inside the deckies: Docker's embedded DNS
# (127.0.0.11 on every LAN) answers a reverse lookup of a decky's address with
# "<base container name>.<network name>". So no name carries the product, the namespace
# (a user's word, maybe "decnet-demo") or a role word; each is "<name>-<hash>", the
# hash being 8 hex of (kind, namespace, name): stable, unique per daemon, and never
# able to spell a product word (hex has no "n", "t", "o", "y" or "p").
#   network   <lan>-<hash>               office-3f2a9c1d
#   base      <decky>-<hash>             ws-01-8e0b7a44  (PTR: ws-01-8e0b7a44.office-3f2a9c1d)
#   service   <decky>-<hash>.<service>   ws-01-8e0b7a44.smb  (no DNS record of its own)
# Labels say which namespace and object each one is; `docker ps` sorts a decky's
# containers together. Two objects share a name only if their hashes collide; the
# agent then refuses the second (planner.is_lans_network, Docker's name conflict),
# it never joins another namespace's network.
HASH_HEX = 8
# The base's and the network's names are DNS labels in the PTR answer (Docker gives no
# answer at all for a longer label, itself a tell).
DNS_LABEL_MAX = 63
SERVICE_NAME_MAX = 2 * DNS_LABEL_MAX + 1
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# Names of the two earlier schemes ("decnet-<ns>-<lan>", then "decnet.<ns>.<lan>");
# the agent replaces, never adopts, what it finds under them.
LEGACY_PREFIXES = ("decnet-", "decnet.")
# Linux interface names hold at most 15 characters: "dn" + 5 hex of the node + 8 hex of
# (namespace, LAN). The node part lets one host run several agents (tests) whose
# catch-all firewall rules (`-i dn<node>+`) never cover each other's bridges.
BRIDGE_PREFIX = "dn"


def _hex(*parts: str, length: int) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def _tagged(kind: str, namespace: str, name: str) -> str:
    """`<name>-<hash>` in one DNS label; the hash is of the unaltered inputs."""
    digest = _hex(kind, namespace, name, length=HASH_HEX)
    head = _NOT_LABEL.sub("-", name.lower())[: DNS_LABEL_MAX - HASH_HEX - 1].strip("-")
    return f"{head}-{digest}" if head else digest


def network_name(namespace: str, lan: str) -> str:
    """Docker network for a LAN: one per (namespace, LAN) on a node."""
    return _tagged("lan", namespace, lan)


def base_container_name(namespace: str, decky: str) -> str:
    return _tagged("decky", namespace, decky)


def service_container_name(namespace: str, decky: str, service: str) -> str:
    """The base's name, ".", the service: base names hold no ".", so it splits one way."""
    part = service if _LABEL.fullmatch(service) else _tagged("service", "", service)
    return f"{base_container_name(namespace, decky)}.{part}"


def is_legacy_name(name: str) -> bool:
    """A Docker object named by one of the earlier schemes (replaced, never adopted)."""
    return name.startswith(LEGACY_PREFIXES)


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
