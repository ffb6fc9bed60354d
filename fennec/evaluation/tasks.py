"""Task protocols through the product: leave-one-task-out (cold task, proxy, warm start) and held-out cells.

Each fold fits a :class:`~fennec.Recommender` on the training part of the history and calls
:meth:`~fennec.Recommender.query` as a user would; the results are scored per task against the held-out
truth, beside the baselines (:mod:`fennec.evaluation.records`).
"""

from __future__ import annotations

import numpy as np


def leave_one_task_out(fold, splits: dict, rows, n_draws: int | None) -> None:
    """``loto`` (``query()``), ``proxy`` (``query(embedding=...)``), ``warm`` (``query(observed=...)``)."""
    cfg, Y = fold.config, fold.Y
    frame = fold.history.frame
    for task in fold.tqdm(splits["loto"], "leave-one-task-out"):
        j = fold.task_ids.index(task)
        train = frame[frame["task_id"] != task]
        in_train = np.isin(fold.model_ids, train["model_id"].unique())
        truth = np.where(in_train, Y[:, j], np.nan)
        if np.isfinite(truth).sum() < 3:
            continue
        rec = fold.fit(train, embeddings="proxy" in cfg.protocols, drop_task=task)
        base = fold.baselines(rec)
        if "loto" in cfg.protocols:
            rows.block("loto", task, truth, {"fennec": fold.vector(rec.query()), **base})
        if "proxy" in cfg.protocols:
            vec = fold.task_embeddings.get(task)
            if vec is not None and rec.projector_ is not None:
                ranking = rec.query(embedding=vec, task_id=task)
                rows.block("proxy", task, truth, {"fennec": fold.vector(ranking), **base})
        if "warm" in cfg.protocols:
            _warm(fold, rec, splits, rows, task, truth, base, n_draws)


def _warm(fold, rec, splits, rows, task, truth, base, n_draws) -> None:
    cfg = fold.config
    for k in cfg.warm_k:
        draws = splits["warm"].get(task, {}).get(str(k), [])[:n_draws]
        for d, ids in enumerate(draws):
            revealed = np.array([fold.pos[i] for i in ids], dtype=int)
            if not np.isfinite(truth[revealed]).all():
                from fennec.errors import SchemaError

                raise SchemaError(f"splits of {fold.history.name}: warm draw {d} of task {task} reveals a model "
                                  f"not measured on it ({ids})")
            scores = fold.vector(rec.query(observed={i: float(truth[fold.pos[i]]) for i in ids}))
            hidden = np.ones(len(truth), bool)
            hidden[revealed] = False
            methods = {"fennec": scores, **base}
            rows.block("warm", task, np.where(hidden, truth, np.nan), methods, k=k, draw=d,
                       n_random=max(cfg.n_random // max(len(draws), 1), 5))


def held_out_cells(fold, splits: dict, rows, n_draws: int | None) -> None:
    """``cells``: fit without a random fifth of the observed cells, rank the held-out models of each task
    with ``query(task=t)`` (their scores are the subspace's predictions: they are unmeasured in the fit)."""
    cfg, Y = fold.config, fold.Y
    frame = fold.history.frame
    mi = frame["model_id"].map(fold.pos).to_numpy()
    ti = frame["task_id"].map({t: j for j, t in enumerate(fold.task_ids)}).to_numpy()
    for d, cells in enumerate(fold.tqdm(splits["cells"][:n_draws], "held-out cells")):
        held_rc = np.array(cells, dtype=int).reshape(-1, 2)
        if held_rc.size and not np.isfinite(Y[held_rc[:, 0], held_rc[:, 1]]).all():
            from fennec.errors import SchemaError

            raise SchemaError(f"splits of {fold.history.name}: cell draw {d} holds out unobserved cells")
        held = np.zeros(Y.shape, bool)
        held[held_rc[:, 0], held_rc[:, 1]] = True
        rec = fold.fit(frame[~held[mi, ti]])
        base = fold.baselines(rec)
        for j, task in enumerate(fold.task_ids):
            rows_j = held_rc[held_rc[:, 1] == j, 0]
            if len(rows_j) < 3 or task not in rec.column_ids:
                continue
            truth = np.full(len(fold.model_ids), np.nan)
            truth[rows_j] = Y[rows_j, j]
            rows.block("cells", task, truth, {"fennec": fold.vector(rec.query(task=task)), **base}, draw=d,
                       n_random=max(cfg.n_random // 5, 5))
