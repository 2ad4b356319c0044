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

Differences from the notebook, all deliberate: the notebook multiplies each level by a
factor meant as p(value | level value) that, as written, is 1 or close to 1 whenever the
level value is known; it is left out. Missing values (no user agent, no ASN for a private
address) are a value of their own instead of dropping the login. The user's history is a
window of the last ``max_history`` learned logins.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Mapping
from typing import Final

from features.event import LoginEvent
from features.ipintel import IpInfo
from features.useragent import parse_user_agent

Attributes = Mapping[str, str | None]

IP_LEVELS: Final = ("ip", "asn", "country")
UA_LEVELS: Final = ("ua", "browser", "os", "device_type")
ATTRIBUTES: Final = IP_LEVELS + UA_LEVELS

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


def _join(name: str | None, version: str | None) -> str | None:
    if not name:
        return None
    return f"{name} {version}" if version else name


def freeman_attributes(event: LoginEvent, ip: IpInfo) -> dict[str, str | None]:
    """The model's seven attributes of one login.

    ``ip`` is the pseudonymized address, ``ua`` the first 16 hex digits of the SHA-256 of
    the user-agent string; ``browser`` and ``os`` carry their version, as the RBA dataset's
    "Browser Name and Version" and "OS Name and Version" columns that the weights were
    fitted on do. Everything derived from the user agent is None when there is none.
    """
    ua = event.user_agent or None
    attrs: dict[str, str | None] = {
        "ip": event.ip_key,
        "asn": None if ip.asn is None else str(ip.asn),
        "country": ip.country,
        "ua": None,
        "browser": None,
        "os": None,
        "device_type": None,
    }
    if ua is not None:
        parsed = parse_user_agent(ua)
        attrs["ua"] = hashlib.sha256(ua.encode("utf-8")).hexdigest()[:16]
        attrs["browser"] = _join(parsed.browser, parsed.browser_version)
        attrs["os"] = _join(parsed.os, parsed.os_version)
        attrs["device_type"] = parsed.device_type
    return attrs


def _values(attrs: Attributes) -> tuple[str, ...]:
    out = []
    for name in ATTRIBUTES:
        v = attrs.get(name)
        out.append(_MISSING if v is None else str(v))
    return tuple(out)


def unit_interval(score: float) -> float:
    """Map a log risk score onto [0, 1] as ``S / (1 + S)``, for display only.

    >>> unit_interval(0.0)
    0.5
    """
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    e = math.exp(score)
    return e / (1.0 + e)


class FreemanModel:
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

    A user without history is scored as if this login were their only one and every
    feature were new: each feature at its ratio cap, ``p(u | legit) = 1 / (N + 1)`` and
    ``p(u | attack) = 1 / (users + 1)``. That is finite and high; callers that want a
    separate cold-start policy can ask ``logins(user_key)``.

    Learned state: ``global_counts_`` (attribute -> value -> count), ``user_counts_``
    (user -> attribute -> value -> count, over the window), ``user_history_`` (user -> the
    window's rows), ``user_logins_`` (user -> all-time count) and ``n_learned_``.

    >>> m = FreemanModel()
    >>> home = {"ip": "k1", "asn": "29695", "country": "NO", "ua": "a1",
    ...         "browser": "Chrome 86.0", "os": "Mac OS X 10.14.6", "device_type": "desktop"}
    >>> for _ in range(5):
    ...     m.learn_one("alice", home)
    >>> m.learn_one("bob", {**home, "ip": "k2"})
    >>> away = {"ip": "k9", "asn": "4134", "country": "CN", "ua": "b7",
    ...         "browser": "Firefox 20.0", "os": "Windows 7", "device_type": "desktop"}
    >>> m.score_one("alice", home) < m.score_one("alice", away)
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

    def logins(self, user_key: str) -> int:
        """Successful logins learned for ``user_key`` (all time, not only the window)."""
        return self.user_logins_.get(user_key, 0)

    def explain_one(self, user_key: str, attrs: Attributes) -> dict[str, float]:
        """The log-score's terms: ``ip`` and ``ua`` (one per hierarchy) and ``user``.

        Their sum is ``score_one``; learns nothing.
        """
        row = dict(zip(ATTRIBUTES, _values(attrs), strict=True))
        ip = self._log_ratio(user_key, row, IP_LEVELS, self.ip_weights)
        ua = self._log_ratio(user_key, row, UA_LEVELS, self.ua_weights)
        return {"ip": ip, "ua": ua, "user": self._log_user_prior(user_key)}

    def score_one(self, user_key: str, attrs: Attributes) -> float:
        """``log S_u(x)``: higher is riskier; finite for any input; learns nothing."""
        return math.fsum(self.explain_one(user_key, attrs).values())

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

    def learn_one(self, user_key: str, attrs: Attributes) -> None:
        """Add one login to the user's history and to the global counts."""
        row = _values(attrs)
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
