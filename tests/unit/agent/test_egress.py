"""Egress rules: what a decky may reach, decided from the LANs on the node."""

from __future__ import annotations

from decnet.agent import egress, planner
from decnet.kube import names

NODE = "node-a"
DENIED = ("10.96.0.0/12", "169.254.0.0/16")


def lan(name: str, subnet: str, **kw: object) -> egress.Lan:
    return egress.Lan("decoys", name, subnet, **kw)  # type: ignore[arg-type]


def chain_of(name: str, ns: str = "decoys") -> str:
    return egress.lan_chain(NODE, names.bridge_name(NODE, ns, name))


def test_a_lan_reaches_its_own_subnet_and_nothing_else() -> None:
    v4, _ = egress.wanted(NODE, [lan("office", "10.20.0.0/24")], DENIED)
    rules = v4.chains[chain_of("office")]
    bridge = names.bridge_name(NODE, "decoys", "office")
    assert rules[0] == f"-o {bridge} -j RETURN"
    assert "-d 10.20.0.0/24 -j RETURN" in rules
    assert rules[-1] == egress.REJECT
    assert not any("0.0.0.0/0" in r for r in rules)


def test_denied_ranges_win_over_everything_even_a_topology_subnet_inside_them() -> None:
    inside = lan("lab", "10.96.5.0/24", topology="maze")
    office = lan("office", "10.20.0.0/24", topology="maze")
    allowance = planner.EgressWant("10.96.0.0/12", "tcp", (443,))
    dmz = lan("dmz", "10.30.0.0/24", topology="maze", egress=(allowance,))
    v4, _ = egress.wanted(NODE, [inside, office, dmz], DENIED)
    rules = list(v4.chains[chain_of("dmz")])
    deny = rules.index(f"-d 10.96.0.0/12 {egress.REJECT}")
    assert deny < rules.index("-d 10.96.5.0/24 -j RETURN")
    assert deny < rules.index("-d 10.96.0.0/12 -p tcp -m tcp --dport 443 -j RETURN")
    # a Service address rewritten by kube-proxy still counts as where it was sent
    assert f"-m conntrack --ctorigdst 10.96.0.0/12 {egress.REJECT}" in rules


def test_topology_lans_reach_each_other_and_other_lans_do_not() -> None:
    a = lan("a", "10.1.0.0/24", topology="maze")
    b = lan("b", "10.2.0.0/24", topology="maze")
    c = lan("c", "10.3.0.0/24")
    other_ns = egress.Lan("elsewhere", "d", "10.4.0.0/24", topology="maze")
    v4, _ = egress.wanted(NODE, [a, b, c, other_ns], DENIED)
    a_rules = v4.chains[chain_of("a")]
    assert "-d 10.2.0.0/24 -j RETURN" in a_rules
    assert "-d 10.3.0.0/24 -j RETURN" not in a_rules
    assert "-d 10.4.0.0/24 -j RETURN" not in a_rules  # same topology name, other namespace
    assert "-d 10.1.0.0/24 -j RETURN" not in v4.chains[chain_of("c")]


def test_an_egress_allowance_becomes_protocol_and_port_matches() -> None:
    rules = (
        planner.EgressWant("198.51.100.0/24", "tcp", (443, 80)),
        planner.EgressWant("203.0.113.7/32", "udp", ()),
        planner.EgressWant("192.0.2.0/24", "tcp", (8080,)),
    )
    v4, _ = egress.wanted(NODE, [lan("dmz", "10.30.0.0/24", egress=rules)], DENIED)
    chain = v4.chains[chain_of("dmz")]
    assert "-d 198.51.100.0/24 -p tcp -m multiport --dports 80,443 -j RETURN" in chain
    assert "-d 203.0.113.7/32 -p udp -j RETURN" in chain
    assert "-d 192.0.2.0/24 -p tcp -m tcp --dport 8080 -j RETURN" in chain


def test_the_node_itself_is_closed_to_every_bridge_of_ours_and_unknown_bridges_fail_closed() -> (
    None
):
    v4, v6 = egress.wanted(NODE, [lan("office", "10.20.0.0/24")], DENIED)
    ours = f"{names.bridge_prefix(NODE)}+"
    inp = v4.chains[egress.input_chain(NODE)]
    assert inp[-1] == f"-i {ours} {egress.REJECT}"
    fwd = v4.chains[egress.forward_chain(NODE)]
    assert fwd[0] == f"-i {ours} {egress.ESTABLISHED}"
    # a LAN chain's RETURN ends the verdict (goto), it never falls through to the REJECT
    bridge = names.bridge_name(NODE, "decoys", "office")
    assert f"-i {bridge} -g {chain_of('office')}" in fwd
    assert fwd[-1] == f"-i {ours} {egress.REJECT}"
    assert v4.hooks == {
        egress.HOOK_FORWARD: egress.forward_chain(NODE),
        egress.HOOK_INPUT: egress.input_chain(NODE),
    }
    # IPv6 from a decky goes nowhere
    assert v6.chains[egress.input_chain(NODE)][-1] == f"-i {ours} {egress.REJECT6}"


