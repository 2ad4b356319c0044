"""What an app starts with and leaves behind: its background work runs while it serves and
is gone once it stops; without a rules file it serves, and exports, the shipped ruleset."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.core.rules import load_ruleset, parse_ruleset
from riskengine.service.settings import Settings

BACKGROUND = {"rules-watch", "outbox-drainer", "model-follower", "model-keeper"}


def _background() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name in BACKGROUND}


def test_background_work_runs_while_serving_and_stops_with_the_app(tmp_path: Path) -> None:
    settings = Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'r.db'}",
                        model_dir=tmp_path / "snapshots", rules_watch_s=60)
    before = _background()  # other tests' apps are not this one's business
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        started = _background() - before
        assert {t.name for t in started} == {"rules-watch", "model-keeper"}
    assert not any(t.is_alive() for t in started)


def test_without_a_rules_file_the_shipped_ruleset_serves_and_exports(tmp_path: Path) -> None:
    settings = Settings(env="test", auth="open", store=f"sqlite:{tmp_path / 'r.db'}",
                        rules_watch_s=0)
    shipped = load_ruleset()
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/admin/rules").json()["live"] == shipped.label
        answer = client.get("/v1/admin/ui/ruleset", params={"challenge": 0.3, "deny": 0.8})
        assert answer.status_code == 200
        exported = parse_ruleset(answer.text)
        assert exported.version == shipped.version
        assert [r.id for r in exported.rules] == [r.id for r in shipped.rules]
        assert (exported.thresholds.challenge, exported.thresholds.deny) == (0.3, 0.8)
