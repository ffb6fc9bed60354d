"""Alternating least squares for the transfer subspace: the masked fit of ``mu + b_i + c_j + u_i . v_j``.

Pure NumPy/SciPy, arrays in, arrays out. :class:`~fennec.subspace.factorization.TransferSubspace` is the
estimator around it (validation, rank/L2 selection, predictions, fold-in).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # scipy.sparse is imported by the fit only: loading a fitted subspace does not need it
    import scipy.sparse as sp

Array = npt.NDArray[np.float64]


@dataclass
class Factors:
    mu: float
    b: Array
    c: Array
    U: Array
    V: Array

    def predict(self, rows: npt.NDArray[np.intp] | None = None, cols: npt.NDArray[np.intp] | None = None) -> Array:
        if rows is None:
            return self.mu + self.b[:, None] + self.c[None, :] + self.U @ self.V.T
        return self.mu + self.b[rows] + self.c[cols] + np.einsum("ij,ij->i", self.U[rows], self.V[cols])


@lru_cache(maxsize=64)
def _upper_pairs(p: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Row/column indices of the upper triangle of a p x p matrix, and where each full entry finds it."""
    iu, ju = np.triu_indices(p)
    where = np.empty((p, p), dtype=np.intp)
    where[iu, ju] = where[ju, iu] = np.arange(iu.size)
    return iu, ju, where.ravel()


# Below this many rows LAPACK's per-matrix solve beats the vectorised loops of _cholesky_solve.
_CHOLESKY_MIN_ROWS = 128
# Rows factorised together by _cholesky_solve: about this many doubles (~5 MB) per block.
_BLOCK_ENTRIES = 600_000
# A pivot below this fraction of its diagonal entry marks a (numerically) singular Gram matrix.
_PIVOT_RTOL = 1e-8


def _ridge_rows(
    mask: sp.csr_matrix,
    resid: sp.csr_matrix,
    X: Array,
    penalty: Array,
) -> Array:
    """Solve, for every row i, ``min_t sum_{j in O_i} (r_ij - t . X_j)^2 + sum_k penalty_k t_k^2``.

    ``mask`` holds ones on the observed cells, ``resid`` the targets on the same cells. Vectorised:
    the per-row Gram matrices come from one sparse product with the row-wise outer products of X, of
    which only the upper triangle (p(p+1)/2 of the p^2 entries) is formed and summed; each entry is
    the same sum, in the same order, as with the full outer products, so the Gram matrices are
    bit-for-bit the same at half the cost. Many rows are solved by a Cholesky factorisation
    vectorised over the rows (:func:`_cholesky_solve`), a few by LAPACK, matrix by matrix.
    """
    n, p = mask.shape[0], X.shape[1]
    iu, ju, _ = _upper_pairs(p)
    half = np.asarray(mask @ (X[:, iu] * X[:, ju]))
    rhs = np.asarray(resid @ X)
    if n < _CHOLESKY_MIN_ROWS:
        return _lapack_solve(half, rhs, penalty)
    return _cholesky_solve(half, rhs, penalty)


def _lapack_solve(half: Array, rhs: Array, penalty: Array) -> Array:
    """The ridge solves by ``np.linalg.solve`` on the full matrices (LU, one LAPACK call per row)."""
    n, p = rhs.shape
    G = np.take(half, _upper_pairs(p)[2], axis=1).reshape(n, p, p)
    G[:, np.arange(p), np.arange(p)] += penalty
    return np.linalg.solve(G, rhs[:, :, None])[:, :, 0]


