"""Allocation proposes addresses that are free, in a stable order."""

import ipaddress
from collections.abc import Iterable

import pytest

from decnet.controller import allocation


def first_ip(subnet: str, held: Iterable[str]) -> str | None:
    return next(allocation.candidate_ips(subnet, held), None)


def first_subnet(pool: str, held: Iterable[str]) -> str | None:
    return next(allocation.candidate_subnets(pool, held), None)


def test_the_first_candidate_ip_skips_network_broadcast_gateway_and_held() -> None:
    assert first_ip("10.0.3.0/24", []) == "10.0.3.2"
    assert first_ip("10.0.3.0/24", ["10.0.3.2", "10.0.3.3"]) == "10.0.3.4"
    ips = list(allocation.candidate_ips("10.0.3.0/24", ["10.0.3.7"]))
    assert "10.0.3.0" not in ips and "10.0.3.1" not in ips and "10.0.3.255" not in ips
    assert "10.0.3.7" not in ips
    assert len(ips) == 256 - 4


def test_full_subnet_has_no_free_ip() -> None:
    assert first_ip("10.0.0.0/30", ["10.0.0.2"]) is None


def test_candidate_subnets_skip_overlapping_held_subnets() -> None:
    pool = "172.16.0.0/12"
    assert first_subnet(pool, []) == "172.16.0.0/24"
    assert first_subnet(pool, ["172.16.0.0/23"]) == "172.16.2.0/24"
    assert first_subnet(pool, ["172.16.0.128/25", "172.16.1.0/24"]) == "172.16.2.0/24"
    assert first_subnet("10.0.0.0/24", ["10.0.0.0/16"]) is None


def test_gateway_and_membership() -> None:
    assert allocation.gateway("10.20.0.0/24") == "10.20.0.1"
    assert allocation.contains("10.20.0.0/24", "10.20.0.15")
    assert not allocation.contains("10.20.0.0/24", "10.21.0.15")
    assert not allocation.contains("10.20.0.0/24", "not-an-ip")
    assert allocation.overlaps("10.0.0.0/16", "10.0.5.0/24")
    assert not allocation.overlaps("10.0.0.0/24", "10.0.1.0/24")


@pytest.mark.parametrize(
    "subnet",
    [
        "10.0.3.0/24",
        "10.0.3.0/30",
        "10.0.3.4/31",
        "10.0.3.9/32",
        "fd00::/120",
        "fd00::/127",
        "fd00::1/128",
    ],
)
def test_candidates_are_the_subnets_hosts_in_order_minus_reserved_and_held(subnet: str) -> None:
    net = ipaddress.ip_network(subnet, strict=False)
    hosts = [str(h) for h in net.hosts()]
    held = hosts[2:4]
    expected = [h for h in hosts if h not in allocation.reserved(subnet) and h not in held]
    assert list(allocation.candidate_ips(subnet, held)) == expected


def test_a_held_address_counts_however_it_is_spelled() -> None:
    assert first_ip("fd00::/120", ["fd00:0:0::2"]) == "fd00::3"
