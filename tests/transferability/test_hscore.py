"""H-score and shrinkage H-score against direct implementations (numpy pinv, scikit-learn LedoitWolf)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.covariance import ledoit_wolf_shrinkage as sk_shrinkage

from fennec.transferability import hscore, shrinkage_hscore
from fennec.transferability.hscore import ledoit_wolf_shrinkage


def _class_mean_rows(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    return g


def _shrinkage_hscore_direct(f: np.ndarray, y: np.ndarray) -> float:
    """tr(Σ_α⁻¹ (1−α) cov(E[f|y])) with scikit-learn's LedoitWolf.

    Conventions: ``LedoitWolf()`` (assume_centered=False) centres the features itself and returns
    the 1/N covariance; cov(E[f|y]) uses 1/N too (``bias=True``), the same normalisation.
    """
    lw = LedoitWolf().fit(f)
    g = _class_mean_rows(f - f.mean(axis=0), y)
    between = np.cov(g, rowvar=False, bias=True)
    return float(np.trace(np.linalg.solve(lw.covariance_, (1 - lw.shrinkage_) * between)))


@pytest.fixture(params=[(200, 30), (40, 90), (61, 60)], ids=["N>D", "N<D", "N=D+1"])
def scaled_task(request, make_task):
    n, d = request.param
    f, y = make_task(n, d, 4, signal=0.5, seed=n)
    rng = np.random.default_rng(d)
    return f * rng.uniform(0.1, 3.0, size=d) + 4.0, y  # uneven scales and an offset


def test_shrinkage_equals_sklearn(scaled_task):
    f, y = scaled_task
    assert shrinkage_hscore(f, y) == pytest.approx(_shrinkage_hscore_direct(f, y), rel=1e-9)


def test_alpha_equals_sklearn_shrinkage(scaled_task):
    f, _ = scaled_task
    x = f - f.mean(axis=0)
    n, d = x.shape
    ours = ledoit_wolf_shrinkage(np.einsum("ij,ij->i", x, x), float(np.sum((x.T @ x) ** 2)), float(np.sum(x * x)), n, d)
    # assume_centered=True on centred data == assume_centered=False (LedoitWolf centres itself).
    assert ours == pytest.approx(sk_shrinkage(x, assume_centered=True), rel=1e-10)
    assert ours == pytest.approx(LedoitWolf().fit(f).shrinkage_, rel=1e-10)
    assert 0 < ours < 1


def test_raw_hscore_equals_pinv_reference(make_task):
    f, y = make_task(150, 20, 3, seed=2)
    ref = np.trace(np.linalg.pinv(np.cov(f, rowvar=False), rcond=1e-15) @ np.cov(_class_mean_rows(f, y), rowvar=False))
    assert hscore(f, y) == pytest.approx(ref, rel=1e-9)


def test_raw_hscore_saturates_when_d_exceeds_n(make_task):
    """The ill-conditioning: with rank-(N−1) centred features H = C − 1 whatever the features."""
    f, y = make_task(30, 80, 3, seed=4)
    noise = np.random.default_rng(0).standard_normal(f.shape)
    assert hscore(f, y) == pytest.approx(2.0, rel=1e-8)
    assert hscore(noise, y) == pytest.approx(2.0, rel=1e-8)
    assert shrinkage_hscore(f, y) > shrinkage_hscore(noise, y)