def _cholesky_solve(half: Array, rhs: Array, penalty: Array) -> Array:
    """Solve ``(G_i + diag(penalty)) t_i = rhs_i`` for every row i; ``half[i]`` is G_i's upper triangle.

    Each G_i + diag(penalty) is symmetric positive definite (penalty > 0), so it factorises as
    ``R^T R`` with R upper triangular. The factorisation and the two triangular solves run with the
    rows on the last (contiguous) axis, looping over the p rows of R only, in blocks of rows that stay
    in cache; the right-hand side rides along as column p of R, which turns it into ``R^-T rhs``.
    Rows whose Gram matrix is numerically singular (no penalty and too few cells) are solved by
    LAPACK instead, as before (an exactly singular one raises ``LinAlgError``).
    """
    n, p = rhs.shape
    starts = np.concatenate([[0], np.cumsum(np.arange(p, 0, -1))])  # row k of the packed triangle
    diag = np.arange(p)
    out = np.empty((n, p))
    step = max(256, _BLOCK_ENTRIES // (p * (p + 1)))
    for s in range(0, n, step):
        rows = slice(s, min(n, s + step))
        R = np.empty((p, p + 1, rows.stop - s))
        for k in range(p):
            R[k, k:p] = half[rows, starts[k]:starts[k + 1]].T
        R[diag, diag] += penalty[:, None]
        R[:, p] = rhs[rows].T
        with np.errstate(all="ignore"):  # a singular row's nan/inf stays in that row, redone below
            ok = _factorise(R)
            out[rows] = _back_substitute(R).T
        if not ok.all():
            bad = s + np.flatnonzero(~ok)
            out[bad] = _lapack_solve(half[bad], rhs[bad], penalty)
    return out


def _factorise(R: Array) -> npt.NDArray[np.bool_]:
    """In place, ``R[:, :p]`` (upper triangle, rows on the last axis) -> its Cholesky factor, column p
    -> the forward substitution; True for the rows whose every pivot is safely positive."""
    p = R.shape[0]
    ok = np.ones(R.shape[2], dtype=bool)
    for i in range(p):
        d = R[i, i].copy()
        if i:
            R[i, i:] -= np.einsum("kn,kjn->jn", R[:i, i], R[:i, i:])
        ok &= R[i, i] > _PIVOT_RTOL * d
        R[i, i:] *= 1.0 / np.sqrt(R[i, i])  # one division per row, not one per entry
    return ok


def _back_substitute(R: Array) -> Array:
    """Solve ``R x = y`` with R and y as :func:`_factorise` leaves them; x overwrites y, shape (p, rows)."""
    p = R.shape[0]
    x = R[:, p]
    x[p - 1] /= R[p - 1, p - 1]
    for i in range(p - 2, -1, -1):
        x[i] -= np.einsum("jn,jn->n", R[i, i + 1:p], x[i + 1:])
        x[i] /= R[i, i]
    return x


def _cell_products(U: Array, V: Array, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]) -> Array:
    """``u_i . v_j`` on the cells ``(rows, cols)``, in slices that stay in cache (as ``Factors.predict``)."""
    out = np.empty(len(rows))
    step = max(1, (1 << 16) // max(U.shape[1], 1))
    for s in range(0, len(rows), step):
        np.einsum("ij,ij->i", U[rows[s:s + step]], V[cols[s:s + step]], out=out[s:s + step])
    return out


def _svd_init(rows, cols, vals, shape, rank, rng) -> tuple[Array, Array]:
    """Start from the truncated SVD of the zero-filled matrix, rescaled by the observed fraction.

    A random start lets ALS wander into slowly converging regions with large, cancelling factors;
    the spectral start is the standard remedy for matrix completion and is deterministic.
    """
    import scipy.sparse as sp

    n, m = shape
    if rank == 0:
        return np.zeros((n, 0)), np.zeros((m, 0))
    frac = len(vals) / float(n * m)
    M = sp.csr_matrix((vals / max(frac, 1e-12), (rows, cols)), shape=shape)
    if rank < min(shape) - 1 and min(shape) > 50:
        from scipy.sparse.linalg import svds

        u, s, vt = svds(M, k=rank, v0=np.ones(min(shape)))  # fixed start vector: deterministic
        order = np.argsort(-s)
        u, s, vt = u[:, order], s[order], vt[order]
    else:
        u, s, vt = np.linalg.svd(M.toarray(), full_matrices=False)
        u, s, vt = u[:, :rank], s[:rank], vt[:rank]
    root = np.sqrt(np.maximum(s, 1e-12))
    U, V = u * root, vt.T * root
    # a tiny seeded perturbation breaks exact ties between equal singular values
    U = U + 1e-6 * rng.normal(size=U.shape)
    return U, V


class _Pattern:
    """The observed cells' sparsity pattern, by rows and by columns; each half-step's residuals are
    written into it (the structure is the mask's, only the data changes)."""

    def __init__(self, mask, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]) -> None:
        self.mask = mask
        self.mask_t = mask.T.tocsr()
        self.order = np.lexsort((cols, rows))
        self.order_t = np.lexsort((rows, cols))

    def resid_matrix(self, r: Array, transpose: bool):
        import scipy.sparse as sp

        n, m = self.mask.shape
        if transpose:
            return sp.csr_matrix((r[self.order_t], self.mask_t.indices, self.mask_t.indptr), shape=(m, n))
        return sp.csr_matrix((r[self.order], self.mask.indices, self.mask.indptr), shape=(n, m))

    def ridge(self, r: Array, F: Array, pen: Array, *, fit_biases: bool, transpose: bool) -> Array:
        """Ridge fit of every row (``transpose``: every column) on its cells: targets ``r``, features
        ``[F, 1]`` (``F`` without biases)."""
        X = np.hstack([F, np.ones((F.shape[0], 1))]) if fit_biases else F
        mask = self.mask_t if transpose else self.mask
        if not X.shape[1]:
            return np.zeros((mask.shape[0], 0))
        return _ridge_rows(mask, self.resid_matrix(r, transpose), X, pen)


