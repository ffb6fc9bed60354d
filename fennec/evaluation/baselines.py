"""Baseline scorers every evaluation reports beside Fennec. Arrays in, arrays out.

- ``history_prior``: a model's mean standardised score over the tasks it was measured on (the training
  tasks of the split). Strong: most of a model's transfer quality is shared across tasks.
- ``imagenet_top1``: the model's ImageNet-1k top-1 (NaN where unknown).
- ``params``: the model's parameter count (bigger is assumed better; NaN where unknown).
- ``random``: uniformly random scores (seeded); its metrics are averaged over many draws.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd


def history_prior(Z_train: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Row means of a standardised matrix over observed cells; NaN for a model with no cell."""
    Z = np.asarray(Z_train, dtype=float)
    n = np.isfinite(Z).sum(axis=1)
    total = np.where(np.isfinite(Z), Z, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def side_baselines(side: pd.DataFrame | None, n_models: int) -> dict[str, npt.NDArray[np.float64]]:
    """``imagenet_top1`` and ``params`` score vectors from a models side table (rows in model order)."""
    out = {}
    for name, col in (("imagenet_top1", "imagenet_top1"), ("params", "params_m")):
        if side is not None and col in side.columns:
            out[name] = pd.to_numeric(side[col], errors="coerce").to_numpy(dtype=float)
        else:
            out[name] = np.full(n_models, np.nan)
    return out


def model_side_features(side: pd.DataFrame | None, n_models: int) -> npt.NDArray[np.float64]:
    """A small numeric design matrix from side information, for placing models with no history.

    Columns: log10 params, ImageNet top-1 (mean-imputed) with a missing indicator, one-hot pretraining
    kind and family. Columns that are constant over the given models are dropped.
    """
    if side is None or len(side) == 0:
        return np.zeros((n_models, 0))
    cols: list[np.ndarray] = []
    for col, transform in (("params_m", np.log10), ("imagenet_top1", None), ("gmacs", np.log10)):
        if col not in side.columns:
            continue
        v = pd.to_numeric(side[col], errors="coerce").to_numpy(dtype=float, copy=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = transform(v) if transform is not None else v
        v[~np.isfinite(v)] = np.nan
        miss = np.isnan(v)
        if miss.all():
            continue
        fill = np.nanmean(v)
        cols.append(np.where(miss, fill, v))
        if miss.any():
            cols.append(miss.astype(float))
    for col in ("pretraining", "family"):
        if col in side.columns:
            cats = side[col].fillna("").astype(str)
            for value in sorted(set(cats) - {""}):
                cols.append((cats == value).to_numpy(dtype=float))
    if not cols:
        return np.zeros((n_models, 0))
    X = np.column_stack(cols)
    keep = X.std(axis=0) > 0
    return X[:, keep]
