"""The compiled half-space forest against river's ``HalfSpaceTrees``, its reference.

Built from the same seed, height, window size and limits, the two must give the same score to
every event of a long stream, learning each event after scoring it, with features missing
from some events, features that appear only later, and NaN values.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from river import anomaly, checks, preprocessing

import models.hst as hst_module
from features.catalog import MODEL_FEATURES
from models.hst import HalfSpaceForest

EVENTS = 10_000
TOLERANCE = 1e-9
# The login features the anomaly model reads, with their fixed ranges as river's ``limits``.
LIMITS = {spec.name: spec.model_range for spec in MODEL_FEATURES if spec.model_range}


def _login(rng: random.Random, *, attack: bool) -> dict[str, Any]:
    """Raw login features (unscaled, so ``limits`` matter); a few left out, as a login whose
    signals were not available, and now and then a value out of its range or NaN."""
    x: dict[str, Any] = {
        "days_since_last_login": rng.expovariate(0.5), "device_known": not attack,
        "marked_bad": False, "os_downgrade": attack and rng.random() < 0.3,
        "device_mismatch": False, "device_accounts_30d": rng.randint(1, 3 if not attack else 20),
        "ip_is_hosting": attack and rng.random() < 0.5, "ip_is_vpn": rng.random() < 0.05,
        "ip_is_tor": attack and rng.random() < 0.1, "new_ip_prefix": attack or rng.random() < 0.1,
        "new_asn": attack, "new_country": attack and rng.random() < 0.7,
        "sim_changed": rng.random() < 0.01, "local_hour_sin": rng.uniform(-1, 1),
        "local_hour_cos": rng.uniform(-1, 1), "hour_rarity": rng.random() ** (0.3 if attack else 3),
        "geo_distance_km": rng.uniform(5000, 9000) if attack else rng.uniform(0, 50),
        "geo_velocity_kmh": rng.uniform(1500, 9000) if attack else rng.uniform(0, 30),
        "user_failures_10m": rng.randint(2, 10) if attack else 0,
        "user_failures_24h": rng.randint(0, 60), "tenant_failure_ratio_10m": rng.random() / 20,
        "ip_users_10m": rng.randint(10, 60) if attack else 1,
        "ip_failures_10m": rng.randint(10, 50) if attack else 0,
    }
    for name in rng.sample(sorted(x), rng.choice([0, 0, 0, 1, 3])):
        del x[name]
    if rng.random() < 0.01:
        x["hour_rarity"] = math.nan
    if rng.random() < 0.05:
        x["ip_country_is_new"] = 1.0  # a feature the trees were not grown over
    return x


def _stream(seed: int, n: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(n):
        yield _login(rng, attack=rng.random() < 0.03)


def _pair(**params: Any) -> tuple[anomaly.HalfSpaceTrees, HalfSpaceForest]:
    return anomaly.HalfSpaceTrees(**params), HalfSpaceForest(**params)


@pytest.mark.parametrize("params", [
    {"n_trees": 25, "height": 8, "window_size": 250, "limits": LIMITS, "seed": 7},
    {"n_trees": 10, "height": 6, "window_size": 100, "limits": LIMITS, "seed": 42},
    {"n_trees": 4, "height": 3, "window_size": 33, "limits": None, "seed": 1},
    {"n_trees": 3, "height": 0, "window_size": 10, "limits": LIMITS, "seed": 5},
], ids=["service", "smaller", "default-limits", "height-0"])
def test_same_scores_as_river_over_a_stream(params: dict[str, Any]) -> None:
    reference, forest = _pair(**params)
    worst = 0.0
    for x in _stream(params["seed"], EVENTS):
        expected = reference.score_one(x)
        got = forest.score_one(x)
        worst = max(worst, abs(expected - got))
        reference.learn_one(x)
        forest.learn_one(x)
    assert worst <= TOLERANCE
    assert not forest.first_window_ and forest.counter_ == reference.counter


def test_the_first_event_fixes_the_features_as_river_does() -> None:
    """Grown over the first event's features: one that event lacks is never split on, in
    either, and the two keep agreeing when it turns up."""
    reference, forest = _pair(n_trees=10, height=5, window_size=20, limits=LIMITS, seed=3)
    first = next(_stream(3, 1))
    del first["geo_velocity_kmh"]
    reference.learn_one(first)
    forest.learn_one(first)
    assert "geo_velocity_kmh" not in forest.features_
    for x in _stream(4, 500):
        assert forest.score_one(x) == pytest.approx(reference.score_one(x), abs=TOLERANCE)
        reference.learn_one(x)
        forest.learn_one(x)


def test_scores_nothing_before_the_first_window() -> None:
    forest = HalfSpaceForest(n_trees=3, height=2, window_size=5, seed=0)
    assert forest.score_one({"a": 0.3}) == 0.0
    for _ in range(4):
        forest.learn_one({"a": 0.3})
    assert forest.score_one({"a": 0.9}) == 0.0
    forest.learn_one({"a": 0.3})
    assert forest.score_one({"a": 0.9}) > forest.score_one({"a": 0.3})


def test_drops_into_a_river_pipeline() -> None:
    ours = preprocessing.MinMaxScaler() | HalfSpaceForest(n_trees=10, seed=9)
    theirs = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(n_trees=10, seed=9)
    rng = random.Random(9)
    for _ in range(2_000):
        x = {"amount": rng.lognormvariate(3, 1), "hour": rng.randint(0, 23)}
        assert ours.score_one(x) == pytest.approx(theirs.score_one(x), abs=TOLERANCE)
        ours.learn_one(x)
        theirs.learn_one(x)


def test_converts_from_and_to_river_mid_stream() -> None:
    """A river model converted halfway (trees, masses, window position) goes on scoring as
    the original; converted back, so does river's."""
    params = {"n_trees": 8, "height": 5, "window_size": 60, "limits": LIMITS, "seed": 11}
    reference = anomaly.HalfSpaceTrees(**params)
    events = list(_stream(11, 1_500))
    for x in events[:1_000]:
        reference.learn_one(x)
    forest = HalfSpaceForest.from_river(reference)
    back = forest.to_river()
    for x in events[1_000:]:
        expected = reference.score_one(x)
        assert forest.score_one(x) == pytest.approx(expected, abs=TOLERANCE)
        assert back.score_one(x) == pytest.approx(expected, abs=TOLERANCE)
        for model in (reference, forest, back):
            model.learn_one(x)


