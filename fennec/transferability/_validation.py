"""Input checks shared by every transferability metric.

All metrics take ``features`` (N x D) and ``labels`` (N,) and go through :func:`check_features_labels`,
so they reject the same bad inputs with the same messages (:class:`fennec.errors.SchemaError`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from fennec.errors import SchemaError

__all__ = ["check_features", "check_features_labels", "class_sums", "canonical_order"]


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(s) for s in a.shape) + ("," if a.ndim == 1 else "") + ")"


def check_features(features: npt.ArrayLike, *, name: str = "features") -> npt.NDArray[np.float64]:
    """Return ``features`` as a finite, C-contiguous float64 array of shape (N, D).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Real-valued feature matrix.
    name : str, default="features"
        Name used in error messages.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64
        The same data; no copy when it already was float64 and C-contiguous.

    Raises
    ------
    SchemaError
        If the array is not 2-D, has no column, is not numeric, or holds NaN/inf.
    """
    arr = np.asarray(features)
    if arr.ndim != 2:
        raise SchemaError(f"{name} must be a 2-D array (n_samples, n_features); got shape {_shape(arr)}")
    if arr.shape[1] == 0:
        raise SchemaError(f"{name} must have at least one column; got shape {_shape(arr)}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise SchemaError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    # One pass over the data: a row sum is non-finite iff the row holds NaN/inf (or overflows).
    row_sums = arr.sum(axis=1)
    if not np.isfinite(row_sums).all():
        bad = ~np.isfinite(arr).all(axis=1)
        n_bad = int(bad.sum())
        if n_bad:
            first = int(np.flatnonzero(bad)[0])
            raise SchemaError(
                f"{name} contain NaN or inf in {n_bad} of {arr.shape[0]} rows (first: row {first})"
            )
    return arr


def check_features_labels(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_classes: int | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp], int]:
    """Validate a (features, labels) pair and remap the labels to ``0..C-1``.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        Real-valued features, finite.
    labels : array-like of shape (n_samples,)
        Class labels of any sortable type (ints, strings). Without ``n_classes`` they are remapped
        through ``np.unique``, so gaps in integer ids never create empty classes.
    n_classes : int, optional
        When given, ``labels`` must be integers in ``[0, n_classes)`` and every class must have at
        least one sample; the labels are kept as they are.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), float64, C-contiguous
    labels : ndarray of shape (n_samples,), intp, values in ``0..C-1``
    n_classes : int
        ``C``, at least 2.

    Raises
    ------
    SchemaError
        Mismatched lengths, fewer than 2 samples, a single class, NaN/inf features, non-2-D
        features, non-1-D labels, or (with ``n_classes``) out-of-range labels or empty classes.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise SchemaError(f"labels must be a 1-D array of class labels; got shape {_shape(lab)}")
    feat = np.asarray(features)
    if feat.ndim == 2 and feat.shape[0] != lab.shape[0]:
        raise SchemaError(f"features has {feat.shape[0]} rows but labels has {lab.shape[0]}")
    feat = check_features(feat)
    n = feat.shape[0]
    if n < 2:
        raise SchemaError(f"need at least 2 samples; got {n}")
    if lab.dtype.kind == "f" and not np.isfinite(lab).all():
        raise SchemaError(f"labels contain NaN or inf ({int((~np.isfinite(lab)).sum())} values)")
    if n_classes is not None:
        y, c = _check_given_classes(lab, n_classes)
    else:
        classes, y = np.unique(lab, return_inverse=True)
        c = len(classes)
        if c < 2:
            raise SchemaError(f"labels contain a single class ({classes[0].tolist()!r}); at least 2 classes are needed")
    return feat, np.ascontiguousarray(y, dtype=np.intp).reshape(-1), c


def _check_given_classes(lab: np.ndarray, n_classes: int) -> tuple[np.ndarray, int]:
    if int(n_classes) != n_classes or n_classes < 2:
        raise SchemaError(f"n_classes must be an integer >= 2; got {n_classes!r}")
    n_classes = int(n_classes)
    if lab.dtype.kind not in "iub" and not (lab.dtype.kind == "f" and np.all(lab == np.round(lab))):
        raise SchemaError(f"labels must be integers in [0, {n_classes}) when n_classes is given; got dtype {lab.dtype}")
    y = lab.astype(np.intp)
    outside = np.unique(y[(y < 0) | (y >= n_classes)])
    if outside.size:
        raise SchemaError(
            f"labels must be integers in [0, {n_classes}) when n_classes is given; "
            f"got values outside: {outside[:5].tolist()}"
        )
    counts = np.bincount(y, minlength=n_classes)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise SchemaError(
            f"{empty.size} of n_classes={n_classes} classes have no samples "
            f"(empty: {empty[:10].tolist()}{' ...' if empty.size > 10 else ''})"
        )
    return y, n_classes


def class_sums(
    features: npt.NDArray[np.float64], labels: npt.NDArray[np.intp], n_classes: int
) -> npt.NDArray[np.float64]:
    """Per-class sums of the rows of ``features``, shape (C, D), in O(N·D) via a sparse one-hot."""
    n = labels.shape[0]
    onehot = sp.csr_array(
        (np.ones(n), (labels, np.arange(n))), shape=(n_classes, n)
    )
    return np.asarray(onehot @ features)


def canonical_order(features: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """A row order that depends only on the rows' values, not on their input order.

    Used before randomised steps (k-means initialisation of a GMM) so that a metric is exactly
    invariant to permuting the samples. The primary key is a fixed random projection; the first
    columns break ties; identical rows stay tied, and their order does not matter.
    """
    n, d = features.shape
    proj = features @ np.random.default_rng(12345).standard_normal(d)
    keys = [features[:, j] for j in range(min(d, 4) - 1, -1, -1)]
    return np.lexsort([*keys, proj])
