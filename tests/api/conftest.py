"""An app per test, built like production but with test settings and its own SQLite file.

These apps run with ``auth="open"``: tests of scoring and feedback are not about callers.
``test_auth.py`` builds its apps with ``auth="keys"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.service.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database the tests empty before and after use


def make_app(db_path: Path) -> FastAPI:
    return create_app(Settings(env="test", auth="open", store=f"sqlite:{db_path}"))


@pytest.fixture(scope="module", autouse=True)
def _open_api_by_default() -> Iterator[None]:
    """Apps a test module builds with its own ``Settings(env="test", ...)`` run open too.

    Module-scoped so that it is in force for module-scoped app fixtures; a test that wants
    keys says ``auth="keys"``, which wins over the environment.

    They also trust the callers' timestamps, as a replay of recorded traffic does: these
    tests send logins dated in November 2026 and run on the windows those dates make. The
    server's own clock is tested in tests/security (``trust_event_time=False``).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RISKENGINE_AUTH", "open")
        patch.setenv("RISKENGINE_TRUST_EVENT_TIME", "1")
        yield


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "re.db"


@pytest.fixture
def app(db_path: Path) -> FastAPI:
    return make_app(db_path)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def empty_redis() -> Iterator[str]:
    """The URL of an emptied Redis database (emptied again afterwards), for real servers."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()
