"""LogME: the fast eigendecomposition form against a direct D×D evidence maximisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from fennec.errors import NotFittedError, SchemaError
from fennec.transferability import LogME, logme


def _evidence_direct(f: np.ndarray, y: np.ndarray, log_alpha: float, log_beta: float) -> float:
    """L(α, β) written out with the D×D matrix A = αI + βFᵀF (slogdet, solve): obviously correct."""
    n, d = f.shape
    alpha, beta = math.exp(log_alpha), math.exp(log_beta)
    a = alpha * np.eye(d) + beta * (f.T @ f)
    m = beta * np.linalg.solve(a, f.T @ y)
    resid = f @ m - y
    sign, logdet = np.linalg.slogdet(a)
    assert sign > 0
    return (0.5 * n * log_beta + 0.5 * d * log_alpha - 0.5 * n * math.log(2 * math.pi)
            - 0.5 * beta * resid @ resid - 0.5 * alpha * m @ m - 0.5 * logdet)


def _logme_direct(f: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-column max evidence / N by Nelder–Mead over (log α, log β), best of three starts."""
    out = []
    for col in targets.T:
        best = min(
            (minimize(lambda x, col=col: -_evidence_direct(f, col, *x), x0, method="Nelder-Mead",
                      options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000, "maxfev": 40000})
             for x0 in [(0.0, 0.0), (2.0, 2.0), (-2.0, 4.0)]),
            key=lambda r: r.fun,
        )
        out.append(-best.fun / f.shape[0])
    return np.array(out)


def _assert_interior(est: LogME) -> None:
    # The direct D×D form is numerically meaningless at β → ∞ or α → ∞ (A is then singular to
    # working precision), so the golden comparison uses data whose optimum is interior.
    assert np.all(est.alphas_ < 1e8) and np.all(est.betas_ < 1e8), (est.alphas_, est.betas_)


@pytest.mark.parametrize(("n", "d", "method", "signal", "seed"), [(90, 12, "gram", 0.8, 3), (24, 40, "kernel", 0.5, 0)])
def test_fast_equals_direct_classification(n, d, method, signal, seed, make_task):
    f, y = make_task(n, d, 3, signal=signal, seed=seed)
    est = LogME().fit(f, y)
    assert est.method_ == method
    _assert_interior(est)
    direct = _logme_direct(f, np.eye(3)[y])
    np.testing.assert_allclose(est.evidences_, direct, rtol=1e-6)
    assert est.score_ == pytest.approx(direct.mean(), rel=1e-6)


@pytest.mark.parametrize(("n", "d"), [(70, 10), (20, 35)])
def test_fast_equals_direct_regression(n, d):
    rng = np.random.default_rng(8)
    f = rng.standard_normal((n, d))
    targets = f[:, :3] @ rng.standard_normal((3, 2)) + 0.5 * rng.standard_normal((n, 2))
    est = LogME(regression=True).fit(f, targets)
    _assert_interior(est)
    np.testing.assert_allclose(est.evidences_, _logme_direct(f, targets), rtol=1e-6)


