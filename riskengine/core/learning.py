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
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from features.event import LoginEvent, LoginMethod

OTP_METHODS = (LoginMethod.SMS_OTP, LoginMethod.EMAIL_OTP)


def otp_verified(event: LoginEvent, values: Mapping[str, Any]) -> bool:
    """The login itself was a passed step-up: a one-time code to the account's own phone
    or e-mail. Not an SMS code right after a SIM change: that may reach a swapped SIM."""
    if event.failed or event.login_method not in OTP_METHODS:
        return False
    return not (event.login_method is LoginMethod.SMS_OTP and values.get("sim_changed"))


def verified_good(event: LoginEvent, values: Mapping[str, Any]) -> bool:
    """An allowed, successful login that may be learned now (see the module docstring)."""
    if event.failed:
        return False
    known_network = bool(
        values.get("ssid_known") or values.get("ip_prefix_known") or values.get("asn_known")
    )
    return bool(
        (values.get("device_known") and known_network)
        or values.get("user_is_new")
        or otp_verified(event, values)
    )


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
