"""The compiled gradient-boosted walk against scikit-learn's ``predict_proba`` and against its
plain-Python reference, on logins with bools, numbers, categories, NaNs, None, unknown
categories and missing names."""

from __future__ import annotations

import math
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

import models.boosted as boosted_module
from models.boosted import BoostedTrees, Feature, fit

TOLERANCE = 1e-9
ASN_KINDS = ("residential", "mobile", "business", "hosting")
FEATURES = (
    Feature("failed_logins_10m", sign=1),
    Feature("device_known", sign=-1),
    Feature("ip_is_hosting", sign=1),
    Feature("geo_velocity_kmh"),
    Feature("asn_kind", categories=ASN_KINDS),
    Feature("hour_rarity"),
)
PARAMS: dict[str, Any] = {"max_iter": 80, "max_depth": 5, "min_samples_leaf": 20}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """scikit-learn's fits and predictions on one OpenMP thread: on a small shared machine a
    team of threads waiting on each other costs more than the work."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def _login(rng: random.Random) -> tuple[dict[str, Any], int]:
    """A login's features and whether it was an attack; now and then a value is None, NaN,
    an unknown category or left out."""
    attack = rng.random() < 0.3
    x: dict[str, Any] = {
        "failed_logins_10m": rng.randint(0, 8 if attack else 2),
        "device_known": rng.random() < (0.3 if attack else 0.85),
        "ip_is_hosting": rng.random() < (0.4 if attack else 0.05),
        "geo_velocity_kmh": rng.expovariate(1 / (600 if attack else 60)),
        "asn_kind": rng.choice(ASN_KINDS[2:] if attack else ASN_KINDS),
        "hour_rarity": rng.random() ** (0.5 if attack else 2),
    }
    roll = rng.random()
    if roll < 0.08:
        x["geo_velocity_kmh"] = math.nan
    elif roll < 0.14:
        x["asn_kind"] = rng.choice([None, "satellite"])
    elif roll < 0.20:
        del x["hour_rarity"]
    elif roll < 0.23:
        x["device_known"] = None
    # labels are noisy, so the trees have something left to learn at every depth
    return x, int(attack if rng.random() > 0.1 else not attack)


def _logins(seed: int, n: int) -> tuple[list[dict[str, Any]], list[int]]:
    rng = random.Random(seed)
    pairs = [_login(rng) for _ in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


@pytest.fixture(scope="module")
def trained() -> tuple[BoostedTrees, HistGradientBoostingClassifier, list[dict[str, Any]]]:
    """The model ``fit`` returns, scikit-learn's fitted alike on the same encoded rows, and
    the training rows."""
    rows, labels = _logins(1, 4_000)
    model = fit(rows, labels, FEATURES, **PARAMS)
    x = np.array([model.encode(r) for r in rows])
    sk = HistGradientBoostingClassifier(
        max_iter=80, max_depth=5, min_samples_leaf=20, learning_rate=0.1,
        l2_regularization=1.0, monotonic_cst=[f.sign for f in FEATURES], early_stopping=False,
        random_state=0).fit(x, labels)
    return model, sk, rows


@pytest.fixture(scope="module")
def scoring_rows() -> list[dict[str, Any]]:
    return _logins(2, 5_000)[0]


def test_fit_converts_the_model_sklearn_fits(trained: Any) -> None:
    model, sk, _ = trained
    again = BoostedTrees.from_sklearn(sk, FEATURES)
    assert model.nodes_.shape == (PARAMS["max_iter"], 2 ** (PARAMS["max_depth"] + 1) - 1, 4)
    assert model.depth_ == PARAMS["max_depth"]
    assert np.array_equal(model.nodes_, again.nodes_)
    assert model.intercept_ == again.intercept_


def test_scores_equal_sklearn_and_the_reference(trained: Any,
                                                scoring_rows: list[dict[str, Any]]) -> None:
    model, sk, _ = trained
    x = np.array([model.encode(r) for r in scoring_rows])
    assert np.isnan(x).any(axis=1).sum() > 500  # the rows do exercise missing values
    # and the trees have leaves above the last level, pushed down by pass-through splits
    assert any(p.nodes["depth"][p.nodes["is_leaf"] == 1].min() < model.depth_
               for (p,) in sk._predictors)
    expected = sk.predict_proba(x)[:, 1]
    expected_raw = sk.decision_function(x)
    got = np.array([model.proba(r) for r in scoring_rows])
    reference = np.array([model.proba_reference(r) for r in scoring_rows])
    raw = np.array([model.raw(r) for r in scoring_rows])
    assert np.abs(got - expected).max() < TOLERANCE
    assert np.abs(got - reference).max() < TOLERANCE
    assert np.abs(raw - expected_raw).max() < TOLERANCE
    assert 0.05 < got.mean() < 0.95 and got.std() > 0.1  # a model that does discriminate


def test_a_value_at_a_threshold_goes_left_as_in_sklearn(
        trained: Any, scoring_rows: list[dict[str, Any]]) -> None:
    """Logins whose value is exactly a split's threshold (scikit-learn: ``x <= threshold``
    goes left)."""
    model, sk, _ = trained
    splits = model.nodes_[:, : 2 ** model.depth_ - 1, :2].reshape(-1, 2)
    ties = []
    for feature, threshold in {(int(f), t) for f, t in splits.tolist() if math.isfinite(t)}:
        spec = FEATURES[feature]
        if spec.categories is None:
            base = scoring_rows[len(ties) % len(scoring_rows)]
            ties.append({**base, spec.name: threshold})
    assert len(ties) > 50
    expected = sk.predict_proba(np.array([model.encode(r) for r in ties]))[:, 1]
    for row, want in zip(ties, expected, strict=True):
        assert model.proba(row) == pytest.approx(want, abs=TOLERANCE)
        assert model.proba_reference(row) == pytest.approx(want, abs=TOLERANCE)


def test_contributions_add_up_to_the_log_odds(trained: Any,
                                              scoring_rows: list[dict[str, Any]]) -> None:
    model, _, _ = trained
    for row in scoring_rows[:1_000]:
        proba, contributions = model.explain(row)
        ref_proba, ref_contributions = model.explain_reference(row)
        assert list(contributions) == [f.name for f in FEATURES]
        assert abs(sum(contributions.values()) + model.baseline_ - model.raw(row)) < TOLERANCE
        assert abs(proba - model.proba(row)) < TOLERANCE
        assert abs(proba - ref_proba) < TOLERANCE
        for name, value in contributions.items():
            assert abs(value - ref_contributions[name]) < TOLERANCE


def test_proba_explained_from_is_proba_then_explain(
        trained: Any, scoring_rows: list[dict[str, Any]]) -> None:
    """What the policy asks: the probability, and the contributions of the logins that
    reach ``at_least``, the very numbers ``proba`` and ``explain`` give."""
    model, _, _ = trained
    at_least = 0.3
    explained = 0
    for row in scoring_rows[:1_000]:
        p = model.proba(row)
        got = model.proba_explained_from(row, at_least)
        assert got == (model.explain(row) if p >= at_least else (p, {}))
        explained += p >= at_least
    assert 100 < explained < 900


def test_contributions_follow_the_features(trained: Any) -> None:
    """Hosting with failures and an unknown device is pushed up by those features, an
    ordinary login pulled down by them."""
    model, _, _ = trained
    bad = {"failed_logins_10m": 7, "device_known": False, "ip_is_hosting": True,
           "geo_velocity_kmh": 900.0, "asn_kind": "hosting", "hour_rarity": 0.9}
    good = {"failed_logins_10m": 0, "device_known": True, "ip_is_hosting": False,
            "geo_velocity_kmh": 5.0, "asn_kind": "residential", "hour_rarity": 0.01}
    up = model.explain(bad)[1]
    down = model.explain(good)[1]
    for name in ("failed_logins_10m", "device_known", "asn_kind"):
        assert up[name] > 0 > down[name], name


def test_baseline_is_the_average_training_login(trained: Any) -> None:
    """Internal values are count-weighted means of the leaves below, so each tree's root
    value is its mean leaf over the training rows."""
    model, _, rows = trained
    mean_raw = sum(model.raw(r) for r in rows) / len(rows)
    assert abs(model.baseline_ - mean_raw) < TOLERANCE


def test_monotonic_features_are_respected(trained: Any,
                                          scoring_rows: list[dict[str, Any]]) -> None:
    model, _, _ = trained
    for row in scoring_rows[:2_000]:
        for name, low, high, sign in (("ip_is_hosting", False, True, 1),
                                      ("failed_logins_10m", 0, 1, 1),
                                      ("failed_logins_10m", 1, 5, 1),
                                      ("device_known", False, True, -1)):
            p_low = model.proba({**row, name: low})
            p_high = model.proba({**row, name: high})
            assert (p_high - p_low) * sign >= 0.0, (name, row)


def test_pickling_scores_the_same_without_sklearn(trained: Any,
                                                  scoring_rows: list[dict[str, Any]]) -> None:
    model, _, _ = trained
    data = pickle.dumps(model)
    assert b"sklearn" not in data
    copy = pickle.loads(data)
    assert copy.features == model.features
    for row in scoring_rows[:500]:
        assert copy.proba(row) == model.proba(row)
        assert copy.explain(row) == model.explain(row)


def test_encode() -> None:
    model = BoostedTrees(FEATURES, np.zeros((0, 1, 4)), 0.0)
    x = model.encode({"failed_logins_10m": 3, "device_known": True, "ip_is_hosting": False,
                      "asn_kind": "hosting"})
    assert x.dtype == np.float64
    assert x[:3].tolist() == [3.0, 1.0, 0.0]
    assert math.isnan(x[3]) and math.isnan(x[5])  # names left out
    assert x[4] == ASN_KINDS.index("hosting")
    assert np.isnan(model.encode({})).all()
    unknown = model.encode({"asn_kind": "satellite", "device_known": None,
                            "geo_velocity_kmh": math.nan})
    assert np.isnan(unknown).all()
    with pytest.raises(TypeError, match="geo_velocity_kmh"):
        model.encode({"geo_velocity_kmh": "fast"})


def test_a_categorical_feature_cannot_be_monotonic() -> None:
    with pytest.raises(ValueError, match="sign must be 0"):
        Feature("asn_kind", sign=1, categories=ASN_KINDS)
    with pytest.raises(ValueError, match="sign must be"):
        Feature("failed_logins_10m", sign=2)


def test_from_sklearn_refuses_what_it_cannot_walk(trained: Any) -> None:
    _, sk, _ = trained
    with pytest.raises(ValueError, match="columns"):
        BoostedTrees.from_sklearn(sk, FEATURES[:-1])
    with pytest.raises(ValueError, match="monotonic"):
        BoostedTrees.from_sklearn(sk, (Feature("failed_logins_10m"), *FEATURES[1:]))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(300, 2)).astype(float)
    y = (x[:, 0] + rng.random(300) > 1.5).astype(int)
    two = (Feature("a"), Feature("b"))
    categorical = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0])
    with pytest.raises(ValueError, match="categorical"):
        BoostedTrees.from_sklearn(categorical.fit(x, y), two)
    multiclass = HistGradientBoostingClassifier(max_iter=5).fit(x, x[:, 0].astype(int))
    with pytest.raises(ValueError, match="binary"):
        BoostedTrees.from_sklearn(multiclass, two)


def test_from_sklearn_refuses_trees_deeper_than_the_limit(trained: Any,
                                                          monkeypatch: Any) -> None:
    _, sk, _ = trained
    monkeypatch.setattr(boosted_module, "MAX_DEPTH", PARAMS["max_depth"] - 1)
    with pytest.raises(ValueError, match="levels deep"):
        BoostedTrees.from_sklearn(sk, FEATURES)


def test_warm_compiles_every_kernel_once(trained: Any,
                                         scoring_rows: list[dict[str, Any]]) -> None:
    model, _, _ = trained
    BoostedTrees.warm()
    kernels = (boosted_module._raw, boosted_module._proba, boosted_module._explain)
    before = [len(k.signatures) for k in kernels]
    for row in scoring_rows[:50]:
        model.raw(row)
        model.proba(row)
        model.explain(row)
    assert [len(k.signatures) for k in kernels] == before == [1, 1, 1]


def test_the_kernels_are_cached_to_the_configured_folder(tmp_path: Path) -> None:
    """A fresh process compiles the kernels once and writes them to NUMBA_CACHE_DIR (that a
    later process loads them from there, tests/models/test_hst.py shows for numba's cache)."""
    script = ("import models.boosted as b; b.BoostedTrees.warm(); ks = (b._raw, b._proba, "
              "b._explain); print(sum(k.stats.cache_hits.get(s, 0) for k in ks "
              "for s in k.signatures), sum(len(k.stats.cache_misses) for k in ks))")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    root = Path(boosted_module.__file__).parents[1]
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=root,
                          capture_output=True, text=True, timeout=120, check=True)
    assert [int(v) for v in done.stdout.split()] == [0, 3]  # compiled
    written = {p.name.split("-")[0] for p in (tmp_path / "numba").rglob("*.nbi")}
    assert {"boosted._raw", "boosted._proba", "boosted._explain"} <= written


def test_a_feature_may_say_what_its_absence_stands_for() -> None:
    """``missing`` encodes None as a value (an absent count as 0), so a model cannot learn
    which logins carry the feature at all; without it None stays NaN."""
    counted = Feature("failed_logins_10m", sign=1, missing=0.0)
    plain = Feature("device_known", sign=-1)
    rows = [{"failed_logins_10m": i % 4, "device_known": i % 2 == 0} for i in range(200)]
    model = fit(rows, [int(r["failed_logins_10m"] > 2) for r in rows], [counted, plain],
                max_iter=5, min_samples_leaf=5)
    encoded = model.encode({"failed_logins_10m": None})
    assert encoded[0] == 0.0 and math.isnan(encoded[1])
    assert model.proba({"failed_logins_10m": None, "device_known": True}) == model.proba(
        {"failed_logins_10m": 0, "device_known": True})
