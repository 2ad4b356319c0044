"""The service's model keeper: periodic signed snapshots, rollback to the same decisions."""

from __future__ import annotations

import copy
from datetime import timedelta

from models.snapshots import list_snapshots, set_active
from riskengine.adapters.stores import MemoryStore
from riskengine.core.wire import ScoreRequest
from riskengine.service.build import ModelKeeper
from tests.engine.conftest import HOME, T0, at, home_history

KEY = b"keeper-test-key-0123456789"

GOLDEN = [
    {**HOME, "event_id": "g1", "timestamp": at(T0 + timedelta(days=40))},
    {**HOME, "event_id": "g2", "ip": "81.167.144.58", "device": {"id": "356938035643809"},
     "timestamp": at(T0 + timedelta(days=40, minutes=30))},
    {**HOME, "event_id": "g3", "user_id": "new@example.cn", "ip": "52.95.110.1",
     "timestamp": at(T0 + timedelta(days=40, hours=1))},
]


def golden_decisions(engine, make_engine):
    """Scores of the golden events by a copy of ``engine``'s model on a fresh store."""
    fresh = make_engine(store=MemoryStore(), model=copy.deepcopy(engine.model),
                        model_version=engine.model_version)
    home_history(fresh, 8)
    return [fresh.score(ScoreRequest(**e)).body for e in GOLDEN]


def test_snapshots_follow_learning_and_rollback_restores_decisions(make_engine, tmp_path):
    engine = make_engine()
    keeper = ModelKeeper(engine, tmp_path, KEY)
    base_version = engine.model_version
    assert keeper.tick() is None  # nothing learned yet: no snapshot

    home_history(engine, 10)
    first = keeper.tick()
    assert first == f"{base_version}+s1" and engine.model_version == first
    # The serving model's card is now the snapshot's: its parent, and the lineage's training.
    training = engine.model_card["training"]
    assert engine.model_card["parent"] == base_version and training
    golden_first = golden_decisions(engine, make_engine)
    assert {d["model_version"] for d in golden_first} == {first}

    home_history(engine, 30, ip="111.199.8.2", network={"type": "wifi", "ssid": "Office"})
    second = keeper.tick()
    assert second == f"{base_version}+s2"

    set_active(tmp_path, first, key=KEY)  # `riskengine models rollback <first>`
    assert keeper.follow() and engine.model_version == first
    assert engine.model_card["model_version"] == first
    assert engine.model_card["training"] == training
    assert golden_decisions(engine, make_engine) == golden_first

    home_history(engine, 3)
    assert keeper.tick() == f"{base_version}+s3"  # the lineage goes on, nothing overwritten
    rows = {s.version: s for s in list_snapshots(tmp_path)}
    assert rows[f"{base_version}+s3"].parent == first
    assert set(rows) == {first, second, f"{base_version}+s3"}
