"""Every notebook runs top to bottom on the committed sample and writes what it promises.

01 and 02 run on the committed sample with their defaults and only ``OUT_DIR`` overridden;
03 runs with the model 02 saved, as an analyst chains them. About a minute in all on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from models import persistence
from riskengine.core.rules import parse_ruleset

from .runner import NOTEBOOKS, run_notebook

NAMES = ("01-explore.ipynb", "02-train.ipynb", "03-thresholds.ipynb")
CARD_FIELDS = ("model_version", "kind", "libraries", "depends_on", "features", "training",
               "evaluation", "metrics", "hyper_parameters", "sha256")


def test_the_notebooks_are_all_tested() -> None:
    assert tuple(sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_hold_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("name", NAMES)
def test_the_first_cell_holds_the_parameters(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and "parameters" in first.metadata.get("tags", [])
    for parameter in ("SOURCE =", "PATH =", "OUT_DIR ="):
        assert parameter in first.source


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """02-train run once: its output folder."""
    out = tmp_path_factory.mktemp("02-train")
    run_notebook("02-train.ipynb", OUT_DIR=str(out))
    return out


def test_01_explore_plots_customers_versus_attacks(tmp_path: Path) -> None:
    run_notebook("01-explore.ipynb", OUT_DIR=str(tmp_path))
    for png in ("timeline", "numeric_features", "boolean_features", "engine_scores"):
        path = tmp_path / f"{png}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    import pandas as pd

    frame = pd.read_csv(tmp_path / "features.csv.gz")
    assert len(frame) == 5208 and {"customer", "credential_stuffing"} <= set(frame["scenario"])


def test_02_train_saves_a_model_the_service_can_load(trained: Path) -> None:
    for png in ("roc_pr", "catch_rates"):
        assert (trained / f"{png}.png").stat().st_size > 5_000
    artifacts = list(trained.glob("*.joblib"))
    assert len(artifacts) == 1
    model, card = persistence.load(artifacts[0])  # versions, features, sha256 checked
    for field in CARD_FIELDS:
        assert card.get(field), f"card lacks {field}"
    training = card["training"]
    assert len(training["window"]) == 2 and len(training["data_fingerprint"]) == 16
    assert training["window"][1] < card["evaluation"]["window"][0]  # no leakage
    metrics = card["metrics"]
    assert 0.5 < metrics["roc_auc"] <= 1.0
    assert set(metrics["catch_rate_at"]) == {"1%", "2%", "5%"}
    assert {"river", "isolation_forest", "freeman"} <= set(card["comparison"])
    assert "river" in card["libraries"] or card["depends_on"] == ["scikit-learn", "numpy"]
    # The engine's interface, and a usable score for a login it has never seen.
    assert model.ready and 0.0 <= model.risk(model.score_one({})) <= 1.0
    model.learn_one({})


def test_03_thresholds_writes_a_valid_ruleset(trained: Path, tmp_path: Path) -> None:
    artifact = next(trained.glob("*.joblib"))
    run_notebook("03-thresholds.ipynb", OUT_DIR=str(tmp_path), MODEL_ARTIFACT=str(artifact),
                 TARGET_CHALLENGE_RATE=0.02)
    summary: dict[str, Any] = json.loads((tmp_path / "thresholds.json").read_text())
    rules = Path(summary["ruleset"])
    assert rules.parent == tmp_path and (tmp_path / "thresholds.png").exists()
    ruleset = parse_ruleset(rules.read_text("utf-8"), source=str(rules))
    assert (ruleset.thresholds.challenge, ruleset.thresholds.deny) == (
        summary["challenge"], summary["deny"])
    assert ruleset.version.endswith("-thresholds-2.0pct")
    assert summary["customers_blocked"] <= 0.02
    assert summary["model"] == persistence.load(artifact)[1]["model_version"]
    assert summary["replayed"]["customers_blocked"] <= 0.03
