"""Warm start: rank the models of a new task from a few of its own fine-tuning results.

Pure NumPy: arrays in, arrays out.

Setting. A history gives, for ``T`` training tasks, the per-task standardised scores of ``n`` models
(:class:`fennec.history.table.TaskScaler`), completed where missing (e.g. by the transfer subspace's
reconstruction, see :func:`complete_columns`); call this ``n x T`` matrix ``C``. A new task arrives with
``k`` models already fine-tuned on it: raw scores ``y`` on rows ``r``. We want a score for every model.

Model. The new task's standardised column ``z`` is treated as one more draw from the population of task
columns, and its raw scores as ``y = s (a + z_r)`` with an unknown offset ``a`` (the task's level:
flat prior, profiled by generalised least squares) and a scale ``s`` fixed to a typical task standard
deviation (the median over the training tasks; the offset-free model makes the result insensitive to
it). Two views of the population of columns are combined:

1. *Gaussian view* (:func:`gaussian_fold_in`). ``z ~ N(m, S + lam * v * I)`` with ``m`` and ``S`` the
   empirical mean and covariance of the columns of ``C`` (``v`` the average model variance, so ``lam``
   is a noise-to-signal ratio; the ridge also makes ``S`` -- of rank ``<= T-1`` -- invertible). The
   prediction is the conditional mean ``m_h + S_hr (S_rr + lam v I)^-1 (z_r - a - m_r)``; with the
   model prior ``m`` alone (``k = 1``, where the free offset absorbs the only observation) it is the
   history prior. Equivalent to a GP over models whose kernel is the linear kernel on their centred
   score profiles over the training tasks.
2. *Task-mixture view* (:func:`task_mixture_fold_in`). ``z ~ 1/T sum_t N(C_t + a 1, tau^2 I)``: the new
   task is one of the training tasks up to an offset and noise. The posterior weight of task ``t`` is
   ``softmax_t(-|P (z_r - C_t[r])|^2 / (2 tau^2))`` (``P`` removes the mean: offset profiled out) and the
   prediction is ``C @ w`` -- a soft nearest-training-task rule. It can follow a task that the
   covariance averages away (non-Gaussian, clustered task populations).

:func:`fold_in` returns the sum of the two predictions, each standardised over the models (a rank
score, equal weight to both views), together with both parts.

Hyperparameters (``lam``, ``tau``). ``lam = 1, tau = 1`` are the defaults. In
``benchmarks/warm_start_study.py`` they are also chosen per held-out task by a nested strict warm-start
protocol run on the training columns only; both ways are reported there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fennec.errors import SchemaError

Array = npt.NDArray[np.float64]


def complete_columns(Z: npt.ArrayLike, reconstruction: npt.ArrayLike | None = None) -> Array:
    """Fill the missing (NaN) cells of a standardised ``n x T`` matrix.

    With ``reconstruction`` (same shape, e.g. ``TransferSubspace.reconstruct()``) its values are used;
    otherwise each model's mean over its observed tasks (the history prior).
    """
    Z = np.asarray(Z, dtype=float)
    if Z.ndim != 2:
        raise SchemaError(f"expected a 2-D model x task matrix, got shape {Z.shape}")
    obs = np.isfinite(Z)
    if reconstruction is None:
        with np.errstate(invalid="ignore"):
            rowmean = np.where(obs, Z, 0.0).sum(1) / np.maximum(obs.sum(1), 1)
        fill = np.broadcast_to(rowmean[:, None], Z.shape)
    else:
        fill = np.asarray(reconstruction, dtype=float)
        if fill.shape != Z.shape:
            raise SchemaError(f"reconstruction has shape {fill.shape}, expected {Z.shape}")
    return np.where(obs, Z, fill)


def _check(C: Array, rows: npt.ArrayLike, values: npt.ArrayLike) -> tuple[Array, np.ndarray, Array]:
    C = np.asarray(C, dtype=float)
    if C.ndim != 2 or not np.isfinite(C).all():
        raise SchemaError("task_columns must be a finite 2-D (n_models, n_tasks) array (complete it first)")
    rows = np.asarray(rows, dtype=np.intp).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if rows.shape != y.shape or rows.size == 0:
        raise SchemaError(f"need >= 1 revealed score with one row each; got {rows.size} rows, {y.size} values")
    if rows.min() < 0 or rows.max() >= C.shape[0] or len(np.unique(rows)) != rows.size:
        raise SchemaError(f"revealed rows must be distinct indices into the {C.shape[0]} models")
    if not np.isfinite(y).all():
        raise SchemaError("revealed values must be finite")
    return C, rows, y


def column_moments(task_columns: npt.ArrayLike) -> tuple[Array, Array, float]:
    """``(m, F, v)``: mean ``m`` (n,) of the task columns, a factor ``F`` (n, T) with covariance
    ``S = F F^T``, and the average model variance ``v = mean(diag S)``.

    ``S`` is never formed: the fold-in needs only ``k`` of its columns and its diagonal, so memory and
    time stay ``O(n T k)`` however many models the history holds.
    """
    C = np.asarray(task_columns, dtype=float)
    m = C.mean(1)
    F = (C - m[:, None]) / np.sqrt(max(C.shape[1] - 1, 1))
    return m, F, float(np.mean((F**2).sum(1)))


def gaussian_fold_in(
    task_columns: npt.ArrayLike,
    revealed_rows: npt.ArrayLike,
    revealed_values: npt.ArrayLike,
    *,
    scale: float,
    lam: float = 1.0,
    moments: tuple[Array, Array, float] | None = None,
) -> tuple[Array, Array, float]:
    """Conditional-Gaussian fold-in with a free offset.

    Returns ``(mean, std, offset)``: the posterior mean and standard deviation of every model's
    standardised score on the new task (revealed models included: their mean is shrunk, not pinned),
    and the profiled offset ``a`` (so that ``y / scale ~ a + z``).
    """
    mean, std, a, _ = _gaussian(task_columns, revealed_rows, revealed_values, scale=scale, lam=lam,
                                moments=moments, extra=None)
    return mean, std, a


def _gaussian(task_columns, revealed_rows, revealed_values, *, scale, lam, moments, extra):
    C, rows, y = _check(task_columns, revealed_rows, revealed_values)
    if scale <= 0:
        raise SchemaError(f"scale must be > 0, got {scale}")
    m, F, v = moments if moments is not None else column_moments(C)
    z = y / scale
    # Sig = F F^T + lam v I, needed only at [:, rows] and on its diagonal
    Shr = F @ F[rows].T
    Shr[rows, np.arange(len(rows))] += lam * v
    Srr = Shr[rows]
    Ri = np.linalg.inv(Srr)
    one = np.ones(len(rows))
    denom = float(one @ Ri @ one)
    a = float(one @ Ri @ (z - m[rows])) / denom

    def posterior(mh, Fh, S):
        # posterior covariance with the offset integrated out (flat prior): Schur complement plus the
        # offset's uncertainty propagated through the regression coefficients
        g = S @ Ri @ one
        var = (Fh**2).sum(1) + lam * v - np.einsum("ij,jk,ik->i", S, Ri, S) + g**2 / denom
        return mh + S @ Ri @ (z - a - m[rows]), np.sqrt(np.maximum(var, 0.0))

    mean, std = posterior(m, F, Shr)
    out_extra = None
    if extra is not None:
        me, Fe = _row_moments(extra, C.shape[1])
        out_extra = posterior(me, Fe, Fe @ F[rows].T)
    return mean, std, a, out_extra


def _row_moments(extra: npt.ArrayLike, n_tasks: int) -> tuple[Array, Array]:
    """Mean and covariance factor of extra rows, as :func:`column_moments` computes them for the others."""
    E = np.asarray(extra, dtype=float)
    if E.ndim != 2 or E.shape[1] != n_tasks or not np.isfinite(E).all():
        raise SchemaError(f"extra rows must be a finite (k, {n_tasks}) array, got shape {E.shape}")
    me = E.mean(1)
    return me, (E - me[:, None]) / np.sqrt(max(n_tasks - 1, 1))


def task_mixture_fold_in(
    task_columns: npt.ArrayLike,
    revealed_rows: npt.ArrayLike,
    revealed_values: npt.ArrayLike,
    *,
    scale: float,
    tau: float = 1.0,
) -> tuple[Array, Array]:
    """Soft nearest-training-task prediction. Returns ``(mean, weights)`` (weights over the T columns)."""
    C, rows, y = _check(task_columns, revealed_rows, revealed_values)
    if scale <= 0 or tau <= 0:
        raise SchemaError(f"scale and tau must be > 0, got {scale}, {tau}")
    z = y / scale
    D = z[:, None] - C[rows]
    D = D - D.mean(0)
    ll = -0.5 * (D**2).sum(0) / tau**2
    w = np.exp(ll - ll.max())
    w /= w.sum()
    return C @ w, w


@dataclass(frozen=True)
class WarmStart:
    """Result of :func:`fold_in`. ``score`` ranks the models (higher is better; unitless); the ``extra_*``
    arrays are the same quantities for the ``extra`` rows (None without them)."""

    score: Array
    gaussian_mean: Array
    gaussian_std: Array
    mixture_mean: Array
    task_weights: Array
    offset: float
    extra_score: Array | None = None
    extra_gaussian_mean: Array | None = None
    extra_gaussian_std: Array | None = None


def _standardiser(p: Array) -> tuple[float, float]:
    sd = float(p.std())
    return float(p.mean()), (sd if sd > 1e-12 else 1.0)


def fold_in(
    task_columns: npt.ArrayLike,
    revealed_rows: npt.ArrayLike,
    revealed_values: npt.ArrayLike,
    *,
    scale: float,
    lam: float = 1.0,
    tau: float = 1.0,
    moments: tuple[Array, Array, float] | None = None,
    extra: npt.ArrayLike | None = None,
) -> WarmStart:
    """Rank all models of a new task from ``k`` revealed raw scores (see the module docstring).

    Parameters
    ----------
    task_columns : (n_models, n_tasks) array
        Standardised training scores, completed (:func:`complete_columns`).
    revealed_rows, revealed_values : (k,) arrays
        Which models were fine-tuned on the new task and their raw scores.
    scale : float
        A typical task standard deviation in raw units, e.g. ``np.median(TaskScaler.std)``.
    lam : float
        Noise-to-signal ratio of the Gaussian view (ridge on the empirical covariance).
    tau : float
        Noise level (standardised units) of the task-mixture view.
    moments : optional
        Precomputed :func:`column_moments` of ``task_columns`` (to reuse across calls).
    extra : (e, n_tasks) array, optional
        Profiles of further models (e.g. cold models placed from side information) to score with the same
        posterior and the same standardisation as the models of ``task_columns``; they do not condition
        it, so each extra row's score depends on that row alone.
    """
    C = np.asarray(task_columns, dtype=float)
    mom = moments if moments is not None else column_moments(C)
    g_mean, g_std, a, g_extra = _gaussian(C, revealed_rows, revealed_values, scale=scale, lam=lam, moments=mom,
                                          extra=extra)
    x_mean, w = task_mixture_fold_in(C, revealed_rows, revealed_values, scale=scale, tau=tau)
    (gm, gs), (xm, xs) = _standardiser(g_mean), _standardiser(x_mean)
    score = (g_mean - gm) / gs + (x_mean - xm) / xs
    if g_extra is None:
        return WarmStart(score=score, gaussian_mean=g_mean, gaussian_std=g_std, mixture_mean=x_mean,
                         task_weights=w, offset=a)
    x_extra = np.asarray(extra, dtype=float) @ w
    return WarmStart(score=score, gaussian_mean=g_mean, gaussian_std=g_std, mixture_mean=x_mean, task_weights=w,
                     offset=a, extra_score=(g_extra[0] - gm) / gs + (x_extra - xm) / xs,
                     extra_gaussian_mean=g_extra[0], extra_gaussian_std=g_extra[1])
