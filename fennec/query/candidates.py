"""Candidate models for a query, inside the history or not (cold-start models placed by architecture).

``rank_candidates(rec, ranking, candidates)`` restricts a ranking to the candidates. Candidates in the
history keep their rows. A candidate without history (a timm ``arch`` or ``arch.tag`` name) is placed
by :class:`fennec.zoo.placement.ModelPlacer` (archi2vec vector, params, ...): its predicted profile over the
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
    from fennec.data.shipped import model_side_table
    from fennec.zoo.placement import ModelPlacer

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
    from fennec.zoo.placement import ModelPlacer

    rec.placer_ = None
    if section:
        arrays = read_arrays(directory / section["file"])
        rec.placer_ = ModelPlacer.from_state(section, arrays, rec.subspace_)


def _history_alias(rec) -> dict[str, str]:
    """timm names (``arch.tag`` of the exact weights) that denote a history model."""
    try:
        from fennec.data.shipped import model_side_table

        side = model_side_table(rec.model_ids)
    except (FennecError, OSError):
        return {}
    return {tm: mid for mid, tm in zip(rec.model_ids, side["timm_model"].fillna(""), strict=True) if tm}


def rank_candidates(rec, ranking: pd.DataFrame, candidates: Sequence[str], *, top_k: int | None = None,
                    l2: float = 1.0) -> pd.DataFrame:
    """Restrict ``ranking`` (over all of the artifact's models) to ``candidates``, placing new ones."""
    from fennec.query.recommender import RANKING_COLUMNS
    from fennec.zoo.placement import timm_side_table

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
        from fennec.data.shipped import load_models

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


def calibrate_metric(ranking: pd.DataFrame, metric_scores: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """Map metric scores (e.g. LogME) onto the ranking's score scale.

    ``ranking``: the query's ranking (``model_id, score``); ``metric_scores``: ``model_id, score`` from a
    transferability metric, covering the models to place *and*, where weights exist, some ranked models.
    With at least 3 models in both, a least-squares line ``ranking ~ a + b * metric`` fitted on them
    (slope clipped at >= 0: a metric is "higher is better"); otherwise the metric's z-scores are matched
    to the mean and spread of the ranking's scores. Returns the calibrated scores (in ``metric_scores``
    order) and a description of the calibration.
    """
    m = metric_scores.set_index("model_id")["score"].astype(float)
    r = ranking.set_index("model_id")["score"].astype(float)
    both = [i for i in m.index if i in r.index]
    if len(both) >= 3 and m[both].std() > 0:
        b, a = np.polyfit(m[both].to_numpy(), r[both].to_numpy(), 1)
        b = max(b, 0.0)
        if b == 0.0:
            a = float(r[both].mean())
        return (a + b * m).to_numpy(), {"calibration": "linear", "n_models": len(both), "slope": b, "intercept": a}
    sd = m.std()
    z = (m - m.mean()) / sd if len(m) > 1 and sd > 0 else m * 0.0
    return (r.mean() + r.std() * z).to_numpy(), {"calibration": "moment-matched", "n_models": 0}


def metric_fallback(rec, ranking: pd.DataFrame, candidates: Sequence[str], images, labels, *,
                    metric: str = "logme", top_k: int | None = None, cache_dir=None) -> pd.DataFrame:
    """Like :func:`rank_candidates`, but candidates without history *that have weights* are scored by
    a transferability metric on the query's labelled probe images (``source`` = the metric name).

    A candidate has weights when it is a packaged model (``efficientnet-lite0/1/2``) or a
    ``name@weights_file`` spec; a bare architecture name has none and is placed by archi2vec. History
    candidates given as ``model_id@weights_file`` are scored too and calibrate the metric onto the
    ranking's scale (:func:`calibrate_metric`); without any, the metric is moment-matched.
    """
    from fennec.backbone.features import PACKAGED_MODELS
    from fennec.data.shipped import model_side_table
    from fennec.query.recommender import RANKING_COLUMNS
    from fennec.transferability.scoring import score_models

    candidates = [c.strip() for c in candidates if c.strip()]
    alias = _history_alias(rec)
    known = set(rec.model_ids)
    plain, hist_specs, metric_new = [], {}, []
    for c in candidates:
        name, _, wfile = c.partition("@")
        if name in known or name in alias:
            plain.append(name)
            if wfile:
                mid = name if name in known else alias[name]
                arch = model_side_table([mid])["timm_arch"].iloc[0]
                if not isinstance(arch, str) or not arch:
                    raise SchemaError(f"cannot load weights for history model {mid!r}: its timm architecture is unknown")
                hist_specs[name] = f"{arch}@{wfile}"
        elif wfile or name in PACKAGED_MODELS:
            metric_new.append(c)
        else:
            plain.append(c)  # architecture only: archi2vec placement
    base = rank_candidates(rec, ranking, plain) if plain else ranking.iloc[0:0][RANKING_COLUMNS]
    if not metric_new:
        return base.head(top_k) if top_k else base
    specs = {**hist_specs, **{c: c for c in metric_new}}
    raw = {}
    for cid, spec in specs.items():
        raw[cid] = float(score_models([spec], images, labels, metric=metric, progress=False,
                                      cache_dir=cache_dir)["score"].iloc[0])
    scored = pd.DataFrame({"model_id": list(raw), "score": list(raw.values())})
    values, info = calibrate_metric(base[["model_id", "score"]], scored)
    cal = dict(zip(scored["model_id"], values, strict=True))
    extra = pd.DataFrame({"task_id": ranking["task_id"].iloc[0], "model_id": metric_new,
                          "score": [cal[c] for c in metric_new], "source": metric, "measured": np.nan,
                          "std": np.nan})
    rows = pd.concat([base, extra], ignore_index=True)
    rows = rows.sort_values(["score", "model_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    rows["rank"] = np.arange(1, len(rows) + 1)
    rows.attrs.update(ranking.attrs)
    rows.attrs["metric_fallback"] = {"metric": metric, **info, "raw": raw}
    logger.info("%s fallback for %s (%s calibration on %d models)", metric, metric_new, info["calibration"],
                info["n_models"])
    out = rows[RANKING_COLUMNS]
    return out.head(top_k) if top_k else out
