"""The layers' import rules and the type check, as ``make test`` runs them.

``pyproject.toml`` holds the contracts (``tool.importlinter``) and the type check's settings
(``tool.mypy``). Each tool runs once on the real tree, which must pass, and once on a copy of
the three packages with a planted fault, which must fail naming that fault: a contract or a
setting that can never fail would pass the first test just as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("riskengine", "features", "models")
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``tool`` from this interpreter's environment, run in ``cwd`` with ``cwd`` first on
    the import path (the installed riskengine is an editable install of the real tree)."""
    env = dict(os.environ, PYTHONPATH=str(cwd))
    env.pop("MYPYPATH", None)
    return subprocess.run(
        [str(BIN / tool), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=240, check=False,
    )


def _copy_tree(dest: Path) -> None:
    """The three packages' Python files and ``pyproject.toml``, copied under ``dest``."""
    def not_python(folder: str, names: list[str]) -> set[str]:
        return {n for n in names
                if n == "__pycache__" or (Path(folder, n).is_file() and not n.endswith(".py"))}

    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=not_python)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _plant(path: Path, line: str) -> int:
    """Append ``line`` to the module at ``path``; its line number."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + line + "\n", encoding="utf-8")
    return text.count("\n") + 1


def test_the_tree_keeps_the_import_contracts() -> None:
    result = _run("lint-imports", "--no-cache", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_import_contract_catches_a_planted_import(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    core = tmp_path / "riskengine" / "core" / "privacy.py"
    feature = tmp_path / "features" / "identifiers.py"
    planted = {
        # contract name -> (importer, imported, line)
        "riskengine layers": (
            "riskengine.core.privacy", "riskengine.adapters.stores",
            _plant(core, "import riskengine.adapters.stores"),
        ),
        "the decision core imports no": (
            "riskengine.core.privacy", "logging", _plant(core, "import logging"),
        ),
        "features and models never import riskengine": (
            "features.identifiers", "riskengine", _plant(feature, "import riskengine"),
        ),
        "features and models import no store": (
            "features.identifiers", "sqlite3", _plant(feature, "import sqlite3"),
        ),
    }

    result = _run("lint-imports", "--no-cache", str(tmp_path / "pyproject.toml"), cwd=tmp_path)

    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    summary = [line for line in out.splitlines() if line.endswith((" KEPT", " BROKEN"))]
    assert len(summary) == len(planted), out
    for contract, (importer, imported, line) in planted.items():
        assert any(s.startswith(contract) and s.endswith(" BROKEN") for s in summary), out
        assert f"{importer} -> {imported} (l.{line})" in out, out


@pytest.mark.timeout(300)
def test_the_checked_packages_pass_the_type_check() -> None:
    result = _run("mypy", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_the_type_check_catches_a_planted_error_in_the_core(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    cache = tmp_path / "mypy-cache"
    if (ROOT / ".mypy_cache").is_dir():
        # the standard library's and third-party packages' entries stay valid (same paths),
        # which keeps this run to seconds; the copied modules are checked afresh
        shutil.copytree(ROOT / ".mypy_cache", cache)
    core = tmp_path / "riskengine" / "core" / "privacy.py"
    line = _plant(core, "def _planted() -> int:\n    return 'not a number'") + 1

    result = _run(
        "mypy", "--config-file", str(tmp_path / "pyproject.toml"), "--cache-dir", str(cache),
        cwd=tmp_path,
    )

    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"riskengine/core/privacy.py:{line}: error: Incompatible return value type" in out, out