def test_macvlan_deckies_are_kept_off_the_node_by_address() -> None:
    mac = lan("wire", "192.168.50.0/24", driver="macvlan", addresses=("192.168.50.10",))
    v4, _ = egress.wanted(NODE, [mac], DENIED)
    inp = v4.chains[egress.input_chain(NODE)]
    assert f"-s 192.168.50.10/32 -m conntrack --ctstate NEW {egress.REJECT}" in inp
    assert not any(c.endswith(names.bridge_name(NODE, "decoys", "wire")[-8:]) for c in v4.chains)


def test_lans_come_from_the_plans_once_with_macvlan_addresses() -> None:
    office = planner.NetworkWant("office", "n1", "10.20.0.5", "10.20.0.0/24", "10.20.0.1")
    wire = planner.NetworkWant(
        "wire", "n2", "192.168.50.10", "192.168.50.0/24", "", driver="macvlan", parent="v0"
    )
    planned = [("decoys", (office, wire)), ("decoys", (office,))]
    lans = egress.lans_from_plans(planned)
    assert [(x.name, x.addresses) for x in lans] == [
        ("office", ()),
        ("wire", ("192.168.50.10",)),
    ]


def test_plan_fills_chains_before_hooking_them_and_is_idle_when_in_sync() -> None:
    v4, _ = egress.wanted(NODE, [lan("office", "10.20.0.0/24")], DENIED)
    actions = egress.plan(NODE, v4, egress.Ruleset())
    assert isinstance(actions[0], egress.Apply)
    assert set(actions[0].chains) == set(v4.chains)
    assert {type(a) for a in actions[1:]} == {egress.Hook}
    assert egress.plan(NODE, v4, v4) == []


def test_a_gone_lan_loses_its_chain_and_only_ours_are_touched() -> None:
    two, _ = egress.wanted(NODE, [lan("a", "10.1.0.0/24"), lan("b", "10.2.0.0/24")], DENIED)
    one, _ = egress.wanted(NODE, [lan("a", "10.1.0.0/24")], DENIED)
    someone_else = {"DNfffff-FWD": ("-j RETURN",), **two.chains}
    seen = egress.Ruleset(someone_else, two.hooks)
    actions = egress.plan(NODE, one, seen)
    assert isinstance(actions[0], egress.Apply)
    # one transaction: the jump to b's chain goes and b's chain is emptied
    assert actions[0].chains == {
        egress.forward_chain(NODE): one.chains[egress.forward_chain(NODE)],
        chain_of("b"): (),
    }
    assert actions[1:] == [egress.DeleteChain(chain_of("b"))]


def test_cleanup_unhooks_then_deletes_everything_of_this_node() -> None:
    v4, _ = egress.wanted(NODE, [lan("a", "10.1.0.0/24")], DENIED)
    actions = egress.cleanup(NODE, v4)
    kinds = [type(a).__name__ for a in actions]
    assert kinds[:3] == ["Unhook", "Unhook", "Apply"]
    assert all(rules == () for rules in actions[2].chains.values())  # type: ignore[union-attr]
    assert sorted(a.chain for a in actions if isinstance(a, egress.DeleteChain)) == sorted(
        v4.chains
    )


def test_allowances_outside_the_administrators_ranges_are_not_installed() -> None:
    inside = planner.EgressWant("198.51.100.16/28", "tcp", (443,))
    outside = planner.EgressWant("0.0.0.0/0", "tcp", ())
    dmz = lan("dmz", "10.30.0.0/24", egress=(inside, outside))
    within = ("198.51.100.0/24",)
    v4, _ = egress.wanted(NODE, [dmz], DENIED, within)
    chain = v4.chains[chain_of("dmz")]
    assert "-d 198.51.100.16/28 -p tcp -m tcp --dport 443 -j RETURN" in chain
    assert not any("0.0.0.0/0" in r for r in chain)
    assert egress.refused([dmz], within) == [("decoys", "dmz", "0.0.0.0/0")]
    # the default admits any destination a LAN lists (denied ranges still win)
    assert egress.refused([dmz], egress.ANYWHERE) == []
