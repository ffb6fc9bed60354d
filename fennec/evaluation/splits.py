"""Protocol splits: the folds of every evaluation protocol, drawn by documented NumPy generators.

:func:`make_splits` is the single source of every random choice of :func:`evaluate_history` (warm-start
revealed models, held-out cells); a benchmark release stores its output, so the draws can be reused (or
re-derived from the seed) by anyone. The random *baseline* is not part of the splits.
"""

from __future__ import annotations

import numpy as np

from fennec.errors import SchemaError
from fennec.history.table import History

WARM_K = (1, 3, 5)
N_DRAWS = 10
CELL_FRACTION = 0.2
CELL_DRAWS = 10
#: The generators behind every random split (also written to splits.json and the datasheet).
GENERATORS = {
    "warm": ("rng = numpy.random.default_rng([seed, 1]); for each task in `tasks` order (the loto folds), for "
             "k in warm_k, for draw in range(n_draws): revealed = rng.choice(measured, size=k, replace=False), "
             "where measured = indices (in `models` order) of the models measured on the task and on at least "
             "one other task; (task, k) pairs with len(measured) - k < 3 are skipped and draw nothing"),
    "cells": ("rng = numpy.random.default_rng([seed, 2]); obs = numpy.nonzero(isfinite(Y)) (row-major over "
              "`models` x `tasks`); for draw in range(cell_draws): held = rng.random(len(obs[0])) < cell_fraction"),
}


def _model_groups(history: History, model_ids: list[str]) -> np.ndarray:
    """Each model's campaign (its group in the history, e.g. CNNs / self-supervised / ViTs)."""
    camp = history.frame.groupby("model_id")["campaign"].agg(lambda s: sorted(set(s))[0])
    return np.array([camp.get(mid, "") or "all" for mid in model_ids])


def _groups(history: History, model_ids: list[str]) -> dict[str, list[str]]:
    groups = _model_groups(history, model_ids)
    return {g: [m for m, gi in zip(model_ids, groups, strict=True) if gi == g] for g in sorted(set(groups))}


def make_splits(
    history: History,
    *,
    seed: int = 0,
    warm_k: tuple[int, ...] = WARM_K,
    n_draws: int = N_DRAWS,
    cell_fraction: float = CELL_FRACTION,
    cell_draws: int = CELL_DRAWS,
) -> dict:
    """The folds of every protocol for one history (JSON-able; see :data:`GENERATORS`).

    Returns
    -------
    dict
        ``models`` and ``tasks`` (matrix order), ``loto`` (held-out tasks), ``lomo`` (held-out models),
        ``xgroup`` (group -> model ids), ``warm`` (task -> str(k) -> list of revealed model-id lists) and
        ``cells`` (list of draws, each a list of ``[model_index, task_index]`` held-out cells).
    """
    if not 0 < cell_fraction < 1:
        raise SchemaError(f"cell_fraction must be in (0, 1), got {cell_fraction}")
    Y, model_ids, task_ids = history.to_matrix()
    rng = np.random.default_rng([seed, 1])
    warm: dict[str, dict[str, list[list[str]]]] = {}
    for j, task in enumerate(task_ids):
        has_train = np.isfinite(np.delete(Y, j, axis=1)).any(axis=1)
        measured = np.flatnonzero(has_train & np.isfinite(Y[:, j]))
        if len(measured) < 3:
            continue
        for k in warm_k:
            if len(measured) - k < 3:
                continue
            draws = [rng.choice(measured, size=k, replace=False) for _ in range(n_draws)]
            warm.setdefault(task, {})[str(k)] = [[model_ids[i] for i in d] for d in draws]
    rng = np.random.default_rng([seed, 2])
    obs_r, obs_c = np.nonzero(np.isfinite(Y))
    cells = []
    for _ in range(cell_draws):
        held = rng.random(len(obs_r)) < cell_fraction
        cells.append([[int(r), int(c)] for r, c in zip(obs_r[held], obs_c[held], strict=True)])
    return {
        "models": list(model_ids), "tasks": list(task_ids),
        "loto": list(task_ids), "lomo": list(model_ids), "xgroup": _groups(history, model_ids),
        "warm": warm, "cells": cells,
    }
