"""What may teach the model, and how much: the poisoning defences of online learning.

An online model that learns from whatever it sees can be taught by an attacker to accept
him. Two defences sit here, in front of the learner:

- ``verified_good``: only logins that the policy allowed, whose password or code check
  succeeded, and that are verified (on a known device and a known network, an OTP login,
  or the bootstrap of an account with no history yet) teach the profile and the model; a
  passed step-up reported later verifies the others (``Engine.feedback``).
- ``LearningGate``: within a sliding window of event time, one user, one IP and one ASN may
  contribute only a bounded number (an ASN a bounded share) of the model's lessons, so a
  handful of attacker accounts cannot drag the model toward their traffic however many
  requests they send.

Hard rules (impossible travel, SIM swap, velocity) are not learned at all: they stay rules.

The outcome model (``models.outcome``) learns from labelled outcomes instead, behind
defences of its own: ``core.feedback.outcome_lesson`` refuses an outcome an attacker could
have produced (an SMS code passed right after a SIM change or a number's reassignment, a
failed password attempt), allowed logins teach it only as a deterministic sample
(``sampled``), and ``OutcomeTeacher`` caps each user's and network's share and undoes a
lesson a later label contradicts (a fraud report on a login taught as a negative).
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from features.event import LoginEvent, LoginMethod

OTP_METHODS = (LoginMethod.SMS_OTP, LoginMethod.EMAIL_OTP)


@dataclass(frozen=True, slots=True)
class OutcomeLesson:
    """One labelled outcome for the outcome model: the login's inputs as the model reads
    them (``core.policy.outcome_inputs``), whether it was an attack, how many logins it
    stands for, who taught it (for the caps) and whether it contradicts an earlier lesson
    on the same event (``undo``; ``undo_weight`` is that lesson's weight, for when the
    teacher no longer remembers it)."""

    event_id: str
    inputs: Mapping[str, float]
    attack: bool
    weight: float
    user: str
    block: str
    asn: int | None
    ts: float
    undo: bool = False
    undo_weight: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "inputs": dict(self.inputs), "attack": self.attack,
                "weight": self.weight, "user": self.user, "block": self.block,
                "asn": self.asn, "ts": self.ts, "undo": self.undo,
                "undo_weight": self.undo_weight}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutcomeLesson:
        return cls(event_id=str(data["event_id"]),
                   inputs={str(k): float(v) for k, v in data["inputs"].items()},
                   attack=bool(data["attack"]), weight=float(data["weight"]),
                   user=str(data["user"]), block=str(data["block"]), asn=data.get("asn"),
                   ts=float(data["ts"]), undo=bool(data.get("undo", False)),
                   undo_weight=float(data.get("undo_weight", 0.0)))


def otp_verified(event: LoginEvent, values: Mapping[str, Any]) -> bool:
    """The login itself was a passed step-up: a one-time code to the account's own phone
    or e-mail. Not an SMS code right after a SIM change: that may reach a swapped SIM."""
    if event.failed or event.login_method not in OTP_METHODS:
        return False
    return not (event.login_method is LoginMethod.SMS_OTP and values.get("sim_changed"))


def known_network(values: Mapping[str, Any]) -> bool:
    """The server sees the login on a network the user is known on: a known address block
    or network operator. A Wi-Fi name alone is a claim the client makes (a replayed device
    record sends it), so it verifies nothing."""
    return bool(values.get("ip_prefix_known") or values.get("asn_known"))


def verified_good(event: LoginEvent, values: Mapping[str, Any]) -> bool:
    """An allowed, successful login that may be learned now (see the module docstring)."""
    if event.failed:
        return False
    return bool(
        (values.get("device_known") and known_network(values))
        or (values.get("device_trusted") and at_home_in_claims(values))
        or values.get("user_is_new")
        or otp_verified(event, values)
    )


def at_home_in_claims(values: Mapping[str, Any]) -> bool:
    """A trusted device's login that contradicts nothing: in the country of the user's last
    login, on no anonymiser, its hardware, builds and travel consistent with its history.
    Its network is new, but the login may teach it (a customer's carrier, a new office)."""
    return bool(
        values.get("same_country_as_last") and not values.get("new_country")
        and not (values.get("ip_is_hosting") or values.get("ip_is_vpn") or values.get("ip_is_tor"))
        and not values.get("device_mismatch") and not values.get("os_downgrade")
        and not values.get("client_downgrade")
        and not (values.get("device_speed_kmh") or 0) > 1000)


def earns_trust(event: LoginEvent, values: Mapping[str, Any]) -> bool:
    """The login makes its device trusted: a one-time code passed (``otp_verified``) from a
    network the user is known on (an address block or the user's own operator). A code
    passed on a stranger's network verifies the login, not the device."""
    return otp_verified(event, values) and trust_network(values)


def trust_network(values: Mapping[str, Any]) -> bool:
    """Where a passed step-up may make a device trusted: a network the user is known on
    (``known_network``), or any network for an account with no history yet."""
    return known_network(values) or bool(values.get("user_is_new"))


class LearningGate:
    """Bounds each user's, address block's and ASN's share of the model's lessons in a time window.

    Parameters
    ----------
    window_s
        Length of the sliding window, in event time.
    per_user, per_block
        Most lessons one account, one address block (/24 or /48) may give in the window.
    asn_share, asn_floor
        One ASN may give at most ``max(asn_floor, asn_share * lessons in the window)``:
        large ISPs carry many customers, so their cap scales with the traffic.
    """

    def __init__(
        self,
        *,
        window_s: float = 86_400.0,
        per_user: int = 8,
        per_block: int = 20,
        asn_share: float = 0.25,
        asn_floor: int = 50,
    ) -> None:
        self.window_s = window_s
        self.per_user = per_user
        self.per_block = per_block
        self.asn_share = asn_share
        self.asn_floor = asn_floor
        self._recent: deque[tuple[float, str, str, str]] = deque()
        self._users: Counter[str] = Counter()
        self._blocks: Counter[str] = Counter()
        self._asns: Counter[str] = Counter()
        self.refused_ = 0

    def admit(self, *, user: str, block: str, asn: int | None, ts: float) -> bool:
        """True (and counted) when this lesson fits every cap."""
        while self._recent and self._recent[0][0] <= ts - self.window_s:
            _, u, i, a = self._recent.popleft()
            for counter, key in ((self._users, u), (self._blocks, i), (self._asns, a)):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]
        a = str(asn)
        asn_cap = max(self.asn_floor, int(self.asn_share * len(self._recent)))
        if (self._users[user] >= self.per_user or self._blocks[block] >= self.per_block
                or self._asns[a] >= asn_cap):
            self.refused_ += 1
            return False
        self._recent.append((ts, user, block, a))
        self._users[user] += 1
        self._blocks[block] += 1
        self._asns[a] += 1
        return True


