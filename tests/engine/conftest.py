from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from features.ipintel import IpIntel
from models import persistence
from riskengine.adapters.stores import SqliteStore
from riskengine.core.edge import TimePolicy
from riskengine.core.privacy import Pseudonymizer
from riskengine.core.rules import load_ruleset
from riskengine.service.scorer import Engine

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing

HOME: dict[str, Any] = {
    "user_id": "+8613800138000",
    "ip": "123.120.5.9",  # China Unicom Beijing
    "device": {"id": "490154203237518", "model": "HUAWEI Mate 60", "os_name": "HarmonyOS",
               "os_version": "4.2"},
    "network": {"type": "wifi", "ssid": "Zhang-Home"},
    "sim": {"iccid": "89860012345678901234", "imsi": "460011234567890"},
    "phone": "+8613800138000",
}


def at(when: datetime) -> str:
    return when.isoformat()


@pytest.fixture(scope="session")
def ipintel() -> IpIntel:
    return IpIntel.bundled()


@pytest.fixture()
def make_engine(ipintel: IpIntel, tmp_path: Path) -> Callable[..., Engine]:
    def make(**overrides: Any) -> Engine:
        model, card = persistence.load()
        kwargs: dict[str, Any] = {
            "store": SqliteStore(tmp_path / "engine.db"),
            "ruleset": load_ruleset(),
            "model": model,
            "model_version": card["model_version"],
            "model_card": card,
            "ipintel": ipintel,
            "pseudonymizer": Pseudonymizer(b"test-key-0123456789abcdef"),
            # These tests tell stories in event time, as a replay does: the windows run on
            # the events' own timestamps (tests/security checks the server's clock).
            "time_policy": TimePolicy(trust_event_time=True),
        }
        kwargs.update(overrides)
        return Engine(**kwargs)

    return make


def home_history(engine: Engine, n: int = 20, **changes: Any) -> datetime:
    """``n`` normal logins from home on consecutive days at usual hours; returns the last time."""
    from riskengine.core.wire import ScoreRequest

    when = T0
    for day in range(n):
        when = T0 + timedelta(days=day, minutes=7 * (day % 5))
        scored = engine.score(ScoreRequest(**{**HOME, **changes, "timestamp": at(when)}))
        assert scored.body["decision"] == "allow", scored.body
    return when
