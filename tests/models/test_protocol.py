"""Common checks run over every model in ``models``, in the spirit of river's ``river/checks``
and scikit-learn's ``check_estimator``: each is a ``models.base.RiskModel``, pickles to the
same scores, survives unseen and missing features, is deterministic for a seed, ranks attacks
above customers, and maps its scores to a risk that is monotone and within [0, 1]."""

from __future__ import annotations

import importlib
import inspect
import math
import pickle
import pkgutil
import random
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

import models
from features.catalog import FREEMAN_ATTRIBUTES, MODEL_FEATURES
from models.anomaly import AnomalyModel
from models.base import RiskModel
from models.freeman import USER_KEY, FreemanModel
from models.hst import HalfSpaceForest
from models.sklearn_models import ClassifierModel, IsolationForestModel

Login = dict[str, Any]
USERS = 20


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # On a busy shared 2-core machine, OpenMP's thread teams make a 0.1 s fit take 20 s.
    with threadpool_limits(limits=1):
        yield


def _customer(rng: random.Random) -> Login:
    """A customer at home: a known device and network, an ordinary hour, no failures."""
    u = rng.randrange(USERS)
    return {
        USER_KEY: f"user-{u}",
        # the Freeman attributes: each user has one address and one browser
        "ip_key": f"ip-{u}", "ip_asn": [29695, 2119, 15659][u % 3], "ip_country": "NO",
        "user_agent_hash": f"ua-{u}", "ua_browser": "Chrome 120.0",
        "ua_os": "Mac OS X 14.2", "ua_device_type": "desktop",
        # the anomaly models' features
        "device_known": True, "marked_bad": False, "os_downgrade": False,
        "device_mismatch": False, "device_accounts_30d": 1, "ip_is_hosting": False,
        "ip_is_vpn": False, "ip_is_tor": False, "new_ip_prefix": rng.random() < 0.1,
        "new_asn": False, "new_country": False, "sim_changed": False,
        "days_since_last_login": rng.uniform(0, 5), "local_hour_sin": rng.uniform(-0.3, 0.3),
        "local_hour_cos": rng.uniform(0.7, 1.0), "hour_rarity": rng.uniform(0, 0.3),
        "geo_distance_km": rng.uniform(0, 50), "geo_velocity_kmh": rng.uniform(0, 30),
        "user_failures_10m": 0, "user_failures_24h": rng.randint(0, 1),
        "tenant_failure_ratio_10m": rng.uniform(0, 0.05), "ip_users_10m": 1,
        "ip_failures_10m": 0,
    }


def _attack(rng: random.Random) -> Login:
    """Someone else with a customer's password: a new network abroad, a new device."""
    i = rng.randrange(10**6)
    return {
        **_customer(rng),
        "ip_key": f"ip-attack-{i}", "ip_asn": 4134, "ip_country": "CN",
        "user_agent_hash": f"ua-attack-{i}", "ua_browser": "Firefox 20.0", "ua_os": "Windows 7",
        "device_known": False, "ip_is_hosting": True, "new_ip_prefix": True, "new_asn": True,
        "new_country": True, "hour_rarity": rng.uniform(0.8, 1.0),
        "geo_distance_km": rng.uniform(5000, 9000), "geo_velocity_kmh": rng.uniform(1500, 9000),
        "user_failures_10m": rng.randint(2, 10), "ip_users_10m": rng.randint(10, 50),
        "ip_failures_10m": rng.randint(10, 50),
    }


def _history(seed: int, n: int = 400) -> list[Login]:
    rng = random.Random(seed)
    return [_customer(rng) for _ in range(n)]


def _online(model: AnomalyModel | FreemanModel, seed: int) -> Any:
    for x in _history(seed):
        model.learn_one(x)
    return model


def _labelled(seed: int) -> tuple[list[Login], list[int]]:
    rng = random.Random(seed + 1)
    attacks = [_attack(rng) for _ in range(60)]
    return _history(seed) + attacks, [0] * 400 + [1] * len(attacks)


# One way to build each model, trained on the same history. A model class in ``models``
# without a builder here fails ``test_every_model_class_is_checked_on_every_feature_it_reads``.
BUILDERS: dict[type, Callable[[int], Any]] = {
    AnomalyModel: lambda seed: _online(AnomalyModel(window_size=50, seed=seed), seed),
    FreemanModel: lambda seed: _online(FreemanModel(), seed),
    IsolationForestModel: lambda seed: IsolationForestModel(n_estimators=25, seed=seed).fit(
        _history(seed)),
    ClassifierModel: lambda seed: ClassifierModel(seed=seed).fit(*_labelled(seed)),
}


# What a model is made of, not a model: the compiled half-space forest is a river detector
# inside AnomalyModel, held equal to river's by tests/models/test_hst.py.
PARTS = {HalfSpaceForest}


def _model_classes() -> set[type]:
    found = set()
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"models.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__ == module.__name__ and hasattr(cls, "score_one")
                    and not inspect.isabstract(cls) and not getattr(cls, "_is_protocol", False)
                    and cls not in PARTS):
                found.add(cls)
    return found


def test_every_model_class_is_checked_on_every_feature_it_reads() -> None:
    assert _model_classes() == set(BUILDERS)
    login = _customer(random.Random(0))
    assert {f.name for f in MODEL_FEATURES} | set(FREEMAN_ATTRIBUTES) <= set(login)