# -- what may teach the outcome model ----------------------------------------------------


def sampled(event_id: str, rate: float) -> bool:
    """Whether this event is in a ``rate`` share of events, decided by its id alone, so
    every instance and every replay picks the same verified-good logins as negatives."""
    if rate >= 1.0:
        return True
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2.0**64


class OutcomeTeacher:
    """Teaches an outcome model (``models.outcome.OutcomeModel``) inside its caps, and
    undoes a lesson a later label contradicts.

    ``gate`` bounds each user's, address block's and ASN's share of the outcome lessons (a
    ``LearningGate``: a handful of accounts cannot drag the model, however many step-ups
    they pass or fail). ``taught_`` remembers the last ``remember`` lessons admitted, by
    event id, so that a lesson a later label contradicts (a passed step-up, or an allowed
    login sampled as a negative, later reported as fraud) is taken back exactly (a step
    with the opposite weight) before the new label is learned; one that is no longer
    remembered (older, or taught by a learner since restarted) is outweighed instead: the
    new label counts its own weight plus ``undo_weight``.
    """

    def __init__(self, *, gate: LearningGate | None = None, remember: int = 50_000) -> None:
        self.gate = gate or LearningGate(per_user=4, per_block=20, asn_share=0.3,
                                         asn_floor=40)
        self.remember = remember
        self.taught_: OrderedDict[str, tuple[dict[str, float], bool, float]] = OrderedDict()
        self.undone_ = 0

    def teach(self, model: Any, lesson: OutcomeLesson) -> bool:
        """Apply ``lesson`` to ``model`` if the caps admit it; True when learned."""
        weight = lesson.weight
        earlier = self.taught_.get(lesson.event_id)
        if earlier is not None and earlier[1] != lesson.attack:
            inputs, attack, taught_weight = earlier
            del self.taught_[lesson.event_id]
            model.learn_one(inputs, attack, -taught_weight)
            self.undone_ += 1
        elif lesson.undo and earlier is None:
            weight += lesson.undo_weight
        if not self.gate.admit(user=lesson.user, block=lesson.block, asn=lesson.asn,
                               ts=lesson.ts):
            return False
        inputs = dict(lesson.inputs)
        model.learn_one(inputs, lesson.attack, weight)
        self.taught_[lesson.event_id] = (inputs, lesson.attack, weight)
        while len(self.taught_) > self.remember:
            self.taught_.popitem(last=False)
        return True
