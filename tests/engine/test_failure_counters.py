"""A stateful property test: the failure counters the engine sees always match a plain model
of what happened, and no amount of failures turns into a lockout of the owner."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from features.ipintel import IpIntel
from models import persistence
from riskengine.adapters.stores import MemoryStore
from riskengine.core.privacy import Pseudonymizer
from riskengine.core.rules import load_ruleset
from riskengine.core.wire import ScoreRequest
from riskengine.service.scorer import Engine
from tests.engine.conftest import T0

INTEL = IpIntel.bundled()
MODEL, CARD = persistence.load()
RULES = load_ruleset()
USERS = ["alice@example.cn", "bob@example.cn"]


class Counters(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine(store=MemoryStore(), ruleset=RULES, model=MODEL,
                             model_version=CARD["model_version"], ipintel=INTEL,
                             pseudonymizer=Pseudonymizer(b"stateful-test-key-0123456789"))
        self.now = T0
        self.failures: dict[str, list] = {u: [] for u in USERS}
        self.n = 0
        self.last: dict = {}

    def _send(self, user: str, failed: bool, ip: str) -> dict:
        self.n += 1
        scored = self.engine.score(ScoreRequest(
            event_id=f"s{self.n}", user_id=user, ip=ip, timestamp=self.now.isoformat(),
            auth_result="failure" if failed else "success",
            device={"id": "490154203237518"}, network={"type": "wifi", "ssid": "Home"}),
            received_at=self.now)  # the test's clock is the server's
        return {"body": scored.body, "features": dict(scored.features or {}), "at": self.now}

    @rule(user=st.sampled_from(USERS), attacker=st.booleans())
    def fail(self, user: str, attacker: bool) -> None:
        self.last = self._send(user, True, "45.83.64.10" if attacker else "123.120.5.9")
        self.failures[user].append(self.now)
        self.last["user"] = user

    @rule(user=st.sampled_from(USERS))
    def succeed(self, user: str) -> None:
        self.last = self._send(user, False, "123.120.5.9")
        self.last["user"] = user

    @rule(minutes=st.integers(min_value=1, max_value=60 * 30))
    def wait(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @invariant()
    def counters_match_the_model(self) -> None:
        if not self.last or not self.last["features"]:
            return
        user, f, at = self.last["user"], self.last["features"], self.last["at"]
        times = self.failures[user]
        in_10m = sum(1 for t in times if at - timedelta(minutes=10) < t <= at)
        in_24h = sum(1 for t in times if at - timedelta(hours=24) < t <= at)
        assert f["user_failures_10m"] == min(in_10m, 64)
        assert f["user_failures_24h"] == min(in_24h, 64)

    @invariant()
    def never_a_lockout_at_home(self) -> None:
        if self.last and not self.last["features"].get("auth_failed", True):
            assert self.last["body"]["decision"] != "deny"


Counters.TestCase.settings = settings(
    max_examples=15, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestFailureCounters = Counters.TestCase
