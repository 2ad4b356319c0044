"""Replay: the same engine over a file, challenges answered, figures after the warm-up."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

from features.ipintel import IpIntel
from models import persistence
from models.freeman import FreemanModel
from riskengine.adapters.stores import MemoryStore
from riskengine.core.privacy import Pseudonymizer
from riskengine.core.rules import load_ruleset
from riskengine.service.scorer import Engine
from riskengine.tools.datasets import read_rba
from riskengine.tools.replay import Replayer, Scores, format_report, read_jsonl
from riskengine.tools.simulate import Simulator, write_jsonl

RBA_SAMPLE = Path(__file__).parents[3] / "shared" / "data" / "rba-dataset-sample.csv"


@pytest.fixture(scope="module")
def intel() -> IpIntel:
    return IpIntel.bundled()


def engine(intel: IpIntel) -> Engine:
    model, card = persistence.load()
    return Engine(store=MemoryStore(), ruleset=load_ruleset(), model=model,
                  model_version=card["model_version"], ipintel=intel,
                  pseudonymizer=Pseudonymizer(b"replay-test-key-0123456789"))


@pytest.fixture(scope="module")
def report(intel: IpIntel) -> dict:
    events = list(Simulator(users=150, days=30, seed=5).events())
    return Replayer(engine(intel), baseline=FreemanModel(), seed=1).run(
        events, progress=False).to_dict()


def test_report_has_every_figure(report: dict) -> None:
    assert report["events"] > 1000 and report["warmup_events"] > 0
    assert set(report["customers"]) >= {"allow", "challenge", "deny", "events"}
    assert "credential_stuffing" in report["scenarios"]
    for who in ("riskengine", "freeman"):
        assert 0.5 < report[who]["roc_auc"] <= 1.0
        assert set(report[who]["catch_rate_at"]) == {"1%", "2%", "5%"}
    assert report["events_per_second"] > 0
    text = format_report(report)
    assert "customers:" in text and "freeman" in text


def test_customers_mostly_pass_and_stuffing_is_blocked(report: dict) -> None:
    assert report["customers"]["allow"] > 0.9
    assert report["scenarios"]["credential_stuffing"]["blocked"] > 0.9


def test_a_passed_challenge_is_fed_back(intel: IpIntel) -> None:
    """A customer's new phone is challenged once; after passing, it is known."""
    eng = engine(intel)
    base = {"user_id": "+8613800138000", "ip": "123.120.5.9", "phone": "+8613800138000",
            "network": {"type": "wifi", "ssid": "Home"}, "label": {"attack": False}}
    old = {"device": {"id": "490154203237518", "model": "Xiaomi 14"}}
    new = {"device": {"id": "356938035643809", "model": "iPhone 15"},
           "network": {"type": "cellular"}, "ip": "223.104.3.7"}
    lines = [{**base, **old, "timestamp": f"2026-10-{d:02d}T01:00:00Z"} for d in range(1, 11)]
    lines += [{**base, **new, "timestamp": f"2026-10-{d:02d}T02:00:00Z"} for d in (11, 12)]
    decisions = []
    original = eng.score_event

    def spy(event, **kw):
        scored = original(event, **kw)
        decisions.append(scored.body["decision"])
        return scored

    eng.score_event = spy  # type: ignore[method-assign]
    Replayer(eng, warmup_days=0, customer_pass_rate=1.0).run(lines, progress=False)
    assert decisions[-2:] == ["challenge", "allow"]


def test_scores_catch_rates_never_flag_more_customers_than_the_rate() -> None:
    scores = Scores(customers=array("f", [0.0] * 90 + [0.5] * 9 + [0.9]),
                    attacks=array("f", [0.95, 0.5, 0.0]))
    out = scores.summary()
    at1 = out["catch_rate_at"]["1%"]
    assert at1["customers_flagged"] <= 0.01
    assert at1["attacks_caught"] == pytest.approx(1 / 3)
    at5 = out["catch_rate_at"]["5%"]
    assert at5["customers_flagged"] <= 0.05


def test_read_jsonl_streams_plain_and_gzip(tmp_path: Path) -> None:
    events = list(Simulator(users=5, days=2, seed=1).events())
    plain, packed = tmp_path / "e.jsonl", tmp_path / "e.jsonl.gz"
    with plain.open("w") as fh:
        write_jsonl(iter(events), fh)
    with gzip.open(packed, "wt") as fh:
        write_jsonl(iter(events), fh)
    assert list(read_jsonl(plain)) == events == list(read_jsonl(packed))


@pytest.mark.skipif(not RBA_SAMPLE.exists(), reason="shared RBA sample not present")
def test_replay_runs_on_the_public_rba_format(intel: IpIntel) -> None:
    rows = list(read_rba(RBA_SAMPLE))
    out = Replayer(engine(intel), warmup_days=0).run(rows, progress=False).to_dict()
    assert out["events"] == len(rows) and out["refused"]["events"] == 0


def test_cli_simulate_then_replay(tmp_path: Path) -> None:
    data, report = tmp_path / "t.jsonl", tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    run = [sys.executable, "-m", "riskengine.tools.cli"]
    subprocess.run([*run, "simulate", "--users", "60", "--days", "20", "--seed", "3",
                    "--out", str(data)], check=True, env=env, capture_output=True)
    done = subprocess.run([*run, "replay", str(data), "--json", str(report),
                           "--baseline", "freeman"], check=True, env=env, capture_output=True,
                          text=True)
    figures = json.loads(report.read_text())
    assert figures["events"] == len(data.read_text().splitlines())
    assert "customers:" in done.stdout
    assert "events/s" not in done.stderr  # no progress bar when stderr is not a terminal


def test_cli_simulates_a_drawn_world(tmp_path: Path) -> None:
    """``--world-seed N`` writes the traffic bench/detection.py replays for world N."""
    from riskengine.tools.worlds import World

    data = tmp_path / "w.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    subprocess.run([sys.executable, "-m", "riskengine.tools.cli", "simulate", "--users", "30",
                    "--days", "16", "--seed", "2", "--world-seed", "13", "--out", str(data)],
                   check=True, env=env, capture_output=True)
    expected = list(Simulator(users=30, days=16, seed=2, world=World.draw(13)).events())
    written = [json.loads(line) for line in data.read_text().splitlines()]
    assert written == json.loads(json.dumps(expected))
    assert written[0]["event_id"].startswith("sim2w13-")


@pytest.mark.skipif(not RBA_SAMPLE.exists(), reason="shared RBA sample not present")
def test_cli_replays_the_rba_csv(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKENGINE_")}
    report = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "riskengine.tools.cli", "replay", str(RBA_SAMPLE),
                    "--warmup-days", "0", "--json", str(report)], check=True, env=env,
                   capture_output=True)
    assert json.loads(report.read_text())["events"] == 19