# Penalties below this fraction of the centred cells' RMS are reached by continuation (see als_fit).
_CONTINUATION_L2 = 0.1


def als_fit(
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    vals: Array,
    shape: tuple[int, int],
    *,
    rank: int,
    l2: float,
    bias_l2: float,
    fit_biases: bool = True,
    max_iter: int = 200,
    tol: float = 1e-7,
    random_state: int | None = 0,
    continuation: bool = True,
) -> tuple[Factors, int, float]:
    """Alternating least squares on the observed cells ``(rows, cols) -> vals``.

    Returns the factors, the number of iterations run (all stages) and the final objective.
    Deterministic given ``random_state``.

    With a (nearly) unpenalised ``l2`` the landscape has swamps: from the spectral start ALS can settle
    on large, cancelling factors that fit the observed cells badly (a planted rank-2 30 x 18 matrix,
    70% observed, l2=1e-4: relative error 27). With ``continuation`` such a fit first runs at the
    penalty ``_CONTINUATION_L2`` x the RMS of the centred cells, then at ``l2`` from there (the
    warm-started penalty path of soft-impute, Mazumder, Hastie & Tibshirani 2010); the same case then
    recovers to 1e-5. Fits at or above that penalty are unchanged.
    """
    import scipy.sparse as sp

    rng = np.random.default_rng(random_state)
    mu = float(vals.mean()) if fit_biases else 0.0
    U, V = _svd_init(rows, cols, vals - mu, shape, rank, rng)
    start = Factors(mu, np.zeros(shape[0]), np.zeros(shape[1]), U, V)
    cells = _Pattern(sp.csr_matrix((np.ones(len(vals)), (rows, cols)), shape=shape), rows, cols)
    run = dict(rows=rows, cols=cols, vals=vals, rank=rank, bias_l2=bias_l2, fit_biases=fit_biases, tol=tol)
    warm_l2 = _CONTINUATION_L2 * float(np.sqrt(np.mean((vals - mu) ** 2))) if len(vals) else 0.0
    done = 0
    if continuation and rank and l2 < warm_l2:
        start, done, _ = _alternate(cells, start, l2=warm_l2, max_iter=max_iter, **run)
    factors, it, objective = _alternate(cells, start, l2=l2, max_iter=max_iter, **run)
    return factors, done + it, objective


def _alternate(cells: _Pattern, start: Factors, *, rows, cols, vals, rank, l2, bias_l2, fit_biases, max_iter,
               tol) -> tuple[Factors, int, float]:
    """The alternating half-steps from ``start`` (its U starts nothing: the first half-step solves it)."""
    mu, b, c, V = start.mu, start.b, start.c, start.V
    U = start.U
    pen_vec = np.full(rank, float(l2))
    pen = np.append(pen_vec, bias_l2) if fit_biases else pen_vec
    prev = np.inf
    objective = np.inf
    it = 0
    c_at = c[cols] if fit_biases else 0.0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is returned
        # models: targets z - mu - c_j, features [v_j, 1]
        theta = cells.ridge(vals - mu - c_at, V, pen, fit_biases=fit_biases, transpose=False)
        U = theta[:, :rank]
        if fit_biases:
            b = theta[:, rank]
        # tasks: targets z - mu - b_i, features [u_i, 1]
        b_at = b[rows] if fit_biases else 0.0
        theta = cells.ridge(vals - mu - b_at, U, pen, fit_biases=fit_biases, transpose=True)
        V = theta[:, :rank]
        uv = _cell_products(U, V, rows, cols)
        if fit_biases:
            c = theta[:, rank]
            c_at = c[cols]
            mu = float(np.mean(vals - b_at - c_at - uv))
        err = vals - (mu + b_at + c_at + uv)  # the fitted cells, summed in the order of Factors.predict
        objective = float(err @ err + l2 * ((U**2).sum() + (V**2).sum()) + bias_l2 * (b @ b + c @ c))
        if prev - objective <= tol * max(1.0, abs(objective)):
            break
        prev = objective
    return Factors(mu, b, c, U, V), it, objective
