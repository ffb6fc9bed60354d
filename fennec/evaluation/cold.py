"""Cold-model protocols through the product: leave-one-model-out and cross-group.

A model held out of the fit is, to the fitted recommender, a model without history: ``query(task=t,
candidates=[model])`` places it from its side information, exactly as for a user's new model.
"""

from __future__ import annotations

import numpy as np


def _cold_scores(fold, rec, model_ids: list[str]) -> dict[str, np.ndarray]:
    """Scores (model order, NaN elsewhere) of ``model_ids`` on every task, as cold candidates, for
    ``fennec`` and -- with ``config.noarch`` -- ``fennec_noarch`` (placement without archi2vec)."""
    recs = {"fennec": rec}
    if fold.config.noarch and rec.config.use_archi2vec:
        recs["fennec_noarch"] = rec.with_placer(use_archi2vec=False, arch_source=fold.arch)
    out = {}
    for name, r in recs.items():
        S = np.full(fold.Y.shape, np.nan)
        for j, task in enumerate(fold.task_ids):
            if task not in r.column_ids:
                continue
            ranking = r.query(task=task, candidates=model_ids, strict=True)
            S[:, j] = fold.vector(ranking, standardised=True)
        out[name] = S
    return out


def leave_one_model_out(fold, splits: dict, rows) -> None:
    """``lomo``: each model's row held out of the fit and ranked cold; per task, all models' cold scores."""
    frame = fold.history.frame
    cold: dict[str, np.ndarray] = {}
    for mid in fold.tqdm(splits["lomo"], "leave-one-model-out"):
        rec = fold.fit(frame[frame["model_id"] != mid], drop_models=[mid])
        i = fold.pos[mid]
        for name, S in _cold_scores(fold, rec, [mid]).items():
            cold.setdefault(name, np.full(fold.Y.shape, np.nan))[i] = S[i]
    base = fold.baselines()
    for j, task in enumerate(fold.task_ids):
        rows.block("lomo", task, fold.Y[:, j], {**{n: S[:, j] for n, S in cold.items()}, **base})


def cross_group(fold, splits: dict, rows) -> None:
    """``xgroup:G`` fits without group G's models and ranks them; ``xgroup_rev:G`` fits on G alone."""
    frame = fold.history.frame
    base = fold.baselines()
    for g, members in splits["xgroup"].items():
        in_g = np.isin(fold.model_ids, members)
        if in_g.sum() < 3 or (~in_g).sum() < 3:
            continue
        for label, held in ((f"xgroup:{g}", in_g), (f"xgroup_rev:{g}", ~in_g)):
            held_ids = [m for m, h in zip(fold.model_ids, held, strict=True) if h]
            rec = fold.fit(frame[~frame["model_id"].isin(held_ids)], drop_models=held_ids)
            scores = _cold_scores(fold, rec, held_ids)
            for j, task in enumerate(fold.task_ids):
                truth = np.where(held, fold.Y[:, j], np.nan)
                rows.block(label, task, truth, {**{n: S[:, j] for n, S in scores.items()}, **base})
