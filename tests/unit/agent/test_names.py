"""Docker object names: no product word, deterministic, and never shared by two deckies.

Attackers inside a decky see these names: Docker's embedded DNS answers a reverse
lookup of a neighbour with "<base container>.<network>".
"""

from __future__ import annotations

import re

from decnet.kube import names

TELL = re.compile(r"decnet|honeypot|deception|decoy|\bbase\b|svc", re.IGNORECASE)
# namespaces and names an operator may well choose: none of it may reach a name
HOSTILE_NS = ("decnet-demo", "honeypot", "decoys", "decnet.system", "x" * 63)


def every_name(ns: str, decky: str, lan: str, service: str) -> list[str]:
    return [
        names.network_name(ns, lan),
        names.base_container_name(ns, decky),
        names.service_container_name(ns, decky, service),
    ]


def test_no_name_carries_the_product_the_namespace_or_a_role_word() -> None:
    for ns in HOSTILE_NS:
        for name in every_name(ns, "ws-01", "office", "smb"):
            assert not TELL.search(name), name
            assert ns not in name, name
    # the PTR answer an attacker gets for a neighbour
    base = names.base_container_name("decnet-demo", "ws-01")
    ptr = f"{base}.{names.network_name('decnet-demo', 'office')}"
    assert re.fullmatch(r"ws-01-[0-9a-f]{8}\.office-[0-9a-f]{8}", ptr), ptr


def test_names_are_readable_and_stable() -> None:
    net = names.network_name("decoys", "office")
    base = names.base_container_name("decoys", "ws-01")
    assert re.fullmatch(r"office-[0-9a-f]{8}", net)
    assert re.fullmatch(r"ws-01-[0-9a-f]{8}", base)
    assert names.service_container_name("decoys", "ws-01", "smb") == f"{base}.smb"
    # pinned: an agent upgrade that changed them would replace every decky
    assert net == "office-" + names._hex("lan", "decoys", "office", length=8)
    assert base == "ws-01-" + names._hex("decky", "decoys", "ws-01", length=8)
    assert every_name("decoys", "ws-01", "office", "smb") == every_name(
        "decoys", "ws-01", "office", "smb"
    )


def test_the_same_names_in_two_namespaces_get_distinct_objects() -> None:
    assert names.network_name("a", "office") != names.network_name("b", "office")
    assert names.base_container_name("a", "ws-01") != names.base_container_name("b", "ws-01")
    # a decky and a LAN of one name do not share a suffix either
    assert names.base_container_name("a", "x")[-8:] != names.network_name("a", "x")[-8:]


def test_the_old_namespace_collision_pair_gets_distinct_names() -> None:
    # "a-b"/"c" and "a"/"b-c" were both "decnet-a-b-c" under the first scheme
    assert names.network_name("a-b", "c") != names.network_name("a", "b-c")
    assert names.base_container_name("a-b", "c") != names.base_container_name("a", "b-c")
    assert names.service_container_name("a-b", "c", "ssh") != names.service_container_name(
        "a", "b-c", "ssh"
    )
    # the service sits after the only ".", so it cannot borrow from the decky's name
    assert names.service_container_name("n", "x-svc", "y") != names.service_container_name(
        "n", "x", "svc-y"
    )
    one = names.service_container_name("n", "x", "y")
    base, _, service = one.partition(".")
    assert (base, service) == (names.base_container_name("n", "x"), "y")


def test_long_names_stay_within_a_dns_label_and_distinct() -> None:
    ns, decky = "n" * 63, "d" * 63
    base = names.base_container_name(ns, decky)
    net = names.network_name(ns, "l" * 63)
    # Docker's DNS gives no PTR answer at all when a label is over 63
    assert len(base) <= names.DNS_LABEL_MAX and len(net) <= names.DNS_LABEL_MAX
    assert base.startswith("d" * 54)
    # cut to the same readable head, still two names
    assert names.base_container_name(ns, "d" * 62 + "e") != base
    one = names.service_container_name(ns, decky, "s" * 63)
    two = names.service_container_name(ns, decky, "s" * 62 + "t")
    assert len(one) <= names.SERVICE_NAME_MAX and len(two) <= names.SERVICE_NAME_MAX
    assert one != two
    assert one == names.service_container_name(ns, decky, "s" * 63)


def test_hostile_inputs_still_make_valid_docker_names() -> None:
    docker_name = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
    for odd in ("", "-", "UPPER", "a_b", "dots.in.it", "../../etc", "é" * 80, "s" * 200):
        made = every_name(odd, odd, odd, odd)
        for name in made:
            assert docker_name.fullmatch(name), name
            assert not TELL.search(name), name
        assert len(made[0]) <= names.DNS_LABEL_MAX and len(made[1]) <= names.DNS_LABEL_MAX
        assert len(made[2]) <= names.SERVICE_NAME_MAX
        assert "." not in made[1] and made[2].count(".") == 1
    # names that clean up alike stay apart (the hash is of what was given)
    assert names.service_container_name("n", "d", "a_b") != names.service_container_name(
        "n", "d", "a-b"
    )
    assert names.base_container_name("n", "A") != names.base_container_name("n", "a")


def test_names_of_both_earlier_schemes_are_legacy_and_new_ones_are_not() -> None:
    assert names.is_legacy_name("decnet-decoys-office")  # first: "-"-joined
    assert names.is_legacy_name("decnet-decoys-ws-01-svc-smb")
    assert names.is_legacy_name("decnet.decoys.office")  # second: "."-joined
    assert names.is_legacy_name("decnet.decoys.ws-01.base")
    for name in every_name("decoys", "ws-01", "office", "smb"):
        assert not names.is_legacy_name(name), name
    assert not names.is_legacy_name("decnetwork")


def test_bridge_names_fit_an_interface_and_carry_the_node() -> None:
    a = names.bridge_name("node-a", "decoys", "office")
    assert len(a) <= 15
    assert a.startswith(names.bridge_prefix("node-a"))
    assert names.bridge_name("node-b", "decoys", "office") != a
    assert names.bridge_name("node-a", "a-b", "c") != names.bridge_name("node-a", "a", "b-c")
