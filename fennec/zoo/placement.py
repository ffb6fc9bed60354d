"""Cold models: place a model with no fine-tuning history into the transfer subspace from its side information.

A model's subspace coordinates ``t_i = [b_i, u_i]`` (general transfer quality, task-specific direction) are
predicted in stages, each a ridge regression fitted on the models that do have a history, each on what the
previous stages left:

1. **base**: the strongest simple predictors -- ImageNet top-1 with a per-kind intercept (top-1 compared
   within its pre-training kind; a missing top-1 is imputed by its kind's mean and flagged), log parameter
   count and log GMACs (likewise);
2. **archi2vec**: the archi2vec vector (PCA of the whole catalogue, unsupervised), on what the base stage
   leaves, under its own penalty -- or off.

Two further corrections were tried and left out because they hurt models of other campaigns (see the
issue-10 note): one-hot family, and a share of the residual of history models with the same architecture.

The penalties are chosen by K-fold cross-validation over the history's models (in a zoo of several
histories, one history held out at a time: a correction must help on a campaign the fit has not seen),
scored by the
per-task Kendall tau of the held-out models' predicted profiles against their standardised results: a
correction is kept only where this nested validation says it helps (near-ties go to the simpler choice).
Every feature is scaled with statistics fixed at fit time, so a model's placement never depends on which
other models are placed with it. Pure NumPy / pandas: side tables in, arrays out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fennec.errors import NotFittedError, SchemaError
from fennec.zoo.features import SideFeaturizer

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
ArchLookup = Callable[[Sequence[str]], tuple[Array, np.ndarray]]
STAGES = ("base", "archi2vec")


@dataclass(frozen=True)
class ArchSource:
    """Where archi2vec vectors come from: ``lookup(archs) -> (vectors, known)`` and the PCA basis
    ``(mean, components)`` (the installed catalogue by default; a benchmark release stores its own)."""

    lookup: ArchLookup
    pca_mean: Array
    pca_components: Array


def catalogue_source(n_components: int = 8) -> ArchSource:
    """The installed archi2vec catalogue: vectors by architecture name, PCA of the whole catalogue."""
    mean, comps = _catalogue_pca(n_components)
    return ArchSource(catalogue_vectors, mean, comps)


def catalogue_vectors(archs: Sequence[str]) -> tuple[Array, np.ndarray]:
    """archi2vec vectors of timm architecture names from the catalogue (zeros, ``False`` where unknown)."""
    names, vectors = _catalogue()
    index = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(archs), vectors.shape[1]))
    known = np.zeros(len(archs), bool)
    for i, a in enumerate(archs):
        j = index.get(str(a).split(".")[0]) if a else None
        if j is not None:
            out[i], known[i] = vectors[j], True
    return out, known


@lru_cache(maxsize=1)
def _catalogue() -> tuple[list[str], Array]:
    import archi2vec

    names, vectors, _ = archi2vec.load_catalogue()
    return list(names), vectors.astype(np.float64)


@lru_cache(maxsize=4)
def _catalogue_pca(n_components: int) -> tuple[Array, Array]:
    _, V = _catalogue()
    mean = V.mean(axis=0)
    _, _, vt = np.linalg.svd(V - mean, full_matrices=False)
    comps = vt[:n_components].copy()
    # one sign per component (its largest entry positive) and 12 decimals: the same bytes in every process,
    # whatever the BLAS threads did to the last bits
    comps *= np.sign(comps[np.arange(len(comps)), np.argmax(np.abs(comps), axis=1)])[:, None]
    mean, comps = np.round(mean, 12), np.round(comps, 12)
    mean.flags.writeable = comps.flags.writeable = False
    return mean, comps


def ridge(X: Array, T: Array, l2: float) -> Array:
    """Ridge coefficients with an unpenalised intercept (first row) from ``X`` (n, p) to ``T`` (n, q)."""
    X = np.asarray(X, dtype=float)
    T = np.asarray(T, dtype=float)
    if X.shape[0] != T.shape[0]:
        raise SchemaError(f"features have {X.shape[0]} rows but targets have {T.shape[0]}")
    Xa = np.hstack([np.ones((len(X), 1)), X])
    pen = np.r_[0.0, np.full(X.shape[1], l2)]
    return np.linalg.solve(Xa.T @ Xa + np.diag(pen) + 1e-9 * np.eye(Xa.shape[1]), Xa.T @ T)


def apply_ridge(X: Array, coef: Array) -> Array:
    return np.hstack([np.ones((len(X), 1)), np.asarray(X, dtype=float)]) @ coef


def profile_kendall(T_hat: Array, Z: Array, task_vectors: Array) -> float:
    """Mean over tasks of Kendall tau between predicted profiles ``b + u . v_j`` and observed ``Z[:, j]``."""
    from scipy.stats import kendalltau

    P = T_hat[:, :1] + T_hat[:, 1:] @ task_vectors.T
    taus = []
    for j in range(Z.shape[1]):
        ok = np.isfinite(Z[:, j])
        if ok.sum() >= 3 and np.ptp(P[ok, j]) > 0:
            taus.append(kendalltau(P[ok, j], Z[ok, j]).statistic)
    return float(np.nanmean(taus)) if taus else -np.inf


class ModelPlacer:
    """Predict a model's subspace coordinates ``[b, u]`` from its side information (module docstring).

    Parameters
    ----------
    l2_grid, arch_l2_grid : tuples
        Candidates for the penalties of the base and archi2vec stages (``inf`` = stage off), chosen by
        ``n_folds``-fold cross-validation.
    use_archi2vec : bool
        ``False`` removes the archi2vec stage from the search (the ``fennec_noarch`` ablation).
    """

    def __init__(self, *, l2_grid: Sequence[float] = (3.0, 10.0, 30.0),
                 arch_l2_grid: Sequence[float] = (np.inf, 30.0, 100.0), n_folds: int = 5, use_archi2vec: bool = True,
                 random_state: int = 0) -> None:
        self.l2_grid = tuple(float(x) for x in l2_grid)
        self.arch_l2_grid = tuple(float(x) for x in arch_l2_grid) if use_archi2vec else (np.inf,)
        self.n_folds = int(n_folds)
        self.use_archi2vec = bool(use_archi2vec)
        self.random_state = int(random_state)

    # ------------------------------------------------------------------ fit
    def fit(self, side: pd.DataFrame, targets: Array, *, task_vectors: Array, Z: Array,
            arch_source: ArchSource | None = None, groups: Sequence[str] | None = None) -> ModelPlacer:
        """Fit on the history's models: ``side`` (rows in model order), ``targets`` ``[b, u]`` (n, 1 + r),
        ``task_vectors`` (m, r) and the standardised history ``Z`` (n, m; NaN where unmeasured).

        ``groups`` (each model's history, in a zoo of at least 3): the validation then holds out one group at a
        time, so a correction is kept only if it helps on the models of a campaign the fit has not seen."""
        T = np.asarray(targets, dtype=float)
        if len(side) != len(T):
            raise SchemaError(f"side table has {len(side)} rows for {len(T)} models")
        self.featurizer_ = SideFeaturizer().fit(side)
        self.arch_source_ = (arch_source or catalogue_source()) if self.use_archi2vec else None
        blocks = self._blocks(side, fit=True)
        self.selection_ = self._select(blocks, T, np.asarray(task_vectors, float), np.asarray(Z, float), groups)
        best = min(self.selection_, key=_simplest)
        self.penalties_ = tuple(best[s] for s in STAGES)
        self.coefs_, _ = self._fit_stages(blocks, T, self.penalties_)
        logger.info("cold-model placement: %s (cv Kendall %.3f)",
                    ", ".join(f"{s} {'off' if np.isinf(p) else f'l2 {p:g}'}" for s, p in zip(STAGES, self.penalties_,
                                                                                       strict=True)), best["kendall"])
        return self

    def _blocks(self, side: pd.DataFrame, *, fit: bool = False) -> list[Array]:
        return [self.featurizer_.transform(side), self._arch_features(side, fit=fit)]

    def _arch_features(self, side: pd.DataFrame, *, fit: bool = False) -> Array:
        src = self.arch_source_
        if src is None:
            return np.zeros((len(side), 0))
        archs = side["arch"].fillna("").astype(str).tolist() if "arch" in side.columns else [""] * len(side)
        V, known = src.lookup(archs)
        known = np.asarray(known, bool)
        P = (np.asarray(V, float) - src.pca_mean) @ np.asarray(src.pca_components).T
        P[~known] = 0.0
        if fit:
            self.arch_scale_ = float(np.sqrt(np.mean(P[known] ** 2))) if known.any() else 1.0
        return np.hstack([P / max(self.arch_scale_, 1e-12), (~known).astype(float)[:, None]])

    @staticmethod
    def _fit_stages(blocks: list[Array], T: Array, penalties: Sequence[float]) -> tuple[list, Array]:
        """Each stage on the previous stages' residuals; returns (coefficients, final residuals)."""
        coefs, resid = [], T
        for B, pen in zip(blocks, penalties, strict=True):
            if not np.isfinite(pen) or B.shape[1] == 0:
                coefs.append(None)
                continue
            c = ridge(B, resid, pen)
            coefs.append(c)
            resid = resid - apply_ridge(B, c)
        return coefs, resid

    @staticmethod
    def _apply_stages(blocks: list[Array], coefs: list) -> Array:
        return sum(apply_ridge(B, c) for B, c in zip(blocks, coefs, strict=True) if c is not None)

    def _select(self, blocks, T, V, Z, groups) -> list[dict]:
        n = len(T)
        if n < 6:  # too few models to validate: the base stage, most regularised
            self.oof_ = None
            return [{"base": max(self.l2_grid), "archi2vec": np.inf, "kendall": float("nan")}]
        grid = list(product(self.l2_grid, self.arch_l2_grid))
        random_folds = np.random.default_rng(self.random_state).permutation(np.arange(n) % max(2, min(self.n_folds, n)))
        grouped = groups is not None and len(set(groups)) >= 3
        folds = np.unique(list(groups), return_inverse=True)[1] if grouped else random_folds
        preds = self._cross_predict(blocks, T, folds, grid)
        rows = [{**dict(zip(STAGES, pens, strict=True)), "kendall": profile_kendall(P, Z, V)}
                for pens, P in preds.items()]
        best = tuple(min(rows, key=_simplest)[s] for s in STAGES)
        # out-of-fold coordinates of the chosen placement, by random folds (what side information says about
        # a model whose campaign the fit did see: the shrinkage prior of history models)
        self.oof_ = (self._cross_predict(blocks, T, random_folds, [best]) if grouped else preds)[best]
        return rows

    def _cross_predict(self, blocks, T, folds, grid) -> dict:
        preds = {pens: np.zeros_like(T) for pens in grid}
        for f in np.unique(folds):
            te, tr = folds == f, folds != f
            for pens in grid:
                coefs, _ = self._fit_stages([B[tr] for B in blocks], T[tr], pens)
                preds[pens][te] = self._apply_stages([B[te] for B in blocks], coefs)
        return preds

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "coefs_"):
            raise NotFittedError("This ModelPlacer is not fitted yet; call fit() first.")

    @property
    def out_of_fold_(self) -> Array | None:
        """Cross-validated coordinates ``[b, u]`` of the training models (each predicted by a fit that did not
        see it): what side information alone says about a history model. None with fewer than 6 models."""
        self._check_fitted()
        return self.oof_

    def coordinates(self, side: pd.DataFrame) -> Array:
        """Predicted ``[b, u]`` (n, 1 + r) of the rows of ``side``; each row depends on that row alone."""
        self._check_fitted()
        A = self._arch_features(side) if self.coefs_[1] is not None else np.zeros((len(side), 0))
        return self._apply_stages([self.featurizer_.transform(side), A], self.coefs_)

    # ------------------------------------------------------------------ persistence (no pickle)
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        self._check_fitted()
        params = {"penalties": [None if np.isinf(p) else p for p in self.penalties_],
                  "featurizer": self.featurizer_.to_state(), "use_archi2vec": self.use_archi2vec}
        arrays = {f"coef{i}": c for i, c in enumerate(self.coefs_) if c is not None}
        if self.oof_ is not None:
            arrays["oof"] = self.oof_
        if self.coefs_[1] is not None:
            src = self.arch_source_
            arrays.update({"pca_mean": np.asarray(src.pca_mean), "pca_components": np.asarray(src.pca_components),
                           "arch_scale": np.array([self.arch_scale_])})
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray], *, lookup: ArchLookup | None = None) -> ModelPlacer:
        placer = cls(use_archi2vec=params["use_archi2vec"])
        placer.featurizer_ = SideFeaturizer.from_state(params["featurizer"])
        placer.penalties_ = tuple(np.inf if p is None else float(p) for p in params["penalties"])
        placer.coefs_ = [arrays.get(f"coef{i}") for i in range(len(STAGES))]
        placer.oof_ = arrays.get("oof")
        placer.arch_source_ = None
        if placer.coefs_[1] is not None:
            placer.arch_source_ = ArchSource(lookup or catalogue_vectors, arrays["pca_mean"], arrays["pca_components"])
            placer.arch_scale_ = float(arrays["arch_scale"][0])
        return placer


#: cv Kendall the archi2vec correction must add to be kept
CORRECTION_MARGIN = 0.02


def _simplest(row: dict) -> tuple:
    """Best cv Kendall, archi2vec charged :data:`CORRECTION_MARGIN`; among near-ties (to 1e-3) the simpler
    placement: no archi2vec, more shrinkage."""
    arch = bool(np.isfinite(row["archi2vec"]))
    return (-round(row["kendall"] - CORRECTION_MARGIN * arch, 3), arch, -row["base"],
            -row["archi2vec"] if arch else 0.0)
