"""The walkthrough notebook runs top to bottom (on a copy; the committed one keeps its saved outputs)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "walkthrough.ipynb"


@pytest.mark.slow
def test_walkthrough_executes_under_three_minutes():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not [c for c in nb.cells if c.cell_type == "code" and ("def " in c.source or "class " in c.source)], \
        "notebooks are narrative only: no library code defined there"
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=170, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    elapsed = time.perf_counter() - start
    assert elapsed < 180, f"walkthrough took {elapsed:.0f} s"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # the four plots rendered
