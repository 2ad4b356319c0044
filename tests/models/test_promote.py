"""`riskengine models promote`: a model trained as 02-train does it is checked, signed into
the model folder, made active, and then used by a running service without a restart."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from models import persistence
from models.anomaly import AnomalyModel
from models.persistence import ModelArtifactError, card_path
from models.sklearn_models import ClassifierModel, IsolationForestModel
from models.snapshots import active_version, list_snapshots, load_snapshot
from riskengine.adapters.auth import KeyStore
from riskengine.tools.cli import main
from riskengine.tools.promote import promote
from riskengine.tools.simulate import Simulator
from tests.notebooks.runner import import_analysis
from tests.servers import free_port, riskengine_piped, wait_until_up

KEY = b"promote-test-signing-key-0123456789"
SIGNING_KEY = "ci-signing-key-0123456789"


def train_like_02(out: Path, *, choose: str = "auto") -> Path:
    """What 02-train.ipynb does, on a smaller simulated log: replay it through the engine,
    split by time, fit the candidates, evaluate them on the later part, save the chosen one
    with its card. Returns the artifact."""
    analysis = import_analysis()
    lines = list(Simulator(users=60, days=24, seed=5).events())
    frame, _ = analysis.replay_frame(lines, analysis.engine_for())
    logins = analysis.Logins(frame, "jsonl", "simulated", "rules", "model")
    train, test, _ = analysis.split_by_time(frame, 0.6)
    models: dict[str, Any] = {
        "river": analysis.fit_river(train, seed=3),
        "isolation_forest": analysis.fit_isolation_forest(train, seed=3, n_estimators=50),
        "classifier": analysis.fit_classifier(train, seed=3),
    }
    results = {name: analysis.evaluate(analysis.score_frame(m, test), test)
               for name, m in models.items()}
    chosen = analysis.choose(results, models) if choose == "auto" else choose
    return analysis.save_model(
        models[chosen], out, name=chosen, logins=logins, train=train, test=test,
        metrics=results[chosen], comparison=analysis.comparison_table(results).to_dict("index"),
        hyper_parameters={"seed": 3}, calibration_share=0.2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_like_02(tmp_path_factory.mktemp("02-train"))


@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scikit-learn adapter, as 02-train chose on the committed sample."""
    return train_like_02(tmp_path_factory.mktemp("02-train-clf"), choose="classifier")


