"""P(attack | rule hits, anomaly risk, a few features), learned from labelled outcomes.

The hand-set combination of ``riskengine.core.policy`` is a noisy-OR: every hit risk rule
``i`` is an independent cause that makes the login an attack with probability ``r_i`` (its
score), the anomaly model adds one more such cause, and every hit trust rule ``j`` vetoes
with probability ``-t_j``::

    score = (1 - prod_i (1 - r_i)) * prod_j (1 + t_j)
          = (1 - exp(-H)) * exp(-G),   H = sum_i h_i,  G = sum_j g_j

with the *hazards* ``h_i = -log(1 - r_i) >= 0`` and ``g_j = -log(1 + t_j) >= 0``.
``OutcomeModel`` keeps that form and learns one non-negative multiplier per input, plus a
leak (the chance that a login no input speaks for is an attack)::

    P(attack | x) = (1 - exp(-(leak + sum_k theta_k * x_k))) * exp(-sum_k theta_k * |x_k|)
                     \\_________ inputs with x_k > 0 ________/       \\_ inputs with x_k < 0 _/

An input is a hazard: positive for risk (a hit risk rule's ``h_i``, the anomaly model's
``-log(1 - weight * risk)``, a risk feature's 1.0), negative for trust. The multipliers stay
``>= 0`` (projected updates), so a risk input can only add risk and a trust input only take
it away, whatever the outcomes say. With every multiplier at its prior (1 for a rule or the
anomaly model, 0 for a feature) and no leak, the model *is* the hand-set combination.

It learns by maximum a posteriori: weighted log loss plus a Gaussian pull of every
multiplier toward its prior, so with few outcomes it stays near the hand-set combination
and moves only as evidence arrives. ``learn_one(x, y, weight)`` takes one outcome (AdaGrad
steps, the pull applied to the inputs the outcome speaks of); ``fit`` takes a batch
(L-BFGS-B with the bounds). A negative ``weight`` takes a step back, which is how a lesson
later found to be wrong is undone.

When it works: when the inputs rank logins well and the outcomes are a fair sample of what
they label (challenged logins' step-up results, user reports, and verified-good logins
subsampled with a weight of one over the sampling rate). When it fails: outcomes are a
biased sample (only what was challenged gets a step-up result; an attack that was allowed
and never reported is never labelled), so its probabilities are those of the logins that
get labelled; an attacker who can produce outcomes can teach it, which is why the engine
guards what reaches ``learn_one`` (``riskengine.core.learning``).

>>> m = OutcomeModel(min_outcomes=0)
>>> x = {"rule:new_device": 0.2231}  # -log(1 - 0.2): the hand-set score 0.2
>>> round(m.proba_one(x), 3)
0.2
>>> for _ in range(200):
...     m.learn_one(x, 0)  # the rule's hits keep turning out legit
>>> m.proba_one(x) < 0.1 and m.weights_["rule:new_device"] >= 0.0
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.boosted import BoostedTrees, Feature

LEAK = "leak"
ANOMALY = "anomaly"
# The input of a trained base model (``OutcomeModel.base``): its probability as a hazard.
BASE = "base"
_EPS = 1e-12
# Catalog features the engine's outcome model reads beside the rules and the anomaly model,
# each with the way it may push (1 risk, -1 trust): network facts only. Client-reported
# identifiers (device id, SIM) are claims an attacker can replay, so none earns trust here.
FEATURES: tuple[tuple[str, float], ...] = (
    ("new_asn", 1.0), ("new_city", 1.0), ("ip_is_vpn", 1.0), ("ip_prefix_known", -1.0))
# A feature starts with no say at all (the hand-set combination reads none of them).
FEATURE_PRIORS: Mapping[str, float] = {f"feature:{name}": 0.0 for name, _ in FEATURES}


# What the trained base model reads (``riskengine.tools.outcome_training`` fits it): the
# catalog's behavioural features, each with the only way it may push (1: risk, -1: trust,
# 0: either), never a raw identifier, place or build (they name a world, not a behaviour,
# and a model that learned them would not carry over to traffic nobody here drew). It
# judges accounts with a history only (``riskengine.core.policy``): the simulator's new
# accounts are almost all stuffing's invented names, a deployment's are its customers on its
# first day. Claims
# the client makes (a known or trusted device id) may lower risk only through the model's
# interactions with what the server sees: a trusted device on a new country's hosting
# address is scored as the attacks that replayed one were.
_RISK = ("auth_failed", "new_device", "marked_bad", "os_downgrade", "device_mismatch",
         "device_sim_mismatch", "client_downgrade", "device_speed_kmh", "ip_is_hosting",
         "ip_is_vpn", "ip_is_tor", "new_ip_prefix", "new_asn", "new_country", "new_city",
         "new_ssid", "sim_changed", "hour_rarity", "geo_distance_km", "geo_velocity_kmh",
         "user_failures_10m", "user_failures_24h", "tenant_failures_10m",
         "tenant_failure_ratio_10m", "ip_failures_10m", "ip_failures_per_user_10m",
         "asn_failures_10m", "ip_prefix_abuse_minutes_6h", "ip_prefix_failed_accounts_20m",
         "asn_abuse_minutes_6h", "asn_failed_accounts_20m", "device_accounts_30d")
_TRUST = ("device_known", "device_trusted", "device_model_known", "os_family_known",
          "bluetooth_known", "browser_known", "household_device", "ip_prefix_known",
          "asn_known", "ssid_known", "same_country_as_last")
_EITHER = ("user_logins_count", "days_since_last_login", "hours_since_last_login",
           "user_devices", "user_countries", "user_asns", "ip_version", "asn_users_10m",
           "ip_users_10m")
# A fact or count the login does not carry is False or 0 to the trees: which logins carry a
# device record, a phone number or a Wi-Fi name is the generator's habit, not behaviour (the
# phone's signals are left to the rules for that reason). Missing-as-its-own-case is kept
# only where "no value" means something: no previous login to measure travel from.
_NO_MISSING_CASE = frozenset(_RISK + _TRUST) - {"geo_distance_km", "geo_velocity_kmh",
                                                 "device_speed_kmh"}
BASE_FEATURES: tuple[Feature, ...] = (
    *(Feature(name, sign=1, missing=0.0 if name in _NO_MISSING_CASE else None)
      for name in _RISK),
    *(Feature(name, sign=-1, missing=0.0) for name in _TRUST),
    *(Feature(name) for name in _EITHER),
    Feature("login_method", categories=("password", "sms_otp", "email_otp", "oauth")),
    Feature("event_type", categories=("login", "registration")),
)


def hazard(score: float) -> float:
    """A hand-set score as the noisy-OR's hazard: ``-log(1 - s)`` for risk (``s > 0``),
    ``log(1 + s)`` (negative) for trust."""
    return -math.log1p(-score) if score > 0 else math.log1p(score)


def inputs(hits: Mapping[str, float], *, anomaly_risk: float = 0.0, anomaly_weight: float = 0.0,
           values: Mapping[str, Any] | None = None,
           base: BoostedTrees | None = None,
           base_proba: float | None = None) -> dict[str, float]:
    """One login as the model reads it: each hit rule's hazard by ``rule:<id>`` (``hits``
    maps the hit rules' ids to their scores), the anomaly model's ``-log(1 - weight *
    risk)`` as ``anomaly``, and the ``FEATURES`` that hold in ``values`` (True), as
    ``feature:<name>``, and with a trained ``base`` its probability's hazard as ``base``
    (``base_proba``: that probability, when the caller already has it).
    The engine (``riskengine.core.policy.outcome_inputs``) and the notebooks build inputs
    here, so they cannot drift."""
    x = {f"rule:{rule}": hazard(score) for rule, score in hits.items() if score != 0}
    if anomaly_risk > 0 and anomaly_weight > 0:
        x[ANOMALY] = -math.log1p(-min(anomaly_weight * anomaly_risk, 1 - 1e-9))
    for name, sign in FEATURES:
        if values is not None and values.get(name) is True:
            x[f"feature:{name}"] = sign
    if base is not None and values is not None:
        p = base.proba(values) if base_proba is None else base_proba
        x[BASE] = hazard(min(p, 1.0 - 1e-9))
    return x


@dataclass(frozen=True, slots=True)
class Explanation:
    """One login's probability and what each input contributed to it.

    ``contributions`` maps each input (and ``"leak"``) to its share of ``proba``: risk
    inputs split ``1 - exp(-H)`` in proportion to their learned hazards, trust inputs split
    the reduction (negative shares) likewise, so the shares add up to ``proba``.
    """

    proba: float
    contributions: Mapping[str, float]


class OutcomeModel:
    """A noisy-OR over hazards with learned, sign-constrained multipliers.

    Parameters
    ----------
    priors
        The prior multiplier of named inputs; any other input's is ``default_prior``.
        None: ``FEATURE_PRIORS`` (the engine's features start at 0).
    default_prior
        1.0: an input the model has not learned counts as in the hand-set combination.
    leak_prior
        The leak's prior hazard (a quiet login's prior probability of being an attack).
    prior_strength, prior_precision
        How strongly multipliers are pulled toward their priors: the Gaussian prior's
        precision is ``prior_precision`` (as many outcomes' worth of belief in the hand-set
        value, so a handful of outcomes barely move it) plus ``prior_strength`` per outcome
        that speaks of the input (a ridge that never lets go entirely).
    learning_rate
        AdaGrad's base step for ``learn_one``.
    min_outcomes, min_attacks
        ``ready`` once this many outcomes, of which this many attacks, were learned.
    base
        A model trained offline on labelled logins (``models.boosted.BoostedTrees`` over
        ``BASE_FEATURES``), read as one more input (``BASE``); with it and priors that give
        it 1 and the rules 0, the model at its prior *is* the trained model, and outcomes
        move the rules' and the base's multipliers from there.

    Learned state: ``weights_`` (input -> multiplier, only those that moved or were seen),
    ``leak_``, ``n_outcomes_``, ``n_attacks_`` (sums of the weights of the outcomes
    learned), ``n_learned_`` (outcomes learned, counted once each).
    """

    # Snapshots pickled before models had a base load without the attribute.
    base: BoostedTrees | None = None

    def __init__(
        self,
        *,
        priors: Mapping[str, float] | None = None,
        default_prior: float = 1.0,
        leak_prior: float = 1e-4,
        prior_strength: float = 0.02,
        prior_precision: float = 20.0,
        learning_rate: float = 0.05,
        min_outcomes: int = 300,
        min_attacks: int = 20,
        base: BoostedTrees | None = None,
    ) -> None:
        self.base = base
        self.priors = priors
        self.default_prior = default_prior
        self.leak_prior = leak_prior
        self.prior_strength = prior_strength
        self.prior_precision = prior_precision
        self.learning_rate = learning_rate
        self.min_outcomes = min_outcomes
        self.min_attacks = min_attacks
        self.weights_: dict[str, float] = {}
        self.leak_ = leak_prior
        self._g2: dict[str, float] = {}
        self._seen: dict[str, float] = {}
        self.n_outcomes_ = 0.0
        self.n_attacks_ = 0.0
        self.n_learned_ = 0

    # -- the model ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether enough outcomes were learned for its probabilities to be used."""
        return self.n_outcomes_ >= self.min_outcomes and self.n_attacks_ >= self.min_attacks

    def prior(self, name: str) -> float:
        if name == LEAK:
            return self.leak_prior
        table = FEATURE_PRIORS if self.priors is None else self.priors
        return table.get(name, self.default_prior)

    def weight(self, name: str) -> float:
        """The multiplier of ``name`` now: learned, or its prior."""
        got = self.weights_.get(name)
        return self.prior(name) if got is None else got

    def _hazards(self, x: Mapping[str, float]) -> tuple[float, float]:
        risk, trust = self.leak_, 0.0
        for name, v in x.items():
            if v > 0:
                risk += self.weight(name) * v
            elif v < 0:
                trust -= self.weight(name) * v
        return risk, trust

    def proba_one(self, x: Mapping[str, float]) -> float:
        """P(attack | x); learns nothing. Inputs that are 0 or missing say nothing."""
        risk, trust = self._hazards(x)
        return float(-math.expm1(-risk) * math.exp(-trust))

    def explain_one(self, x: Mapping[str, float]) -> Explanation:
        """``proba_one(x)`` and each input's share of it (see ``Explanation``)."""
        risk, trust = self._hazards(x)
        combined = -math.expm1(-risk)
        proba = combined * math.exp(-trust)
        parts: dict[str, float] = {}
        if risk > 0:
            parts[LEAK] = combined * self.leak_ / risk
        for name, v in x.items():
            h = self.weight(name) * abs(v)
            if v > 0 and risk > 0:
                parts[name] = combined * h / risk
            elif v < 0 and trust > 0:
                parts[name] = -(combined - proba) * h / trust
        return Explanation(float(proba), parts)

    # -- learning -----------------------------------------------------------------------

    def learn_one(self, x: Mapping[str, float], y: bool | int, weight: float = 1.0) -> None:
        """One outcome: ``y`` 1 for an attack, 0 for a legitimate login, counted ``weight``
        times (a subsampled negative's weight is one over its sampling rate; a negative
        weight takes the step back, to undo a lesson found wrong)."""
        if weight == 0:
            return
        risk, trust = self._hazards(x)
        e_risk = math.exp(-risk)
        combined = max(_EPS, 1.0 - e_risk)
        p = min(1.0 - _EPS, combined * math.exp(-trust))
        # d(log loss)/dH and /dG for the noisy-OR (see the module docstring's formula)
        if y:
            d_risk, d_trust = -e_risk / combined, 1.0
        else:
            d_risk, d_trust = e_risk * math.exp(-trust) / (1.0 - p), -p / (1.0 - p)
        lr = self.learning_rate
        steps = [(LEAK, d_risk, 1.0)] + [
            (name, d_risk if v > 0 else d_trust, abs(v)) for name, v in x.items() if v != 0]
        for name, d, magnitude in steps:
            current = self.leak_ if name == LEAK else self.weight(name)
            # the prior's share of this outcome: its fixed precision spread over the
            # outcomes that spoke of the input so far, plus the per-outcome ridge
            seen = self._seen.get(name, 0.0) + abs(weight)
            self._seen[name] = seen
            pull = abs(weight) * (self.prior_strength + self.prior_precision / seen)
            grad = weight * d * magnitude + pull * (current - self.prior(name))
            acc = self._g2.get(name, 0.0) + grad * grad
            self._g2[name] = acc
            # projected: multipliers never below 0, the leak never at 0 (log loss of an
            # attack nothing speaks for would be infinite)
            floor = 1e-6 if name == LEAK else 0.0
            moved = max(floor, current - lr * grad / (math.sqrt(acc) + 1e-8))
            if name == LEAK:
                self.leak_ = moved
            else:
                self.weights_[name] = moved
        sign = 1 if weight > 0 else -1
        self.n_outcomes_ = max(0.0, self.n_outcomes_ + weight)
        if y:
            self.n_attacks_ = max(0.0, self.n_attacks_ + weight)
        self.n_learned_ += sign

    def fit(
        self,
        xs: Sequence[Mapping[str, float]],
        ys: Sequence[bool | int],
        sample_weight: Sequence[float] | None = None,
    ) -> OutcomeModel:
        """Fit on a batch of outcomes (MAP: weighted log loss plus the prior's pull,
        multipliers bounded below by 0), replacing what was learned."""
        from scipy.optimize import minimize

        if len(xs) != len(ys) or not xs:
            raise ValueError("fit needs as many outcomes as labels, and at least one")
        names = sorted({k for x in xs for k, v in x.items() if v != 0})
        index = {n: i for i, n in enumerate(names)}
        risk_m = np.zeros((len(xs), len(names)))
        trust_m = np.zeros((len(xs), len(names)))
        for row, x in enumerate(xs):
            for k, v in x.items():
                if v > 0:
                    risk_m[row, index[k]] = v
                elif v < 0:
                    trust_m[row, index[k]] = -v
        y = np.asarray(ys, dtype=float)
        w = np.ones(len(xs)) if sample_weight is None else np.asarray(sample_weight, float)
        prior = np.array([self.leak_prior, *(self.prior(n) for n in names)])
        # the prior's precision scales with how often an input is spoken of, as online
        seen = np.concatenate([[w.sum()], (risk_m != 0).T @ w + (trust_m != 0).T @ w])
        precision = self.prior_strength * seen + self.prior_precision

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            leak, mult = theta[0], theta[1:]
            h = leak + risk_m @ mult
            g = trust_m @ mult
            e_h = np.exp(-h)
            combined = np.clip(-np.expm1(-h), _EPS, None)
            p = np.clip(combined * np.exp(-g), _EPS, 1 - _EPS)
            loss = -(w * (y * np.log(p) + (1 - y) * np.log1p(-p))).sum()
            d_h = np.where(y > 0, -e_h / combined, e_h * np.exp(-g) / (1 - p))
            d_g = np.where(y > 0, 1.0, -p / (1 - p))
            grad = np.concatenate([[(w * d_h).sum()], risk_m.T @ (w * d_h) + trust_m.T @ (w * d_g)])
            diff = theta - prior
            return float(loss + 0.5 * (precision * diff * diff).sum()), grad + precision * diff

        bounds = [(1e-6, None)] + [(0.0, None)] * len(names)
        start = np.array([self.leak_prior, *(self.weight(n) for n in names)])
        result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
        self.leak_ = float(result.x[0])
        self.weights_ = {n: float(v) for n, v in zip(names, result.x[1:], strict=True)}
        self._g2 = {}
        self._seen = {n: float(v) for n, v in zip([LEAK, *names], seen, strict=True)}
        self.n_outcomes_ = float(w.sum())
        self.n_attacks_ = float((w * y).sum())
        self.n_learned_ = len(xs)
        return self

    def __repr__(self) -> str:
        return (f"OutcomeModel(n_learned_={self.n_learned_}, ready={self.ready}, "
                f"leak_={self.leak_:.2g}, inputs={len(self.weights_)})")


def reliability(probas: Sequence[float], ys: Sequence[bool | int], *, bins: int = 10
                ) -> dict[str, Any]:
    """How well probabilities read as probabilities: the Brier score, the expected
    calibration error over equal-width ``bins``, and each bin's mean predicted and observed
    attack rate (for a model card)."""
    p = np.asarray(probas, dtype=float)
    y = np.asarray(ys, dtype=float)
    if not len(p):
        raise ValueError("reliability needs predictions")
    edges = np.minimum((p * bins).astype(int), bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = edges == b
        if inside.any():
            mean_p, mean_y = float(p[inside].mean()), float(y[inside].mean())
            ece += inside.mean() * abs(mean_p - mean_y)
            table.append({"bin": b, "n": int(inside.sum()), "predicted": round(mean_p, 4),
                          "observed": round(mean_y, 4)})
    return {"brier": float(((p - y) ** 2).mean()), "ece": float(ece), "bins": table}
