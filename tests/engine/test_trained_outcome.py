"""The outcome model with a trained base (gradient-boosted trees over behavioural features):
at its prior it scores as the base does; the ruleset's advisory rules stop being floors only
while such a base scores; every decision names the trees' strongest features; the training
tool weighs scenarios evenly and trains only on what it saw; the shipped artifact loads."""

from __future__ import annotations

import random
from typing import Any

import pytest

from models import persistence
from models.boosted import Feature, fit
from models.outcome import BASE, OutcomeModel, inputs
from riskengine.adapters.stores import MemoryStore
from riskengine.core.policy import BASE_REASON
from riskengine.core.rules import RulesetError, parse_ruleset, shipped_ruleset_text
from riskengine.tools import outcome_training as ot
from tests.engine.test_outcome import journey
from tests.engine.test_outcome import make_engine as make_engine  # noqa: F401 (fixture)


def trained_on_new_devices(*, risky: bool) -> Any:
    """Trees that learned new devices are attacks (``risky``), or that attacks are rare
    and show nothing (not)."""
    rng = random.Random(3)
    rows = [{"new_device": rng.random() < 0.5, "new_ip_prefix": rng.random() < 0.5}
            for _ in range(600)]
    labels = [int((r["new_device"] if risky else rng.random() < 0.02) and rng.random() < 0.9)
              for r in rows]
    return fit(rows, labels, [Feature("new_device", sign=1), Feature("new_ip_prefix")],
               max_iter=30, min_samples_leaf=10)


def with_outcome(advisory: list[str]) -> Any:
    listed = "".join(f"\n    - {rule}" for rule in advisory)
    return parse_ruleset(shipped_ruleset_text() + "\noutcome:\n  enabled: true\n"
                         "  thresholds: {challenge: 0.5, deny: 0.99}\n"
                         f"  advisory:{listed or ' []'}\n")


def test_at_its_prior_the_model_is_its_base() -> None:
    base = trained_on_new_devices(risky=True)
    model = ot.outcome_model(base)
    assert model.ready
    for values in ({"new_device": True}, {"new_device": False, "new_ip_prefix": True}):
        x = inputs({"new_device": 0.2}, anomaly_risk=0.5, anomaly_weight=0.35,
                   values=values, base=base)
        assert BASE in x
        # the rules and the anomaly model start at 0: the trees already weighed that evidence
        assert model.proba_one(x) == pytest.approx(base.proba(values), abs=1e-3)


def test_advisory_names_rules_that_exist() -> None:
    assert with_outcome(["stuffing_wave"]).outcome.advisory == frozenset({"stuffing_wave"})
    with pytest.raises(RulesetError, match="advisory.*no_such_rule"):
        with_outcome(["no_such_rule"])
    shipped = parse_ruleset(shipped_ruleset_text())
    assert shipped.outcome.advisory and shipped.outcome.advisory <= {r.id for r in
                                                                    shipped.rules}


def _new_phone_decision(make_engine: Any, outcome: OutcomeModel, advisory: list[str]) -> dict:
    engine = make_engine(store=MemoryStore(), ruleset=with_outcome(advisory),
                         outcome=outcome, outcome_version="trained-test", negative_rate=0.0)
    return journey(engine)[0]  # a new phone on the carrier's network


def test_advisory_floors_stand_down_only_for_a_trained_base(make_engine) -> None:
    """The journey's new phone on a stranger's network hits new_device_unfamiliar_network,
    a challenge floor. Trees that learned new devices are customers let it through when
    the rule is advisory; not when it is not, and never without trees."""
    lenient = ot.outcome_model(trained_on_new_devices(risky=False))
    rule = "new_device_unfamiliar_network"
    held = _new_phone_decision(make_engine, lenient, [])
    assert rule in {r["code"] for r in held["reasons"]} and held["decision"] == "challenge"
    waived = _new_phone_decision(make_engine, ot.outcome_model(
        trained_on_new_devices(risky=False)), [rule])
    assert waived["decision"] == "allow", waived
    # a noisy-OR without trees that has learned the rule away still meets the floor
    numb = OutcomeModel(min_outcomes=0, min_attacks=0, priors={}, default_prior=0.0)
    assert _new_phone_decision(make_engine, numb, [rule])["decision"] == "challenge"


