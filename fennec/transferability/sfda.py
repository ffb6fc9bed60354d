"""SFDA: Self-challenging Fisher Discriminant Analysis (Shao et al., ECCV 2022).

"Not All Models Are Equal: Predicting Model Transferability in a Self-challenging Fisher Space".

1. Regularised Fisher space. Within-class scatter S_w = Σ_c π_c·cov_c (1/n_c each), shrunk towards
   its mean eigenvalue, S_w(λ) = (1−λ)·S_w + λ·(tr S_w / D)·I, with the adaptive strength
   λ = max(exp(−5·σ_max(S_w)), 1e-10) (σ_max: the largest eigenvalue of S_w). The Fisher
   classifier p(y|x) = softmax_c(xᵀS_w(λ)⁻¹μ_c − ½μ_cᵀS_w(λ)⁻¹μ_c + log π_c) is evaluated with all D
   Fisher directions, as the reference code does; with all directions the projection cancels
   (V Vᵀ = S_w(λ)⁻¹ for the S_w(λ)-orthonormal generalised eigenvectors V), so it is computed with a
   Cholesky solve instead of a generalised eigendecomposition.
2. Self-challenge (ConfMix). The probabilities are softened by a second softmax; each sample is mixed
   towards the mean of the other classes' means, xᵢ ← pᵢ·xᵢ + (1 − pᵢ)·μ̄_{−yᵢ}, with pᵢ the softened
   probability of its own class: confidently classified samples stay, hard ones are pulled across.
3. The Fisher classifier is refitted (same λ) on the mixed features; the score is the mean
   probability of the true class (the reference omits the log "in case of instability").

Higher is better; the score lies in (0, 1].
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import scipy.linalg as sla
from scipy.special import softmax

from fennec.transferability._validation import check_features_labels, class_sums

__all__ = ["sfda"]


def sfda(features: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """SFDA score (higher is better).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)

    Returns
    -------
    float
        Mean probability of the true class under the regularised Fisher classifier refitted on the
        self-challenged (ConfMix) features, in (0, 1].
    """
    f, y, c = check_features_labels(features, labels)
    n = f.shape[0]
    x = f - f.mean(axis=0)  # the Fisher classifier is shift invariant; centring helps precision
    counts = np.bincount(y, minlength=c).astype(np.float64)
    priors = counts / n
    means = class_sums(x, y, c) / counts[:, None]
    s_w = _within_scatter(x, y, means)
    lam = max(math.exp(-5.0 * _largest_eigenvalue(s_w)), 1e-10)
    prob = _fisher_proba(x, means, priors, s_w, lam)
    prob = softmax(prob, axis=1)  # soften before mixing, as in the paper's code
    p_true = prob[np.arange(n), y]
    other_means = (means.sum(axis=0)[None, :] - means) / (c - 1)
    mixed = p_true[:, None] * x + (1.0 - p_true)[:, None] * other_means[y]
    means2 = class_sums(mixed, y, c) / counts[:, None]
    prob2 = _fisher_proba(mixed, means2, priors, _within_scatter(mixed, y, means2), lam)
    return float(np.mean(prob2[np.arange(n), y]))


def _within_scatter(x: np.ndarray, y: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Σ_c π_c·cov_c = (1/N)·Σᵢ (xᵢ − μ_{yᵢ})(xᵢ − μ_{yᵢ})ᵀ."""
    resid = x - means[y]
    return (resid.T @ resid) / x.shape[0]


def _largest_eigenvalue(sym: np.ndarray) -> float:
    d = sym.shape[0]
    if d <= 64:
        return float(np.linalg.eigvalsh(sym)[-1])
    from scipy.sparse.linalg import eigsh

    return float(eigsh(sym, k=1, which="LA", v0=np.ones(d), return_eigenvectors=False)[0])


def _fisher_proba(x: np.ndarray, means: np.ndarray, priors: np.ndarray, s_w: np.ndarray, lam: float) -> np.ndarray:
    d = s_w.shape[0]
    shrunk = (1.0 - lam) * s_w
    shrunk.flat[:: d + 1] += lam * np.trace(s_w) / d
    try:
        coef = sla.cho_solve(sla.cho_factor(shrunk, lower=True, check_finite=False), means.T, check_finite=False)
    except np.linalg.LinAlgError:  # numerically indefinite (λ tiny, S_w singular): symmetric LDLᵀ solve
        coef = sla.solve(shrunk, means.T, assume_a="sym", check_finite=False)
    # coef = S_w(λ)⁻¹ μ_c, shape (D, C)
    scores = x @ coef - 0.5 * np.einsum("cd,dc->c", means, coef) + np.log(priors)
    return softmax(scores, axis=1)
