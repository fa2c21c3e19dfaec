"""The checks admission answers with and reconcile re-runs: pure, so they are tested here."""

from __future__ import annotations

from typing import Any

import pytest

from decnet.controller import validation, views


def lan(subnet: str | None = "10.1.0.0/24", **spec: Any) -> views.Lan:
    body = {"metadata": {"name": "office", "namespace": "d"}, "spec": {"subnet": subnet, **spec}}
    return views.Lan.from_obj(body)


def decky(**spec: Any) -> views.Decky:
    spec.setdefault("networks", [{"lan": "office"}])
    return views.Decky.from_obj({"metadata": {"name": "x", "namespace": "d"}, "spec": spec})


LIMITS = validation.Limits.from_env(
    {
        "DECNET_SUBNET_POOLS": "10.0.0.0/8, 192.168.0.0/16",
        "DECNET_PREFIX_LENGTHS": "16-28",
        "DECNET_MACVLAN_PARENTS": "veth-decoy",
    }
)


def test_limits_from_env_and_the_local_default() -> None:
    assert LIMITS == validation.Limits(("10.0.0.0/8", "192.168.0.0/16"), 16, 28, ("veth-decoy",))
    assert validation.Limits.from_env({}) == validation.Limits()  # local runs: no limits
    none = validation.Limits.from_env({"DECNET_MACVLAN_PARENTS": ""})
    assert none.macvlan_parents == ()  # the chart's default: macvlan refused


def test_a_lan_inside_the_limits_passes() -> None:
    assert validation.lan(lan("10.1.0.0/24"), LIMITS) is None
    assert validation.lan(lan("192.168.5.0/28"), LIMITS) is None
    assert validation.lan(lan(None), LIMITS) is None  # automatic: checked against its pool
    assert validation.lan(lan(driver="macvlan", parent="veth-decoy"), LIMITS) is None


def test_a_lan_outside_the_limits_is_refused_with_a_reason() -> None:
    cases = {
        "172.20.0.0/24": "SubnetNotAllowed",
        "10.0.0.0/8": "PrefixNotAllowed",
        "10.1.0.0/30": "PrefixNotAllowed",
        "0.0.0.0/0": "PrefixNotAllowed",
    }
    for subnet, reason in cases.items():
        problem = validation.lan(lan(subnet), LIMITS)
        assert problem is not None and (problem.code, problem.reason) == (422, reason), subnet
    parent = validation.lan(lan(driver="macvlan", parent="eth0"), LIMITS)
    assert parent is not None and parent.reason == "ParentNotAllowed"
    assert "eth0" in parent.message and "veth-decoy" in parent.message
    refused = validation.Limits(macvlan_parents=())
    assert validation.lan(lan(driver="macvlan", parent="eth0"), refused) is not None


def test_setuid_and_setgid_file_modes_are_refused() -> None:
    def files(mode: int) -> validation.Problem | None:
        content = {"inline": ""}
        return validation.files(decky(files=[{"path": "/x", "mode": mode, "content": content}]))

    # the CRD types mode as an integer (the API server refuses a string)
    assert files(0o644) is None and files(0o1777) is None
    for mode in (0o4755, 0o2755, 0o6777):
        problem = files(mode)
        assert problem is not None and problem.reason == "FileModeNotAllowed", mode


def test_an_address_outside_or_reserved_in_the_subnet_is_refused() -> None:
    lans = {"office": lan("10.1.0.0/24")}
    out = validation.decky(decky(networks=[{"lan": "office", "ip": "10.2.0.5"}]), lans, {})
    assert out is not None and out.reason == "IPOutOfSubnet"
    gw = validation.decky(decky(networks=[{"lan": "office", "ip": "10.1.0.1"}]), lans, {})
    assert gw is not None and gw.reason == "IPReserved"


def test_the_older_lan_keeps_an_overlapping_subnet() -> None:
    old = validation.SubnetHolder("a", "first", "10.1.0.0/24", "2026-01-01T00:00:00Z")
    new = validation.SubnetHolder("b", "second", "10.1.0.128/25", "2026-01-02T00:00:00Z")
    assert validation.subnet_overlap(old, [old, new]) is None
    problem = validation.subnet_overlap(new, [old, new])
    assert problem is not None and problem.reason == "SubnetOverlap"
    assert "LAN a/first" in problem.message
    apart = validation.SubnetHolder("c", "third", "10.9.0.0/24", "2026-01-03T00:00:00Z")
    assert validation.subnet_overlap(apart, [old, new, apart]) is None


def test_claims_whose_holder_is_gone_are_orphans() -> None:
    from decnet.controller import claims

    def claim(name: str, uid: str) -> dict[str, Any]:
        return {
            "metadata": {"namespace": "d", "name": name},
            "spec": {"holder": {"kind": "Decky", "name": name, "uid": uid}},
        }

    held = [claim("a", "u1"), claim("b", "u2"), {"metadata": {"namespace": "d", "name": "c"}}]
    assert claims.orphaned(held, {"u1"}) == [("d", "b"), ("d", "c")]


def test_the_operator_reads_its_system_namespace_and_limits_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from decnet.controller import state

    for key in ("DECNET_SYSTEM_NAMESPACE", "DECNET_MACVLAN_PARENTS", "DECNET_SUBNET_POOLS"):
        monkeypatch.delenv(key, raising=False)
    config = state.Config.from_env()
    assert config.system_namespace == "decnet-system"  # local default
    assert config.limits == validation.Limits()
    monkeypatch.setenv("DECNET_SYSTEM_NAMESPACE", "decnet-prod")
    monkeypatch.setenv("DECNET_MACVLAN_PARENTS", "")
    config = state.Config.from_env()
    assert config.system_namespace == "decnet-prod"
    assert config.limits.macvlan_parents == ()
