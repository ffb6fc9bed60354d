"""Every metric-specific error message, matched exactly."""

from __future__ import annotations

import numpy as np
import pytest

from fennec.errors import SchemaError
from fennec.transferability import (
    LogME,
    check_features_labels,
    gbc,
    leep,
    nce,
    nleep,
    parc,
    transrate,
)

F = np.random.default_rng(0).standard_normal((12, 4))
Y = np.arange(12) % 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_features_labels(np.array([[1 + 2j, 0], [0, 1]]), [0, 1]),
         r"^features must hold real numbers; got dtype complex128$"),
        (lambda: check_features_labels(np.array([["a", "b"], ["c", "d"]]), [0, 1]),
         r"^features must hold real numbers; got dtype <U1$"),
        (lambda: check_features_labels(F, np.where(Y == 0, np.nan, Y)),
         r"^labels contain NaN or inf \(4 values\)$"),
        (lambda: check_features_labels(F, Y, n_classes=1),
         r"^n_classes must be an integer >= 2; got 1$"),
        (lambda: check_features_labels(F, Y + 0.5, n_classes=3),
         r"^labels must be integers in \[0, 3\) when n_classes is given; got dtype float64$"),
        (lambda: LogME(regression=True).fit(F, np.zeros((12, 0))),
         r"^labels must be a 1-D array or a 2-D \(n_samples, n_targets\) matrix; got shape \(12, 0\)$"),
        (lambda: LogME(regression=True).fit(F[:1], np.zeros(1)), r"^need at least 2 samples; got 1$"),
        (lambda: nleep(F, Y, n_gmm_components=0),
         r"^The 'n_gmm_components' parameter of nleep must be >= 1\. Got 0 instead\.$"),
        (lambda: parc(F, Y, n_pca=0), r"^The 'n_pca' parameter of parc must be >= 1\. Got 0 instead\.$"),
        (lambda: gbc(F, Y, n_pca=0), r"^The 'n_pca' parameter of gbc must be an int >= 1\. Got 0 instead\.$"),
        (lambda: transrate(F, Y, eps=0.0), r"^The 'eps' parameter of transrate must be > 0\. Got 0\.0 instead\.$"),
        (lambda: nce(source_labels=[0], target_labels=[1]), r"^need at least 2 samples; got 1$"),
        (lambda: nce(source_labels=[[0, 1]], target_labels=[1]),
         r"^source_labels must be a 1-D array of class labels; got shape \(1, 2\)$"),
        (lambda: leep(source_probs=np.ones((1, 1)), target_labels=[0]), r"^need at least 2 samples; got 1$"),
        (lambda: leep(source_probs=np.full((2, 2), np.nan), target_labels=[0, 1]),
         r"^source_probs contain NaN or inf in 2 of 2 rows \(first: row 0\)$"),
    ],
    ids=["complex", "strings", "nan-labels", "n_classes", "float-labels", "no-target", "regression-n<2",
         "gmm", "parc-pca", "gbc-pca", "eps", "nce-n<2", "nce-2d", "leep-n<2", "leep-nan"],
)
def test_error_messages(call, message):
    with pytest.raises(SchemaError, match=message):
        call()
