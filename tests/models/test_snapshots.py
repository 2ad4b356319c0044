"""Signed snapshots: tampered or unsigned files are refused before anything is unpickled."""

from __future__ import annotations

import random

import pytest

from models.anomaly import AnomalyModel
from models.persistence import ModelArtifactError, card_path, freeze
from models.snapshots import (
    active_version,
    list_snapshots,
    load_snapshot,
    next_version,
    save_snapshot,
    set_active,
)

KEY = b"snapshot-test-key-0123456789"


def _model(n: int = 30) -> AnomalyModel:
    m = AnomalyModel(window_size=10, seed=2)
    rng = random.Random(n)
    for _ in range(n):
        m.learn_one({"geo_velocity_kmh": rng.uniform(0, 100), "device_known": True})
    return m


def test_round_trip(tmp_path) -> None:
    path = save_snapshot(_model(), tmp_path, version="base+s1", parent="base", key=KEY)
    model, card = load_snapshot(path, key=KEY)
    assert card["model_version"] == "base+s1" and card["parent"] == "base"
    assert model.n_learned_ == 30


def test_a_frozen_model_is_saved_as_it_was_when_frozen(tmp_path) -> None:
    live = _model()
    frozen = freeze(live)
    for _ in range(5):  # the live model learns on while the snapshot is written
        live.learn_one({"geo_velocity_kmh": 500.0, "device_known": False})
    path = save_snapshot(frozen, tmp_path, version="v+s1", parent="v", key=KEY)
    model, card = load_snapshot(path, key=KEY)
    assert type(model) is AnomalyModel and card["kind"] == "AnomalyModel"
    assert model.n_learned_ == card["learned"] == frozen.learned == 30
    probe = {"geo_velocity_kmh": 42.0, "device_known": True}
    assert model.score_one(probe) == _model().score_one(probe)


@pytest.mark.parametrize("part", ["artifact", "card"])
def test_a_tampered_snapshot_is_refused(tmp_path, part) -> None:
    path = save_snapshot(_model(), tmp_path, version="v+s1", parent="v", key=KEY)
    target = path if part == "artifact" else card_path(path)
    data = bytearray(target.read_bytes())
    data[-5] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ModelArtifactError, match="signature"):
        load_snapshot(path, key=KEY)


def test_an_unsigned_snapshot_is_refused(tmp_path) -> None:
    path = save_snapshot(_model(), tmp_path, version="v+s1", parent="v", key=KEY)
    path.with_suffix(".sig").unlink()
    with pytest.raises(ModelArtifactError, match="unsigned"):
        load_snapshot(path, key=KEY)


def test_another_key_is_refused(tmp_path) -> None:
    path = save_snapshot(_model(), tmp_path, version="v+s1", parent="v", key=KEY)
    with pytest.raises(ModelArtifactError, match="signature"):
        load_snapshot(path, key=b"someone-elses-key-0123456789")


def test_lineage_versions() -> None:
    assert next_version("hst-abc") == "hst-abc+s1"
    assert next_version("hst-abc+s7") == "hst-abc+s8"
    assert next_version("hst-abc+s2", {"hst-abc+s3", "hst-abc+s4", "other+s9"}) == "hst-abc+s5"


def test_list_and_activate(tmp_path) -> None:
    save_snapshot(_model(10), tmp_path, version="v+s1", parent="v", key=KEY)
    save_snapshot(_model(20), tmp_path, version="v+s2", parent="v+s1", key=KEY)
    set_active(tmp_path, "v+s2", key=KEY)
    rows = list_snapshots(tmp_path)
    assert [r.version for r in rows] == ["v+s1", "v+s2"]
    assert [r.active for r in rows] == [False, True]
    assert rows[1].learned == 20
    set_active(tmp_path, "v+s1", key=KEY)
    assert active_version(tmp_path) == "v+s1"
    with pytest.raises(ModelArtifactError):
        set_active(tmp_path, "v+s9", key=KEY)
