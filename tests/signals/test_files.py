"""The file providers: formats, longest match, refusals naming the line, reload on change."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from riskengine.adapters.signals import (
    UNLISTED,
    IpReputationFile,
    PhoneRiskFile,
    Query,
    RecycledNumbersFile,
    SignalFileError,
)
from riskengine.adapters.signals.files import parse_date


def q(phone: str | None = None, ip: str = "123.120.5.9", asn: int | None = None) -> Query:
    return Query(phone=phone, phone_key="pk" if phone else None, ip=ip, ip_key="ik", asn=asn)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def touch_later(path: Path) -> None:
    """Move the modification time on: coarse file-system clocks can miss a quick rewrite."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_phone_risk_longest_prefix_wins(tmp_path: Path) -> None:
    risk = PhoneRiskFile(write(tmp_path / "risk.csv", (
        "# from the carrier, weekly\n"
        "number,level,note\n"
        "+86170,medium,virtual operator range\n"
        "+861700,low\n"
        "+8617001234567,high,reported\n"
        "\n")))
    assert risk.entries == 3
    assert risk.lookup(q("+8617001234567")).phone_risk_level == "high"
    assert risk.lookup(q("+8617001234568")).phone_risk_level == "low"
    assert risk.lookup(q("+8617012345678")).phone_risk_level == "medium"
    assert risk.lookup(q("+8613800138000")).phone_risk_level == UNLISTED


def test_recycled_keeps_the_latest_date_of_a_number(tmp_path: Path) -> None:
    recycled = RecycledNumbersFile(write(tmp_path / "recycled.csv", (
        "number,recycled_on\n"
        "+8613912345678,2025-03-01\n"
        "+8613912345678,2026-10-01T08:00:00+08:00\n"
        "+8613800138000,2026-01-15\n")))
    assert recycled.lookup(q("+8613912345678")).phone_recycled_at == \
        parse_date("2026-10-01T00:00:00Z")
    assert recycled.lookup(q("+8613800138000")).phone_recycled_at == parse_date("2026-01-15")
    assert recycled.lookup(q("+8618612345678")).phone_recycled_at is None


def test_ip_reputation_most_specific_entry_wins(tmp_path: Path) -> None:
    rep = IpReputationFile(write(tmp_path / "ip.csv", (
        "network,category,note\n"
        "45.83.0.0/16,proxy,rented proxies\n"
        "45.83.7.9,botnet\n"
        "2001:db8::/32,vpn\n"
        "AS4808,abuse\n"
        "as4134,hosting\n")))
    assert rep.entries == 5
    assert rep.lookup(q(ip="45.83.7.9")).ip_reputation == "botnet"
    assert rep.lookup(q(ip="45.83.7.10")).ip_reputation == "proxy"
    assert rep.lookup(q(ip="::ffff:45.83.7.9")).ip_reputation == "botnet"  # IPv4-mapped
    assert rep.lookup(q(ip="2001:db8:1::5")).ip_reputation == "vpn"
    # An ASN entry applies when no range does; a range wins over it.
    assert rep.lookup(q(ip="123.120.5.9", asn=4808)).ip_reputation == "abuse"
    assert rep.lookup(q(ip="45.83.1.1", asn=4808)).ip_reputation == "proxy"
    assert rep.lookup(q(ip="114.88.3.4", asn=4134)).ip_reputation == "hosting"
    assert rep.lookup(q(ip="8.8.8.8", asn=15169)).ip_reputation == UNLISTED


def test_the_same_range_twice_keeps_the_worse_category(tmp_path: Path) -> None:
    rep = IpReputationFile(write(tmp_path / "ip.csv", "1.2.3.0/24,vpn\n1.2.3.0/24,botnet\n"))
    assert rep.lookup(q(ip="1.2.3.4")).ip_reputation == "botnet"


