"""Address and subnet arithmetic for allocation, free of any I/O.

The API server makes allocation atomic (one AddressClaim per held address);
these functions only propose candidates in a stable order, so two operators
looking at the same held set propose the same address and exactly one of
their claims wins. The caller moves on to the next candidate after a 409.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Iterator

from decnet.api import v1alpha1

# A LAN outside any topology takes its subnet from where a topology's would come from.
DEFAULT_POOL = v1alpha1.DEFAULT_SUBNET_POOL


def gateway(subnet: str) -> str:
    """The first host address of a subnet is the LAN's gateway (Docker's default too)."""
    net = ipaddress.ip_network(subnet, strict=False)
    return str(net.network_address + 1)


def overlaps(a: str, b: str) -> bool:
    return ipaddress.ip_network(a, strict=False).overlaps(ipaddress.ip_network(b, strict=False))


def contains(subnet: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        return False


def reserved(subnet: str) -> set[str]:
    """Addresses never handed to a decky: network, broadcast and gateway."""
    net = ipaddress.ip_network(subnet, strict=False)
    return {str(net.network_address), str(net.broadcast_address), gateway(subnet)}


def candidate_subnets(pool: str, held: Iterable[str], prefix: int = 24) -> Iterator[str]:
    """Every /prefix in the pool that overlaps no held subnet, lowest first."""
    held_nets = [ipaddress.ip_network(s, strict=False) for s in held]
    for net in ipaddress.ip_network(pool, strict=False).subnets(new_prefix=prefix):
        if not any(net.overlaps(h) for h in held_nets):
            yield str(net)


@functools.lru_cache(maxsize=65536)
def _address(text: str) -> int:
    """An address as a number (any spelling of it); held addresses repeat from one
    allocation to the next, so each is parsed once."""
    return int(ipaddress.ip_address(text))


def _hosts(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> range:
    """The numbers of net.hosts(), without making an address object per host."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.num_addresses <= 2:
        return range(first, last + 1)
    if net.version == 4:
        return range(first + 1, last)
    return range(first + 1, last + 1)


def candidate_ips(subnet: str, held: Iterable[str]) -> Iterator[str]:
    """Host addresses of the subnet, lowest first, minus reserved and held ones.

    Numbers, not address objects: a LAN with a thousand deckies walks past a thousand
    held addresses on every allocation."""
    net = ipaddress.ip_network(subnet, strict=False)
    skip = {_address(h) for h in reserved(subnet)} | {_address(h) for h in held}
    for host in _hosts(net):
        if host not in skip:
            yield str(ipaddress.ip_address(host))
