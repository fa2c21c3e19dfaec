"""Egress control: which iptables rules the node needs so a decky reaches only what it may.

An attacker's code may run in any service container. From there it must not reach the
node, cluster/pod/service addresses, link-local metadata, LANs outside its topology or
the world (unless its LAN allows a destination). Docker's own rules do not give that:
an `--internal` bridge still reaches every address of the node, and a DMZ bridge is
NATed to everything. So the agent owns a few chains and keeps them level-based, like
containers: this module computes the wanted rules from the LANs on the node (pure),
`agent/runtime/firewall.py` reads what iptables holds and applies the difference.

Two paths, two hooks (both fail closed for our bridges):
- forwarded traffic (other bridges, the world, cluster addresses the node routes) is
  seen in FORWARD: `DOCKER-USER -> DN-FWD-<node>`; per LAN a chain `DN-<bridge>`
  decides, and a bridge of ours without its chain yet hits a final REJECT;
- container -> node traffic (the bridge gateway, every other node address, an API
  server bound to 0.0.0.0) is seen in INPUT, never in FORWARD: `INPUT -> DN-IN-<node>`
  rejects every new connection from our bridges.
Replies to connections opened *to* a decky (an attacker's session) pass on conntrack
state. Chain and bridge names carry a hash of the node name, so several agents on one
host (tests) never touch each other's rules.

A macvlan LAN's traffic leaves through its parent interface without crossing the
node's FORWARD chain: egress from it cannot be enforced here (docs/security.md). What
is possible is done: the node itself rejects new connections from those deckies'
addresses (they cannot spoof: no NET_RAW/NET_ADMIN in service containers).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from decnet.agent import planner
from decnet.kube import names

# Defaults of the chart's `containment.deniedCIDRs`: Kubernetes' usual service and pod
# ranges, link-local (cloud metadata, 169.254.169.254) and the test bed's service range.
DEFAULT_DENIED = ("10.96.0.0/12", "10.244.0.0/16", "169.254.0.0/16", "10.0.0.0/24")

# Where LAN egress allowances may point at all (chart `containment.egressWithin`): an
# administrator's cap on what namespace editors can open with spec.egress.
ANYWHERE = ("0.0.0.0/0",)

HOOK_FORWARD = "DOCKER-USER"
HOOK_INPUT = "INPUT"
REJECT = "-j REJECT --reject-with icmp-port-unreachable"
REJECT6 = "-j REJECT --reject-with icmp6-port-unreachable"
ESTABLISHED = "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"


@dataclass(frozen=True)
class Lan:
    """A LAN on this node as the firewall needs it (from the deckies' plans)."""

    namespace: str
    name: str
    subnet: str
    driver: str = "bridge"
    topology: str = ""
    egress: tuple[planner.EgressWant, ...] = ()
    # macvlan: the deckies' addresses on it (bridges are matched by interface instead)
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ruleset:
    """Chains (name -> rules in `iptables -S` form, without "-A <chain>") and the hooks
    (built-in chain -> our chain jumped to from its first position)."""

    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hooks: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Apply:
    """Replace our chains' contents in one atomic iptables-restore transaction."""

    chains: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Hook:
    """Insert `-j chain` at the top of a built-in chain."""

    builtin: str
    chain: str


@dataclass(frozen=True)
class Unhook:
    builtin: str
    chain: str


@dataclass(frozen=True)
class DeleteChain:
    chain: str


Action = Apply | Hook | Unhook | DeleteChain


def _tag(node: str) -> str:
    return names.node_tag(node)


def chain_prefix(node: str) -> str:
    """Every chain of this node's agent starts with it (and nobody else's does)."""
    return f"DN{_tag(node)}-"


def forward_chain(node: str) -> str:
    return f"{chain_prefix(node)}FWD"


def input_chain(node: str) -> str:
    return f"{chain_prefix(node)}IN"


def lan_chain(node: str, bridge: str) -> str:
    # 28 characters at most: "DN" + 5 + "-" + 15
    return f"{chain_prefix(node)}{bridge.removeprefix(names.bridge_prefix(node))}"


def _net(cidr: str) -> str:
    """iptables prints host routes as /32 and networks normalised."""
    return str(ipaddress.ip_network(cidr, strict=False))


def lans_from_plans(
    planned: Iterable[tuple[str, Sequence[planner.NetworkWant]]],
) -> list[Lan]:
    """The LANs of the deckies planned on this node (namespace, networks), one per
    (namespace, LAN)."""
    found: dict[tuple[str, str], Lan] = {}
    addresses: dict[tuple[str, str], set[str]] = {}
    for namespace, networks in planned:
        for net in networks:
            key = (namespace, net.lan)
            addresses.setdefault(key, set()).add(net.ip)
            if key not in found:
                found[key] = Lan(
                    namespace=namespace,
                    name=net.lan,
                    subnet=net.subnet,
                    driver=net.driver,
                    topology=net.topology,
                    egress=net.egress,
                )
    return [
        Lan(
            lan.namespace,
            lan.name,
            lan.subnet,
            lan.driver,
            lan.topology,
            lan.egress,
            tuple(sorted(addresses[key])) if lan.driver == "macvlan" else (),
        )
        for key, lan in sorted(found.items())
    ]


def _reachable(lan: Lan, lans: Sequence[Lan]) -> list[str]:
    """Its own subnet and those of the LANs of its topology (same namespace)."""
    subnets = {_net(lan.subnet)}
    if lan.topology:
        subnets.update(
            _net(o.subnet)
            for o in lans
            if o.namespace == lan.namespace and o.topology == lan.topology and o.subnet
        )
    return sorted(subnets)


def _allowance(rule: planner.EgressWant) -> str:
    dest = f"-d {_net(rule.cidr)} -p {rule.protocol}"
    ports = sorted(set(rule.ports))
    if not ports:
        return f"{dest} -j RETURN"
    if len(ports) == 1:
        return f"{dest} -m {rule.protocol} --dport {ports[0]} -j RETURN"
    return f"{dest} -m multiport --dports {','.join(str(p) for p in ports)} -j RETURN"


def admitted(rule: planner.EgressWant, within: Sequence[str]) -> bool:
    """An allowance counts only inside the administrator's ranges."""
    net = ipaddress.ip_network(rule.cidr, strict=False)
    return any(
        net.version == outer.version and net.subnet_of(outer)  # type: ignore[arg-type]
        for outer in (ipaddress.ip_network(c, strict=False) for c in within)
    )


def refused(lans: Sequence[Lan], within: Sequence[str]) -> list[tuple[str, str, str]]:
    """(namespace, LAN, CIDR) of allowances outside the administrator's ranges."""
    return [
        (lan.namespace, lan.name, rule.cidr)
        for lan in lans
        for rule in lan.egress
        if not admitted(rule, within)
    ]


def _lan_rules(
    bridge: str, lan: Lan, lans: Sequence[Lan], denied: Sequence[str], within: Sequence[str]
) -> list[str]:
    rules = [f"-o {bridge} -j RETURN"]  # its own peers (bridged frames cross FORWARD too)
    for cidr in denied:
        rules.append(f"-d {cidr} {REJECT}")
        # a Service address rewritten by kube-proxy is still matched by where it was sent
        rules.append(f"-m conntrack --ctorigdst {cidr} {REJECT}")
    rules.extend(f"-d {subnet} -j RETURN" for subnet in _reachable(lan, lans))
    rules.extend(_allowance(rule) for rule in lan.egress if admitted(rule, within))
    rules.append(REJECT)
    return rules


def wanted(
    node: str, lans: Sequence[Lan], denied: Sequence[str], within: Sequence[str] = ANYWHERE
) -> tuple[Ruleset, Ruleset]:
    """(IPv4, IPv6) rulesets for this node's LANs. IPv6 from a decky goes nowhere."""
    denied = sorted({_net(c) for c in denied})
    ours = f"{names.bridge_prefix(node)}+"
    fwd, inp = forward_chain(node), input_chain(node)
    chains: dict[str, tuple[str, ...]] = {}
    fwd_rules = [f"-i {ours} {ESTABLISHED}"]
    in_rules = [f"-i {ours} {ESTABLISHED}", f"-i {ours} {REJECT}"]
    for lan in sorted(lans, key=lambda x: (x.namespace, x.name)):
        if lan.driver == "macvlan":
            for ip in lan.addresses:
                src = f"-s {_net(ip)}"
                in_rules.append(f"{src} -m conntrack --ctstate NEW {REJECT}")
                fwd_rules.append(f"{src} -m conntrack --ctstate NEW {REJECT}")
            continue
        bridge = names.bridge_name(node, lan.namespace, lan.name)
        chain = lan_chain(node, bridge)
        # goto, not jump: the LAN chain's RETURN must end our verdict (back to
        # DOCKER-USER), not fall through to the catch-all REJECT below
        fwd_rules.append(f"-i {bridge} -g {chain}")
        chains[chain] = tuple(_lan_rules(bridge, lan, lans, denied, within))
    fwd_rules.append(f"-i {ours} {REJECT}")  # a bridge of ours with no chain yet
    chains[fwd] = tuple(fwd_rules)
    chains[inp] = tuple(in_rules)
    v4 = Ruleset(chains, {HOOK_FORWARD: fwd, HOOK_INPUT: inp})
    v6_chains = {
        fwd: (f"-i {ours} {ESTABLISHED}", f"-i {ours} {REJECT6}"),
        inp: (f"-i {ours} {ESTABLISHED}", f"-i {ours} {REJECT6}"),
    }
    v6 = Ruleset(v6_chains, {HOOK_FORWARD: fwd, HOOK_INPUT: inp})
    return v4, v6


def plan(node: str, want: Ruleset, seen: Ruleset) -> list[Action]:
    """Actions from what iptables holds (`seen`: only chains with our prefix) to `want`.

    Order keeps it closed: chains are filled before any hook points at them, unwanted
    hooks go first, stale chains are emptied (with the jumps to them gone) in the same
    atomic restore that changes the others, and only then deleted; a content change is
    never a flush followed by a refill.
    """
    prefix = chain_prefix(node)
    actions: list[Action] = [
        Unhook(builtin, chain)
        for builtin, chain in sorted(seen.hooks.items())
        if chain.startswith(prefix) and want.hooks.get(builtin) != chain
    ]
    stale = sorted(c for c in seen.chains if c.startswith(prefix) and c not in want.chains)
    contents = {c: r for c, r in want.chains.items() if seen.chains.get(c) != r}
    # stale chains are emptied in the same transaction that drops the jumps to them
    contents.update({c: () for c in stale if seen.chains.get(c)})
    if contents:
        actions.append(Apply(contents))
    for builtin, chain in sorted(want.hooks.items()):
        if seen.hooks.get(builtin) != chain:
            actions.append(Hook(builtin, chain))
    actions.extend(DeleteChain(c) for c in stale)
    return actions


def cleanup(node: str, seen: Ruleset) -> list[Action]:
    """Everything of this node's agent goes: hooks first, then the chains."""
    return plan(node, Ruleset(), seen)


def fingerprint(ruleset: Ruleset) -> str:
    raw = repr(sorted((k, v) for k, v in ruleset.chains.items())) + repr(
        sorted(ruleset.hooks.items())
    )
    return hashlib.sha256(raw.encode()).hexdigest()