def test_a_forest_converted_before_learning_grows_river_s_trees() -> None:
    reference = anomaly.HalfSpaceTrees(n_trees=5, height=4, window_size=30, seed=2)
    forest = HalfSpaceForest.from_river(reference)
    for x in _stream(2, 300):
        scaled = {k: v / 100 for k, v in x.items()}
        assert forest.score_one(scaled) == pytest.approx(reference.score_one(scaled),
                                                         abs=TOLERANCE)
        reference.learn_one(scaled)
        forest.learn_one(scaled)


def test_pickles_and_copies_to_the_same_scores() -> None:
    forest = HalfSpaceForest(n_trees=5, height=4, window_size=30, limits=LIMITS, seed=2)
    events = list(_stream(5, 400))
    for x in events[:200]:
        forest.learn_one(x)
    restored = pickle.loads(pickle.dumps(forest))
    copy = forest.copy()
    for x in events[200:]:
        expected = forest.score_one(x)
        assert restored.score_one(x) == expected == copy.score_one(x)
        for model in (forest, restored, copy):
            model.learn_one(x)


def test_river_s_estimator_checks() -> None:
    """river's own checks for an anomaly detector, on a local labelled stream (river's
    datasets are downloaded, which tests do not do)."""
    rng = random.Random(6)
    data = [({k: v for k, v in _login(rng, attack=y).items() if not isinstance(v, float)
              or not math.isnan(v)}, y) for y in [rng.random() < 0.05 for _ in range(600)]]
    model = HalfSpaceForest(n_trees=5, height=4, window_size=50, limits=LIMITS, seed=6)
    ran = 0
    for check in checks.yield_checks(model):
        func = getattr(check, "func", check)
        if "dataset" in getattr(check, "keywords", {}):
            func(model.clone(), dataset=iter(data))
        else:
            check(model.clone())
        ran += 1
    assert ran >= 20


def test_warm_leaves_nothing_to_compile_for_a_request() -> None:
    HalfSpaceForest.warm()
    kernels = (hst_module._score, hst_module._learn)
    before = [len(k.signatures) for k in kernels]
    forest = HalfSpaceForest(n_trees=5, height=4, window_size=20, limits=LIMITS, seed=1)
    for x in _stream(1, 100):
        forest.score_one(x)
        forest.learn_one(x)
    assert [len(k.signatures) for k in kernels] == before == [1, 1]


def test_the_kernels_are_cached_to_the_configured_folder(tmp_path: Path) -> None:
    """A fresh process compiles once into NUMBA_CACHE_DIR; the next one loads from it."""
    script = ("import models.hst as h; h.HalfSpaceForest.warm(); "
              "print(sum(k.stats.cache_hits.get(s, 0) for k in (h._score, h._learn) "
              "for s in k.signatures), sum(len(k.stats.cache_misses) for k in "
              "(h._score, h._learn)))")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    root = Path(hst_module.__file__).parents[1]

    def run() -> list[int]:
        done = subprocess.run([sys.executable, "-c", script], env=env, cwd=root,
                              capture_output=True, text=True, timeout=120, check=True)
        return [int(v) for v in done.stdout.split()]

    assert run() == [0, 2]  # compiled, and written
    assert any((tmp_path / "numba").rglob("*.nbc"))
    assert run() == [2, 0]  # loaded
