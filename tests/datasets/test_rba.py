"""The RBA dataset loader against the shared 19-row sample and hand-made edge cases."""

from __future__ import annotations

import csv
import gzip
import inspect
import io
from pathlib import Path

import pytest

from riskengine.core.wire import ScoreRequest
from riskengine.tools.datasets import RBA_COLUMNS, RbaReader, read_rba

SAMPLE = Path(__file__).parents[3] / "shared" / "data" / "rba-dataset-sample.csv"

needs_sample = pytest.mark.skipif(
    not SAMPLE.exists(), reason=f"RBA dataset sample not found at {SAMPLE}"
)

ROW = {
    "index": "7",
    "Login Timestamp": "2020-02-03 12:44:12.799",
    "User ID": "-3243978724802435038",
    "Round-Trip Time [ms]": "",
    "IP Address": "170.39.78.177",
    "Country": "US",
    "Region": "-",
    "City": "-",
    "ASN": "393398",
    "User Agent String": "Mozilla/5.0 (Linux; Android 10.0.99; H30-U10) AppleWebKit/537.36",
    "Browser Name and Version": "Chrome Mobile 81.0.4044.1931",
    "OS Name and Version": "Android 10.0.99",
    "Device Type": "mobile",
    "Login Successful": "True",
    "Is Attack IP": "False",
    "Is Account Takeover": "False",
}


def _csv(*rows: dict[str, str] | list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RBA_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in RBA_COLUMNS] if isinstance(row, dict) else row)
    return out.getvalue()


def _wire(record: dict) -> ScoreRequest:
    return ScoreRequest(**{k: v for k, v in record.items() if k not in ("label", "ip_facts")})


@needs_sample
def test_first_sample_row_maps_to_a_labelled_wire_record() -> None:
    first = next(read_rba(SAMPLE))
    assert first == {
        "event_id": "rba-0",
        "user_id": "-4324475583306591935",
        "timestamp": "2020-02-03T12:43:30.772Z",
        "event_type": "login",
        "auth_result": "failure",
        "login_method": "password",
        "ip": "10.0.65.171",
        "user_agent": "Mozilla/5.0  (iPhone; CPU iPhone OS 13_4 like Mac OS X) Gecko/20150101 "
        "Firefox/20.0.0.1618 (Chrome variation/248113",
        "label": {"attack": False, "scenario": "customer"},
        "ip_facts": {"country": "NO", "region": None, "city": None, "asn": 29695},
    }


@needs_sample
def test_every_sample_row_validates_as_a_score_request() -> None:
    reader = RbaReader(SAMPLE)
    records = list(reader.read())
    assert len(records) == 19
    assert reader.skipped == 0
    assert [r["event_id"] for r in records] == [f"rba-{i}" for i in range(19)]
    for record in records:
        request = _wire(record)
        assert request.user_id == record["user_id"]
        assert request.timestamp is not None and request.timestamp.endswith("Z")


@needs_sample
def test_sample_labels_and_geolocation() -> None:
    records = list(read_rba(SAMPLE))
    assert records[2]["auth_result"] == "success"
    assert records[2]["ip_facts"] == {
        "country": "NO",
        "region": "Vestland",
        "city": "Urangsvag",
        "asn": 29695,
    }
    assert records[4]["label"] == {"attack": True, "scenario": "attack_ip"}
    assert records[5]["label"] == {"attack": True, "scenario": "attack_ip"}
    assert sum(r["label"]["attack"] for r in records) == 2
    assert records[15]["timestamp"] == "2020-02-03T12:44:30.475Z"


def test_account_takeover_wins_over_attack_ip() -> None:
    rows = [
        {**ROW, "Is Account Takeover": "True"},
        {**ROW, "Is Attack IP": "True", "Is Account Takeover": "True"},
        {**ROW, "Is Attack IP": "True"},
        ROW,
    ]
    labels = [r["label"] for r in read_rba(io.StringIO(_csv(*rows)))]
    assert labels == [
        {"attack": True, "scenario": "account_takeover"},
        {"attack": True, "scenario": "account_takeover"},
        {"attack": True, "scenario": "attack_ip"},
        {"attack": False, "scenario": "customer"},
    ]


def test_absent_values_become_none() -> None:
    row = {**ROW, "Country": "", "ASN": "-", "User Agent String": ""}
    record = next(read_rba(io.StringIO(_csv(row))))
    assert record["ip_facts"] == {"country": None, "region": None, "city": None, "asn": None}
    assert record["user_agent"] is None
    _wire(record)


@needs_sample
def test_reading_streams_and_stops_at_the_limit() -> None:
    stream = read_rba(SAMPLE)
    assert inspect.isgenerator(stream)
    assert next(stream)["event_id"] == "rba-0"
    stream.close()
    assert [r["event_id"] for r in read_rba(SAMPLE, limit=3)] == ["rba-0", "rba-1", "rba-2"]
    assert list(read_rba(SAMPLE, limit=0)) == []
    assert len(list(read_rba(SAMPLE, limit=1000))) == 19


def test_the_limit_counts_yielded_records_not_skipped_rows() -> None:
    text = _csv({**ROW, "IP Address": "not-an-ip"}, {**ROW, "index": "8"}, {**ROW, "index": "9"})
    reader = RbaReader(io.StringIO(text), limit=1)
    assert [r["event_id"] for r in reader.read()] == ["rba-8"]
    assert reader.skipped == 1


@needs_sample
def test_gzip_files_read_the_same(tmp_path: Path) -> None:
    packed = tmp_path / "rba-dataset.csv.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    plain = list(read_rba(SAMPLE))
    assert list(read_rba(packed)) == plain
    assert list(read_rba(str(packed))) == plain
    with packed.open("rb") as f:  # an open binary file, recognised by its magic bytes
        assert list(read_rba(f)) == plain
        assert not f.closed


def test_open_text_and_binary_files_are_read_and_left_open() -> None:
    text = _csv(ROW)
    raw = io.BytesIO(text.encode())
    buffered = io.BufferedReader(io.BytesIO(text.encode()))
    for f in (io.StringIO(text), raw, buffered):
        assert [r["event_id"] for r in read_rba(f)] == ["rba-7"]
        assert not f.closed


def test_malformed_rows_are_skipped_and_counted() -> None:
    text = _csv(
        {**ROW, "index": "1", "IP Address": "999.1.1.1"},
        {**ROW, "index": "2", "Login Timestamp": "2020-02-30 12:00:00.000"},
        {**ROW, "index": "3", "Login Timestamp": "03/02/2020 12:00"},
        {**ROW, "index": "4", "Login Successful": "yes"},
        {**ROW, "index": "5", "User ID": ""},
        ["6", "2020-02-03 12:44:12.799", "-1", "", "1.2.3.4"],  # cut short
        {**ROW, "index": "7"},
    )
    reader = RbaReader(io.StringIO(text))
    records = list(reader.read())
    assert [r["event_id"] for r in records] == ["rba-7"]
    assert reader.skipped == 6
    assert reader.skipped_by_reason == {
        "invalid ip": 1,
        "invalid timestamp": 1,
        "bad timestamp": 1,
        "bad Login Successful": 1,
        "invalid user_id": 1,
        "wrong field count": 1,
    }


def test_a_file_without_the_dataset_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        list(read_rba(io.StringIO("index,User ID\n0,1\n")))


def test_an_empty_file_yields_nothing() -> None:
    reader = RbaReader(io.StringIO(""))
    assert list(reader.read()) == []
    assert reader.skipped == 0