def test_every_decision_names_the_trees_and_their_strongest_features(make_engine) -> None:
    engine = make_engine(store=MemoryStore(), ruleset=with_outcome([]),
                         outcome=ot.outcome_model(trained_on_new_devices(risky=True)),
                         outcome_version="trained-test", negative_rate=0.0)
    bodies = journey(engine)
    for body in bodies:
        named = [r for r in body["reasons"] if r["code"] == BASE_REASON]
        assert len(named) == 1, body["reasons"]
        assert set(named[0]["observed"]["log_odds"]) <= {"new_device", "new_ip_prefix"}
        assert sum(r["contribution"] for r in body["reasons"]) == pytest.approx(
            body["score"], abs=2e-3)
    new_phone = named_reason(bodies[0])
    assert new_phone["observed"]["log_odds"]["new_device"] > 0
    assert "new_device" in new_phone["message"]
    # a login the trees find quiet (under half the challenge threshold of 0.5) is explained
    # by its probability alone: the path's breakdown is for the logins a reader asks about
    quiet = [named_reason(b) for b in bodies if named_reason(b)["observed"]["probability"] < 0.25]
    assert quiet and all(r["observed"]["log_odds"] == {} and "well below" in r["message"]
                         for r in quiet)


def named_reason(body: dict) -> dict:
    return next(r for r in body["reasons"] if r["code"] == BASE_REASON)


def test_training_weighs_each_attack_scenario_alike() -> None:
    scenarios = ["customer"] * 1000 + ["credential_stuffing"] * 900 + ["sim_swap"] * 10
    w = ot.weights(scenarios, attack_share=0.1)
    stuffing = sum(x for x, s in zip(w, scenarios, strict=True) if s == "credential_stuffing")
    swaps = sum(x for x, s in zip(w, scenarios, strict=True) if s == "sim_swap")
    assert stuffing == pytest.approx(swaps) == pytest.approx(50.0)
    assert w[0] == 1.0


def test_training_reads_only_features_some_login_had() -> None:
    rows = [{"new_device": i % 2 == 0, "phone_accounts_30d": None, "_scenario": "customer"}
            for i in range(10)]
    names = {f.name for f in ot.present(rows, [Feature("new_device"),
                                                Feature("phone_accounts_30d")])}
    assert names == {"new_device"}


def test_the_shipped_outcome_model_loads_with_its_trees_and_card() -> None:
    shipped = persistence.load_outcome()
    assert shipped is not None, "models/artifacts/outcome-default.joblib is shipped"
    model, card = shipped
    assert isinstance(model, OutcomeModel) and model.base is not None and model.ready
    assert card["model_version"].startswith("outcome-gbt-")
    assert all(w <= 1000 for w in card["training"]["worlds"]), "held-out worlds never train"
    assert [f.name for f in model.base.features] == card["training"]["base_features"]


def test_a_snapshot_of_a_trained_model_lists_the_trees_features(tmp_path) -> None:
    """The service snapshots the outcome model frozen while it learns on; the card still
    names every feature the trees read."""
    from models import snapshots

    model = ot.outcome_model(trained_on_new_devices(risky=True))
    path = snapshots.save_snapshot(persistence.freeze(model), tmp_path, version="s1",
                                   parent=None, key=b"snapshot-test-key")
    card = persistence.read_card(path)
    assert {"new_device", "new_ip_prefix"} <= set(card["features"])
    assert snapshots.load_snapshot(path, key=b"snapshot-test-key")[0].base is not None
