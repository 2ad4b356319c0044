"""``create_app(settle_heap=True)``, as ``riskengine serve`` starts: what start-up built is
out of the cyclic collector's sight, and scoring works as before."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.service.build import FULL_COLLECTION_AFTER
from riskengine.service.settings import Settings

LOGIN = {"event_id": "heap-1", "user_id": "heap@example.cn", "ip": "123.120.5.9"}


def test_start_up_freezes_the_heap_and_scoring_goes_on(tmp_path: Path) -> None:
    app = create_app(Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'h.db'}"),
                     settle_heap=True)
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        with TestClient(app) as client:
            # The model's trees alone are tens of thousands of objects.
            assert gc.get_freeze_count() > 10_000
            young, middle, full = gc.get_threshold()
            assert (young, middle) == thresholds[:2] and full == FULL_COLLECTION_AFTER > 10
            answer = client.post("/v1/score", json=LOGIN)
            assert answer.status_code == 200 and answer.json()["decision"] in (
                "allow", "challenge", "deny")
    finally:
        gc.unfreeze()  # the rest of the test process goes on as before
        gc.set_threshold(*thresholds)
    assert gc.get_freeze_count() == 0


def test_apps_leave_the_heap_alone_by_default(tmp_path: Path) -> None:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    app = create_app(Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'h.db'}"))
    with TestClient(app) as client:
        assert client.post("/v1/score", json=LOGIN).status_code == 200
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == thresholds
