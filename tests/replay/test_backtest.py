"""Backtest: its figures are replay's, its comparison and recommendation are right."""

from __future__ import annotations

import copy
from importlib import resources

import pytest

from features.ipintel import IpIntel
from models import persistence
from riskengine.adapters.stores import MemoryStore
from riskengine.core.privacy import Pseudonymizer
from riskengine.core.rules import load_ruleset, parse_ruleset
from riskengine.service.scorer import Engine
from riskengine.tools.backtest import backtest, recommend_threshold
from riskengine.tools.replay import Replayer
from riskengine.tools.simulate import Simulator


@pytest.fixture(scope="module")
def setup():
    intel = IpIntel.bundled()
    model, card = persistence.load()

    def make_engine(rules):
        return Engine(store=MemoryStore(), ruleset=rules, model=copy.deepcopy(model),
                      model_version=card["model_version"], ipintel=intel,
                      pseudonymizer=Pseudonymizer(b"backtest-test-key-0123456789"))

    events = list(Simulator(users=120, days=25, seed=8).events())
    return make_engine, events


def test_backtest_figures_agree_with_replay(setup) -> None:
    make_engine, events = setup
    live = load_ruleset()
    shipped = resources.files("riskengine.data").joinpath("default_rules.yaml").read_text()
    candidate = parse_ruleset(shipped.replace("  challenge: 0.45\n", "  challenge: 0.25\n"))
    data = backtest(copy.deepcopy(events), make_engine=make_engine, live=live,
                    candidate=candidate, target_challenge_rate=0.02)
    for side, rules in (("live", live), ("candidate", candidate)):
        replayed = Replayer(make_engine(rules)).run(copy.deepcopy(events),
                                                    progress=False).to_dict()
        assert data[side]["customers"] == replayed["customers"]
        assert data[side]["scenarios"] == replayed["scenarios"]
        for key in ("customers_challenged_once", "refused", "per_day", "user_reports"):
            assert data[side][key] == replayed[key], key
        assert data[side]["roc_auc"] == replayed["riskengine"]["roc_auc"]
    assert data["candidate"]["customers"]["challenge"] >= data["live"]["customers"]["challenge"]
    assert data["changed"]["count"] > 0 and data["changed"]["sample"]
    rates = data["live"]["rule_hit_rates"]
    assert set(rates) == {r.id for r in live.rules}
    assert all(0 <= r["share_of_users"] <= 1 for r in rates.values())


def test_threshold_recommendation_meets_the_target() -> None:
    customers = [(i / 100, False) for i in range(100)] + [(0.0, True)]  # one floored
    attacks = [(0.97, False), (0.5, False), (0.2, True)]
    rec = recommend_threshold(customers, attacks, 0.05)
    assert rec["customers_challenged"] <= 0.05 + 1e-9
    assert rec["challenged_by_rule_floors_alone"] == pytest.approx(1 / 101)
    assert rec["attacks_caught"] == pytest.approx(2 / 3)