@pytest.mark.parametrize(("cls", "text", "expected"), [
    (PhoneRiskFile, "number,level\n+8613800138000,extreme\n", "line 2: level 'extreme'"),
    (PhoneRiskFile, "8613800138000,high\n", "line 1: the number or prefix"),
    (PhoneRiskFile, "+8613800138000\n", "line 1: needs two columns"),
    (RecycledNumbersFile, "+8613800138000,yesterday\n", "line 1: recycled_on 'yesterday'"),
    (RecycledNumbersFile, "+86138,2026-01-01\n", "line 1: the number must be E.164"),
    (RecycledNumbersFile, "+8613800138000,2026-01-01T00:00:00\n", "line 1: recycled_on"),
    (IpReputationFile, "# c\n10.0.0.0/8,spam\n", "line 2: category 'spam'"),
    (IpReputationFile, "10.0.0.300,vpn\n", "line 1: '10.0.0.300' is not an address"),
])
def test_an_invalid_file_is_refused_naming_the_line(tmp_path: Path, cls, text, expected) -> None:
    with pytest.raises(SignalFileError, match=expected) as err:
        cls(write(tmp_path / "f.csv", text))
    assert "8613800138000" not in str(err.value)  # a malformed number is not echoed


def test_a_missing_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(SignalFileError, match="cannot read"):
        PhoneRiskFile(tmp_path / "nope.csv")


def test_a_changed_file_is_reloaded_without_a_restart(tmp_path: Path) -> None:
    path = write(tmp_path / "risk.csv", "+8613800138000,low\n")
    risk = PhoneRiskFile(path, check_interval_s=0)
    assert risk.lookup(q("+8613800138000")).phone_risk_level == "low"
    write(path, "+8613800138000,high\n+86139,medium\n")
    touch_later(path)
    # The lookup that notices answers from the old table; a background thread re-reads.
    deadline = time.monotonic() + 5
    while risk.lookup(q("+8613800138000")).phone_risk_level != "high":
        assert time.monotonic() < deadline, "the new file was never loaded"
        time.sleep(0.01)
    assert risk.entries == 2 and risk.loads == 2
    assert risk.lookup(q("+8613912345678")).phone_risk_level == "medium"


def test_changes_are_checked_at_most_every_interval(tmp_path: Path) -> None:
    now = [0.0]
    path = write(tmp_path / "risk.csv", "+8613800138000,low\n")
    risk = PhoneRiskFile(path, check_interval_s=5.0, clock=lambda: now[0])
    write(path, "+8613800138000,high\n")
    touch_later(path)
    assert risk.refresh(wait=True) is False  # not yet time to look
    assert risk.lookup(q("+8613800138000")).phone_risk_level == "low"
    now[0] = 5.0
    assert risk.refresh(wait=True) is True
    assert risk.lookup(q("+8613800138000")).phone_risk_level == "high"


def test_an_invalid_refresh_is_refused_and_the_old_contents_keep_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "ip.csv", "45.83.0.0/16,proxy\n")
    rep = IpReputationFile(path, check_interval_s=0)
    write(path, "45.83.0.0/16,proxy\n5.188.0.0/16,bulletproof\n")
    touch_later(path)
    assert rep.refresh(wait=True) is False
    assert "line 2" in (rep.last_error or "")
    assert "refused" in caplog.text
    assert rep.lookup(q(ip="45.83.1.1")).ip_reputation == "proxy"
    write(path, "45.83.0.0/16,proxy\n5.188.0.0/16,abuse\n")
    touch_later(path)
    assert rep.refresh(wait=True) is True
    assert rep.last_error is None
    assert rep.lookup(q(ip="5.188.1.1")).ip_reputation == "abuse"


def test_a_file_moved_away_keeps_the_old_contents(tmp_path: Path) -> None:
    path = write(tmp_path / "risk.csv", "+86170,medium\n")
    risk = PhoneRiskFile(path, check_interval_s=0)
    path.unlink()
    assert risk.lookup(q("+8617012345678")).phone_risk_level == "medium"
    assert "cannot read" in (risk.last_error or "")
