"""The Makefile makes ``.venv`` from the distribution's own python3 when it can, else from
python3 on PATH, and ``PYTHON=...`` overrides both (see the Makefile's comment)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def interpreter_chosen(tmp_path: Path, *assignments: str) -> str:
    """The interpreter ``make`` would make a new virtualenv from (a dry run)."""
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), f"VENV={venv}", *assignments, f"{venv}/bin/python"],
        capture_output=True, text=True, timeout=60, check=True)
    made = [line for line in done.stdout.splitlines() if line.endswith(f"-m venv {venv}")]
    assert len(made) == 1, done.stdout
    return made[0].removesuffix(f" -m venv {venv}")


def fake_python(tmp_path: Path, name: str, exit_code: int) -> Path:
    """A stand-in interpreter that answers every check with ``exit_code``."""
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(0o755)
    return path


def test_a_system_python_that_can_make_a_virtualenv_is_chosen(tmp_path: Path) -> None:
    # This interpreter is 3.11 or newer and has venv and ensurepip: the test suite runs on it.
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={sys.executable}") == sys.executable


def test_a_system_python_too_old_or_without_venv_falls_back_to_python3(tmp_path: Path) -> None:
    unfit = fake_python(tmp_path, "python-unfit", 1)
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={unfit}") == "python3"
    missing = tmp_path / "no-such-python"
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={missing}") == "python3"


def test_python_on_the_command_line_wins(tmp_path: Path) -> None:
    fit = fake_python(tmp_path, "python-fit", 0)
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={fit}",
                              "PYTHON=/opt/other/python3") == "/opt/other/python3"
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={fit}") == str(fit)
