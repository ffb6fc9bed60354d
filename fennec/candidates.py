"""Candidate models for a query, inside the history or not (cold-start models placed by architecture).

``rank_candidates(rec, ranking, candidates)`` restricts a ranking to the candidates. Candidates in the
history keep their rows. A candidate without history (a timm ``arch`` or ``arch.tag`` name) is placed
by :class:`fennec.coldstart.ModelPlacer` (archi2vec vector, params, ...): its predicted profile over the
history's tasks is mapped to the query's score scale by a ridge regression of the query's scores on the
history models' (completed, standardised) profiles, so every query path -- a known task, a warm start, a
proxy embedding, the prior -- scores new models the same way. Its ``source`` is ``archi2vec``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fennec.artifacts import read_arrays, write_arrays
from fennec.errors import FennecError, SchemaError

logger = logging.getLogger(__name__)


def fit_placer(rec) -> None:
    """Fit ``rec.placer_`` from the shipped models table (None when the history's models are unknown)."""
    from fennec.coldstart import ModelPlacer
    from fennec.datasets import model_side_table

    rec.placer_ = None
    try:
        side = model_side_table(rec.model_ids)
    except (FennecError, OSError) as exc:
        logger.info("no models table (%s): models without history cannot be placed", exc)
        return
    if side["timm_arch"].replace("", np.nan).notna().sum() < 3:
        logger.info("fewer than 3 of the history's models have a known architecture: no cold-start placement")
        return
    rec.placer_ = ModelPlacer().fit(side.reset_index(drop=True), rec.subspace_)


def save_placer(rec, tmp: Path) -> dict | None:
    placer = getattr(rec, "placer_", None)
    if placer is None:
        return None
    params, arrays = placer.to_state()
    write_arrays(tmp / "placer.safetensors", {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()},
                 {"format": "fennec-placer", "params": json.dumps(params)})
    return {"file": "placer.safetensors", **params}


def load_placer(rec, directory: Path, section: dict | None) -> None:
    from fennec.coldstart import ModelPlacer

    rec.placer_ = None
    if section:
        arrays = read_arrays(directory / section["file"])
        rec.placer_ = ModelPlacer.from_state(section, arrays, rec.subspace_)


def _history_alias(rec) -> dict[str, str]:
    """timm names (``arch.tag`` of the exact weights) that denote a history model."""
    try:
        from fennec.datasets import model_side_table

        side = model_side_table(rec.model_ids)
    except (FennecError, OSError):
        return {}
    return {tm: mid for mid, tm in zip(rec.model_ids, side["timm_model"].fillna(""), strict=True) if tm}


def rank_candidates(rec, ranking: pd.DataFrame, candidates: Sequence[str], *, top_k: int | None = None,
                    l2: float = 1.0) -> pd.DataFrame:
    """Restrict ``ranking`` (over all of the artifact's models) to ``candidates``, placing new ones."""
    from fennec.coldstart import timm_side_table
    from fennec.recommender import RANKING_COLUMNS

    candidates = [c.strip() for c in candidates if c.strip()]
    if not candidates:
        raise SchemaError("no candidate models given")
    if set(ranking["model_id"]) != set(rec.model_ids):
        raise SchemaError("rank_candidates needs the full ranking (top_k=None) of the artifact's models")
    alias = _history_alias(rec)
    known = set(rec.model_ids)
    in_hist = {c: (c if c in known else alias[c]) for c in candidates if c in known or c in alias}
    new = [c for c in candidates if c not in in_hist]
    task_id = ranking["task_id"].iloc[0]
    rows = ranking[ranking["model_id"].isin(in_hist.values())].copy()
    rows["model_id"] = rows["model_id"].map({v: k for k, v in in_hist.items()})
    if new:
        if getattr(rec, "placer_", None) is None:
            raise SchemaError(f"cannot place {', '.join(map(repr, new))}: they have no history and this artifact "
                              "has no architecture placement (its models are not in the shipped models table)")
        from fennec.datasets import load_models

        side = timm_side_table(new, known=load_models())
        profiles = rec.placer_.profiles(side)
        C, _ = rec._warm_columns()
        s = ranking.set_index("model_id").loc[rec.model_ids, "score"].to_numpy(dtype=float)
        X = np.hstack([np.ones((len(C), 1)), C])
        pen = np.r_[0.0, np.full(C.shape[1], l2)]
        beta = np.linalg.solve(X.T @ X + np.diag(pen), X.T @ s)
        pred = np.hstack([np.ones((len(new), 1)), profiles]) @ beta
        rows = pd.concat([rows, pd.DataFrame({
            "task_id": task_id, "model_id": new, "score": pred, "source": "archi2vec",
            "measured": np.nan, "std": np.nan})], ignore_index=True)
    rows = rows.sort_values(["score", "model_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    rows["rank"] = np.arange(1, len(rows) + 1)
    rows.attrs.update(ranking.attrs)
    out = rows[RANKING_COLUMNS]
    return out.head(top_k) if top_k else out
