"""Promote a model artifact (from ``02-train.ipynb`` or ``riskengine.tools.train``) to the service.

``promote`` checks that the artifact loads here (its card, library versions, feature list and
SHA-256, via ``models.persistence.load``) and that it has the interface the engine scores
with, then signs it into the model folder as a snapshot under the version its card names and
points ``ACTIVE`` at it. A running service follows ``ACTIVE`` at its next snapshot tick
(``RISKENGINE_SNAPSHOT_INTERVAL_S``) and swaps the model in without a restart; from then on
its decisions name the promoted version. Rolling back is ``riskengine models rollback``.

An outcome model (``models.outcome``, from ``riskengine.tools.train --outcome`` or the
notebook) is promoted the same way into the folder's ``outcome`` subfolder, which has its
own snapshots and ``ACTIVE``; it scores once the ruleset's ``outcome`` section is on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models import persistence, snapshots
from models.persistence import ModelArtifactError

# What the engine calls on its model (riskengine.service.scorer, riskengine.service.build).
# The members of models.base.RiskModel, named in the refusal.
INTERFACE = ("score_one", "learn_one", "risk", "calibrate", "ready", "n_learned_")
# What it calls on an outcome model (riskengine.core.policy, riskengine.core.learning).
OUTCOME_INTERFACE = ("proba_one", "explain_one", "learn_one", "ready", "n_learned_")
# Card fields that describe the snapshot file itself; ``save_snapshot`` writes them anew.
_OWN_FIELDS = ("model_version", "kind", "sha256", "parent", "created", "learned")


@dataclass(frozen=True, slots=True)
class Promoted:
    version: str
    artifact: Path
    replaced: str | None
    already_there: bool


def check_interface(model: Any) -> None:
    """Refuse a model the engine could not score with; the message says what is missing."""
    missing = [name for name in INTERFACE if not hasattr(model, name)]
    if missing:
        raise ModelArtifactError(
            f"{type(model).__name__} lacks {', '.join(missing)}: the service scores with "
            f"the interface of models.base.RiskModel ({', '.join(INTERFACE)})"
        )
    # One login with every feature unknown: what a model must survive on the first request.
    score = model.score_one({})
    if not (isinstance(score, float | int) and math.isfinite(score)):
        raise ModelArtifactError(f"{type(model).__name__}.score_one gave {score!r}, not a number")
    risk = model.risk(score)
    if not 0.0 <= risk <= 1.0:
        raise ModelArtifactError(f"{type(model).__name__}.risk gave {risk!r}, not in [0, 1]")


def check_outcome_interface(model: Any) -> None:
    """Refuse an outcome model the engine could not score with."""
    missing = [name for name in OUTCOME_INTERFACE if not hasattr(model, name)]
    if missing:
        raise ModelArtifactError(f"{type(model).__name__} lacks {', '.join(missing)}: the "
                                 f"service scores outcomes with {', '.join(OUTCOME_INTERFACE)}")
    proba = model.proba_one({})
    if not (isinstance(proba, float | int) and 0.0 <= proba <= 1.0):
        raise ModelArtifactError(f"{type(model).__name__}.proba_one gave {proba!r}, not a "
                                 f"probability")


def promote(artifact: str | Path, folder: str | Path, *, key: bytes) -> Promoted:
    """Sign ``artifact`` into ``folder`` as a snapshot and make it the active model.

    The snapshot keeps the version of the artifact's card and its card (training window,
    data fingerprint, metrics...), plus where it was promoted from. Promoting the same
    artifact again only points ``ACTIVE`` back at it; a different artifact under a version
    the folder already holds is refused.

    Raises
    ------
    ModelArtifactError
        When the artifact does not load here (which check failed is in the message), lacks
        the engine's interface, or clashes with a snapshot of the same version.
    """
    artifact = Path(artifact)
    folder = Path(folder)
    model, card = persistence.load(artifact)  # card, versions, features, sha256
    if card.get("kind") == persistence.OUTCOME_KIND:
        check_outcome_interface(model)
        folder = folder / persistence.OUTCOME_FOLDER  # its own snapshots and ACTIVE
    else:
        check_interface(model)
    version = str(card.get("model_version") or "")
    if not version or "/" in version or version.startswith("."):
        raise ModelArtifactError(f"{artifact.name}: its card names no usable model_version")
    replaced = snapshots.active_version(folder) if folder.exists() else None
    origin = {"path": str(artifact.resolve()), "sha256": card["sha256"]}
    existing = folder / f"{version}.joblib"
    if existing.exists():
        there = json.loads(persistence.card_path(existing).read_text())
        if (there.get("promoted_from") or {}).get("sha256") != origin["sha256"]:
            raise ModelArtifactError(
                f"{folder} already holds a snapshot {version} that is not this artifact: "
                f"give the new model another version"
            )
        snapshots.set_active(folder, version, key=key)  # verifies its signature first
        return Promoted(version, existing, replaced, already_there=True)

    depends_on = tuple(card["depends_on"] if isinstance(card.get("depends_on"), list)
                       else persistence.TRACKED_LIBRARIES)
    kept = {k: v for k, v in card.items() if k not in _OWN_FIELDS}
    saved = snapshots.save_snapshot(
        model, folder, version=version, parent=None, key=key,
        card={
            **kept,
            # The pickle is written anew by this installation: record its versions, and keep
            # the libraries the artifact said it depends on (save_snapshot assumes river).
            "depends_on": list(depends_on),
            "libraries": persistence.library_versions(depends_on),
            "promoted_from": {**origin, "replaced": replaced},
        },
    )
    snapshots.set_active(folder, version, key=key)
    return Promoted(version, saved, replaced, already_there=False)
