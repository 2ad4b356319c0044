"""The Makefile makes ``.venv`` from the distribution's own python3 when it is the same
version as python3 on the PATH and can make a virtualenv, else from python3 on the PATH;
``PYTHON=...`` overrides both (see the Makefile's comment)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None or shutil.which("python3") is None,
                                reason="make or python3 is not installed")


def interpreter_chosen(tmp_path: Path, *assignments: str) -> str:
    """The interpreter ``make`` would make a new virtualenv from (a dry run)."""
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), f"VENV={venv}", *assignments, f"{venv}/bin/python"],
        capture_output=True, text=True, timeout=60, check=True)
    made = [line for line in done.stdout.splitlines() if line.endswith(f"-m venv {venv}")]
    assert len(made) == 1, done.stdout
    return made[0].removesuffix(f" -m venv {venv}")


def path_python_version() -> str:
    done = subprocess.run(["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def fake_python(tmp_path: Path, version: str) -> Path:
    """A stand-in interpreter of ``version`` that can make a virtualenv: it answers the
    Makefile's check (``-c CODE VERSION_ON_PATH``) as that check's code would."""
    path = tmp_path / f"python-{version}"
    path.write_text(f'#!/bin/sh\n[ "$3" = "{version}" ]\n')
    path.chmod(0o755)
    return path


def test_a_system_python_of_the_same_version_is_chosen(tmp_path: Path) -> None:
    same = fake_python(tmp_path, path_python_version())
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={same}") == str(same)


def test_a_system_python_of_another_version_is_not(tmp_path: Path) -> None:
    other = fake_python(tmp_path, "3.99")
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={other}") == "python3"


def test_a_missing_or_unfit_system_python_falls_back_to_python3(tmp_path: Path) -> None:
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={tmp_path / 'missing'}") == "python3"
    unfit = tmp_path / "python-unfit"
    unfit.write_text("#!/bin/sh\nexit 1\n")
    unfit.chmod(0o755)
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={unfit}") == "python3"


def test_the_check_runs_on_a_real_interpreter(tmp_path: Path) -> None:
    # This interpreter has venv and ensurepip (the suite's virtualenv was made from it or
    # one like it): it is chosen exactly when python3 on the PATH is its version.
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    expected = sys.executable if path_python_version() == ours else "python3"
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={sys.executable}") == expected


def test_python_on_the_command_line_wins(tmp_path: Path) -> None:
    same = fake_python(tmp_path, path_python_version())
    assert interpreter_chosen(tmp_path, f"SYSTEM_PYTHON={same}",
                              "PYTHON=/opt/other/python3") == "/opt/other/python3"
