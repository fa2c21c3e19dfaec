"""Docker object names: deterministic, readable, and never shared by two deckies."""

from __future__ import annotations

from decnet.kube import names


def test_the_old_namespace_collision_pair_gets_distinct_names() -> None:
    # "a-b"/"c" and "a"/"b-c" were both "decnet-a-b-c" under the "-"-joined scheme
    assert names.network_name("a-b", "c") != names.network_name("a", "b-c")
    assert names.base_container_name("a-b", "c") != names.base_container_name("a", "b-c")
    assert names.service_container_name("a-b", "c", "ssh") != names.service_container_name(
        "a", "b-c", "ssh"
    )
    # a service's name sits in its own "."-segment, so it cannot borrow from the decky's
    assert names.service_container_name("n", "x-svc", "y") != names.service_container_name(
        "n", "x", "svc-y"
    )


def test_names_are_readable_and_stable() -> None:
    assert names.network_name("decoys", "office") == "decnet.decoys.office"
    assert names.base_container_name("decoys", "ws-01") == "decnet.decoys.ws-01.base"
    assert names.service_container_name("decoys", "ws-01", "smb") == "decnet.decoys.ws-01.svc-smb"
    assert not names.is_legacy_name(names.network_name("decoys", "office"))
    assert names.is_legacy_name("decnet-decoys-office")


def test_long_names_stay_bounded_and_distinct() -> None:
    ns, decky = "n" * 63, "d" * 63
    one = names.service_container_name(ns, decky, "s" * 63)
    two = names.service_container_name(ns, decky, "s" * 62 + "t")
    assert len(one) <= 120 and len(two) <= 120
    assert one != two
    assert one == names.service_container_name(ns, decky, "s" * 63)


def test_bridge_names_fit_an_interface_and_carry_the_node() -> None:
    a = names.bridge_name("node-a", "decoys", "office")
    assert len(a) <= 15
    assert a.startswith(names.bridge_prefix("node-a"))
    assert names.bridge_name("node-b", "decoys", "office") != a
    assert names.bridge_name("node-a", "a-b", "c") != names.bridge_name("node-a", "a", "b-c")
