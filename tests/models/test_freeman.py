"""Behaviour of the Freeman et al. model: ordering, back-off, edge cases, persistence, AUC."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from sklearn.metrics import roc_auc_score

from features.catalog import BY_NAME, FREEMAN_ATTRIBUTES, IDENTITY_FEATURES, identity_features
from features.event import LoginEvent
from features.extract import extract
from features.ipintel import IpInfo
from features.profile import Velocity
from models.freeman import (
    ATTRIBUTES,
    IP_LEVELS,
    UA_LEVELS,
    USER_KEY,
    FreemanModel,
    freeman_attributes,
    unit_interval,
)

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/86.0.4202.0 Safari/537.36"
)


def _attrs(
    ip: str,
    asn: str,
    country: str,
    ua: str = "ua-home",
    *,
    browser: str = "Chrome 86.0",
    os: str = "Mac OS X 10.14.6",
    device: str = "desktop",
) -> dict[str, str | None]:
    return {
        "ip_key": ip,
        "ip_asn": asn,
        "ip_country": country,
        "user_agent_hash": ua,
        "ua_browser": browser,
        "ua_os": os,
        "ua_device_type": device,
    }


def _as(user: str, attrs: Mapping[str, object]) -> dict[str, object]:
    """One login of ``user``: its attributes and the user key, as the model reads them."""
    return {**attrs, USER_KEY: user}


HOME = _attrs("ip-home", "29695", "NO")
ELSEWHERE = _attrs("ip-far", "4134", "CN", "ua-far", browser="Firefox 20.0", os="Windows 7")


def _population(model: FreemanModel, users: int = 40, seed: int = 0) -> None:
    """Other users in the same country and networks, so global counts are not trivial."""
    rng = random.Random(seed)
    for u in range(users):
        for _ in range(rng.randint(1, 6)):
            model.learn_one(_as(
                f"other-{u}",
                _attrs(
                    f"ip-{u}-{rng.randint(0, 2)}",
                    rng.choice(["29695", "2119", "15659"]),
                    "NO",
                    f"ua-{rng.randint(0, 9)}",
                ),
            ))


def _with_alice(history: list[dict[str, str | None]] | None = None) -> FreemanModel:
    model = FreemanModel()
    _population(model)
    for attrs in history or [HOME] * 6:
        model.learn_one(_as("alice", attrs))
    return model


def test_weights_are_the_published_ones() -> None:
    model = FreemanModel()
    assert model.ip_weights == (0.6, 0.3, 0.1)
    # das-group/rba-algorithm notebook, `feature_weightings`; 0.5387 / 0.2680 / 0.1882 / 0.0051
    assert model.ua_weights == (
        0.5386653840551359,
        0.2680451498625666,
        0.18818295100109536,
        0.0051065150812021525,
    )
    assert tuple(round(w, 4) for w in model.ua_weights) == (0.5387, 0.2680, 0.1882, 0.0051)
    assert math.isclose(sum(model.ip_weights), 1.0)
    assert math.isclose(sum(model.ua_weights), 1.0)


def test_known_history_scores_lower_than_a_new_network_and_device() -> None:
    model = _with_alice()
    assert model.score_one(_as("alice", HOME)) < model.score_one(_as("alice", ELSEWHERE))
    assert model.score_one(_as("alice", HOME)) < 0.0  # the user explains it better than the crowd


def test_new_ip_in_a_known_asn_scores_lower_than_a_new_asn_in_a_new_country() -> None:
    model = _with_alice()
    same_network = _attrs("ip-new", "29695", "NO")
    far_away = _attrs("ip-new", "16509", "US")
    assert model.score_one(_as("alice", HOME)) < model.score_one(_as("alice", same_network))
    assert model.score_one(_as("alice", same_network)) < model.score_one(_as("alice", far_away))
    # only the IP hierarchy differs
    ua_term = model.explain_one(_as("alice", same_network))["ua"]
    assert ua_term == model.explain_one(_as("alice", HOME))["ua"]


def test_new_ua_string_of_a_known_browser_scores_lower_than_a_new_device() -> None:
    model = _with_alice()
    update = {**HOME, "user_agent_hash": "ua-home-updated"}
    other = {
        **HOME,
        "user_agent_hash": "ua-phone",
        "ua_browser": "Chrome Mobile 80.0",
        "ua_os": "Android 10",
        "ua_device_type": "mobile",
    }
    assert model.score_one(_as("alice", HOME)) < model.score_one(_as("alice", update))
    assert model.score_one(_as("alice", update)) < model.score_one(_as("alice", other))


def test_a_feature_ratio_never_exceeds_the_never_seen_cap() -> None:
    # Alice used Norway once in 20 logins: knowing a value barely must not beat never having it
    history = [_attrs("ip-se", "3301", "SE")] * 19 + [_attrs("ip-no", "29695", "NO")]
    model = _with_alice(history)
    cap = math.log(1 / model.unseen_user_factor)
    barely = model.explain_one(_as("alice", _attrs("ip-x", "29695", "NO")))["ip"]
    never = model.explain_one(_as("alice", _attrs("ip-x", "16509", "US")))["ip"]
    assert barely <= cap
    assert never == pytest.approx(cap)


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        dict.fromkeys(ATTRIBUTES),
        _attrs("ip-never", "0", "ZZ", "ua-never", browser="", os="", device="bot"),
        {"ip_key": "ip-home", "unknown_key": "ignored"},
    ],
)
@pytest.mark.parametrize("user", ["alice", "nobody"])
def test_unseen_and_missing_values_give_finite_scores(attrs: dict, user: str) -> None:
    for model in (FreemanModel(), _with_alice()):
        score = model.score_one(_as(user, attrs))
        assert math.isfinite(score)
        assert all(math.isfinite(v) for v in model.explain_one(_as(user, attrs)).values())


def test_a_user_without_history_gets_the_all_new_score() -> None:
    model = _with_alice()
    cold = model.score_one(_as("nobody", HOME))
    assert math.isfinite(cold)
    assert cold > model.score_one(_as("alice", HOME))
    cap = math.log(1 / model.unseen_user_factor)
    assert model.explain_one(_as("nobody", HOME))["ip"] == pytest.approx(cap)
    assert model.logins("nobody") == 0


def test_missing_user_agent_is_a_value_of_its_own() -> None:
    api_client = dict.fromkeys(UA_LEVELS)
    model = _with_alice([{**HOME, **api_client}] * 5)
    without = model.score_one(_as("alice", {**HOME, **api_client}))
    assert without < model.score_one(_as("alice", HOME))


def test_scoring_learns_nothing_and_is_deterministic() -> None:
    a, b = _with_alice(), _with_alice()
    first = [a.score_one(_as("alice", x)) for x in (HOME, ELSEWHERE)]
    again = [a.score_one(_as("alice", x)) for x in (HOME, ELSEWHERE)]
    other = [b.score_one(_as("alice", x)) for x in (HOME, ELSEWHERE)]
    assert first == again == other
    assert a.n_learned_ == b.n_learned_


def test_pickle_round_trip_keeps_scores_and_learning() -> None:
    model = _with_alice()
    clone = pickle.loads(pickle.dumps(model))
    assert clone.score_one(_as("alice", ELSEWHERE)) == model.score_one(_as("alice", ELSEWHERE))
    for m in (model, clone):
        m.learn_one(_as("alice", ELSEWHERE))
    assert clone.score_one(_as("alice", ELSEWHERE)) == model.score_one(_as("alice", ELSEWHERE))
    assert clone.ua_weights == model.ua_weights


def test_history_window_bounds_per_user_memory() -> None:
    model = FreemanModel(max_history=3)
    for i in range(10):
        model.learn_one(_as("alice", _attrs(f"ip-{i}", "29695", "NO")))
    assert len(model.user_history_["alice"]) == 3
    assert sum(model.user_counts_["alice"]["ip_key"].values()) == 3
    assert set(model.user_counts_["alice"]["ip_key"]) == {"ip-7", "ip-8", "ip-9"}
    assert model.logins("alice") == 10  # p(u | legit) still uses the all-time count
    assert model.global_counts_["ip_key"]["ip-0"] == 1  # the population does not forget
    recent = model.score_one(_as("alice", _attrs("ip-9", "29695", "NO")))
    assert recent < model.score_one(_as("alice", _attrs("ip-0", "29695", "NO")))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ip_weights": (0.5, 0.5)},
        {"ua_weights": (0.0, 0.5, 0.5, 0.0)},
        {"ip_weights": (0.7, 0.4, -0.1)},
        {"unseen_pseudo_count": 0.0},
        {"unseen_user_factor": 0.0},
        {"unseen_user_factor": 2.0},
        {"max_history": 0},
    ],
)
def test_bad_hyper_parameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        FreemanModel(**kwargs)


def test_unit_interval_is_monotone_and_bounded() -> None:
    values = [unit_interval(s) for s in (-1000.0, -3.0, 0.0, 3.0, 1000.0)]
    assert values == sorted(values)
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values[2] == 0.5


def _event(user_agent: str | None) -> LoginEvent:
    return LoginEvent(
        event_id="e1",
        tenant="default",
        user_key="u-key",
        timestamp=datetime(2020, 2, 3, 12, 43, tzinfo=UTC),
        ip="81.167.144.58",
        ip_key="ip-key",
        ip_prefix_key="prefix-key",
        user_agent=user_agent,
    )


def _features(event: LoginEvent, info: IpInfo) -> dict[str, object]:
    """The login's features as the engine sees them: the extractor's and the identity ones
    (``features.extract`` does not compute the latter yet)."""
    return {**extract(event, info, None, Velocity()), **identity_features(event)}


def test_the_attributes_are_catalog_features_in_hierarchy_order() -> None:
    names = {f.name for f in IDENTITY_FEATURES} | set(BY_NAME)
    assert set(FREEMAN_ATTRIBUTES) <= names
    assert IP_LEVELS + UA_LEVELS == FREEMAN_ATTRIBUTES == ATTRIBUTES
    assert set(identity_features(_event(CHROME_MAC))) == {f.name for f in IDENTITY_FEATURES}


def test_freeman_attributes_of_an_event() -> None:
    info = IpInfo(ip="81.167.144.58", version=4, is_private=False, country="NO", asn=29695)
    attrs = freeman_attributes(_features(_event(CHROME_MAC), info))
    assert set(attrs) == set(ATTRIBUTES)
    assert attrs["ip_key"] == "ip-key"
    assert attrs["ip_asn"] == 29695
    assert attrs["ip_country"] == "NO"
    ua = attrs["user_agent_hash"]
    assert isinstance(ua, str) and len(ua) == 16
    assert ua == identity_features(_event(CHROME_MAC))["user_agent_hash"]  # stable
    assert attrs["ua_browser"] == "Chrome 86.0"
    assert attrs["ua_os"] == "Mac OS X 10.14.6"
    assert attrs["ua_device_type"] == "desktop"


def test_freeman_attributes_without_user_agent_or_asn() -> None:
    info = IpInfo(ip="10.0.65.171", version=4, is_private=True)
    attrs = freeman_attributes(_features(_event(None), info))
    assert attrs["ip_asn"] is None and attrs["ip_country"] is None
    assert [attrs[k] for k in UA_LEVELS] == [None] * 4


def test_values_are_compared_as_text() -> None:
    """An ASN as the extractor gives it (an int) scores as its text does."""
    def numeric(x: dict[str, str | None]) -> dict[str, object]:
        return {**x, "ip_asn": int(str(x["ip_asn"]))}

    as_int, as_text = FreemanModel(), _with_alice()
    _population(as_int)
    for _ in range(6):
        as_int.learn_one(_as("alice", numeric(HOME)))
    for x in (HOME, _attrs("ip-new", "29695", "NO"), ELSEWHERE):
        assert as_int.score_one(_as("alice", numeric(x))) == as_text.score_one(_as("alice", x))


def test_the_user_key_says_whose_history() -> None:
    model = _with_alice()
    assert model.score_one(HOME) == model.score_one(_as("nobody", HOME))  # no key: no history
    with pytest.raises(ValueError, match=USER_KEY):
        model.learn_one(HOME)


def test_auc_of_attacks_against_legitimate_repeats_is_high() -> None:
    rng = random.Random(7)
    countries = {"NO": ["29695", "2119", "15659", "41164"], "SE": ["3301", "1257"]}
    devices = [
        (f"ua-{i}", f"Browser{i % 6} {i % 3}", f"OS{i % 4}", ["desktop", "mobile"][i % 2])
        for i in range(40)
    ]
    habits = {}
    for u in range(150):
        country = "NO" if rng.random() < 0.8 else "SE"
        asns = rng.sample(countries[country], k=rng.randint(1, 2))
        ips = [(f"ip-{u}-{i}", rng.choice(asns)) for i in range(rng.randint(1, 3))]
        habits[f"user-{u}"] = (country, asns, ips, rng.sample(devices, k=rng.randint(1, 2)))

    def legit(user: str) -> dict[str, str | None]:
        country, asns, ips, devs = habits[user]
        if rng.random() < 0.1:  # a new address from one of the user's usual providers
            ip, asn = f"ip-{user}-{rng.random()}", rng.choice(asns)
        else:
            ip, asn = rng.choice(ips)
        ua, browser, os, device = rng.choice(devs)
        return _attrs(ip, asn, country, ua, browser=browser, os=os, device=device)

    def attack(i: int) -> dict[str, str | None]:
        ua, browser, os, device = (
            f"ua-attack-{i}",
            f"Browser{rng.randint(0, 9)} 1",
            "OS9",
            "desktop",
        )
        if rng.random() < 0.5:  # sometimes a popular device
            ua, browser, os, device = rng.choice(devices)
        return _attrs(
            f"ip-attack-{i}",
            rng.choice(["16509", "14061", "4134", "9009"]),
            rng.choice(["US", "NL", "CN", "RU"]),
            ua,
            browser=browser,
            os=os,
            device=device,
        )

    model = FreemanModel()
    users = sorted(habits)
    for _ in range(8):
        for user in users:
            model.learn_one(_as(user, legit(user)))
    scores, labels = [], []
    for i in range(600):
        user = rng.choice(users)
        if rng.random() < 0.2:
            scores.append(model.score_one(_as(user, attack(i))))
            labels.append(1)
        else:
            x = legit(user)
            scores.append(model.score_one(_as(user, x)))
            labels.append(0)
            model.learn_one(_as(user, x))  # only what the policy allowed is learned
    assert sum(labels) > 50
    assert roc_auc_score(labels, scores) > 0.9
