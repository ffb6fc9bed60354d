"""Which cells of a zoo the transfer subspace actually determines. Arrays in, arrays out.

Several histories fitted together are joined only through the models they share. Where no shared model
links two groups of histories (``model_spider`` and ``parc`` share no model with the others), the bipartite
graph of observed cells -- models on one side, columns on the other -- falls apart into *components*. The
factorization's objective is unchanged when one component's model and task vectors are rotated together
(the L2 penalty is rotation-invariant), so the inner product of a model of one component with a column of
another is set by the starting point and the last bits of the arithmetic, not by the data: a relative
change of 1e-13 in the scores moved such predictions by several standard deviations. Those cells are
*unidentified*; everything that reads the subspace treats them as unknown (see
:meth:`fennec.Recommender.reconstruction_`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def observed_components(observed: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Component labels ``(of each model, of each column)`` of the bipartite graph of observed cells
    (``observed`` (n, m), bool). Labels are numbered in order of each component's first model, so they do
    not depend on anything but the pattern; a model or column with no observed cell is its own component."""
    obs = np.asarray(observed, dtype=bool)
    n, m = obs.shape
    models = np.full(n, -1, dtype=np.intp)
    columns = np.full(m, -1, dtype=np.intp)
    label = 0
    for start in range(n):  # a breadth-first sweep, whole frontiers at a time (no SciPy import on a query)
        if models[start] >= 0:
            continue
        rows = np.zeros(n, bool)
        rows[start] = True
        while True:
            cols = obs[rows].any(axis=0) & (columns < 0)
            columns[cols] = label
            models[rows] = label
            rows = obs[:, cols].any(axis=1) & (models < 0)
            if not rows.any():
                break
        label += 1
    for j in np.flatnonzero(columns < 0):
        columns[j], label = label, label + 1
    return models, columns


def identified_cells(model_labels: np.ndarray, column_labels: np.ndarray) -> np.ndarray:
    """``(n, m)`` bool: the cells whose model and column are in the same component."""
    return np.asarray(model_labels)[:, None] == np.asarray(column_labels)[None, :]
