"""The anomaly model's two backends, the compiled forest and river's trees, held equal; models
saved with river's trees load with the compiled ones."""

from __future__ import annotations

import math
import pickle
import random
from typing import Any

import numpy as np
import pytest
from river import anomaly

from features.catalog import MODEL_FEATURES
from features.extract import FeatureVector
from models.anomaly import FEATURE_ORDER, AnomalyModel, Backend, vectorize, vectorize_array
from models.hst import HalfSpaceForest
from models.persistence import load

EVENTS = 10_000
TOLERANCE = 1e-9


def _features(rng: random.Random) -> dict[str, Any]:
    """One login's features as ``features.extract`` gives them: every catalog feature, None
    where unknown (a first login has no history), an attack now and then."""
    attack = rng.random() < 0.03
    first = rng.random() < 0.05
    x: dict[str, Any] = {
        "days_since_last_login": None if first else rng.expovariate(0.3),
        "device_known": not attack and not first, "marked_bad": False,
        "os_downgrade": attack and rng.random() < 0.3, "device_mismatch": rng.random() < 0.01,
        "device_accounts_30d": rng.randint(1, 30 if attack else 2),
        "ip_is_hosting": attack and rng.random() < 0.5, "ip_is_vpn": rng.random() < 0.05,
        "ip_is_tor": attack and rng.random() < 0.1,
        "new_ip_prefix": None if first else attack or rng.random() < 0.1,
        "new_asn": None if first else attack, "new_country": None if first else attack,
        "sim_changed": rng.random() < 0.01, "local_hour_sin": math.sin(rng.uniform(0, 6.3)),
        "local_hour_cos": math.cos(rng.uniform(0, 6.3)),
        "hour_rarity": None if first else rng.random() ** (0.3 if attack else 3),
        "geo_distance_km": None if first else rng.uniform(0, 9000 if attack else 60),
        "geo_velocity_kmh": None if first else rng.uniform(0, 30000 if attack else 40),
        "user_failures_10m": rng.randint(0, 30) if attack else 0,
        "user_failures_24h": rng.randint(0, 80), "tenant_failure_ratio_10m": rng.random() / 10,
        "ip_users_10m": rng.randint(1, 80) if attack else 1,
        "ip_failures_10m": rng.randint(0, 80) if attack else 0,
        "ip_country": "NO",  # read by other models, not this one
    }
    if rng.random() < 0.01:
        x["geo_velocity_kmh"] = math.nan
    if rng.random() < 0.02:  # a caller that leaves features out (a notebook, a test)
        del x["hour_rarity"]
    return x


def test_the_backends_give_the_same_scores_over_a_stream() -> None:
    """The engine's way: score a login's feature vector, then learn the same object."""
    rng = random.Random(21)
    compiled = AnomalyModel(seed=21)
    reference = AnomalyModel(seed=21, backend="river")
    assert isinstance(compiled.hst_, HalfSpaceForest)
    assert isinstance(reference.hst_, anomaly.HalfSpaceTrees)
    worst = 0.0
    for _ in range(EVENTS):
        x = FeatureVector(_features(rng))
        got, expected = compiled.score_one(x), reference.score_one(x)
        worst = max(worst, abs(got - expected))
        if rng.random() < 0.8:  # most logins are allowed and taught
            compiled.learn_one(x)
            reference.learn_one(x)
    assert worst <= TOLERANCE
    assert compiled.ready and compiled.n_learned_ == reference.n_learned_


def test_the_vector_is_vectorize_in_the_forest_s_order() -> None:
    rng = random.Random(4)
    for _ in range(500):
        x = _features(rng)
        expected = vectorize(x)
        assert vectorize_array(x).tolist() == [expected[name] for name in FEATURE_ORDER]
    assert list(FEATURE_ORDER) == sorted(f.name for f in MODEL_FEATURES)


def test_nan_is_unknown_like_none() -> None:
    x = {"geo_velocity_kmh": math.nan, "hour_rarity": None, "ip_users_10m": 7}
    assert vectorize(x)["geo_velocity_kmh"] == 0.0 == vectorize(x)["hour_rarity"]
    assert vectorize_array(x)[FEATURE_ORDER.index("geo_velocity_kmh")] == 0.0
    assert not np.isnan(vectorize_array(x)).any()


def _trained(backend: str, seed: int = 8, n: int = 1_200) -> AnomalyModel:
    rng = random.Random(seed)
    model = AnomalyModel(seed=seed, window_size=100, backend=backend)
    for _ in range(n):
        model.learn_one(_features(rng))
    return model


@pytest.mark.parametrize("start,target", [("compiled", "river"), ("river", "compiled"),
                                          ("compiled", "compiled"), ("river", "river")])
def test_with_backend_is_the_same_model(start: str, target: str) -> None:
    model = _trained(start)
    other = model.with_backend(target)
    assert other.backend is Backend(target) and other.hst_ is not model.hst_
    rng = random.Random(9)
    for _ in range(600):
        x = _features(rng)
        assert other.score_one(x) == pytest.approx(model.score_one(x), abs=TOLERANCE)
        model.learn_one(x)
        other.learn_one(x)
    assert other.calibration_ == model.calibration_ and other.n_learned_ == model.n_learned_


def test_a_model_saved_with_river_s_trees_loads_compiled_and_scores_the_same() -> None:
    """What a model pickled before the compiled forest holds: river's trees, no backend."""
    old = _trained("river")
    state = old.__getstate__()
    del state["backend"]
    loaded = pickle.loads(pickle.dumps(old))  # a river model saved today stays river
    assert loaded.backend is Backend.RIVER
    converted = AnomalyModel.__new__(AnomalyModel)
    converted.__setstate__(pickle.loads(pickle.dumps(state)))
    assert converted.backend is Backend.COMPILED
    assert isinstance(converted.hst_, HalfSpaceForest)
    rng = random.Random(10)
    for _ in range(600):
        x = _features(rng)
        assert converted.score_one(x) == pytest.approx(old.score_one(x), abs=TOLERANCE)
        old.learn_one(x)
        converted.learn_one(x)


def test_the_shipped_model_loads_compiled_and_agrees_with_river() -> None:
    model, card = load()
    assert model.backend is Backend.COMPILED and model.ready
    reference = model.with_backend("river")
    rng = random.Random(12)
    scores = []
    for _ in range(2_000):
        x = FeatureVector(_features(rng))
        score = model.score_one(x)
        assert score == pytest.approx(reference.score_one(x), abs=TOLERANCE)
        scores.append(score)
        model.learn_one(x)
        reference.learn_one(x)
    assert 0.0 < min(scores) < max(scores) < 1.0
    assert model.calibration_[0] == pytest.approx(card["metrics"]["anomaly_p98"], abs=1e-4)


def test_warm_compiles_what_scoring_needs() -> None:
    import models.hst as hst_module

    AnomalyModel.warm()
    kernels = (hst_module._score, hst_module._learn, hst_module.scale)
    before = [len(k.signatures) for k in kernels]
    model = _trained("compiled", n=300)
    model.score_one(FeatureVector(_features(random.Random(1))))
    assert [len(k.signatures) for k in kernels] == before == [1, 1, 1]
