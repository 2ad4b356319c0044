"""The outcome model: the hand-set combination at its prior, sign constraints whatever it is
taught, online and batch learning that follow the evidence, explanations, persistence."""

from __future__ import annotations

import math
import pickle
import random
from pathlib import Path

import pytest

from models import persistence, snapshots
from models.outcome import FEATURE_PRIORS, FEATURES, LEAK, OutcomeModel, reliability
from models.persistence import ModelArtifactError


def hazard(score: float) -> float:
    return -math.log1p(-score) if score > 0 else math.log1p(score)


def hand_set(scores: list[float]) -> float:
    """The policy's combination of hit rules' scores."""
    risk = 1.0 - math.prod(1.0 - s for s in scores if s > 0)
    return risk * math.prod(1.0 + s for s in scores if s < 0)


RULE_SCORES = {"a": 0.2, "b": 0.45, "c": 0.6, "t": -0.6, "u": -0.3}


def login(rng: random.Random, hits: dict[str, float]) -> dict[str, float]:
    return {f"rule:{r}": hazard(RULE_SCORES[r]) for r, p in hits.items() if rng.random() < p}


def stream(n: int, seed: int, attack_rate: float = 0.1
           ) -> list[tuple[dict[str, float], int]]:
    """Outcomes where rule ``a`` fires as often on customers as on attacks (it says
    nothing), ``c`` mostly on attacks, and trust ``t`` mostly on customers."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        attack = rng.random() < attack_rate
        hits = {"a": 0.4, "c": 0.8 if attack else 0.02, "t": 0.05 if attack else 0.7}
        out.append((login(rng, hits), int(attack)))
    return out


class TestPrior:
    @pytest.mark.parametrize("seed", range(5))
    def test_at_its_prior_it_is_the_hand_set_combination(self, seed: int) -> None:
        rng = random.Random(seed)
        model = OutcomeModel()
        for _ in range(200):
            hit = [r for r in RULE_SCORES if rng.random() < 0.4]
            x = {f"rule:{r}": hazard(RULE_SCORES[r]) for r in hit}
            expected = hand_set([RULE_SCORES[r] for r in hit])
            assert model.proba_one(x) == pytest.approx(expected, abs=2e-4)

    def test_features_have_no_say_until_learned(self) -> None:
        model = OutcomeModel()
        x = {f"feature:{name}": sign for name, sign in FEATURES}
        assert model.proba_one(x) == pytest.approx(model.proba_one({}), abs=1e-12)
        assert all(model.prior(name) == 0.0 for name in FEATURE_PRIORS)

    def test_not_ready_before_enough_outcomes(self) -> None:
        model = OutcomeModel(min_outcomes=50, min_attacks=5)
        for x, y in stream(40, seed=1, attack_rate=0.5):
            model.learn_one(x, y)
        assert not model.ready
        for x, y in stream(100, seed=2, attack_rate=0.5):
            model.learn_one(x, y)
        assert model.ready


class TestSignConstraints:
    def test_adversarial_updates_never_flip_a_sign(self) -> None:
        """Whatever it is taught (contradicting labels, huge and negative weights), a risk
        input never lowers the probability and a trust input never raises it."""
        rng = random.Random(7)
        model = OutcomeModel(learning_rate=0.5)
        for _ in range(3000):
            hit = [r for r in RULE_SCORES if rng.random() < 0.5]
            x = {f"rule:{r}": hazard(RULE_SCORES[r]) for r in hit}
            # label each login against its evidence: risk hits legit, trust hits attacks
            y = int(any(RULE_SCORES[r] < 0 for r in hit))
            model.learn_one(x, y, weight=rng.choice([1.0, 50.0, -20.0, 1e4]))
        assert all(w >= 0.0 for w in model.weights_.values())
        assert model.leak_ > 0.0
        base = {"rule:b": hazard(0.45)}
        for r, s in RULE_SCORES.items():
            more = {**base, f"rule:{r}": hazard(s)}
            if s > 0:
                assert model.proba_one(more) >= model.proba_one(base) - 1e-12
            else:
                assert model.proba_one(more) <= model.proba_one(base) + 1e-12
        everything = {f"rule:{r}": hazard(s) for r, s in RULE_SCORES.items()}
        assert 0.0 <= model.proba_one(everything) <= 1.0

    def test_batch_fit_respects_the_bounds(self) -> None:
        data = stream(3000, seed=3)
        flipped = [(x, 1 - y) for x, y in data]  # evidence pointing the wrong way
        model = OutcomeModel(prior_strength=1e-4).fit([x for x, _ in flipped],
                                                       [y for _, y in flipped])
        assert all(w >= 0.0 for w in model.weights_.values())
        assert model.leak_ > 0.0


class TestLearning:
    def test_a_rule_that_always_hits_legit_logins_loses_weight(self) -> None:
        """Online: a stream where rule ``a``'s hits are always customers lowers its weight
        and the probability customers who hit it get; the other rules keep theirs."""
        model = OutcomeModel(min_outcomes=0)
        x = {"rule:a": hazard(0.2)}
        before = model.proba_one(x)
        rng = random.Random(5)
        for _ in range(500):
            model.learn_one(login(rng, {"a": 1.0, "t": 0.3}), 0)
        assert model.weight("rule:a") < 0.5
        assert model.proba_one(x) < before / 2
        assert model.weight("rule:c") == 1.0  # never spoken of: still its prior

    def test_a_rule_that_hits_attacks_gains_weight(self) -> None:
        model = OutcomeModel()
        rng = random.Random(6)
        for _ in range(300):
            model.learn_one(login(rng, {"a": 1.0}), 1)
        assert model.weight("rule:a") > 1.5

    def test_online_learning_ranks_attacks_above_customers(self) -> None:
        from sklearn.metrics import roc_auc_score

        model = OutcomeModel()
        for x, y in stream(4000, seed=8):
            model.learn_one(x, y)
        test = stream(2000, seed=9)
        auc = roc_auc_score([y for _, y in test], [model.proba_one(x) for x, _ in test])
        assert auc > 0.9
        assert model.weight("rule:c") > model.weight("rule:a")

    def test_a_negative_weight_takes_the_step_back(self) -> None:
        model = OutcomeModel()
        for x, y in stream(200, seed=10):
            model.learn_one(x, y)
        before = dict(model.weights_)
        x = {"rule:b": hazard(0.45), "rule:t": hazard(-0.6)}
        model.learn_one(x, 0, 5.0)
        moved = abs(model.weight("rule:b") - before.get("rule:b", 1.0))
        model.learn_one(x, 0, -5.0)
        back = abs(model.weight("rule:b") - before.get("rule:b", 1.0))
        assert moved > 0 and back < moved / 2

    def test_batch_fit_is_calibrated_on_its_own_kind_of_data(self) -> None:
        data = stream(6000, seed=11)
        model = OutcomeModel(prior_strength=1e-3).fit([x for x, _ in data[:4000]],
                                                       [y for _, y in data[:4000]])
        held = data[4000:]
        report = reliability([model.proba_one(x) for x, _ in held], [y for _, y in held])
        assert report["ece"] < 0.03
        assert model.weight("rule:a") < 0.3 < model.weight("rule:c")

    def test_subsampled_negatives_weighted_back_give_the_full_data_answer(self) -> None:
        data = stream(6000, seed=12)
        full = OutcomeModel(prior_strength=1e-4).fit([x for x, _ in data], [y for _, y in data])
        rng = random.Random(1)
        kept = [(x, y, 1.0 if y else 5.0) for x, y in data if y or rng.random() < 0.2]
        sampled = OutcomeModel(prior_strength=1e-4).fit(
            [x for x, _, _ in kept], [y for _, y, _ in kept], [w for _, _, w in kept])
        x = {"rule:c": hazard(0.6)}
        assert sampled.proba_one(x) == pytest.approx(full.proba_one(x), abs=0.08)


class TestExplanation:
    def test_contributions_add_up_to_the_probability(self) -> None:
        model = OutcomeModel()
        for x, y in stream(500, seed=13):
            model.learn_one(x, y)
        x = {"rule:a": hazard(0.2), "rule:c": hazard(0.6), "rule:t": hazard(-0.6)}
        explained = model.explain_one(x)
        assert explained.proba == pytest.approx(model.proba_one(x))
        assert sum(explained.contributions.values()) == pytest.approx(explained.proba)
        assert explained.contributions["rule:t"] < 0 < explained.contributions["rule:c"]
        assert LEAK in explained.contributions


class TestPersistence:
    def test_pickle_round_trip(self) -> None:
        model = OutcomeModel()
        for x, y in stream(300, seed=14):
            model.learn_one(x, y)
        back = pickle.loads(pickle.dumps(model))
        for x, _ in stream(50, seed=15):
            assert back.proba_one(x) == model.proba_one(x)

    def test_artifact_round_trip_and_card(self, tmp_path: Path) -> None:
        model = OutcomeModel()
        for x, y in stream(300, seed=16):
            model.learn_one(x, y)
        path = persistence.save(model, tmp_path / "outcome-t.joblib", version="outcome-t",
                                card={"training": {"source": "test"}})
        found = persistence.load_outcome(path)
        assert found is not None
        loaded, card = found
        assert card["kind"] == "OutcomeModel" and card["depends_on"] == []
        assert card["features"] == [name for name, _ in FEATURES]
        x = {"rule:c": hazard(0.6)}
        assert loaded.proba_one(x) == model.proba_one(x)

    def test_an_anomaly_artifact_is_not_an_outcome_model(self) -> None:
        shipped = Path(persistence.__file__).parent / "artifacts" / persistence.SHIPPED_MODEL
        with pytest.raises(ModelArtifactError, match="not an outcome model"):
            persistence.load_outcome(shipped)

    def test_an_unknown_feature_on_the_card_is_refused(self, tmp_path: Path) -> None:
        path = persistence.save(OutcomeModel(), tmp_path / "o.joblib", version="o",
                                card={"features": ["no_such_feature"]})
        with pytest.raises(ModelArtifactError, match="no_such_feature"):
            persistence.load(path)

    def test_signed_snapshot_round_trip_and_tamper_check(self, tmp_path: Path) -> None:
        model = OutcomeModel()
        for x, y in stream(100, seed=17):
            model.learn_one(x, y)
        key = b"outcome-test-key"
        artifact = snapshots.save_snapshot(model, tmp_path, version="outcome-prior+s1",
                                           parent="outcome-prior", key=key)
        loaded, card = snapshots.load_snapshot(artifact, key=key)
        assert card["learned"] == model.n_learned_
        assert loaded.weights_ == model.weights_
        with pytest.raises(ModelArtifactError, match="signature"):
            snapshots.load_snapshot(artifact, key=b"another-key")
        artifact.write_bytes(artifact.read_bytes() + b"\0")
        with pytest.raises(ModelArtifactError, match="signature"):
            snapshots.load_snapshot(artifact, key=key)


class TestPromotion:
    def test_an_outcome_artifact_is_promoted_into_its_own_folder(self, tmp_path: Path) -> None:
        from riskengine.service.build import load_outcome_model
        from riskengine.service.settings import Settings
        from riskengine.tools.promote import promote

        model = OutcomeModel()
        data = stream(500, seed=18)
        model.fit([x for x, _ in data], [y for _, y in data])
        artifact = persistence.save(model, tmp_path / "out" / "outcome-abc.joblib",
                                    version="outcome-abc", card={"training": {"source": "t"}})
        key = b"promote-outcome-key-0123456789"
        done = promote(artifact, tmp_path / "models", key=key)
        assert done.artifact.parent == tmp_path / "models" / persistence.OUTCOME_FOLDER
        assert snapshots.active_version(tmp_path / "models" / "outcome") == "outcome-abc"
        assert snapshots.active_version(tmp_path / "models") is None  # anomaly untouched
        settings = Settings(env="test", store="memory:", model_dir=tmp_path / "models",
                            model_signing_key=key.decode(), _env_file=None)
        served, card = load_outcome_model(settings)
        assert card["model_version"] == "outcome-abc" and card["training"]["source"] == "t"
        assert served.weights_ == model.weights_

    def test_a_model_without_the_outcome_interface_is_refused(self) -> None:
        from riskengine.tools.promote import check_outcome_interface

        class Broken:
            def proba_one(self, x: dict) -> float:
                return 2.0

            explain_one = learn_one = ready = n_learned_ = None

        with pytest.raises(ModelArtifactError, match="not a probability"):
            check_outcome_interface(Broken())
        with pytest.raises(ModelArtifactError, match="lacks"):
            check_outcome_interface(object())


def test_train_outcome_fits_on_the_replays_outcomes_and_says_so() -> None:
    from riskengine.tools.train import train_outcome

    model, card = train_outcome(users=60, days=20, seed=3)
    training = card["training"]
    assert training["outcomes"] >= training["attacks"] > 0
    assert "biased sample" in training["source"] and training["rules_version"]
    assert 0.0 <= card["metrics"]["ece"] <= 1.0
    assert all(w >= 0 for w in model.weights_.values())
