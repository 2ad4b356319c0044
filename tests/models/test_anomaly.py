"""Common checks of the anomaly model, in the spirit of river's estimator checks."""

from __future__ import annotations

import pickle
import random

from features.extract import FeatureVector
from models.anomaly import AnomalyModel, vectorize
from models.persistence import load


def _normal(rng: random.Random) -> dict[str, float | bool | None]:
    return {"device_known": True, "new_ip_prefix": rng.random() < 0.1, "new_asn": False,
            "new_country": False, "geo_velocity_kmh": rng.uniform(0, 30),
            "hour_rarity": rng.uniform(0, 0.3), "local_hour_sin": rng.uniform(-0.3, 0.3),
            "local_hour_cos": rng.uniform(0.7, 1.0), "ip_users_10m": 1, "user_failures_10m": 0}


def _attack(rng: random.Random) -> dict[str, float | bool | None]:
    return {**_normal(rng), "device_known": False, "new_ip_prefix": True, "new_asn": True,
            "new_country": True, "geo_velocity_kmh": rng.uniform(1500, 20000),
            "hour_rarity": rng.uniform(0.8, 1.0), "ip_users_10m": rng.randint(10, 60)}


def _trained(seed: int = 3) -> AnomalyModel:
    rng = random.Random(seed)
    model = AnomalyModel(seed=seed, window_size=100)
    for _ in range(600):
        model.learn_one(_normal(rng))
    return model


def test_vectorize_clips_to_fixed_ranges_and_fills_unknowns_low() -> None:
    x = vectorize({"geo_velocity_kmh": 10**9, "user_failures_10m": -5, "hour_rarity": None})
    assert x["geo_velocity_kmh"] == 1.0
    assert x["user_failures_10m"] == 0.0
    assert x["hour_rarity"] == 0.0
    assert all(0.0 <= v <= 1.0 for v in x.values())


def test_extreme_values_do_not_stretch_the_scale() -> None:
    """One absurd value maps to the same input as any value past the range's top."""
    assert vectorize({"geo_velocity_kmh": 1e12}) == vectorize({"geo_velocity_kmh": 2000.0})


def test_attacks_score_higher_than_normal_logins() -> None:
    model, rng = _trained(), random.Random(99)
    normal = [model.score_one(_normal(rng)) for _ in range(200)]
    attack = [model.score_one(_attack(rng)) for _ in range(200)]
    pairs = sum(a > n for a in attack for n in normal) + 0.5 * sum(
        a == n for a in attack for n in normal)
    auc = pairs / (len(attack) * len(normal))
    assert auc > 0.9


def test_seeded_determinism_and_pickling() -> None:
    a, b = _trained(seed=5), _trained(seed=5)
    probe = _attack(random.Random(1))
    assert a.score_one(probe) == b.score_one(probe)
    c = pickle.loads(pickle.dumps(a))
    assert c.score_one(probe) == a.score_one(probe)


def test_scoring_does_not_learn() -> None:
    model = _trained()
    probe = _attack(random.Random(2))
    first = model.score_one(probe)
    for _ in range(50):
        model.score_one(probe)
    assert model.score_one(probe) == first
    assert model.n_learned_ == 600


def test_unseen_and_missing_features_are_fine() -> None:
    model = _trained()
    assert 0.0 <= model.score_one({}) <= 1.0
    assert 0.0 <= model.score_one({"not_a_feature": 5.0}) <= 1.0


def test_an_unready_model_adds_no_risk() -> None:
    model = AnomalyModel(window_size=100)
    model.learn_one(_normal(random.Random(0)))
    assert not model.ready
    assert model.risk(1.0) == 0.0


def test_the_shipped_model_is_ready_and_calibrated() -> None:
    model, card = load()
    assert model.ready
    low, high = model.calibration_
    assert 0 < low < high
    assert card["metrics"]["held_out_learned_logins"] > 1000


def test_learning_the_vector_just_scored_is_learning_it_afresh() -> None:
    """The engine scores a login and then learns the same feature vector: reusing its model
    input must teach exactly what a fresh one would."""
    rng = random.Random(7)
    reused, fresh = _trained(seed=4), _trained(seed=4)
    for _ in range(300):
        x = FeatureVector(_normal(rng))
        assert reused.score_one(x) == fresh.score_one(dict(x))
        reused.learn_one(x)
        fresh.learn_one(dict(x))
    probe = _attack(random.Random(8))
    assert reused.score_one(probe) == fresh.score_one(probe)


def test_a_saved_model_holds_no_login_it_scored() -> None:
    model = _trained()
    before = pickle.dumps(model)
    model.score_one(FeatureVector({**_attack(random.Random(3)), "ip_country": "SE"}))

    assert pickle.dumps(model) == before
    assert b"ip_country" not in pickle.dumps(model)
