"""NCE, LEEP and N-LEEP: transferability from a source classifier's predictions.

- NCE (Tran, Nguyen, Hassner, ICCV 2019) = Σ_{y,z} P(y,z)·log P(y|z) = −H(Y|Z), with hard source
  labels z (the source classifier's argmax) and target labels y. No smoothing constant: one public
  version adds one to every cell of the joint table, which changes the value by an order of magnitude.
- LEEP (Nguyen, Hassner, Seeger, Archambeau, ICML 2020) = mean_i log Σ_z P(y_i|z)·θ(x_i)_z with θ the
  source softmax and P(y|z) the empirical conditional computed from θ.
- N-LEEP (Li et al., CVPR 2021, "Ranking Neural Checkpoints"): LEEP with θ replaced by the posterior
  of a Gaussian mixture fitted on PCA-reduced features (80% of the variance, 5 components per class).

Source and target arguments are keyword-only: crossing them silently gives another number (see
thuml/LogME#14), and ``nce(source_labels=y, target_labels=z)`` is not ``nce(source_labels=z, ...)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fennec.errors import SchemaError
from fennec.transferability._validation import (
    canonical_order,
    check_features,
    check_features_labels,
)

__all__ = ["nce", "leep", "nleep"]


def _labels(name: str, values: npt.ArrayLike) -> tuple[np.ndarray, int]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise SchemaError(f"{name} must be a 1-D array of class labels; got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise SchemaError(f"{name} contain NaN or inf ({int((~np.isfinite(arr)).sum())} values)")
    classes, inv = np.unique(arr, return_inverse=True)
    return inv.reshape(-1), len(classes)


def nce(*, source_labels: npt.ArrayLike, target_labels: npt.ArrayLike) -> float:
    """Negative conditional entropy −H(Y|Z) of target labels given hard source labels.

    Parameters
    ----------
    source_labels : array-like of shape (n_samples,)
        z: the source classifier's predicted (hard) labels on the target images.
    target_labels : array-like of shape (n_samples,)
        y: the target task's labels.

    Returns
    -------
    float
        Σ_{y,z} P(y,z)·log P(y|z) ≤ 0 (natural log); 0 when y is a function of z.
    """
    z, n_z = _labels("source_labels", source_labels)
    y, n_y = _labels("target_labels", target_labels)
    if z.shape[0] != y.shape[0]:
        raise SchemaError(f"source_labels has {z.shape[0]} entries but target_labels has {y.shape[0]}")
    if y.shape[0] < 2:
        raise SchemaError(f"need at least 2 samples; got {y.shape[0]}")
    joint = np.zeros((n_y, n_z))
    np.add.at(joint, (y, z), 1.0)
    joint /= y.shape[0]
    p_z = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / p_z)[nz])))


def leep(*, source_probs: npt.ArrayLike, target_labels: npt.ArrayLike) -> float:
    """Log expected empirical prediction (higher is better; a mean log-likelihood ≤ 0).

    Parameters
    ----------
    source_probs : array-like of shape (n_samples, n_source_classes)
        θ(x_i): the source classifier's softmax on each target image; rows sum to 1.
    target_labels : array-like of shape (n_samples,)

    Returns
    -------
    float
        mean_i log Σ_z P(y_i|z)·θ(x_i)_z, with P(y, z) = mean_i θ(x_i)_z·[y_i = y].
    """
    theta, y, n_y = _probs_and_labels(source_probs, target_labels)
    joint = np.zeros((n_y, theta.shape[1]))
    np.add.at(joint, y, theta)
    joint /= theta.shape[0]
    p_z = joint.sum(axis=0)
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # P(y|z)
    eep = np.einsum("nz,nz->n", theta, cond[y])
    return float(np.mean(np.log(eep)))


def _probs_and_labels(source_probs: npt.ArrayLike, target_labels: npt.ArrayLike):
    y_raw = np.asarray(target_labels)
    theta_raw = np.asarray(source_probs)
    if theta_raw.ndim == 2 and y_raw.ndim == 1 and theta_raw.shape[0] != y_raw.shape[0]:
        raise SchemaError(f"source_probs has {theta_raw.shape[0]} rows but target_labels has {y_raw.shape[0]}")
    theta = check_features(theta_raw, name="source_probs")
    y, n_y = _labels("target_labels", y_raw)
    if theta.shape[0] < 2:
        raise SchemaError(f"need at least 2 samples; got {theta.shape[0]}")
    if (theta < 0).any():
        raise SchemaError(f"source_probs must be non-negative; got {int((theta < 0).sum())} negative entries")
    sums = theta.sum(axis=1)
    bad = np.abs(sums - 1.0) > 1e-4
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise SchemaError(
            f"source_probs rows must sum to 1 (softmax outputs); {int(bad.sum())} rows do not "
            f"(first: row {first} sums to {sums[first]:.6g})"
        )
    return theta, y, n_y


def nleep(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_components_pca: float | int = 0.8,
    n_gmm_components: int | None = None,
    covariance_type: str = "full",
    random_state: int = 0,
) -> float:
    """N-LEEP: LEEP with a Gaussian mixture's posteriors in place of the source classifier.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)
    n_components_pca : float or int, default=0.8
        Float in (0, 1): keep that fraction of the variance (the paper's 80%); int: that many
        components (capped at min(N, D)).
    n_gmm_components : int, optional
        Mixture components; default 5 per class (the paper's choice), capped at N.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Passed to :class:`sklearn.mixture.GaussianMixture`.
    random_state : int, default=0
        Seed of the mixture's initialisation.

    Returns
    -------
    float

    Notes
    -----
    The samples are put in a canonical order (:func:`canonical_order`) before PCA and the mixture,
    so the result is exactly invariant to permuting the samples, not only in distribution.
    """
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    f, y, c = check_features_labels(features, labels)
    n, d = f.shape
    order = canonical_order(f)
    f, y = f[order], y[order]
    if isinstance(n_components_pca, float) and 0 < n_components_pca < 1:
        n_pca: float | int = n_components_pca
    elif int(n_components_pca) == n_components_pca and n_components_pca >= 1:
        n_pca = min(int(n_components_pca), n, d)
    else:
        raise SchemaError(
            "The 'n_components_pca' parameter of nleep must be a float in (0, 1) or an int >= 1. "
            f"Got {n_components_pca!r} instead."
        )
    z = PCA(n_components=n_pca, random_state=random_state).fit_transform(f) if min(n, d) > 1 else f
    k = 5 * c if n_gmm_components is None else int(n_gmm_components)
    if k < 1:
        raise SchemaError(f"The 'n_gmm_components' parameter of nleep must be >= 1. Got {n_gmm_components!r} instead.")
    gmm = GaussianMixture(n_components=min(k, n), covariance_type=covariance_type, random_state=random_state)
    posteriors = gmm.fit(z).predict_proba(z)
    return leep(source_probs=posteriors, target_labels=y)
