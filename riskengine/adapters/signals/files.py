"""Providers over local files an operator refreshes: phone risk, recycled numbers, IP
reputation. Each file is read at start (an invalid one stops the start, naming the line),
and read again when its modification time or size changes, checked at most every
``check_interval_s``, so a refreshed file applies without a restart. A refresh that cannot
be read or parsed is refused, logged with the line, and the previous contents keep serving.

Formats: CSV, UTF-8, ``#`` starts a comment line, blank lines are skipped, an optional header
row, an optional last column ``note`` that is ignored.

``phone_risk.csv``: ``number,level`` where ``number`` is an E.164 number or prefix (``+``
and 1 to 15 digits) and ``level`` is ``low``, ``medium`` or ``high``; the longest prefix
that matches wins, so a whole number overrides its range::

    number,level,note
    +86170,medium,virtual operator range
    +8613800138000,high,reported by the carrier

``recycled.csv``: ``number,recycled_on``: an E.164 number and the date (``2026-10-01``,
midnight UTC) or RFC 3339 time it was reassigned to a new subscriber; the latest row of a
number counts::

    number,recycled_on
    +8613912345678,2026-10-01

``ip_reputation.csv``: ``network,category`` where ``network`` is an address, a CIDR range
or an ASN (``AS4134``) and ``category`` one of botnet, abuse, proxy, tor, vpn, hosting. The
longest matching range wins, and any range wins over the ASN::

    network,category,note
    45.83.0.0/16,proxy,rented proxies
    AS9009,vpn

The numbers are personal data: the files hold them as the carrier or risk service delivered
them, they live outside the profile store, and nothing the engine stores, logs or exports
copies them (decisions keep only the level, category or date). Hashed numbers are not
accepted: an unkeyed hash of a phone number is reversed by enumerating the numbering plan,
so it would only look safer.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from riskengine.adapters.signals.base import (
    IP_CATEGORIES,
    RISK_LEVELS,
    UNLISTED,
    Answer,
    Query,
    Signal,
    Subject,
)

log = logging.getLogger("riskengine.signals")

_PREFIX = re.compile(r"\+[0-9]{1,15}")
_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")
_ASN = re.compile(r"(?i)AS([0-9]{1,10})")

T = TypeVar("T")


class SignalFileError(ValueError):
    """A signal file that cannot be used; the message names the file and the line."""


class FileProvider(Generic[T]):
    """A table parsed from a file, reloaded when the file changes.

    Subclasses say how a file becomes a table (``parse``) and how a table answers
    (``answer``). A lookup is a look into memory, so it runs in the scoring thread
    (``inline``). It also looks at the file's modification time and size, at most every
    ``check_interval_s`` (0: every time); when they changed, one background thread re-reads
    the file while lookups go on answering from the table they have, and the new table
    replaces it once it is parsed and valid.
    """

    name: ClassVar[str]
    subject: ClassVar[Subject]
    provides: ClassVar[tuple[Signal, ...]]
    header: ClassVar[str]
    inline = True
    # A lookup in memory takes microseconds; the guard counts a slower one as a failure.
    timeout_s: float = 0.05

    def __init__(
        self,
        path: str | Path,
        *,
        check_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.check_interval_s = check_interval_s
        self.clock = clock
        self.last_error: str | None = None
        self.loads = 0
        self._reloading = threading.Lock()
        try:
            self._stamp = self._file_stamp()
        except OSError as exc:
            raise SignalFileError(f"cannot read {self.path}: {exc.strerror}") from None
        self._table, self.entries = self._read()  # an unreadable file stops the start
        self._checked = clock()

    def lookup(self, query: Query) -> Answer:
        self.refresh()
        return self.answer(self._table, query)

    def refresh(self, *, force: bool = False, wait: bool = False) -> bool:
        """Re-read the file if it changed (``force``: whatever the clock and the stamp say).

        Returns whether a re-read started; with ``wait`` it happens in this thread, and the
        result is whether new contents were loaded.
        """
        now = self.clock()
        if not force and now - self._checked < self.check_interval_s:
            return False
        if not self._reloading.acquire(blocking=False):
            return False  # another thread is at it; answer from the current table
        started = False
        try:
            self._checked = now
            try:
                stamp = self._file_stamp()
            except OSError as exc:  # moved away mid-refresh: keep what we have
                self._refused(f"cannot read {self.path}: {exc.strerror}")
                return False
            if stamp == self._stamp and not force:
                return False
            if wait:
                return self._reload(stamp)
            threading.Thread(target=self._reload, args=(stamp, True), daemon=True,
                             name=f"reload-{self.name}").start()
            started = True
            return True
        finally:
            if not started:
                self._reloading.release()

    def _reload(self, stamp: tuple[int, int], release: bool = False) -> bool:
        try:
            try:
                table, entries = self._read()
            except SignalFileError as exc:
                self._stamp = stamp  # reported once per edit
                self._refused(str(exc))
                return False
            self._table, self.entries, self._stamp = table, entries, stamp
            self.last_error = None
            log.warning(json.dumps({"event": "signal_file_loaded", "provider": self.name,
                                    "file": str(self.path), "entries": entries}))
            return True
        finally:
            if release:
                self._reloading.release()

    def status(self) -> dict[str, Any]:
        return {"file": str(self.path), "entries": self.entries, "loads": self.loads,
                "last_error": self.last_error}

    # -- what subclasses define

    def parse(self, rows: Iterator[tuple[int, list[str]]]) -> tuple[T, int]:
        raise NotImplementedError

    def answer(self, table: T, query: Query) -> Answer:
        raise NotImplementedError

    # -- reading

    def _file_stamp(self) -> tuple[int, int]:
        st = self.path.stat()
        return st.st_mtime_ns, st.st_size

    def _read(self) -> tuple[T, int]:
        try:
            text = self.path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SignalFileError(f"cannot read {self.path}: {exc}") from None
        result = self.parse(self._rows(text))
        self.loads += 1
        return result

    def _rows(self, text: str) -> Iterator[tuple[int, list[str]]]:
        first = True
        for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if first and cells[0].lower() == self.header:
                first = False
                continue
            first = False
            if len(cells) < 2:
                raise self.error(line, "needs two columns")
            yield line, cells

    def error(self, line: int, message: str) -> SignalFileError:
        return SignalFileError(f"{self.path.name} line {line}: {message}")

    def _refused(self, message: str) -> None:
        self.last_error = message
        log.error(json.dumps({"event": "signal_file_refused", "provider": self.name,
                              "error": message, "kept": "the previous contents"}))


class PhoneRiskFile(FileProvider[dict[str, str]]):
    """Risk levels by E.164 number or prefix; the longest matching prefix wins."""

    name = "phone-risk-file"
    subject = "phone"
    provides = (Signal.PHONE_RISK,)
    header = "number"

    def parse(self, rows: Iterator[tuple[int, list[str]]]) -> tuple[dict[str, str], int]:
        table: dict[str, str] = {}
        for line, (number, level, *_) in rows:
            if not _PREFIX.fullmatch(number):  # the value is not quoted: it may be a number
                raise self.error(line, "the number or prefix must be + and 1 to 15 digits")
            if level.lower() not in RISK_LEVELS:
                raise self.error(line, f"level '{level[:20]}' is not one of "
                                       f"{', '.join(RISK_LEVELS)}")
            table[number] = level.lower()
        return table, len(table)

    def answer(self, table: dict[str, str], query: Query) -> Answer:
        number = query.phone or ""
        for n in range(len(number), 1, -1):
            level = table.get(number[:n])
            if level is not None:
                return Answer(phone_risk_level=level)
        return Answer(phone_risk_level=UNLISTED)


class RecycledNumbersFile(FileProvider[dict[str, float]]):
    """When each listed number was last reassigned to a new subscriber."""

    name = "recycled-file"
    subject = "phone"
    provides = (Signal.PHONE_RECYCLED,)
    header = "number"

    def parse(self, rows: Iterator[tuple[int, list[str]]]) -> tuple[dict[str, float], int]:
        table: dict[str, float] = {}
        for line, (number, when, *_) in rows:
            if not _NUMBER.fullmatch(number):
                raise self.error(line, "the number must be E.164 (+ and 7 to 15 digits)")
            try:
                at = parse_date(when)
            except ValueError:
                raise self.error(line, f"recycled_on '{when[:40]}' is not a date "
                                       "(2026-10-01) or an RFC 3339 time") from None
            table[number] = max(at, table.get(number, at))
        return table, len(table)

    def answer(self, table: dict[str, float], query: Query) -> Answer:
        return Answer(phone_recycled_at=table.get(query.phone or ""))


_Nets = tuple[dict[int, dict[int, dict[int, str]]], dict[int, str]]


class IpReputationFile(FileProvider[_Nets]):
    """Categories of addresses, CIDR ranges and ASNs; the most specific entry wins."""

    name = "ip-reputation-file"
    subject = "ip"
    provides = (Signal.IP_REPUTATION,)
    header = "network"

    def parse(self, rows: Iterator[tuple[int, list[str]]]) -> tuple[_Nets, int]:
        # version -> prefix length -> network number (address >> host bits) -> category
        nets: dict[int, dict[int, dict[int, str]]] = {4: {}, 6: {}}
        asns: dict[int, str] = {}
        n = 0
        for line, (network, category, *_) in rows:
            category = category.lower()
            if category not in IP_CATEGORIES:
                raise self.error(line, f"category '{category[:20]}' is not one of "
                                       f"{', '.join(IP_CATEGORIES)}")
            asn = _ASN.fullmatch(network)
            if asn:
                asns[int(asn.group(1))] = _worse(category, asns.get(int(asn.group(1))))
                n += 1
                continue
            try:
                net = ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise self.error(line, f"'{network[:50]}' is not an address, a CIDR range "
                                       "or an ASN like AS4134") from None
            bits = net.max_prefixlen - net.prefixlen
            by_len = nets[net.version].setdefault(net.prefixlen, {})
            key = int(net.network_address) >> bits
            by_len[key] = _worse(category, by_len.get(key))
            n += 1
        # Longest prefixes first, so the first match is the most specific.
        ordered = {v: dict(sorted(lens.items(), reverse=True)) for v, lens in nets.items()}
        return (ordered, asns), n

    def answer(self, table: _Nets, query: Query) -> Answer:
        nets, asns = table
        try:
            addr = ipaddress.ip_address(query.ip)
        except ValueError:
            return Answer(ip_reputation=UNLISTED)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        value, width = int(addr), addr.max_prefixlen
        for length, networks in nets[addr.version].items():
            category = networks.get(value >> (width - length))
            if category is not None:
                return Answer(ip_reputation=category)
        if query.asn is not None and query.asn in asns:
            return Answer(ip_reputation=asns[query.asn])
        return Answer(ip_reputation=UNLISTED)


def _worse(category: str, other: str | None) -> str:
    """Of two categories for the same entry, the more severe."""
    if other is None:
        return category
    return min(category, other, key=IP_CATEGORIES.index)


def parse_date(text: str) -> float:
    """Epoch seconds of ``2026-10-01`` (midnight UTC) or an RFC 3339 time with offset."""
    text = text.strip()
    if len(text) == 10:
        d = date.fromisoformat(text)
        return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
    when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError("a time needs its offset")
    return when.timestamp()
