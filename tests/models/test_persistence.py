"""Artifacts: joblib plus a card; incompatible or tampered files are refused clearly."""

from __future__ import annotations

import json
import random

import pytest

from models.anomaly import AnomalyModel
from models.persistence import ModelArtifactError, card_path, load, save


@pytest.fixture()
def artifact(tmp_path):
    model = AnomalyModel(window_size=20, seed=1)
    rng = random.Random(0)
    for _ in range(50):
        model.learn_one({"device_known": True, "geo_velocity_kmh": rng.uniform(0, 50)})
    return save(model, tmp_path / "m.joblib", version="test-1",
                card={"training": {"events": 50}, "metrics": {}}), model


def test_round_trip_keeps_scores_and_card(artifact) -> None:
    path, model = artifact
    loaded, card = load(path)
    probe = {"device_known": False, "geo_velocity_kmh": 1800.0}
    assert loaded.score_one(probe) == model.score_one(probe)
    assert card["model_version"] == "test-1"
    assert card["libraries"]["river"]
    assert "geo_velocity_kmh" in card["features"]


def test_an_artifact_from_another_river_version_is_refused_naming_it(artifact) -> None:
    path, _ = artifact
    card = json.loads(card_path(path).read_text())
    card["libraries"]["river"] = "0.19.0"
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelArtifactError, match=r"river 0\.19\.0"):
        load(path)


def test_a_tampered_artifact_is_refused(artifact) -> None:
    path, _ = artifact
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelArtifactError, match="SHA-256"):
        load(path)


def test_an_artifact_without_a_card_is_refused(artifact) -> None:
    path, _ = artifact
    card_path(path).unlink()
    with pytest.raises(ModelArtifactError, match="model card"):
        load(path)


def test_a_card_for_other_features_is_refused(artifact) -> None:
    path, _ = artifact
    card = json.loads(card_path(path).read_text())
    card["features"] = card["features"][:-1]
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelArtifactError, match="feature list"):
        load(path)
