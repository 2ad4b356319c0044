"""An app per test, built like production but with test settings and its own SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from riskengine.api import create_app
from riskengine.settings import Settings


def make_app(db_path: Path) -> FastAPI:
    return create_app(Settings(env="test", store=f"sqlite:{db_path}"))


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
