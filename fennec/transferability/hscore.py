"""H-score and its Ledoit–Wolf shrinkage version.

H-score (Bao et al., ICIP 2019): H = tr(Σ_f⁻¹ · cov(E[f|y])), the Fisher-style ratio of the
between-class covariance to the feature covariance. With D ≳ N the sample covariance Σ_f is singular
and the pseudo-inverse makes H saturate (it equals C − 1 whenever the centred features have rank
N − 1), so the raw H-score is ill-conditioned for wide features and small probes.

Shrinkage H-score (Ibrahim, Ponomareva, Mazumder, "Newer is not always better", NeurIPS 2022)::

    H_α = tr(Σ_α⁻¹ · (1 − α)·cov(E[f|y])),   Σ_α = (1 − α)·Σ_f + α·(tr Σ_f / D)·I

with α the Ledoit–Wolf shrinkage of the centred features. Conventions (spelled out because public
ports differ): features are centred; Σ_f and cov(E[f|y]) both use 1/N (scikit-learn's
``LedoitWolf`` uses 1/N for Σ_f; a public port uses ``np.cov`` (1/(N−1)) for cov(E[f|y]), which
multiplies H_α by N/(N−1) and leaves rankings unchanged). α is computed in closed form, equal to
``sklearn.covariance.ledoit_wolf_shrinkage(X_centred, assume_centered=True)``.

Cost: one Gram matrix XᵀX (accumulated over row blocks, so the centred copy of F is never
materialised; or the kernel XXᵀ when N ≤ D) and one Cholesky factorisation; no explicit inverse
and no eigendecomposition. The trace is Σ_c (n_c/N)·μ_cᵀ Σ_α⁻¹ μ_c with μ_c the
class means of the centred features, so only C right-hand sides are solved.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.linalg as sla

from fennec.transferability._validation import check_features_labels, class_sums

__all__ = ["hscore", "shrinkage_hscore", "ledoit_wolf_shrinkage"]


def _centred_means(features: npt.ArrayLike, labels: npt.ArrayLike):
    """Validated features, their mean, labels, class counts and class means of the centred features."""
    f, y, c = check_features_labels(features, labels)
    mu = f.mean(axis=0)
    counts = np.bincount(y, minlength=c).astype(np.float64)
    means = class_sums(f, y, c) / counts[:, None] - mu
    return f, mu, y, counts, means


def _centred_gram(f: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F − μ)ᵀ(F − μ) and the rows' squared norms, centring block by block (no N×D copy)."""
    n, d = f.shape
    rows = max(1024, (1 << 23) // d)
    gram = np.zeros((d, d))
    row_sq = np.empty(n)
    for start in range(0, n, rows):
        xb = f[start : start + rows] - mu
        gram += xb.T @ xb
        row_sq[start : start + rows] = np.einsum("ij,ij->i", xb, xb)
    return gram, row_sq


def ledoit_wolf_shrinkage(
    row_sq_norms: npt.NDArray[np.float64], gram_fro2: float, trace: float, n: int, d: int
) -> float:
    """Ledoit–Wolf shrinkage α of centred data X (N×D) from summary statistics.

    Parameters
    ----------
    row_sq_norms : ndarray of shape (N,)
        ‖xᵢ‖² for every row of the centred data.
    gram_fro2 : float
        ‖XᵀX‖²_F (equal to ‖XXᵀ‖²_F).
    trace : float
        tr(XᵀX) = Σᵢ ‖xᵢ‖².
    n, d : int
        Number of samples and features.

    Returns
    -------
    float
        α in [0, 1], equal to ``sklearn.covariance.ledoit_wolf_shrinkage(X, assume_centered=True)``.

    Notes
    -----
    With S = XᵀX/N and μ = tr S / D: δ = ‖S − μI‖²_F / D and
    β = min(δ, (Σᵢ‖xᵢ‖⁴/N − ‖S‖²_F) / (N·D)); α = β/δ (0 when β = 0 or D = 1).
    """
    if d == 1:
        return 0.0
    mu = trace / (n * d)
    s_fro2 = gram_fro2 / (n * n)
    delta = (s_fro2 - d * mu * mu) / d
    beta = (float(np.sum(row_sq_norms * row_sq_norms)) / n - s_fro2) / (n * d)
    beta = min(beta, delta)
    return 0.0 if beta <= 0 else float(beta / delta)


def shrinkage_hscore(features: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Shrinkage H-score H_α (higher is better).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)

    Returns
    -------
    float
        tr(Σ_α⁻¹ (1 − α) cov(E[f|y])) with α the Ledoit–Wolf shrinkage (see module notes).
    """
    f, mu, y, counts, means = _centred_means(features, labels)
    n, d = f.shape
    weights = counts / n
    if n > d:
        gram, row_sq = _centred_gram(f, mu)
        trace = float(np.trace(gram))
        alpha = ledoit_wolf_shrinkage(row_sq, float(np.sum(gram * gram)), trace, n, d)
        if alpha >= 1.0:
            return 0.0
        sigma = gram * ((1.0 - alpha) / n)
        sigma.flat[:: d + 1] += alpha * trace / (n * d)
        factor = sla.cho_factor(sigma, lower=True, overwrite_a=True, check_finite=False)
        solved = sla.cho_solve(factor, means.T, check_finite=False)  # Σ_α⁻¹ μ_c, (D, C)
        quad = np.einsum("cd,dc->c", means, solved)
        return float((1.0 - alpha) * np.dot(weights, quad))
    # N ≤ D: Woodbury on the N×N kernel K = XXᵀ. With a = (1−α)/N and b = α·tr(Σ_f)/D,
    # μᵀ(aXᵀX + bI)⁻¹μ = (μᵀμ − (Xμ)ᵀ(b/a·I + K)⁻¹(Xμ)) / b, and Xμ_c = K e_c / n_c.
    x = f - mu
    kern = x @ x.T
    trace = float(np.trace(kern))
    alpha = ledoit_wolf_shrinkage(np.diag(kern).copy(), float(np.sum(kern * kern)), trace, n, d)
    if alpha >= 1.0:
        return 0.0
    if alpha <= 0.0:  # Σ_α = Σ_f is singular here: fall back to the pseudo-inverse
        return _pinv_hscore_kernel(kern, _scaled_onehot(y, counts), counts)
    a, b = (1.0 - alpha) / n, alpha * trace / (n * d)
    xm = x @ means.T  # (N, C) = X μ_c
    mm = np.einsum("cd,cd->c", means, means)
    reg = kern.copy()
    reg.flat[:: n + 1] += b / a
    factor = sla.cho_factor(reg, lower=True, overwrite_a=True, check_finite=False)
    corr = np.einsum("nc,nc->c", xm, sla.cho_solve(factor, xm, check_finite=False))
    quad = (mm - corr) / b
    return float((1.0 - alpha) * np.dot(weights, quad))


def hscore(features: npt.ArrayLike, labels: npt.ArrayLike, *, rcond: float = 1e-15) -> float:
    """Raw H-score tr(pinv(Σ_f) · cov(E[f|y])) (higher is better; ill-conditioned, see notes).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)
    rcond : float, default=1e-15
        Eigenvalues of Σ_f below ``rcond`` times the largest are treated as zero (as
        ``np.linalg.pinv(rcond=1e-15)`` in the reference code).

    Returns
    -------
    float

    Notes
    -----
    When the centred features have rank N − 1 (typically whenever D ≥ N − 1) the result is exactly
    C − 1 for every model, whatever the features: use :func:`shrinkage_hscore` instead.
    """
    f, mu, y, counts, means = _centred_means(features, labels)
    n, d = f.shape
    if n > d:
        evals, evecs = np.linalg.eigh(_centred_gram(f, mu)[0] / n)
        keep = evals > rcond * max(evals.max(), 0.0)
        proj = means @ evecs[:, keep]  # (C, k)
        quad = np.sum(proj * proj / evals[keep], axis=1)
        return float(np.dot(counts / n, quad))
    x = f - mu
    return _pinv_hscore_kernel(x @ x.T, _scaled_onehot(y, counts), counts, rcond=rcond)


def _scaled_onehot(y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """E (N×C) with E[i, c] = 1/n_c when sample i is in class c, else 0 (so Xᵀe_c = μ_c)."""
    e = np.zeros((y.shape[0], counts.shape[0]))
    e[np.arange(y.shape[0]), y] = 1.0 / counts[y]
    return e


def _pinv_hscore_kernel(kern: np.ndarray, e: np.ndarray, counts: np.ndarray, rcond: float = 1e-15) -> float:
    """Σ_c (n_c/N)·μ_cᵀ Σ_f⁺ μ_c = Σ_c n_c·‖U₊ᵀ e_c‖² with K = XXᵀ = U Λ Uᵀ, e_c = 1_c / n_c."""
    evals, evecs = np.linalg.eigh(kern)
    keep = evals > rcond * max(evals.max(), 0.0)
    proj = evecs[:, keep].T @ e  # (k, C)
    return float(np.dot(counts, np.sum(proj * proj, axis=0)))
