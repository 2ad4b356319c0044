"""IP lookups remembered by network give each address exactly its own answer."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import iporigin.core
import pytest

from features.ipintel import IpIntel


class GetOnly:
    """A reader without ``get_with_prefix_len``: every address is read on its own."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def get(self, ip_address: str) -> Any:
        return self._reader.get(ip_address)

    def metadata(self) -> Any:
        return self._reader.metadata()


@pytest.fixture(scope="module")
def bundled() -> IpIntel:
    return IpIntel.bundled()


@pytest.fixture(scope="module")
def per_address(bundled: IpIntel) -> IpIntel:
    """The same databases, read address by address (the answers to match)."""
    return IpIntel(GetOnly(bundled.city), GetOnly(bundled.asn))


def members(ip: str, reader: Any, rng: random.Random) -> list[str]:
    """The first, last and a random address of the network ``reader`` names for ``ip``."""
    addr = ipaddress.ip_address(ip)
    _, length = reader.get_with_prefix_len(ip)
    net = ipaddress.ip_network((int(addr) >> (addr.max_prefixlen - length)
                                << (addr.max_prefixlen - length), length))
    size = net.num_addresses
    return [str(net.network_address + k) for k in (0, size - 1, rng.randrange(size))]


def origin_edges(limit: int) -> list[str]:
    """Addresses at and beside the ends of iporigin's ranges, where a network's answer
    would go wrong if a range boundary fell inside it."""
    table = iporigin.core.dataset()
    out = []
    for starts, ends, cls, bits in (
        (table.v4_starts, table.v4_ends, ipaddress.IPv4Address, 32),
        (table.v6_starts, table.v6_ends, ipaddress.IPv6Address, 128),
    ):
        step = max(1, len(starts) // limit)
        for start, end in list(zip(starts, ends, strict=True))[::step]:
            for value in (start - 1, start, start + 1, end - 1, end, end + 1):
                if 0 <= value < 2**bits:
                    out.append(str(cls(value)))
    return out


def test_addresses_of_remembered_networks_get_their_own_answer(
    bundled: IpIntel, per_address: IpIntel
) -> None:
    intel = IpIntel(bundled.city, bundled.asn)
    rng = random.Random(7)
    seeds = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(1500)]
    seeds += [str(ipaddress.IPv6Address((0x2400 + rng.randrange(0x800)) << 112
                                        | rng.getrandbits(112))) for _ in range(300)]
    seeds += ["123.120.5.9", "52.95.110.1", "1.1.1.1", "8.8.8.8", "2a02:26f7:d165:4000::1"]
    ips = list(seeds)
    for ip in seeds:
        ips += members(ip, bundled.city, rng) + members(ip, bundled.asn, rng)
    ips += origin_edges(2000)
    ips += ["::ffff:1.1.1.1", "10.0.0.1", "100.64.1.1", "198.51.100.7", "::1", "fe80::1"]
    for ip in ips:
        assert intel.lookup(ip) == per_address.lookup(ip), ip
    assert 0 < len(intel._networks) <= 16384


def test_the_network_cache_is_bounded(bundled: IpIntel, per_address: IpIntel) -> None:
    intel = IpIntel(bundled.city, bundled.asn, cache_size=0, network_cache_size=8)
    rng = random.Random(3)
    for _ in range(300):
        ip = str(ipaddress.IPv4Address(rng.getrandbits(32)))
        assert intel.lookup(ip) == per_address.lookup(ip)
        assert len(intel._networks) <= 8


def test_a_custom_classifier_is_asked_for_every_address(bundled: IpIntel) -> None:
    # Its ranges are unknown here, so a network's answer never carries its origin.
    asked: list[str] = []

    def by_last_octet(ip: str) -> tuple[str, str]:
        asked.append(ip)
        return ("hosting", "odd") if int(ip.rsplit(".", 1)[1]) % 2 else ("unknown", "")

    intel = IpIntel(bundled.city, bundled.asn, classify=by_last_octet)
    first, second = intel.lookup("123.120.5.9"), intel.lookup("123.120.5.10")
    assert (first.origin_kind, second.origin_kind) == ("hosting", "unknown")
    assert first.city == second.city and asked == ["123.120.5.9", "123.120.5.10"]
