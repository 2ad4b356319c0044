"""Signed, versioned snapshots of the online model, and which one is active.

A snapshot is ``<version>.joblib`` + ``<version>.card.json`` + ``<version>.sig`` in one folder.
The signature is HMAC-SHA256 under the operator's key over the artifact's bytes and the
card's, checked *before* anything is unpickled (unpickling runs code, so an unsigned or
altered file is refused, never loaded). ``ACTIVE`` names the snapshot to serve; rolling back
is pointing it at an earlier version.

Versions form a lineage: ``<base>+s<n>`` is the n-th snapshot of the model that started as
``<base>`` (the shipped model or a promoted one), so a decision's ``model_version`` says where
its model came from and how far it has learned since.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import tempfile
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.persistence import Frozen, ModelArtifactError, card_path, freeze, load, save

ACTIVE = "ACTIVE"
_SEQ = re.compile(r"^(?P<base>.+?)\+s(?P<n>\d+)$")


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: str
    path: Path
    created: str
    parent: str | None
    learned: int
    active: bool


def next_version(current: str, taken: AbstractSet[str] = frozenset()) -> str:
    """The next snapshot of ``current``'s lineage: ``hst-x`` -> ``hst-x+s1``, ``hst-x+s7`` ->
    ``hst-x+s8``, skipping numbers already ``taken`` (after a rollback the lineage goes on
    from the restored version without overwriting the snapshots that came after it)."""
    m = _SEQ.match(current)
    base, n = (current, 0) if m is None else (m.group("base"), int(m.group("n")))
    used = [int(x.group("n")) for v in taken if (x := _SEQ.match(v)) and x.group("base") == base]
    return f"{base}+s{max([n, *used]) + 1}"


def _signature(key: bytes, artifact: Path) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in (artifact, card_path(artifact)):
        mac.update(part.name.encode() + b"\0")
        mac.update(part.read_bytes())
        mac.update(b"\0")
    return mac.hexdigest()


def _sig_path(artifact: Path) -> Path:
    return artifact.with_suffix(".sig")


def save_snapshot(
    model: Any | Frozen, folder: str | Path, *, version: str, parent: str | None, key: bytes,
    card: dict[str, Any] | None = None, training: dict[str, Any] | None = None,
) -> Path:
    """Write a signed snapshot of ``model`` (or a frozen one) as ``version``; returns the
    artifact path. ``training``, what the lineage was first trained on (the base model's
    card says), goes on the snapshot's card when known."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    artifact = folder / f"{version}.joblib"
    frozen = freeze(model)
    save(frozen, artifact, version=version, card={
        **(card or {}),
        **({} if training is None else {"training": training}),
        "parent": parent,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "learned": frozen.learned,
    })
    _write_atomic(_sig_path(artifact), _signature(key, artifact) + "\n")
    return artifact


def load_snapshot(artifact: str | Path, *, key: bytes) -> tuple[Any, dict[str, Any]]:
    """Verify the signature, then load; refuses unsigned or altered snapshots."""
    artifact = Path(artifact)
    sig = _sig_path(artifact)
    if not sig.exists():
        raise ModelArtifactError(f"{artifact.name}: unsigned snapshot refused (no {sig.name})")
    try:
        expected = _signature(key, artifact)
    except OSError as exc:
        raise ModelArtifactError(f"{artifact.name}: unreadable snapshot: {exc}") from exc
    if not hmac.compare_digest(sig.read_text().strip(), expected):
        raise ModelArtifactError(
            f"{artifact.name}: signature does not match (altered file, or another key): refused"
        )
    return load(artifact)


def list_snapshots(folder: str | Path) -> list[Snapshot]:
    """Snapshots in ``folder``, oldest first, with the active one marked."""
    folder = Path(folder)
    active = active_version(folder)
    out = []
    for card_file in folder.glob("*.card.json"):
        try:
            card = json.loads(card_file.read_text())
        except ValueError:
            continue
        version = str(card.get("model_version"))
        out.append(Snapshot(version, folder / f"{version}.joblib", str(card.get("created", "")),
                            card.get("parent"), int(card.get("learned", 0)), version == active))
    return sorted(out, key=lambda s: (s.created, s.version))


def active_version(folder: str | Path) -> str | None:
    pointer = Path(folder) / ACTIVE
    return pointer.read_text().strip() or None if pointer.exists() else None


def set_active(folder: str | Path, version: str, *, key: bytes) -> Path:
    """Point ``ACTIVE`` at ``version`` after checking that snapshot's signature."""
    artifact = Path(folder) / f"{version}.joblib"
    if not artifact.exists():
        raise ModelArtifactError(f"no snapshot {version} in {folder}")
    load_snapshot(artifact, key=key)
    _write_atomic(Path(folder) / ACTIVE, version + "\n")
    return artifact


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
