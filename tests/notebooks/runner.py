"""Run the analysts' notebooks headlessly, with their parameter cell overridden."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def run_notebook(name: str, **parameters: Any) -> Any:
    """Execute ``notebooks/<name>`` top to bottom in a fresh kernel, in the notebooks folder,
    with ``parameters`` set in a cell right after its ``parameters`` cell (as papermill
    does); returns the executed notebook. A failing cell raises with its traceback."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell(
        "\n".join(f"{key} = {value!r}" for key, value in parameters.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, injected)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def import_analysis() -> ModuleType:
    """``notebooks/analysis.py``, the notebooks' shared glue, as the notebooks import it."""
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import analysis
    finally:
        sys.path.remove(str(NOTEBOOKS))
    return analysis
