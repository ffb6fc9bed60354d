"""The walkthrough notebook runs top to bottom (on a copy; the committed one keeps its saved outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "walkthrough.ipynb"


@pytest.mark.slow
def test_walkthrough_executes():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not [c for c in nb.cells if c.cell_type == "code" and ("def " in c.source or "class " in c.source)], \
        "notebooks are narrative only: no library code defined there"
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # the four plots rendered
