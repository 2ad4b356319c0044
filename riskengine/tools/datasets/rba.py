"""Stream the public Risk-Based Authentication (RBA) login dataset as labelled wire records.

The dataset: Wiefling, Jørgensen, Thunem, Lo Iacono, "Pump Up Password Security! Evaluating
and Enhancing Risk-Based Authentication on a Real-World Large-Scale Online Service", ACM TOPS
2022 (https://github.com/das-group/rba-dataset, CC BY 4.0): 31 M synthesized login attempts
of 3.3 M users of a Norwegian single sign-on service, about 9 GB of CSV. Rows are read one at
a time with the ``csv`` module, so memory stays constant however large the file is.

Each row becomes the simulator's labelled JSONL record: the ``/v1/score`` wire fields, a
``label`` and the row's own geolocation as ``ip_facts`` (its addresses are synthesized, some
private like 10.0.65.171, so a geolocation database would say nothing useful about them).

>>> import io
>>> header = ",".join(RBA_COLUMNS)
>>> line = ("0,2020-02-03 12:43:30.772,-43,,10.0.65.171,NO,-,-,29695,Mozilla/5.0,"
...         "Firefox 20.0,iOS 13.4,mobile,False,False,False")
>>> row = next(read_rba(io.StringIO(header + "\\n" + line + "\\n")))
>>> row["timestamp"], row["auth_result"], row["label"], row["ip_facts"]["asn"]
('2020-02-03T12:43:30.772Z', 'failure', {'attack': False, 'scenario': 'customer'}, 29695)
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from os import PathLike
from pathlib import Path
from typing import IO, Any, Final

from pydantic import ValidationError

from riskengine.core.wire import ScoreRequest

RBA_COLUMNS: Final = (
    "index",
    "Login Timestamp",
    "User ID",
    "Round-Trip Time [ms]",
    "IP Address",
    "Country",
    "Region",
    "City",
    "ASN",
    "User Agent String",
    "Browser Name and Version",
    "OS Name and Version",
    "Device Type",
    "Login Successful",
    "Is Attack IP",
    "Is Account Takeover",
)

# Fields of a yielded record that are not part of the wire request.
EXTRA_FIELDS: Final = ("label", "ip_facts")

_BOOLS: Final = {"True": True, "False": False}
_ABSENT: Final = frozenset({"", "-"})
# The dataset writes UTC without an offset: "2020-02-03 12:43:30.772".
_TIMESTAMP = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]([0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?)")
_GZIP_MAGIC: Final = b"\x1f\x8b"

Source = str | PathLike[str] | IO[str] | IO[bytes]


class _Skip(Exception):
    """A row that cannot become a valid wire record; ``args[0]`` says why."""


def _flag(value: str, column: str) -> bool:
    try:
        return _BOOLS[value.strip()]
    except KeyError:
        raise _Skip(f"bad {column}") from None


def _text(value: str) -> str | None:
    value = value.strip()
    return None if value in _ABSENT else value


def _asn(value: str) -> int | None:
    value = value.strip()
    if value in _ABSENT:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:  # some exports write integers as floats ("29695.0")
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _timestamp(value: str) -> str:
    m = _TIMESTAMP.fullmatch(value.strip())
    if m is None:
        raise _Skip("bad timestamp")
    return f"{m.group(1)}T{m.group(2)}Z"


def _scenario(attack_ip: bool, takeover: bool) -> str:
    if takeover:
        return "account_takeover"
    return "attack_ip" if attack_ip else "customer"


def _open_text(source: Source, stack: ExitStack) -> IO[str]:
    """A text stream over ``source``: a path (gzip when it ends in .gz) or an open file."""
    if isinstance(source, str | PathLike):
        path = Path(source)
        if path.suffix == ".gz":
            return stack.enter_context(gzip.open(path, "rt", encoding="utf-8", newline=""))
        return stack.enter_context(path.open(encoding="utf-8", newline=""))
    if not isinstance(source, io.BufferedIOBase | io.RawIOBase) and "b" not in str(
        getattr(source, "mode", "")
    ):
        return source  # type: ignore[return-value]  # a text file
    binary: Any = source
    peek = getattr(binary, "peek", None)
    if peek is not None and peek(2)[:2] == _GZIP_MAGIC:
        binary = gzip.GzipFile(fileobj=binary, mode="rb")
    # Detach, not close, when done: the caller owns the file object it passed in.
    text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    stack.callback(text.detach)
    return text


class RbaReader:
    """Reads one RBA dataset file; counts the rows it had to skip.

    Parameters
    ----------
    source
        A path (``.gz`` is read as gzip) or an open text or binary file.
    limit
        Stop after this many yielded records (skipped rows do not count); None reads all.
    validate
        Check every record with ``riskengine.core.wire.ScoreRequest`` (about 10 µs a row), so a
        replay never sends what the API would refuse. The addresses are written back in
        their canonical form.

    After (or during) ``read``, ``skipped`` is the number of rows left out and
    ``skipped_by_reason`` says why (bad timestamp, bad IP address, wrong field count...).
    A row is left out whole, labels included, so a replay and its evaluation see the same
    logins.
    """

    def __init__(self, source: Source, *, limit: int | None = None, validate: bool = True):
        if limit is not None and limit < 0:
            raise ValueError("limit must be None or at least 0")
        self.source = source
        self.limit = limit
        self.validate = validate
        self.skipped = 0
        self.skipped_by_reason: Counter[str] = Counter()

    def read(self) -> Iterator[dict[str, Any]]:
        """Yield one labelled wire record per usable row, in file order."""
        if self.limit == 0:
            return
        with ExitStack() as stack:
            yield from self._records(csv.reader(_open_text(self.source, stack)))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.read()

    def _records(self, rows: Iterable[list[str]]) -> Iterator[dict[str, Any]]:
        it = iter(rows)
        header = next(it, None)
        if header is None:
            return
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for c in RBA_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"not an RBA dataset file: missing columns {missing}")
        where = {name: header.index(name) for name in RBA_COLUMNS}
        width = len(header)
        yielded = 0
        while True:
            try:
                fields = next(it)
            except StopIteration:
                return
            except csv.Error:  # an unterminated quote, a NUL byte: lose the row, not the file
                self._skip("unreadable csv")
                continue
            if not fields:
                continue  # blank line
            if len(fields) != width:
                self._skip("wrong field count")
                continue
            try:
                record = self._record({name: fields[i] for name, i in where.items()})
            except _Skip as why:
                self._skip(str(why.args[0]))
                continue
            yield record
            yielded += 1
            if self.limit is not None and yielded >= self.limit:
                return

    def _record(self, row: dict[str, str]) -> dict[str, Any]:
        success = _flag(row["Login Successful"], "Login Successful")
        attack_ip = _flag(row["Is Attack IP"], "Is Attack IP")
        takeover = _flag(row["Is Account Takeover"], "Is Account Takeover")
        wire: dict[str, Any] = {
            "event_id": f"rba-{row['index'].strip()}",
            "user_id": row["User ID"].strip(),
            "timestamp": _timestamp(row["Login Timestamp"]),
            "event_type": "login",
            "auth_result": "success" if success else "failure",
            "login_method": "password",
            "ip": row["IP Address"].strip(),
            "user_agent": row["User Agent String"] or None,
        }
        if self.validate:
            try:
                request = ScoreRequest(**wire)
            except ValidationError as e:
                raise _Skip(_reason(e)) from None
            wire["ip"] = request.ip
        return {
            **wire,
            "label": {"attack": attack_ip or takeover, "scenario": _scenario(attack_ip, takeover)},
            "ip_facts": {
                "country": _text(row["Country"]),
                "region": _text(row["Region"]),
                "city": _text(row["City"]),
                "asn": _asn(row["ASN"]),
            },
        }

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        self.skipped_by_reason[reason] += 1


def _reason(error: ValidationError) -> str:
    fields = sorted({str(err["loc"][0]) for err in error.errors() if err["loc"]})
    return "invalid " + (", ".join(fields) or "record")


def read_rba(path_or_file: Source, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Stream labelled wire records from an RBA dataset file (see ``RbaReader``).

    Use ``RbaReader`` directly to learn how many rows were skipped.
    """
    return RbaReader(path_or_file, limit=limit).read()
