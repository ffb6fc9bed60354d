from __future__ import annotations

import numpy as np
import pytest

from fennec.errors import SchemaError
from fennec.query.warmstart import (
    column_moments,
    complete_columns,
    fold_in,
    gaussian_fold_in,
    task_mixture_fold_in,
)


def columns(rng, n=30, T=12):
    q = rng.normal(size=(n, 1))
    return q + 0.6 * rng.normal(size=(n, 2)) @ rng.normal(size=(2, T))


def test_gaussian_equals_dense_conditional_gaussian(rng):
    """The O(nTk) form equals the textbook conditional Gaussian built from the full n x n covariance."""
    C = columns(rng)
    rows = np.array([3, 7, 11, 20])
    y = rng.normal(size=4) * 2 + 80
    mean, std, a = gaussian_fold_in(C, rows, y, scale=2.0, lam=0.5)
    m = C.mean(1)
    S = np.cov(C) + 0.5 * np.mean(np.diag(np.cov(C))) * np.eye(len(C))
    z = y / 2.0
    Ri = np.linalg.inv(S[np.ix_(rows, rows)])
    one = np.ones(4)
    a_ref = one @ Ri @ (z - m[rows]) / (one @ Ri @ one)
    mean_ref = m + S[:, rows] @ Ri @ (z - a_ref - m[rows])
    assert a == pytest.approx(a_ref)
    np.testing.assert_allclose(mean, mean_ref, atol=1e-10)
    assert np.all(std > 0)


def test_one_revealed_model_gives_the_history_prior(rng):
    C = columns(rng)
    mean, _, _ = gaussian_fold_in(C, [5], [77.0], scale=3.0)
    np.testing.assert_allclose(mean, C.mean(1), atol=1e-10)


def test_mixture_picks_the_matching_training_task(rng):
    C = columns(rng)
    C[:, 4] = 3.0 * rng.normal(size=30)  # a task unlike the others
    rows = np.arange(0, 30, 3)
    mean, w = task_mixture_fold_in(C, rows, 5.0 * (C[rows, 4] + 10.0), scale=5.0, tau=0.3)
    assert w.argmax() == 4 and w[4] > 0.9
    np.testing.assert_allclose(mean, C @ w)


def test_fold_in_improves_with_more_revealed(rng):
    C = columns(rng, n=60, T=20)
    new = columns(rng, n=60, T=1)[:, 0] * 0 + C[:, :5].mean(1) + 0.2 * rng.normal(size=60)
    corr = []
    for k in (1, 20):
        rows = np.arange(k)
        ws = fold_in(C, rows, new[rows], scale=1.0)
        corr.append(np.corrcoef(ws.score[k:], new[k:])[0, 1])
    assert corr[1] > corr[0]


def test_complete_columns_and_errors():
    Z = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(complete_columns(Z), [[1, 1], [2, 2], [3, 4]])
    np.testing.assert_allclose(complete_columns(Z, np.zeros_like(Z)), [[1, 0], [0, 2], [3, 4]])
    m, F, v = column_moments(complete_columns(Z))
    assert F.shape == (3, 2)
    with pytest.raises(SchemaError, match="revealed rows must be distinct indices into the 3 models"):
        gaussian_fold_in(complete_columns(Z), [0, 0], [1.0, 2.0], scale=1.0)
    with pytest.raises(SchemaError, match="complete it first"):
        fold_in(Z, [0], [1.0], scale=1.0)