@cache
def _trained(cls: type, seed: int) -> bytes:
    return pickle.dumps(BUILDERS[cls](seed))


@pytest.fixture(params=list(BUILDERS), ids=lambda cls: cls.__name__)
def build(request: pytest.FixtureRequest) -> Callable[[int], Any]:
    """A fresh copy of the model trained with that seed (trained once per session)."""
    return lambda seed: pickle.loads(_trained(request.param, seed))


def _held_out(seed: int = 99) -> tuple[list[Login], list[Login]]:
    rng = random.Random(seed)
    return [_customer(rng) for _ in range(80)], [_attack(rng) for _ in range(40)]


def _scores(model: RiskModel, logins: list[Login]) -> list[float]:
    return [model.score_one(x) for x in logins]


def test_is_a_risk_model(build: Callable[[int], Any]) -> None:
    model = build(1)
    assert isinstance(model, RiskModel)
    assert isinstance(type(model)(), RiskModel)  # untrained too
    assert model.ready
    assert model.n_learned_ > 0


def test_scoring_learns_nothing(build: Callable[[int], Any]) -> None:
    model = build(1)
    customers, attacks = _held_out()
    first = _scores(model, customers + attacks)
    assert _scores(model, customers + attacks) == first
    assert model.n_learned_ == build(1).n_learned_


def test_pickles_to_the_same_scores_and_learns_on_alike(build: Callable[[int], Any]) -> None:
    model = build(1)
    customers, attacks = _held_out()
    clone = pickle.loads(pickle.dumps(model))
    assert isinstance(clone, RiskModel)
    assert _scores(clone, customers + attacks) == _scores(model, customers + attacks)
    for m in (model, clone):
        for x in customers[:20]:
            m.learn_one(x)
    assert _scores(clone, attacks) == _scores(model, attacks)
    assert [clone.risk(s) for s in _scores(clone, attacks)] == [
        model.risk(s) for s in _scores(model, attacks)]


@pytest.mark.parametrize("cls", list(BUILDERS), ids=lambda cls: cls.__name__)
def test_is_deterministic_for_a_seed(cls: type) -> None:
    customers, attacks = _held_out()
    first, second = BUILDERS[cls](7), BUILDERS[cls](7)  # each trained from scratch
    assert _scores(first, customers + attacks) == _scores(second, customers + attacks)


def test_unseen_features_are_ignored(build: Callable[[int], Any]) -> None:
    model = build(1)
    customers, attacks = _held_out()
    for x in customers[:10] + attacks[:10]:
        noisy = {**x, "not_a_feature": 12.5, "another_one": "text", "a_third": None}
        assert model.score_one(noisy) == model.score_one(x)


def test_missing_features_give_finite_scores_and_can_be_learned(
        build: Callable[[int], Any]) -> None:
    model = build(1)
    customers, attacks = _held_out()
    rng = random.Random(5)
    partial = [{k: v for k, v in x.items() if k == USER_KEY or rng.random() < 0.5}
               for x in customers + attacks]
    unknown = [{k: (v if k == USER_KEY else None) for k, v in x.items()} for x in attacks]
    for x in [{}, *partial, *unknown]:
        score = model.score_one(x)
        assert isinstance(score, float) and math.isfinite(score)
        assert 0.0 <= model.risk(score) <= 1.0
    for x in partial + unknown:
        model.learn_one(x)
    assert all(math.isfinite(s) for s in _scores(model, [{}, *partial]))


def test_ranks_attacks_above_customers(build: Callable[[int], Any]) -> None:
    model = build(1)
    customers, attacks = _held_out()
    scores = _scores(model, customers) + _scores(model, attacks)
    assert roc_auc_score([0] * len(customers) + [1] * len(attacks), scores) > 0.9


def _monotone_within_unit(model: RiskModel, scores: list[float]) -> None:
    grid = sorted({*scores, -1e9, -100.0, -1.0, 0.0, 0.25, 0.5, 0.75, 0.99, 1.0, 2.0, 100.0,
                   1e9})
    risks = [model.risk(s) for s in grid]
    assert all(0.0 <= r <= 1.0 for r in risks)
    assert all(a <= b for a, b in zip(risks, risks[1:], strict=False))


def test_risk_is_monotone_in_the_score_and_within_0_and_1(build: Callable[[int], Any]) -> None:
    model = build(1)
    customers, attacks = _held_out()
    _monotone_within_unit(model, _scores(model, customers + attacks))
    model.calibrate(_scores(model, customers))
    low, high = model.calibration_
    assert low < high
    _monotone_within_unit(model, _scores(model, customers + attacks))
    # calibrated on customers: few of them carry risk, most attacks do
    assert sum(model.risk(s) > 0 for s in _scores(model, customers)) <= 0.05 * len(customers)
    assert sum(model.risk(s) > 0 for s in _scores(model, attacks)) >= 0.5 * len(attacks)


def test_calibration_needs_scores(build: Callable[[int], Any]) -> None:
    with pytest.raises(ValueError, match="calibration needs scores"):
        build(1).calibrate([])


def test_an_untrained_model_carries_no_risk(build: Callable[[int], Any]) -> None:
    model = build(1)
    fresh = type(model)()
    assert not fresh.ready
    assert all(fresh.risk(s) == 0.0 for s in (-1e9, 0.0, 0.5, 1.0, 1e9))
