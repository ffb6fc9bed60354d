"""Cold-start models: place a model with no fine-tuning history into the transfer subspace.

A model's side information -- its architecture's archi2vec vector, parameter count, GMACs, ImageNet
top-1 where known, kind of pre-training -- predicts its subspace coordinates ``[b_i, u_i]`` (general
transfer quality and task-specific direction) by ridge regression fitted on the models that do have a
history. Pure NumPy except :func:`model_feature_table`, which reads the shipped tables / catalogue.

Feature design (:class:`ModelFeaturizer`): the 256-d archi2vec vectors are reduced by a PCA fitted on
the whole archi2vec catalogue (unsupervised, ~1 370 timm architectures, so no history leaks into it),
numeric features are log-scaled and standardised, unknown values are mean-imputed with a missing flag.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from fennec.errors import NotFittedError, SchemaError

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
NUMERIC = (("params_m", True), ("gmacs", True), ("imagenet_top1", False))


def archi2vec_vectors(archs: Sequence[str | None]) -> tuple[Array, np.ndarray]:
    """archi2vec vectors of timm architecture names (zeros and ``False`` where none / unknown)."""
    import archi2vec

    names, vectors, _ = archi2vec.load_catalogue()
    index = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(archs), vectors.shape[1]))
    known = np.zeros(len(archs), bool)
    missing = []
    for i, a in enumerate(archs):
        if not a or not isinstance(a, str):
            continue
        base = a.split(".")[0]
        if base in index:
            out[i], known[i] = vectors[index[base]], True
        else:
            missing.append((i, base))
    if missing:
        try:
            out[[i for i, _ in missing]] = archi2vec.lookup([b for _, b in missing])
            known[[i for i, _ in missing]] = True
        except Exception as exc:  # an unknown arch: no vector, flagged as missing
            logger.warning("archi2vec could not encode %s (%s)", [b for _, b in missing], exc)
    return out, known


def catalogue_pca(n_components: int = 8) -> tuple[Array, Array]:
    """``(mean, components)`` of a PCA of the whole archi2vec catalogue."""
    import archi2vec

    _, vectors, _ = archi2vec.load_catalogue()
    V = vectors.astype(np.float64)
    mean = V.mean(axis=0)
    _, _, vt = np.linalg.svd(V - mean, full_matrices=False)
    return mean, vt[:n_components]


@dataclass
class ModelFeaturizer:
    """Turn a models side table into a numeric design matrix (fit learns imputation and scaling)."""

    n_arch_components: int = 8
    use_archi2vec: bool = True

    def fit(self, side: pd.DataFrame) -> ModelFeaturizer:
        self.columns_ = [c for c, _ in NUMERIC if c in side.columns]
        raw = self._raw(side)
        obs = np.isfinite(raw)
        counts = obs.sum(axis=0)
        self.mean_ = np.where(counts > 0, np.where(obs, raw, 0.0).sum(axis=0) / np.maximum(counts, 1), 0.0)
        filled = np.where(np.isfinite(raw), raw, self.mean_)
        self.scale_ = filled.std(axis=0) if raw.size else np.zeros(0)
        self.scale_ = np.where(self.scale_ > 1e-12, self.scale_, 1.0)
        self.pretraining_ = sorted(set(side.get("pretraining", pd.Series(dtype=str)).fillna("").astype(str)) - {""})
        if self.use_archi2vec:
            self.pca_mean_, self.pca_components_ = catalogue_pca(self.n_arch_components)
        return self

    def _raw(self, side: pd.DataFrame) -> Array:
        cols = []
        for c, log in NUMERIC:
            if c not in side.columns:
                continue
            v = pd.to_numeric(side[c], errors="coerce").to_numpy(dtype=float, copy=True)
            if log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = np.log10(v)
            cols.append(np.where(np.isfinite(v), v, np.nan))
        return np.column_stack(cols) if cols else np.zeros((len(side), 0))

    def transform(self, side: pd.DataFrame) -> Array:
        if not hasattr(self, "columns_"):
            raise NotFittedError("This ModelFeaturizer is not fitted yet; call fit() first.")
        raw = self._raw(side)
        miss = ~np.isfinite(raw)
        num = (np.where(miss, self.mean_, raw) - self.mean_) / self.scale_
        parts = [num, miss.astype(float)]
        kinds = side.get("pretraining", pd.Series([""] * len(side))).fillna("").astype(str).to_numpy()
        parts.append(np.column_stack([kinds == k for k in self.pretraining_]).astype(float)
                     if self.pretraining_ else np.zeros((len(side), 0)))
        if self.use_archi2vec:
            archs = side.get("timm_arch", pd.Series([None] * len(side))).tolist()
            vec, known = archi2vec_vectors(archs)
            proj = (vec - self.pca_mean_) @ self.pca_components_.T
            proj[~known] = 0.0
            scale = np.sqrt(np.mean(proj[known] ** 2)) if known.any() else 1.0
            parts += [proj / max(scale, 1e-12), (~known).astype(float)[:, None]]
        return np.hstack(parts)


def fit_placement(X: Array, targets: Array, *, l2: float = 1.0) -> Array:
    """Ridge coefficients (with an unpenalised intercept) from features ``X`` to ``targets``."""
    X = np.asarray(X, dtype=float)
    T = np.asarray(targets, dtype=float)
    if X.shape[0] != T.shape[0]:
        raise SchemaError(f"features have {X.shape[0]} rows but targets have {T.shape[0]}")
    Xa = np.hstack([np.ones((len(X), 1)), X])
    pen = np.r_[0.0, np.full(X.shape[1], l2)]
    return np.linalg.solve(Xa.T @ Xa + np.diag(pen) + 1e-9 * np.eye(Xa.shape[1]), Xa.T @ T)


def predict_placement(X: Array, coef: Array) -> Array:
    X = np.asarray(X, dtype=float)
    return np.hstack([np.ones((len(X), 1)), X]) @ coef
