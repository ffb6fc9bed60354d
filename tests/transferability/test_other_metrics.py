"""SFDA, TransRate and GBC against direct transcriptions of their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as sla
from scipy.special import softmax

from fennec.errors import SchemaError
from fennec.transferability import gbc, sfda, transrate


def _fda_proba(x, y, lam):
    """Reference-style regularised FDA: generalised eigenvectors of (S_b, S_w(λ)), all of them."""
    classes = np.unique(y)
    priors = np.array([np.mean(y == c) for c in classes])
    means = np.array([x[y == c].mean(axis=0) for c in classes])
    s_w = sum(p * np.cov(x[y == c].T, bias=True) for p, c in zip(priors, classes, strict=True))
    d = s_w.shape[0]
    shrunk_w = (1 - lam) * s_w + lam * np.trace(s_w) / d * np.eye(d)
    cov_t = np.cov(x.T, bias=True)
    s_t = (1 - lam) * cov_t + lam * np.trace(cov_t) / d * np.eye(d)
    _, vecs = sla.eigh(s_t - shrunk_w, shrunk_w)
    coef = means @ vecs @ vecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    return softmax(x @ coef.T + intercept, axis=1), means


def _sfda_direct(f, y):
    x = f.copy()
    n, c = len(y), len(np.unique(y))
    s_w = sum(np.mean(y == k) * np.cov(x[y == k].T, bias=True) for k in range(c))
    lam = max(math.exp(-5 * np.linalg.eigvalsh(s_w)[-1]), 1e-10)
    prob, means = _fda_proba(x, y, lam)
    prob = softmax(prob, axis=1)
    for k in range(c):
        others = (means.sum(axis=0) - means[k]) / (c - 1)
        p = prob[y == k, k][:, None]
        x[y == k] = p * x[y == k] + (1 - p) * others
    prob2, _ = _fda_proba(x, y, lam)
    return float(np.mean(prob2[np.arange(n), y]))


@pytest.mark.parametrize("scale", [1.0, 0.1], ids=["lambda-floor", "lambda-adaptive"])
def test_sfda_equals_generalised_eigen_reference(scale, make_task):
    f, y = make_task(150, 12, 3, signal=0.6, seed=9)
    f = f * scale  # small features make λ = exp(−5·σ_max) non-negligible
    assert sfda(f, y) == pytest.approx(_sfda_direct(f, y), rel=1e-8)


def test_transrate_equals_direct_slogdet(make_task):
    f, y = make_task(90, 15, 3, seed=4)
    eps = 1e-4

    def rate(z):
        n, d = z.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))[1]

    z = f - f.mean(axis=0)
    expected = rate(z) - np.mean([rate(z[y == k]) for k in range(3)])
    assert transrate(f, y) == pytest.approx(expected, rel=1e-10)
    wide, yw = make_task(20, 40, 2, seed=1)  # kernel path (N < D) for the total and per class
    zw = wide - wide.mean(axis=0)
    assert transrate(wide, yw) == pytest.approx(rate(zw) - np.mean([rate(zw[yw == k]) for k in range(2)]), rel=1e-10)


def _gbc_direct(f, y, spherical=False):
    stats = {}
    for c in np.unique(y):
        v = np.maximum(f[y == c].var(axis=0), 1e-4)
        stats[c] = (f[y == c].mean(axis=0), np.full_like(v, v.mean()) if spherical else v)
    total = 0.0
    for c1 in stats:
        for c2 in stats:
            if c1 == c2:
                continue
            (m1, v1), (m2, v2) = stats[c1], stats[c2]
            avg = (v1 + v2) / 2
            db = np.sum((m1 - m2) ** 2 / avg) / 8 + 0.5 * (np.sum(np.log(avg)) - 0.5 * np.sum(np.log(v1)) - 0.5 * np.sum(np.log(v2)))
            total += math.exp(-db)
    return -total


def test_gbc_equals_pairwise_definition(make_task):
    f, y = make_task(80, 6, 4, signal=0.5, seed=2)
    assert gbc(f, y) == pytest.approx(_gbc_direct(f, y), rel=1e-10)
    assert gbc(f, y, gaussian_type="spherical") == pytest.approx(_gbc_direct(f, y, spherical=True), rel=1e-10)
    with pytest.raises(SchemaError, match=r"The 'gaussian_type' parameter of gbc must be 'diagonal' or 'spherical'\. Got 'full' instead\."):
        gbc(f, y, gaussian_type="full")
