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