@pytest.fixture
def artifact(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained artifact and its card, free to alter."""
    copy = tmp_path / "in" / trained.name
    copy.parent.mkdir()
    shutil.copy(trained, copy)
    shutil.copy(card_path(trained), card_path(copy))
    return copy


def test_the_trained_model_serves_the_engines_interface(trained: Path) -> None:
    model, card = persistence.load(trained)
    assert isinstance(model, AnomalyModel | IsolationForestModel | ClassifierModel)
    assert model.ready and model.n_learned_ > 0
    score = model.score_one({})
    assert 0.0 <= model.risk(score) <= 1.0
    learned = model.n_learned_
    model.learn_one({"device_known": True})  # the engine teaches it; a batch model ignores it
    assert model.n_learned_ in (learned, learned + 1)
    assert card["training"]["window"] and card["training"]["data_fingerprint"]


def test_promote_signs_the_model_and_makes_it_active(artifact: Path, tmp_path: Path) -> None:
    folder = tmp_path / "snapshots"
    _, card = persistence.load(artifact)
    done = promote(artifact, folder, key=KEY)
    assert done.version == card["model_version"] and not done.already_there
    assert active_version(folder) == done.version
    model, snap = load_snapshot(folder / f"{done.version}.joblib", key=KEY)
    assert snap["model_version"] == card["model_version"] and snap["parent"] is None
    for kept in ("training", "evaluation", "metrics", "depends_on", "hyper_parameters"):
        assert snap[kept] == card[kept]
    assert snap["promoted_from"]["sha256"] == card["sha256"]
    assert model.score_one({}) == persistence.load(artifact)[0].score_one({})
    with pytest.raises(ModelArtifactError, match="signature"):
        load_snapshot(folder / f"{done.version}.joblib", key=b"another-key-0123456789")


def test_promoting_twice_only_points_active_back(artifact: Path, tmp_path: Path) -> None:
    folder = tmp_path / "snapshots"
    first = promote(artifact, folder, key=KEY)
    (folder / "ACTIVE").write_text("something-else\n")
    again = promote(artifact, folder, key=KEY)
    assert again.already_there and again.version == first.version
    assert active_version(folder) == first.version
    assert len(list_snapshots(folder)) == 1


def test_another_model_under_a_taken_version_is_refused(artifact: Path, tmp_path: Path) -> None:
    folder = tmp_path / "snapshots"
    promote(artifact, folder, key=KEY)
    model, card = persistence.load(artifact)
    model.calibration_ = (0.123, 1.0)  # recalibrated, under the same version
    other = persistence.save(model, tmp_path / "other" / "x.joblib", version=card["model_version"],
                             card={"note": "retrained"}, depends_on=tuple(card["depends_on"]))
    with pytest.raises(ModelArtifactError, match="already holds"):
        promote(other, folder, key=KEY)


def test_an_altered_artifact_is_refused(artifact: Path, tmp_path: Path) -> None:
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    with pytest.raises(ModelArtifactError, match="SHA-256"):
        promote(artifact, tmp_path / "snapshots", key=KEY)
    assert not (tmp_path / "snapshots").exists()


def test_incompatible_library_versions_are_named(artifact: Path, tmp_path: Path) -> None:
    card = json.loads(card_path(artifact).read_text())
    lib = card["depends_on"][0]
    card["libraries"][lib] = "0.1.0"
    card_path(artifact).write_text(json.dumps(card))
    with pytest.raises(ModelArtifactError, match=f"built with {lib} 0.1.0"):
        promote(artifact, tmp_path / "snapshots", key=KEY)


def test_a_model_without_the_engines_interface_is_refused(tmp_path: Path) -> None:
    path = persistence.save({"not": "a model"}, tmp_path / "dict.joblib", version="dict-1",
                            card={}, depends_on=())
    with pytest.raises(ModelArtifactError, match="lacks score_one"):
        promote(path, tmp_path / "snapshots", key=KEY)


def test_the_cli_promotes_and_lists(artifact: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RISKENGINE_ENV", "development")
    monkeypatch.delenv("RISKENGINE_MODEL_SIGNING_KEY", raising=False)
    folder = tmp_path / "snapshots"
    version = persistence.load(artifact)[1]["model_version"]
    assert main(["models", "promote", str(artifact), "--dir", str(folder)]) == 0
    assert f"{version} is now active" in capsys.readouterr().out
    assert main(["models", "list", "--dir", str(folder)]) == 0
    assert f"* {version}" in capsys.readouterr().out
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    assert main(["models", "promote", str(artifact), "--dir", str(folder)]) == 2
    assert "promotion refused" in capsys.readouterr().err


# -- a running service swaps the promoted model in ------------------------------------------


def _post(url: str, body: dict[str, Any] | None, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _login(n: int, *, failed: bool = False) -> dict[str, Any]:
    return {"user_id": f"+86138001{n:05d}", "ip": "123.120.5.9",
            "auth_result": "failure" if failed else "success",
            "device": {"id": "490154203237518", "model": "HUAWEI Mate 60"},
            "network": {"type": "wifi", "ssid": "Zhang-Home"}}


@pytest.mark.parametrize("which", ["trained", "trained_classifier"])
def test_a_running_service_swaps_in_the_promoted_model(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    trained: Path = request.getfixturevalue(which)
    _, key = KeyStore(tmp_path / "keys.json").create("ci", ["score"])
    folder = tmp_path / "snapshots"
    env = {"RISKENGINE_PSEUDONYM_KEY": "ci-key-0123456789abcdef",
           "RISKENGINE_MODEL_SIGNING_KEY": SIGNING_KEY,
           "RISKENGINE_MODEL_DIR": str(folder),
           "RISKENGINE_API_KEYS": str(tmp_path / "keys.json"),
           "RISKENGINE_SNAPSHOT_INTERVAL_S": "0.5"}
    port = free_port()
    server = riskengine_piped("serve", "--port", str(port), "--store",
                              f"sqlite:{tmp_path / 'r.db'}", env=env)
    base = f"http://127.0.0.1:{port}"
    promoted = persistence.load(trained)[1]["model_version"]
    try:
        wait_until_up(base, server)
        status, body = _post(f"{base}/v1/score", _login(0), key)
        assert status == 200 and body["model_version"].startswith("hst-default-")
        # That first login taught the shipped model; let the service snapshot it first, so
        # that its own tick does not race the promotion for ACTIVE.
        deadline = time.monotonic() + 20
        while active_version(folder) is None:
            assert time.monotonic() < deadline, "the service never snapshotted its model"
            time.sleep(0.1)

        cli = riskengine_piped("models", "promote", str(trained), "--dir", str(folder), env=env)
        out = cli.communicate(timeout=60)[0]
        assert cli.returncode == 0, out
        assert active_version(folder) == promoted

        # Failed attempts teach no model, so the version seen is the promoted one itself.
        deadline, n, seen = time.monotonic() + 20, 1, body["model_version"]
        while seen != promoted:
            assert time.monotonic() < deadline, f"decisions still name {seen}"
            time.sleep(0.2)
            status, body = _post(f"{base}/v1/score", _login(n, failed=True), key)
            assert status == 200 and not body["failover"]
            seen, n = body["model_version"], n + 1
        status, body = _post(f"{base}/v1/score", _login(n + 1), key)
        assert status == 200 and body["model_version"].startswith(promoted)
    finally:
        server.terminate()
        log = server.communicate(timeout=20)[0]
    assert f"now serving model {promoted}" in log
