"""TransRate (Huang, Huang, Rong, Yang, Wei, ICML 2022, "Frustratingly Easy Transferability Estimation").

The mutual information between features and labels, estimated by the coding rate::

    TransRate = R(Z, ε) − R(Z, ε | Y),   R(Z, ε) = ½·log det(I + ZᵀZ / (N·ε))
    R(Z, ε | Y) = (1/C)·Σ_c R(Z_c, ε)    (Z_c: the rows of class c, with N_c in place of N)

with Z the features centred over all samples. This follows the authors' released code (ε = 1e-4,
the plain mean over classes, no re-centring per class); the paper writes the rate with d/(N·ε²).
Each log-determinant is computed from a Cholesky factor of the smaller of the D×D Gram and the
N×N kernel (det(I + AᵀA/s) = det(I + AAᵀ/s)). Higher is better; the score depends on the scale of the
features, so compare models only on the same task.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.linalg as sla

from fennec.errors import SchemaError
from fennec.transferability._validation import check_features_labels

__all__ = ["transrate", "coding_rate"]


def coding_rate(z: npt.ArrayLike, eps: float = 1e-4) -> float:
    """R(Z, ε) = ½·log det(I + ZᵀZ / (N·ε)) for Z of shape (N, D).

    Parameters
    ----------
    z : array-like of shape (n_samples, n_features)
    eps : float, default=1e-4
        Distortion ε (> 0).

    Returns
    -------
    float
    """
    a = np.asarray(z, dtype=np.float64)
    n, d = a.shape
    gram = a.T @ a if d <= n else a @ a.T
    gram *= 1.0 / (n * eps)
    gram.flat[:: gram.shape[0] + 1] += 1.0
    chol = sla.cholesky(gram, lower=True, overwrite_a=True, check_finite=False)
    return float(np.sum(np.log(np.diag(chol))))  # ½·log det = Σ log diag(L)


def transrate(features: npt.ArrayLike, labels: npt.ArrayLike, *, eps: float = 1e-4) -> float:
    """TransRate score (higher is better).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)
    eps : float, default=1e-4
        Distortion of the coding rate.

    Returns
    -------
    float
        R(Z, ε) − (1/C)·Σ_c R(Z_c, ε) on the centred features Z.
    """
    if not eps > 0:
        raise SchemaError(f"The 'eps' parameter of transrate must be > 0. Got {eps!r} instead.")
    f, y, c = check_features_labels(features, labels)
    z = f - f.mean(axis=0)
    total = coding_rate(z, eps)
    order = np.argsort(y, kind="stable")
    bounds = np.searchsorted(y[order], np.arange(c + 1))
    z_sorted = z[order]
    per_class = [coding_rate(z_sorted[bounds[k] : bounds[k + 1]], eps) for k in range(c)]
    return float(total - np.mean(per_class))
