"""The notebooks' glue: the three sources give the engine's features, thresholds land in a
valid ruleset copy, splits never let a model see the future."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

from riskengine.core.feedback import Label, Source
from riskengine.core.rules import load_ruleset, parse_ruleset
from riskengine.tools.replay import read_jsonl

from .runner import import_analysis

analysis = import_analysis()
RBA_SAMPLE = Path(__file__).parents[3] / "shared" / "data" / "rba-dataset-sample.csv"


def test_the_committed_sample_is_small_and_labelled() -> None:
    assert analysis.SAMPLE.stat().st_size < 1_000_000
    lines = list(itertools.islice(read_jsonl(analysis.SAMPLE), 50))
    assert all("label" in line and "user_id" in line for line in lines)


@pytest.fixture(scope="module")
def sample_head() -> list[dict]:
    return list(itertools.islice(read_jsonl(analysis.SAMPLE), 600))


def test_a_replayed_frame_holds_every_feature_and_the_labels(sample_head) -> None:
    engine = analysis.engine_for()
    frame, report = analysis.replay_frame(sample_head, engine)
    assert len(frame) == len(sample_head) == report["events"]
    assert set(analysis.FEATURE_NAMES) <= set(frame.columns)
    assert frame["ts"].is_monotonic_increasing
    assert (frame["attack"] == (frame["scenario"] != "customer")).all()
    # Learnable logins are allowed, successful ones: what the engine teaches its model.
    learn = frame[frame["learnable"]]
    assert len(learn) and (learn["decision"] == "allow").all() and not learn["auth_failed"].any()
    assert set(analysis.FREEMAN_COLUMNS) <= set(frame.columns)


def test_stored_decisions_carry_the_features_the_replay_saw(tmp_path, sample_head) -> None:
    store = tmp_path / "riskengine.db"
    engine = analysis.engine_for(store=f"sqlite:{store}")
    replayed, _ = analysis.replay_frame(sample_head, engine)
    attack = replayed[replayed["attack"]].iloc[0]
    # The frame's event ids are the stored ones (the ids' pseudonyms).
    engine.feedback_by_key("default", attack["event_id"], label=Label.FRAUD,
                           source=Source.ANALYST)
    engine.store.close()

    logins = analysis.feature_frame("decisions", store)
    stored = logins.frame.set_index("event_id")
    assert len(stored) == len(replayed)
    assert stored.loc[attack["event_id"], "attack"]
    mine = replayed.set_index("event_id").loc[stored.index]
    # Only feedback labels a stored decision (the analyst's; the replay's step-up results,
    # where a customer who failed one counts as fraud until someone says otherwise).
    assert 0 < stored["labelled"].sum() < len(stored)
    assert not stored.loc[~stored["labelled"], "attack"].any()
    assert (stored["score"] == mine["score"]).all()
    assert (stored["floor"] == mine["floor"]).all()
    for name in ("geo_velocity_kmh", "new_device", "ip_users_10m", "hour_rarity"):
        pd.testing.assert_series_equal(stored[name].astype(object).where(stored[name].notna()),
                                       mine[name].astype(object).where(mine[name].notna()),
                                       check_names=False, check_dtype=False)
    assert logins.model_version == engine.model_version


@pytest.mark.skipif(not RBA_SAMPLE.exists(), reason="shared RBA sample not present")
def test_the_rba_dataset_is_read_with_its_own_geolocation() -> None:
    logins = analysis.feature_frame("rba", RBA_SAMPLE)
    frame = logins.frame
    assert 0 < len(frame) <= 19
    raw = pd.read_csv(RBA_SAMPLE)
    # The frame keeps the stored event ids (their pseudonyms, as the engine built for the
    # notebooks makes them), so the file's ids are looked up under theirs.
    engine = analysis.engine_for()
    countries = {engine.event_key("default", f"rba-{i}"): c
                 for i, c in zip(raw["index"], raw["Country"], strict=True)}
    assert all(countries[e] == c for e, c in zip(frame["event_id"], frame["ip_country"],
                                                  strict=True))


def test_a_split_by_time_never_lets_training_see_the_evaluation(sample_head) -> None:
    frame, _ = analysis.replay_frame(sample_head, analysis.engine_for())
    train, test, at = analysis.split_by_time(frame, 0.6)
    assert train["ts"].max() < at <= test["ts"].min()
    assert len(train) + len(test) == len(frame)
    with pytest.raises(ValueError):
        analysis.split_by_time(frame, 1.0)


def _scored(scores: list[float], floors: list[int], attacks: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"score": scores, "floor": floors, "attack": attacks})


def test_thresholds_meet_the_target_rate() -> None:
    customers = [i / 100 for i in range(100)]
    frame = _scored(customers + [0.95, 0.8], [0] * 102, [False] * 100 + [True, True])
    choice = analysis.choose_thresholds(frame, target_challenge_rate=0.05, target_deny_rate=0.01)
    assert 0.94 < choice["challenge"] <= 0.95 and choice["customers_blocked"] <= 0.05
    assert choice["attacks_caught"] == 0.5  # the attack at 0.95, not the one at 0.8
    assert choice["deny"] > choice["challenge"] and choice["customers_denied"] <= 0.01
    assert choice["reachable"]


def test_rule_floors_can_make_a_target_unreachable() -> None:
    frame = _scored([0.1] * 10, [1, 1] + [0] * 8, [False] * 10)
    choice = analysis.choose_thresholds(frame, target_challenge_rate=0.1, target_deny_rate=0.0)
    assert not choice["reachable"] and choice["floor_only_rate"] == 0.2
    assert choice["customers_blocked"] == 0.2  # the threshold adds nothing to the floors


def test_a_ruleset_copy_keeps_its_rules_and_comments() -> None:
    text = analysis.shipped_rules_text()
    new = analysis.with_thresholds(text, challenge=0.3125, deny=0.875, version="2026.11.0-x")
    ruleset = parse_ruleset(new)
    shipped = load_ruleset()
    assert (ruleset.thresholds.challenge, ruleset.thresholds.deny) == (0.3125, 0.875)
    assert ruleset.version == "2026.11.0-x"
    assert [r.id for r in ruleset.rules] == [r.id for r in shipped.rules]
    assert ruleset.model_weight == shipped.model_weight
    old_lines, new_lines = text.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    assert sum(a != b for a, b in zip(old_lines, new_lines, strict=True)) == 3


def test_a_flow_style_threshold_block_is_rewritten_too() -> None:
    text = ("version: '1'\nthresholds: {challenge: 0.5, deny: 0.9}\nrules:\n"
            "  - {id: hosted, name: H, description: D, score: 0.2,\n"
            "     when: {feature: ip_is_hosting, op: is_true}}\n")
    new = analysis.with_thresholds(text, challenge=0.4, deny=0.8, version="2")
    assert parse_ruleset(new).thresholds.challenge == 0.4


def test_impossible_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="challenge < deny"):
        analysis.with_thresholds(analysis.shipped_rules_text(), challenge=0.9, deny=0.5,
                                 version="x")