def test_regression_on_onehot_equals_classification(task):
    f, y = task
    cls = LogME().fit(f, y)
    reg = LogME(regression=True).fit(f, np.eye(4)[y])
    assert reg.score_ == pytest.approx(cls.score_, rel=1e-12)
    np.testing.assert_allclose(reg.weights_, cls.weights_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(reg.alphas_, cls.alphas_, rtol=1e-9)


def test_multilabel_is_per_column_regression():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((60, 8))
    y = (f[:, :3] + 0.3 * rng.standard_normal((60, 3)) > 0).astype(float)
    assert LogME().fit(f, y).score_ == pytest.approx(LogME(regression=True).fit(f, y).score_, rel=1e-12)
    with pytest.raises(SchemaError, match=r"multi-label targets must be a 0/1 matrix"):
        LogME().fit(f, y + 0.5)


def test_dropping_the_d_minus_k_log_alpha_term_is_wrong(make_task):
    """N=300, D=1024: the public fast form (no (D−k)·log α) gives a positive, wrong score."""
    f, y = make_task(300, 1024, 10, signal=0.1, seed=11)
    est = LogME().fit(f, y)
    n, d = f.shape
    assert est.method_ == "kernel"
    assert est.score_ < 0
    dropped = est.score_ + np.mean(0.5 * (d - n) * np.log(est.alphas_)) / n  # what they report
    assert dropped > 0
    # Our evidence is the direct D×D evidence at our (α, β), and it is a local maximum there.
    col = np.eye(10)[y][:, 0]
    la, lb = math.log(est.alphas_[0]), math.log(est.betas_[0])
    ours = est.evidences_[0] * n
    assert _evidence_direct(f, col, la, lb) == pytest.approx(ours, rel=1e-9)
    for dla, dlb in [(0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05)]:
        assert _evidence_direct(f, col, la + dla, lb + dlb) < ours


def test_weights_are_posterior_means_and_predict(task):
    f, y = task
    est = LogME().fit(f, y)
    assert est.weights_.shape == (4, f.shape[1])
    t = est.alphas_[0] / est.betas_[0]
    m0 = np.linalg.solve(t * np.eye(f.shape[1]) + f.T @ f, f.T @ (y == 0))
    np.testing.assert_allclose(est.weights_[0], m0, rtol=1e-8)
    np.testing.assert_allclose(est.predict(f), f @ est.weights_.T)
    assert list(est.classes_) == [0, 1, 2, 3]


def test_kernel_weights_match_gram_formula(make_task):
    f, y = make_task(20, 30, 2, seed=5)
    est = LogME().fit(f, y)
    t = est.alphas_ / est.betas_
    for c in range(2):
        m = np.linalg.solve(t[c] * np.eye(30) + f.T @ f, f.T @ (y == c))
        np.testing.assert_allclose(est.weights_[c], m, rtol=1e-6, atol=1e-10)


def test_labels_are_remapped_and_function_matches_estimator(task):
    f, y = task
    names = np.array(["cat", "dog", "emu", "fox"])[y]
    assert logme(f, names) == pytest.approx(LogME().fit(f, y).score_, rel=1e-12)
    assert logme(f, y * 10 + 3) == pytest.approx(logme(f, y), rel=1e-12)


def test_predict_errors(task):
    f, y = task
    with pytest.raises(NotFittedError, match=r"not fitted yet"):
        LogME().predict(f)
    est = LogME().fit(f, y)
    with pytest.raises(SchemaError, match=r"features has 3 columns but LogME was fitted with 24"):
        est.predict(f[:, :3])


def test_parameter_errors(task):
    f, y = task
    with pytest.raises(SchemaError, match=r"The 'tol' parameter of LogME must be > 0\. Got 0 instead\."):
        LogME(tol=0).fit(f, y)
    with pytest.raises(SchemaError, match=r"The 'max_iter' parameter of LogME must be an int >= 1\. Got 0 instead\."):
        LogME(max_iter=0).fit(f, y)


def test_regression_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(SchemaError, match=r"^features has 5 rows but labels has 4$"):
        LogME(regression=True).fit(rng.standard_normal((5, 3)), rng.standard_normal(4))
    with pytest.raises(SchemaError, match=r"labels contain NaN or inf in 1 of 5 rows \(first: row 2\)"):
        LogME(regression=True).fit(rng.standard_normal((5, 3)), np.array([0, 1, np.nan, 2, 3.0]))


def test_zero_features_give_the_no_signal_evidence():
    y = np.array([0, 1, 0, 1, 1])
    est = LogME().fit(np.zeros((5, 3)), y)
    counts = np.array([2, 3])
    expected = np.mean(-0.5 * (np.log(2 * np.pi * counts / 5) + 1))  # α → ∞: y ~ N(0, β⁻¹I)
    assert est.score_ == pytest.approx(expected, rel=1e-9)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(4, 40), d=st.integers(1, 40), c=st.integers(2, 4))
def test_invariances_and_finiteness(make_task, seed, n, d, c):
    f, y = make_task(n, d, c, signal=1.0, seed=seed)
    rng = np.random.default_rng(seed)
    base = LogME().fit(f, y)
    assert np.isfinite(base.score_) and np.all(np.isfinite(base.weights_))
    relabel = rng.permutation(c)[y]
    perm, cols = rng.permutation(n), rng.permutation(d)
    assert LogME().fit(f, relabel).score_ == pytest.approx(base.score_, rel=1e-8, abs=1e-10)
    assert LogME().fit(f[perm], y[perm]).score_ == pytest.approx(base.score_, rel=1e-8, abs=1e-10)
    assert LogME().fit(f[:, cols], y).score_ == pytest.approx(base.score_, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize(("n", "method"), [(80, "gram"), (15, "kernel")])
def test_rank_deficient_features(n, method, make_task):
    """Dead units, duplicated columns and duplicated rows: no warnings, still the direct optimum."""
    f, y = make_task(n, 12, 3, signal=0.6, seed=2)
    f = np.concatenate([f, np.zeros((n, 6)), f[:, :4]], axis=1)  # D = 22, rank 12
    if method == "kernel":
        f, y = np.concatenate([f, f[:3]]), np.concatenate([y, y[:3]])  # duplicated samples
    with np.errstate(all="raise"):
        est = LogME().fit(f, y)
    assert est.method_ == method
    _assert_interior(est)
    np.testing.assert_allclose(est.evidences_, _logme_direct(f, np.eye(3)[y]), rtol=1e-6)
