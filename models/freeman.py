"""The login risk model of Freeman et al. (2016), as calibrated by Wiefling et al. (2022).

Sources
-------
- D. M. Freeman, S. Jain, M. Dürmuth, B. Biggio, G. Giacinto, "Who Are You? A Statistical
  Approach to Measuring User Authenticity", NDSS 2016, https://doi.org/10.14722/ndss.2016.23240
  — the risk score (their Equation 7 without per-feature attack data)::

      S_u(x) = p(u | attack) / p(u | legit) * prod_k p(x_k) / p(x_k | u, legit)

  i.e. how much likelier the population (a stand-in for the attacker, who does not know
  the victim's habits) is to produce the login's feature values than the user's own
  successful-login history is; features are assumed independent.
- S. Wiefling, P. R. Jørgensen, S. Thunem, L. Lo Iacono, "Pump Up Password Security!
  Evaluating and Enhancing Risk-Based Authentication on a Real-World Large-Scale Online
  Service", ACM TOPS 2022, https://doi.org/10.1145/3546069, and its public notebook
  https://github.com/das-group/rba-algorithm (``rba-algorithm.ipynb``, MIT): the feature
  hierarchies and their weights fitted on the RBA dataset (IP -> ASN -> country
  0.6 / 0.3 / 0.1; user-agent string -> browser name and version -> OS name and version ->
  device type 0.5387 / 0.2680 / 0.1882 / 0.0051, kept here at the notebook's full
  precision), the unseen-value smoothing, p(u | attack) = 1 / number of users,
  p(u | legit) = the user's share of successful logins, and the floor of a quarter of the
  global likelihood for a value the user never had. No code is taken from it.

How one feature is scored
-------------------------
For a hierarchy with levels ``l`` (finest first), weights ``mu_l`` and the login's values
``v_l``, with ``N`` learned logins in all and ``n_u`` in the user's kept history::

    global  G = sum_l mu_l * c(v_l) / (N + M_l)      c: count among all learned logins
    user    L = sum_l mu_l * c_u(v_l) / n_u          c_u: count in the user's history
    ratio     = G / max(L, rho * G)                  rho = unseen_user_factor (1/4)

``M_l`` estimates how many values of level ``l`` have not been seen yet: one plus the
number of distinct values of every coarser level (a new IP can sit in any known ASN or
country). An unseen value of the finest level counts ``unseen_pseudo_count`` (1) so that
``G > 0``; unseen values of coarser levels add nothing. The user side is not smoothed; a
value the user never had would give ``L = 0``, which the notebook replaces by ``G / 4``.
Here the same floor applies whenever ``L < G / 4``, so a value the user barely knows never
scores above one the user never had: each feature's ratio lies in ``(0, 1 / rho]``.

What the model reads
--------------------
``x`` is one login's features, a mapping of catalog names to values (the extractor's
feature vector with the catalog's ``identity_features``). The model reads the seven of
``features.catalog.FREEMAN_ATTRIBUTES`` (``ip_key``, ``ip_asn``, ``ip_country``;
``user_agent_hash``, ``ua_browser``, ``ua_os``, ``ua_device_type``) and ignores the rest,
and, under ``USER_KEY`` (``"user_key"``), the user's pseudonym, which says whose history to
compare the login with. Values are compared as text: ``29695`` and ``"29695"`` are the same
ASN.

Differences from the notebook, all deliberate: the notebook multiplies each level by a
factor meant as p(value | level value) that, as written, is 1 or close to 1 whenever the
level value is known; it is left out. Missing values (no user agent, no ASN for a private
address) are a value of their own instead of dropping the login. The user's history is a
window of the last ``max_history`` learned logins.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

from features.catalog import FREEMAN_ATTRIBUTES
from models.base import CalibratedRisk

#: The name under which ``x`` carries the user's pseudonym (``LoginEvent.user_key``). Not a
#: feature of the login: it names the history the login is compared with.
USER_KEY: Final = "user_key"

# The two hierarchies over catalog features, finest level first; together they are
# ``FREEMAN_ATTRIBUTES``, in its order.
IP_LEVELS: Final = ("ip_key", "ip_asn", "ip_country")
UA_LEVELS: Final = ("user_agent_hash", "ua_browser", "ua_os", "ua_device_type")
ATTRIBUTES: Final = FREEMAN_ATTRIBUTES

# das-group/rba-algorithm, rba-algorithm.ipynb, `feature_weightings`.
IP_WEIGHTS: Final = (0.6, 0.3, 0.1)
UA_WEIGHTS: Final = (
    0.5386653840551359,
    0.2680451498625666,
    0.18818295100109536,
    0.0051065150812021525,
)

# None is a value of its own: a user whose client never sends a user agent should not look
# new each time, and one whose client always does should look new when it stops.
_MISSING: Final = "\x00missing"


def freeman_attributes(features: Mapping[str, Any]) -> dict[str, Any]:
    """The model's seven attributes picked from a login's features (``FREEMAN_ATTRIBUTES``;
    None for any the mapping lacks). Add ``USER_KEY`` to score or learn them.

    >>> freeman_attributes({"ip_key": "k1", "ip_asn": 29695, "hour_rarity": 0.2})["ip_asn"]
    29695
    """
    return {name: features.get(name) for name in ATTRIBUTES}


def _values(x: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for name in ATTRIBUTES:
        v = x.get(name)
        out.append(_MISSING if v is None else str(v))
    return tuple(out)


def _user(x: Mapping[str, Any]) -> str:
    """The user key ``x`` carries; "" (a user without history) when it carries none."""
    user = x.get(USER_KEY)
    return "" if user is None else str(user)


def unit_interval(score: float) -> float:
    """Map a log risk score onto [0, 1] as ``S / (1 + S)``: the scale of ``risk``'s ramp.

    >>> unit_interval(0.0)
    0.5
    """
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    e = math.exp(score)
    return e / (1.0 + e)


class FreemanModel(CalibratedRisk):
    """Per-user likelihood ratio of global versus own feature frequencies.

    Works when an account's successful logins come from a few networks and devices and an
    attacker's do not: credential stuffing from proxies and data centres, phished
    passwords replayed from abroad. Fails against an attacker who copies the victim's
    context (same ISP or country, same browser build, a residential proxy next door), for
    users whose networks change all the time (mobile carriers, travel), and for users
    without history, who have nothing to compare with. It learns what it is shown, so it
    must only learn from logins the policy allowed or a challenge verified.

    Parameters
    ----------
    ip_weights
        Weights of the IP, ASN and country levels (sum 1).
    ua_weights
        Weights of the user-agent string, browser, OS and device-type levels (sum 1).
    unseen_pseudo_count
        Count given to a globally unseen IP or user-agent string, so that ``p(x) > 0``.
    unseen_user_factor
        Floor of the user likelihood as a share of the global one (``rho``); a feature's
        ratio is at most ``1 / unseen_user_factor``, reached by values the user never had.
    max_history
        Logins kept per user (a window of the most recent); None keeps all. Per-user memory
        is then at most ``max_history`` rows of seven short strings plus their counts. The
        global counts are not windowed; they grow with the number of distinct values.

    The score is the natural log of ``S_u(x)`` (see the module docstring): 0 means the
    population and the user explain the login equally well, each unit is a factor e.
    The log keeps every order that ROC and threshold computations need, where
    ``S / (1 + S)`` would round the riskiest logins to the same 1.0 (``unit_interval``).
    ``risk`` ramps over that scale (``models.base.CalibratedRisk``): uncalibrated, from 0 at
    ``S = 1`` (score 0) up towards 1 as ``S`` grows; ``calibrate`` moves the start to a high
    quantile of good logins' ``S / (1 + S)``.

    A user without history is scored as if this login were their only one and every
    feature were new: each feature at its ratio cap, ``p(u | legit) = 1 / (N + 1)`` and
    ``p(u | attack) = 1 / (users + 1)``. That is finite and high; callers that want a
    separate cold-start policy can ask ``logins(user_key)``. A login whose ``x`` carries no
    ``USER_KEY`` is scored the same way; learning one is refused.

    Learned state: ``global_counts_`` (attribute -> value -> count), ``user_counts_``
    (user -> attribute -> value -> count, over the window), ``user_history_`` (user -> the
    window's rows), ``user_logins_`` (user -> all-time count), ``n_learned_`` and
    ``calibration_``.

    >>> m = FreemanModel()
    >>> home = {"user_key": "alice", "ip_key": "k1", "ip_asn": 29695, "ip_country": "NO",
    ...         "user_agent_hash": "a1", "ua_browser": "Chrome 86.0",
    ...         "ua_os": "Mac OS X 10.14.6", "ua_device_type": "desktop"}
    >>> for _ in range(5):
    ...     m.learn_one(home)
    >>> m.learn_one({**home, "user_key": "bob", "ip_key": "k2"})
    >>> away = {"user_key": "alice", "ip_key": "k9", "ip_asn": 4134, "ip_country": "CN",
    ...         "user_agent_hash": "b7", "ua_browser": "Firefox 20.0", "ua_os": "Windows 7",
    ...         "ua_device_type": "desktop"}
    >>> m.score_one(home) < m.score_one(away)
    True
    """

    def __init__(
        self,
        ip_weights: tuple[float, float, float] = IP_WEIGHTS,
        ua_weights: tuple[float, float, float, float] = UA_WEIGHTS,
        *,
        unseen_pseudo_count: float = 1.0,
        unseen_user_factor: float = 0.25,
        max_history: int | None = 100,
    ) -> None:
        self.ip_weights = ip_weights
        self.ua_weights = ua_weights
        self.unseen_pseudo_count = unseen_pseudo_count
        self.unseen_user_factor = unseen_user_factor
        self.max_history = max_history
        self._check()
        self.global_counts_: dict[str, dict[str, int]] = {a: {} for a in ATTRIBUTES}
        self.user_counts_: dict[str, dict[str, dict[str, int]]] = {}
        self.user_history_: dict[str, deque[tuple[str, ...]]] = {}
        self.user_logins_: dict[str, int] = {}
        self.n_learned_ = 0
        self.calibration_ = (0.5, 1.0)

    def _check(self) -> None:
        if len(self.ip_weights) != len(IP_LEVELS) or len(self.ua_weights) != len(UA_LEVELS):
            raise ValueError("ip_weights needs 3 weights and ua_weights 4")
        if any(w < 0 for w in (*self.ip_weights, *self.ua_weights)):
            raise ValueError("weights must not be negative")
        if self.ip_weights[0] <= 0 or self.ua_weights[0] <= 0:
            # The finest level carries the smoothing that keeps p(x) above zero.
            raise ValueError("the IP and user-agent string weights must be positive")
        if self.unseen_pseudo_count <= 0:
            raise ValueError("unseen_pseudo_count must be positive")
        if not 0 < self.unseen_user_factor <= 1:
            raise ValueError("unseen_user_factor must be in (0, 1]")
        if self.max_history is not None and self.max_history < 1:
            raise ValueError("max_history must be at least 1 or None")

    # -- scoring --------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Scores compare with a population once it has learned any login."""
        return self.n_learned_ > 0

    def _risk_scale(self, score: float) -> float:
        return unit_interval(score)

    def logins(self, user_key: str) -> int:
        """Successful logins learned for ``user_key`` (all time, not only the window)."""
        return self.user_logins_.get(user_key, 0)

    def explain_one(self, x: Mapping[str, Any]) -> dict[str, float]:
        """The log-score's terms: ``ip`` and ``ua`` (one per hierarchy) and ``user``.

        Their sum is ``score_one``; learns nothing.
        """
        user_key = _user(x)
        row = dict(zip(ATTRIBUTES, _values(x), strict=True))
        ip = self._log_ratio(user_key, row, IP_LEVELS, self.ip_weights)
        ua = self._log_ratio(user_key, row, UA_LEVELS, self.ua_weights)
        return {"ip": ip, "ua": ua, "user": self._log_user_prior(user_key)}

    def score_one(self, x: Mapping[str, Any]) -> float:
        """``log S_u(x)``: higher is riskier; finite for any input; learns nothing."""
        return math.fsum(self.explain_one(x).values())

    def _log_ratio(
        self,
        user_key: str,
        row: Mapping[str, str],
        levels: tuple[str, ...],
        weights: tuple[float, ...],
    ) -> float:
        n = self.n_learned_
        distinct = [len(self.global_counts_[level]) for level in levels]
        glob = 0.0
        for i, (level, w) in enumerate(zip(levels, weights, strict=True)):
            unseen = 1 + sum(distinct[i + 1 :])  # M_l: room for new values below each coarser one
            count: float = self.global_counts_[level].get(row[level], 0)
            if count == 0 and i == 0:
                count = self.unseen_pseudo_count
            glob += w * count / (n + unseen)
        counts = self.user_counts_.get(user_key)
        own = 0.0
        if counts is not None:
            n_user = len(self.user_history_[user_key])
            for level, w in zip(levels, weights, strict=True):
                own += w * counts[level].get(row[level], 0) / n_user
        own = max(own, self.unseen_user_factor * glob)
        return math.log(glob) - math.log(own)

    def _log_user_prior(self, user_key: str) -> float:
        """``log p(u | attack) / p(u | legit)`` with attacks spread evenly over users."""
        n_user = self.user_logins_.get(user_key, 0)
        users = len(self.user_logins_)
        if n_user == 0:  # as if this login were the user's first learned one
            return math.log(self.n_learned_ + 1) - math.log(users + 1)
        return math.log(self.n_learned_) - math.log(users) - math.log(n_user)

    # -- learning -------------------------------------------------------------------------

    def learn_one(self, x: Mapping[str, Any]) -> None:
        """Add one login to its user's history and to the global counts."""
        user_key = _user(x)
        if not user_key:
            raise ValueError(f"x carries no {USER_KEY!r}: whose history would it join?")
        row = _values(x)
        for name, value in zip(ATTRIBUTES, row, strict=True):
            table = self.global_counts_[name]
            table[value] = table.get(value, 0) + 1
        self.n_learned_ += 1
        self.user_logins_[user_key] = self.user_logins_.get(user_key, 0) + 1
        history = self.user_history_.get(user_key)
        if history is None:
            history = self.user_history_[user_key] = deque()
            self.user_counts_[user_key] = {a: {} for a in ATTRIBUTES}
        counts = self.user_counts_[user_key]
        if self.max_history is not None and len(history) >= self.max_history:
            for name, value in zip(ATTRIBUTES, history.popleft(), strict=True):
                left = counts[name][value] - 1
                if left:
                    counts[name][value] = left
                else:
                    del counts[name][value]
        history.append(row)
        for name, value in zip(ATTRIBUTES, row, strict=True):
            counts[name][value] = counts[name].get(value, 0) + 1
