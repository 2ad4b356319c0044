"""Model artifacts: a joblib file plus a JSON model card beside it.

The card names the library versions the model was built with, its features, training
window, data fingerprint and metrics, and the artifact's SHA-256. Loading refuses a file
whose hash does not match its card, or one built with a river / scikit-learn / numpy
version whose pickles this installation cannot be trusted to read.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import joblib

from features.catalog import BY_NAME, MODEL_FEATURES

SHIPPED_MODEL = "hst-default.joblib"
TRACKED_LIBRARIES = ("river", "scikit-learn", "numpy")
# The outcome model (``models.outcome``): its shipped artifact, if one is shipped, and the
# subfolder of a snapshot folder that holds its own snapshots and ``ACTIVE`` pointer.
SHIPPED_OUTCOME_MODEL = "outcome-default.joblib"
OUTCOME_FOLDER = "outcome"
OUTCOME_KIND = "OutcomeModel"


class ModelArtifactError(RuntimeError):
    """An artifact that cannot be loaded; the message says why."""


@dataclass(frozen=True, slots=True)
class Frozen:
    """A model as the C pickler wrote it at one moment: what an artifact holds, taken while
    the live model may go on learning. Pickled itself it is the model again, so ``load``
    gives back the model, and artifacts written before it existed load as they did."""

    pickled: bytes
    kind: str
    learned: int
    # the catalog features an outcome model reads (its card says them), taken with it
    features: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (pickle.loads, (self.pickled,))


def freeze(model: Any) -> Frozen:
    """``model`` pickled now, by the C pickler: ~35 ms for the default model, where
    ``copy.deepcopy`` took ~400 ms and joblib's pure-Python pickler ~700 ms."""
    if isinstance(model, Frozen):
        return model
    kind = type(model).__name__
    return Frozen(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), kind,
                  int(getattr(model, "n_learned_", 0)),
                  tuple(_outcome_features(model.base)) if kind == OUTCOME_KIND else ())


def _outcome_features(base: Any) -> list[str]:
    """The catalog features an outcome model reads beside the rules: its own few, and its
    trained base's."""
    from models.outcome import FEATURES

    names = [name for name, _ in FEATURES]
    return names + [f.name for f in base.features if f.name not in names] \
        if base is not None else names


def load_outcome(path: str | Path | None = None) -> tuple[Any, dict[str, Any]] | None:
    """The outcome model artifact at ``path`` (the shipped one when None) and its card,
    checked as ``load`` checks; None when nothing is shipped (cold start: the hand-set
    combination)."""
    if path is None:
        shipped = Path(str(resources.files("models").joinpath("artifacts",
                                                              SHIPPED_OUTCOME_MODEL)))
        if not shipped.exists():
            return None
        path = shipped
    model, card = load(path)
    if card.get("kind") != OUTCOME_KIND:
        raise ModelArtifactError(f"{Path(path).name} is a {card.get('kind')}, not an "
                                 f"outcome model")
    return model, card


def library_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the tracked libraries (and ``extra``), plus Python's."""
    found = {}
    for name in (*TRACKED_LIBRARIES, *extra):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    found["python"] = platform.python_version()
    return found


def card_path(path: Path) -> Path:
    return path.with_suffix(".card.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(
    model: Any | Frozen,
    path: str | Path,
    *,
    version: str,
    card: dict[str, Any],
    depends_on: tuple[str, ...] | None = None,
) -> Path:
    """Write ``model`` (or a :class:`Frozen` one) and its card; returns the artifact path.

    ``depends_on`` names the libraries whose classes are inside the pickle: loading checks
    that their installed minor versions match (default: river for the anomaly models;
    nothing for the outcome model, whose state is plain numbers and, with a trained base,
    numpy arrays, whose pickles load across numpy versions). The card lists
    the features the model reads: the anomaly model's ``MODEL_FEATURES``, or the catalog
    features the outcome model reads beside the rules.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frozen = freeze(model)
    outcome = frozen.kind == OUTCOME_KIND
    if depends_on is None:
        depends_on = () if outcome else ("river",)
    joblib.dump(frozen, path, compress=3)  # the pickle, compressed (zlib lets go of the GIL)
    full = {
        "model_version": version,
        "kind": frozen.kind,
        "libraries": library_versions(depends_on),
        "depends_on": list(depends_on),
        "features": list(frozen.features) if outcome else [f.name for f in MODEL_FEATURES],
        **card,
        "sha256": _sha256(path),
    }
    card_path(path).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return path


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def read_card(path: str | Path) -> dict[str, Any]:
    """The card beside an artifact, unchecked (``load`` checks it against the artifact)."""
    path = Path(path)
    try:
        card = json.loads(card_path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelArtifactError(f"{path}: missing or unreadable model card "
                                 f"{card_path(path).name}") from exc
    if not isinstance(card, dict):
        raise ModelArtifactError(f"{path}: its model card is not a JSON object")
    return card


def load(path: str | Path | None = None) -> tuple[Any, dict[str, Any]]:
    """Load an artifact and its card (the shipped default model when ``path`` is None)."""
    if path is None:
        path = Path(str(resources.files("models").joinpath("artifacts", SHIPPED_MODEL)))
    path = Path(path)
    card = read_card(path)
    built = card.get("libraries", {})
    depends = tuple(card.get("depends_on", TRACKED_LIBRARIES))
    here = library_versions(depends)
    for lib in depends:
        if lib not in here or lib not in built or _minor(built[lib]) != _minor(here[lib]):
            raise ModelArtifactError(
                f"{path.name} was built with {lib} {built.get(lib, 'unknown')}, this "
                f"installation has {lib} {here.get(lib, 'none')}: retrain the model or "
                f"install {lib} {built.get(lib, '')}"
            )
    if card.get("kind") == OUTCOME_KIND:
        unknown = sorted(set(card.get("features") or []) - set(BY_NAME))
        if unknown:
            raise ModelArtifactError(f"{path.name}: reads features this version does not "
                                     f"have: {', '.join(unknown)}")
    elif card.get("features") != [f.name for f in MODEL_FEATURES]:
        raise ModelArtifactError(f"{path.name}: its feature list differs from this version's")
    if _sha256(path) != card.get("sha256"):
        raise ModelArtifactError(f"{path.name}: content does not match the SHA-256 in its card")
    return joblib.load(path), card
