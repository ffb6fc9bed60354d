"""The transfer subspace: masked low-rank factorisation of a (standardised) model x task matrix.

Pure NumPy/SciPy: arrays in, arrays out; no files, no torch, no faiss.

Model of a standardised score (``i`` a model, ``j`` a task)::

    z_ij  ~  mu + b_i + c_j + u_i . v_j

fitted on the observed cells only, by alternating ridge regressions (ALS) with an L2 penalty ``l2`` on
the vectors and ``bias_l2`` on the biases. ``b_i`` is a model's general transfer quality (what the
history prior captures); ``u_i . v_j`` is what is specific to a task. The rank (and ``l2``) is chosen
by K-fold cross-validation over held-out cells when ``n_components="auto"``. The ALS itself is in
:mod:`fennec.subspace.als`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fennec.errors import NotFittedError, SchemaError
from fennec.subspace.als import Factors, als_fit
from fennec.subspace.progress import SearchProgress
from fennec.tabular import Table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FoldIn", "TransferSubspace", "als_fit"]

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]


def _check_matrix(Z: npt.ArrayLike) -> Array:
    Z = np.asarray(Z, dtype=float)
    if Z.ndim != 2:
        raise SchemaError(f"expected a 2-D model x task matrix, got an array of shape {Z.shape}")
    if np.isinf(Z).any():
        raise SchemaError(f"the matrix holds {int(np.isinf(Z).sum())} infinite value(s); use NaN for missing cells")
    if not np.isfinite(Z).any():
        raise SchemaError(f"the matrix of shape {Z.shape} has no observed (finite) cell")
    return Z


class TransferSubspace:
    """Masked low-rank factorisation with model and task biases (scikit-learn style estimator).

    Parameters
    ----------
    n_components : int or "auto"
        Rank of the model/task vectors. ``"auto"`` picks it (and ``l2`` when ``l2="auto"``) by K-fold
        cross-validation over held-out observed cells, minimising the held-out squared error.
    l2 : float or "auto"
        L2 penalty on model and task vectors.
    bias_l2 : float
        L2 penalty on the model and task biases (the global mean is not penalised).
    fit_biases : bool
        Fit ``mu + b_i + c_j``. Without biases and with ``l2=0`` on a full matrix the fit is the truncated
        SVD (Eckart-Young).
    candidate_ranks, candidate_l2 : sequences
        The grid searched by ``"auto"``.
    n_folds : int
        Folds of the held-out-cell cross-validation.
    max_iter, tol : ALS stopping rule (relative decrease of the objective).
    random_state : int or None
        Seed of the initialisation and of the CV folds; the fit is deterministic given it.

    Attributes
    ----------
    model_vectors_ (n_models, r), model_bias_ (n_models,), task_vectors_ (n_tasks, r),
    task_bias_ (n_tasks,), global_mean_, n_components_, l2_, n_iter_, objective_,
    noise_var_ (mean squared residual on the observed cells), cv_results_ (DataFrame or None; set from a
    DataFrame or a :class:`~fennec.tabular.Table`, a new DataFrame on each access),
    model_ids_, task_ids_.
    """

    def __init__(
        self,
        n_components: int | str = "auto",
        *,
        l2: float | str = "auto",
        bias_l2: float = 1.0,
        fit_biases: bool = True,
        candidate_ranks: Sequence[int] = (0, 1, 2, 3, 4, 6, 8),
        candidate_l2: Sequence[float] = (0.3, 1.0, 3.0, 10.0),
        n_folds: int = 5,
        max_iter: int = 200,
        tol: float = 1e-7,
        random_state: int | None = 0,
    ) -> None:
        self.n_components = n_components
        self.l2 = l2
        self.bias_l2 = bias_l2
        self.fit_biases = fit_biases
        self.candidate_ranks = candidate_ranks
        self.candidate_l2 = candidate_l2
        self.n_folds = n_folds
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    @property
    def cv_results_(self) -> pd.DataFrame | None:
        """The rank/l2 search, best first (``n_components, l2, rmse``), or None when there was none."""
        table = getattr(self, "_cv_results", None)
        return None if table is None else table.to_frame()

    @cv_results_.setter
    def cv_results_(self, value: pd.DataFrame | Table | None) -> None:
        self._cv_results = None if value is None else Table.of(value)

    # ------------------------------------------------------------------ params
    def get_params(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in (
            "n_components", "l2", "bias_l2", "fit_biases", "candidate_ranks", "candidate_l2",
            "n_folds", "max_iter", "tol", "random_state")}

    def _validate_params(self, shape: tuple[int, int]) -> None:
        nc = self.n_components
        if not (nc == "auto" or (isinstance(nc, (int, np.integer)) and not isinstance(nc, bool) and nc >= 0)):
            raise SchemaError(f"The 'n_components' parameter of TransferSubspace must be an int >= 0 or 'auto'. Got {nc!r} instead.")
        if isinstance(nc, (int, np.integer)) and nc > min(shape):
            raise SchemaError(
                f"The 'n_components' parameter of TransferSubspace must be <= min(n_models, n_tasks) = {min(shape)} "
                f"for a matrix of shape {shape}. Got {nc} instead.")
        l2 = self.l2
        if not (l2 == "auto" or (isinstance(l2, (int, float)) and not isinstance(l2, bool) and l2 >= 0)):
            raise SchemaError(f"The 'l2' parameter of TransferSubspace must be a float >= 0 or 'auto'. Got {l2!r} instead.")
        if not (isinstance(self.bias_l2, (int, float)) and self.bias_l2 >= 0):
            raise SchemaError(f"The 'bias_l2' parameter of TransferSubspace must be a float >= 0. Got {self.bias_l2!r} instead.")
        if not (isinstance(self.n_folds, int) and self.n_folds >= 2):
            raise SchemaError(f"The 'n_folds' parameter of TransferSubspace must be an int >= 2. Got {self.n_folds!r} instead.")

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        Z: npt.ArrayLike,
        *,
        model_ids: Sequence[str] | None = None,
        task_ids: Sequence[str] | None = None,
    ) -> TransferSubspace:
        """Fit on a model x task matrix ``Z`` with NaN for missing cells (standardise tasks first)."""
        Z = _check_matrix(Z)
        self._validate_params(Z.shape)
        n, m = Z.shape
        for ids, size, what in ((model_ids, n, "model_ids"), (task_ids, m, "task_ids")):
            if ids is not None and len(ids) != size:
                raise SchemaError(f"{what} has {len(ids)} entries but the matrix has {size} {what[:-4]}s (shape {Z.shape})")
        rows, cols = np.nonzero(np.isfinite(Z))
        vals = Z[rows, cols]
        self.cv_results_ = None
        rank, l2 = self.n_components, self.l2
        if rank == "auto" or l2 == "auto":
            ranks = [r for r in self.candidate_ranks if r <= min(n, m)] if rank == "auto" else [int(rank)]
            l2s = list(self.candidate_l2) if l2 == "auto" else [float(l2)]
            self.cv_results_ = self._cross_validate(rows, cols, vals, (n, m), ranks, l2s)
            best = self.cv_results_.iloc[0]
            rank, l2 = int(best["n_components"]), float(best["l2"])
            logger.info("chose n_components=%d, l2=%g by %d-fold held-out cells (rmse %.4f)",
                        rank, l2, self.n_folds, best["rmse"])
        factors, self.n_iter_, self.objective_ = als_fit(
            rows, cols, vals, (n, m), rank=int(rank), l2=float(l2), bias_l2=float(self.bias_l2),
            fit_biases=self.fit_biases, max_iter=self.max_iter, tol=self.tol, random_state=self.random_state)
        if self.n_iter_ >= self.max_iter:
            logger.info("ALS stopped at max_iter=%d before reaching tol=%g", self.max_iter, self.tol)
        self.n_components_, self.l2_ = int(rank), float(l2)
        self.global_mean_ = factors.mu
        self.model_bias_, self.task_bias_ = factors.b, factors.c
        self.model_vectors_, self.task_vectors_ = factors.U, factors.V
        err = vals - factors.predict(rows, cols)
        self.noise_var_ = float(err @ err / max(len(vals), 1))
        self.model_ids_ = list(model_ids) if model_ids is not None else [str(i) for i in range(n)]
        self.task_ids_ = list(task_ids) if task_ids is not None else [str(j) for j in range(m)]
        return self

    def _cross_validate(self, rows, cols, vals, shape, ranks, l2s) -> pd.DataFrame:
        import pandas as pd
        from tqdm import tqdm

        rng = np.random.default_rng(self.random_state)
        fold = rng.permutation(len(vals)) % self.n_folds
        # the largest rank first: the first fit's time then bounds the others' (the result is sorted below)
        grid = sorted(product(ranks, l2s), key=lambda config: -config[0])
        n_fits = len(grid) * self.n_folds
        records = []
        progress = SearchProgress(n_fits, shape)  # time estimate and progress in the log (warnings when long)
        with tqdm(total=n_fits, desc="rank/l2 selection", unit="fit", disable=None, leave=False) as bar:
            for rank, l2 in grid:
                sq = 0.0
                for k in range(self.n_folds):
                    t0 = time.perf_counter()
                    progress.step()
                    train, test = fold != k, fold == k
                    f, _, _ = als_fit(rows[train], cols[train], vals[train], shape, rank=rank, l2=l2,
                                      bias_l2=float(self.bias_l2), fit_biases=self.fit_biases, max_iter=self.max_iter,
                                      tol=max(self.tol, 1e-6), random_state=self.random_state)
                    err = vals[test] - f.predict(rows[test], cols[test])
                    sq += float(err @ err)
                    bar.update()
                    if not records and k == 0:
                        took = time.perf_counter() - t0
                        logger.info("rank/l2 selection: %d fits (%d configurations x %d folds) on %d cells; the first "
                                    "(rank %d, the largest) took %.2f s, so expect up to ~%.0f s",
                                    n_fits, len(grid), self.n_folds, len(vals), rank, took, took * n_fits)
                records.append({"n_components": rank, "l2": l2, "rmse": float(np.sqrt(sq / len(vals)))})
        out = pd.DataFrame(records)
        # prefer the simpler model among (near-)ties: sort by rmse rounded to 1e-4, then rank, then l2 desc
        out["_key"] = out["rmse"].round(4)
        out = out.sort_values(["_key", "n_components", "l2"], ascending=[True, True, False]).drop(columns="_key")
        return out.reset_index(drop=True)

    @classmethod
    def from_arrays(cls, *, model_vectors: Array, model_bias: Array, task_vectors: Array, task_bias: Array,
                    global_mean: float, noise_var: float, model_ids: Sequence[str], task_ids: Sequence[str],
                    l2: float, n_iter: int | None = None, objective: float | None = None,
                    cv_results: pd.DataFrame | Table | None = None) -> TransferSubspace:
        """A fitted subspace from stored arrays (an artifact), without refitting."""
        sub = cls(int(model_vectors.shape[1]), l2=l2)
        sub.model_vectors_, sub.model_bias_ = np.asarray(model_vectors, float), np.asarray(model_bias, float)
        sub.task_vectors_, sub.task_bias_ = np.asarray(task_vectors, float), np.asarray(task_bias, float)
        sub.global_mean_, sub.noise_var_ = float(global_mean), float(noise_var)
        sub.n_components_, sub.l2_ = int(model_vectors.shape[1]), float(l2)
        sub.n_iter_, sub.objective_, sub.cv_results_ = n_iter, objective, cv_results
        sub.model_ids_, sub.task_ids_ = list(model_ids), list(task_ids)
        return sub

    # ------------------------------------------------------------------ predictions
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_vectors_"):
            raise NotFittedError("This TransferSubspace instance is not fitted yet; call fit() first.")

    def reconstruct(self) -> Array:
        """The fitted (standardised) score of every model on every task, shape (n_models, n_tasks)."""
        self._check_fitted()
        return Factors(self.global_mean_, self.model_bias_, self.task_bias_,
                        self.model_vectors_, self.task_vectors_).predict()

    def model_prior(self) -> Array:
        """``mu + b_i``: each model's general transfer quality (the bias part of the prediction)."""
        self._check_fitted()
        return self.global_mean_ + self.model_bias_

    def cold_task_prediction(self) -> Array:
        """The expected standardised score on a new task with no information about it.

        ``mu + b_i + mean_j(c_j) + u_i . mean_j(v_j)``: the posterior mean under the empirical prior of the
        fitted task vectors (the same prior :meth:`fold_in_task` starts from).
        """
        self._check_fitted()
        vbar = self.task_vectors_.mean(axis=0)
        return self.model_prior() + self.task_bias_.mean() + self.model_vectors_ @ vbar

    def mean_task_query(self) -> npt.NDArray[np.float32]:
        """``[mean_j v_j, 1]``: the index query of :meth:`cold_task_prediction` (up to a constant)."""
        self._check_fitted()
        return np.append(self.task_vectors_.mean(axis=0), 1.0).astype(np.float32)

    def augmented_model_vectors(self) -> npt.NDArray[np.float32]:
        """``[u_i, mu + b_i]``: inner product with ``[v, 1]`` gives ``mu + b_i + u_i . v``, exactly."""
        self._check_fitted()
        return np.hstack([self.model_vectors_, self.model_prior()[:, None]]).astype(np.float32)

    def task_query(self, j: int) -> npt.NDArray[np.float32]:
        """The query vector ``[v_j, 1]`` of a fitted task; add ``task_bias_[j]`` to the inner products."""
        self._check_fitted()
        return np.append(self.task_vectors_[j], 1.0).astype(np.float32)

    def fold_in_task(
        self,
        rows: npt.ArrayLike,
        values: npt.ArrayLike,
        *,
        noise_scale: float = 2.0,
        prior_ridge: float = 1e-3,
    ) -> FoldIn:
        """Place a new task in the subspace from a few measured scores (warm start).

        Bayesian linear regression of the measured values on the model vectors::

            values_k = offset + (mu + b_{rows_k}) + u_{rows_k} . v + noise

        with a flat prior on ``offset`` (the task's unknown level, so ``values`` need only be on a
        standardised-like scale) and a Gaussian prior on ``v`` whose mean and covariance are those of the
        fitted task vectors (a new task looks like the historical ones). The noise variance is the fit's
        residual variance times ``noise_scale``. With one measured model this returns the subspace's prior
        ranking; each further model moves ``v`` towards the task's own direction.

        Returns a :class:`FoldIn` whose ``prediction`` (in the units of ``values``) and ``std`` cover
        every fitted model.
        """
        self._check_fitted()
        rows = np.asarray(rows, dtype=np.intp).ravel()
        y = np.asarray(values, dtype=float).ravel()
        if rows.shape != y.shape:
            raise SchemaError(f"rows has {rows.size} entries but values has {y.size}")
        if rows.size == 0:
            raise SchemaError("fold_in_task needs at least one measured score")
        if not np.isfinite(y).all():
            raise SchemaError(f"values must be finite; got {y[~np.isfinite(y)][:3].tolist()}")
        n = len(self.model_bias_)
        if rows.min() < 0 or rows.max() >= n:
            raise SchemaError(f"rows must index the {n} fitted models; got {rows.min()}..{rows.max()}")
        if len(set(rows.tolist())) != len(rows):
            raise SchemaError("rows must not repeat a model; average repeated measurements first")
        r = self.n_components_
        U, base, V = self.model_vectors_, self.model_prior(), self.task_vectors_
        vbar = V.mean(axis=0) if r else np.zeros(0)
        S = np.atleast_2d(np.cov(V.T)) if (r and len(V) > 1) else np.eye(r)
        S = S.reshape(r, r) + prior_ridge * np.eye(r)
        noise = max(self.noise_var_, 1e-6) * noise_scale
        X = np.hstack([np.ones((len(rows), 1)), U[rows]])
        P = np.zeros((r + 1, r + 1))
        P[1:, 1:] = noise * np.linalg.inv(S)
        A = X.T @ X + P + 1e-9 * np.eye(r + 1)
        theta = np.linalg.solve(A, X.T @ (y - base[rows]) + P @ np.r_[0.0, vbar])
        offset, v = float(theta[0]), theta[1:]
        latent = base + U @ v
        cov = noise * np.linalg.inv(A)[1:, 1:]
        std = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", U, cov, U), 0.0) + noise)
        return FoldIn(offset=offset, vector=v, prediction=latent + offset, std=std)


@dataclass(frozen=True)
class FoldIn:
    """A task folded into the subspace: ``prediction_i = offset + mu + b_i + u_i . vector``."""

    offset: float
    vector: Array
    prediction: Array
    std: Array

    def query(self) -> npt.NDArray[np.float32]:
        """``[vector, 1]``: the index query matching :meth:`TransferSubspace.augmented_model_vectors`."""
        return np.append(self.vector, 1.0).astype(np.float32)
