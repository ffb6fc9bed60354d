from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fennec.errors import NotFittedError, SchemaError
from fennec.subspace import als
from fennec.subspace.als import _cholesky_solve, _lapack_solve, _ridge_rows
from fennec.subspace.factorization import TransferSubspace, als_fit


def planted(rng, n=30, m=20, r=3):
    return rng.normal(size=(n, r)) @ rng.normal(size=(m, r)).T


def test_full_matrix_equals_truncated_svd(rng):
    """No missing cells, no biases, no penalty: the fit is the rank-r truncated SVD (Eckart-Young)."""
    Z = planted(rng) + 0.3 * rng.normal(size=(30, 20))
    fit = TransferSubspace(2, l2=0.0, bias_l2=0.0, fit_biases=False, tol=1e-15, max_iter=5000).fit(Z)
    U, s, Vt = np.linalg.svd(Z)
    np.testing.assert_allclose(fit.reconstruct(), (U[:, :2] * s[:2]) @ Vt[:2], atol=1e-5)


def test_full_matrix_with_biases_equals_svd_of_double_centred(rng):
    """With biases the optimum is: the biases take the row/column means, the SVD the double-centred rest."""
    Z = planted(rng) + 0.3 * rng.normal(size=(30, 20)) + rng.normal(size=(30, 1)) + 2.0
    fit = TransferSubspace(2, l2=0.0, bias_l2=0.0, tol=1e-15, max_iter=5000).fit(Z)
    n, m = Z.shape
    C = (np.eye(n) - 1 / n) @ Z @ (np.eye(m) - 1 / m)
    U, s, Vt = np.linalg.svd(C)
    np.testing.assert_allclose(fit.reconstruct(), Z - C + (U[:, :2] * s[:2]) @ Vt[:2], atol=1e-5)


def test_recovers_planted_low_rank_from_partial_observations(rng):
    # planted: biases plus a rank-3 interaction, 60% of the cells observed
    Z = planted(rng, 40, 25, 3) + rng.normal(size=(40, 1)) + rng.normal(size=(1, 25))
    mask = rng.random(Z.shape) < 0.6
    Zm = np.where(mask, Z, np.nan)
    fit = TransferSubspace(3, l2=1e-3, bias_l2=1e-3, tol=1e-13, max_iter=2000).fit(Zm)
    err = np.abs(fit.reconstruct() - Z)
    assert err[~mask].max() < 0.05 * np.abs(Z).max()  # cells it never saw


def test_continuation_leaves_the_small_penalty_swamp():
    """The case hypothesis found (seed 1124, rank 2): from the spectral start, ALS at l2=1e-4 settles on
    large cancelling factors (relative error 27, observed cells fitted at 0.24); the continuation stage
    at a moderate penalty first recovers the matrix."""
    rng = np.random.default_rng(1124)
    Z = planted(rng, 30, 18, 2)
    mask = rng.random(Z.shape) < 0.7
    rows, cols = np.nonzero(mask)
    kw = dict(rank=2, l2=1e-4, bias_l2=0.0, fit_biases=False, max_iter=1000, tol=1e-12)
    stuck, _, _ = als_fit(rows, cols, Z[rows, cols], Z.shape, continuation=False, **kw)
    fit, _, _ = als_fit(rows, cols, Z[rows, cols], Z.shape, **kw)
    assert np.linalg.norm(stuck.predict() - Z) / np.linalg.norm(Z) > 1.0
    assert np.linalg.norm(fit.predict() - Z) / np.linalg.norm(Z) < 1e-3


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3))
def test_planted_recovery_property(seed, r):
    rng = np.random.default_rng(seed)
    Z = planted(rng, 30, 18, r)
    mask = rng.random(Z.shape) < 0.7
    # identifiable: every model and every task observed at least 2r times
    assume(mask.sum(axis=1).min() >= 2 * r and mask.sum(axis=0).min() >= 2 * r)
    fit = TransferSubspace(r, l2=1e-4, fit_biases=False, tol=1e-12, max_iter=1000).fit(np.where(mask, Z, np.nan))
    rel = np.linalg.norm(fit.reconstruct() - Z) / np.linalg.norm(Z)
    assert rel < 0.1


def test_fit_is_deterministic_and_idempotent(rng):
    Z = np.where(rng.random((20, 10)) < 0.8, planted(rng, 20, 10, 2), np.nan)
    est = TransferSubspace("auto", random_state=3)
    r1 = est.fit(Z).reconstruct()
    r2 = est.fit(Z).reconstruct()
    r3 = TransferSubspace("auto", random_state=3).fit(Z).reconstruct()
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(r1, r3)


def test_permuting_models_permutes_model_vectors(rng):
    Z = np.where(rng.random((20, 10)) < 0.8, planted(rng, 20, 10, 2), np.nan)
    perm = rng.permutation(20)
    f1 = TransferSubspace(2, l2=0.5, tol=1e-14, max_iter=3000).fit(Z)
    f2 = TransferSubspace(2, l2=0.5, tol=1e-14, max_iter=3000).fit(Z[perm])
    np.testing.assert_allclose(f2.reconstruct(), f1.reconstruct()[perm], atol=1e-4)


def test_auto_rank_prefers_the_planted_rank(rng):
    Z = planted(rng, 60, 30, 2) + 0.05 * rng.normal(size=(60, 30))
    Zm = np.where(rng.random(Z.shape) < 0.7, Z, np.nan)
    fit = TransferSubspace("auto", l2=0.1).fit(Zm)
    assert fit.n_components_ == 2
    assert list(fit.cv_results_.columns) == ["n_components", "l2", "rmse"]


def test_fold_in_with_one_score_is_the_cold_prediction(rng):
    Z = np.where(rng.random((25, 12)) < 0.8, planted(rng, 25, 12, 2), np.nan)
    fit = TransferSubspace(2, l2=1.0).fit(Z)
    fold = fit.fold_in_task([3], [0.7])
    cold = fit.cold_task_prediction()
    # same ordering as the cold-task prediction, shifted so model 3 sits at its measured value
    np.testing.assert_allclose(fold.prediction - fold.prediction[3], cold - cold[3], atol=1e-6)


def test_fold_in_recovers_a_task_from_many_scores(rng):
    Z = planted(rng, 60, 15, 2)
    fit = TransferSubspace(2, l2=1e-4, bias_l2=1e-4, tol=1e-13, max_iter=3000).fit(Z[:, :-1])
    new = Z[:, -1]
    rows = np.arange(0, 60, 2)
    fold = fit.fold_in_task(rows, new[rows] + 5.0)  # unknown level: offset absorbs it
    corr = np.corrcoef(fold.prediction[1::2], new[1::2])[0, 1]
    assert corr > 0.95
    assert np.all(fold.std > 0)


def test_errors():
    with pytest.raises(SchemaError, match=r"expected a 2-D model x task matrix, got an array of shape \(3,\)"):
        TransferSubspace(1).fit(np.ones(3))
    with pytest.raises(SchemaError, match="no observed"):
        TransferSubspace(1).fit(np.full((3, 3), np.nan))
    with pytest.raises(SchemaError, match=r"infinite value"):
        TransferSubspace(1).fit(np.array([[1.0, np.inf], [1.0, 2.0]]))
    with pytest.raises(SchemaError, match=r"must be <= min\(n_models, n_tasks\) = 2 for a matrix of shape \(5, 2\). Got 3"):
        TransferSubspace(3).fit(np.ones((5, 2)))
    with pytest.raises(SchemaError, match=r"'n_components' parameter of TransferSubspace must be an int >= 0 or 'auto'. Got -1"):
        TransferSubspace(-1).fit(np.ones((5, 2)))
    with pytest.raises(SchemaError, match=r"model_ids has 2 entries but the matrix has 5 models"):
        TransferSubspace(1).fit(np.ones((5, 2)), model_ids=["a", "b"])
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TransferSubspace(1).reconstruct()
    fit = TransferSubspace(1, l2=1.0).fit(np.arange(12.0).reshape(4, 3))
    with pytest.raises(SchemaError, match="rows must not repeat a model"):
        fit.fold_in_task([0, 0], [1.0, 2.0])
    with pytest.raises(SchemaError, match=r"rows must index the 4 fitted models; got 0..9"):
        fit.fold_in_task([0, 9], [1.0, 2.0])
    with pytest.raises(SchemaError, match="at least one measured score"):
        fit.fold_in_task([], [])


# ---------------------------------------------------------------------------------------------- ALS speed-ups
GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "als_golden.npz"


def _golden_cases():
    sys.path.insert(0, str(GOLDEN.parent))
    try:
        from make_als_golden import cv_case, golden_cases
    finally:
        sys.path.remove(str(GOLDEN.parent))
    return golden_cases(), cv_case


@pytest.mark.parametrize("cholesky_min_rows", [None, 0, 10**9], ids=["default", "cholesky", "lapack"])
def test_als_equals_the_fits_stored_before_the_half_gram_change(monkeypatch, cholesky_min_rows):
    """Fits (biases, U V^T), iteration counts and objectives of the golden cases, stored from the implementation with
    the full per-row outer products (tests/fixtures/make_als_golden.py), to 1e-10: with the default
    dispatch of the ridge solves, with every half-step on the vectorised Cholesky, and on LAPACK."""
    if cholesky_min_rows is not None:
        monkeypatch.setattr(als, "_CHOLESKY_MIN_ROWS", cholesky_min_rows)
    stored = np.load(GOLDEN, allow_pickle=False)
    cases, cv_case = _golden_cases()
    for name, case in cases.items():
        f, n_iter, objective = als_fit(case["rows"], case["cols"], case["vals"], case["shape"], **case["kw"])
        assert n_iter == int(stored[f"{name}/n_iter"]), name
        assert objective == pytest.approx(float(stored[f"{name}/objective"]), rel=1e-10, abs=1e-10), name
        for key in ("mu", "b", "c"):
            np.testing.assert_allclose(np.asarray(getattr(f, key)), stored[f"{name}/{key}"], rtol=0, atol=1e-10,
                                       err_msg=f"{name}/{key}")
        # U and V only up to the sign of each component (the spectral start's signs follow the LAPACK build):
        # their products are what the fit determines
        np.testing.assert_allclose(f.U @ f.V.T, stored[f"{name}/U"] @ stored[f"{name}/V"].T, rtol=0, atol=1e-9,
                                   err_msg=f"{name}/UV")
    est = TransferSubspace("auto").fit(cv_case())
    np.testing.assert_allclose(est.cv_results_["rmse"].to_numpy(), stored["cv/rmse"], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(est.cv_results_["n_components"].to_numpy(), stored["cv/n_components"])
    np.testing.assert_array_equal(est.cv_results_["l2"].to_numpy(), stored["cv/l2"])
    np.testing.assert_allclose(est.reconstruct(), stored["cv/reconstruct"], rtol=0, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 7), st.floats(0.05, 0.9))
def test_ridge_rows_equals_a_dense_solve_per_row(seed, p, frac):
    """The half-Gram half-step against the textbook per-row ridge solve (rows with no cell included)."""
    rng = np.random.default_rng(seed)
    n, m = 23, 17
    obs = rng.random((n, m)) < frac
    rows, cols = np.nonzero(obs)
    r = rng.normal(size=rows.size)
    X = rng.normal(size=(m, p))
    pen = rng.uniform(0.1, 2.0, size=p)
    mask = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, m))
    resid = sp.csr_matrix((r, (rows, cols)), shape=(n, m))
    theta = _ridge_rows(mask, resid, X, pen)
    for i in range(n):
        sel = rows == i
        A = X[cols[sel]]
        expected = np.linalg.solve(A.T @ A + np.diag(pen), A.T @ r[sel])
        np.testing.assert_allclose(theta[i], expected, rtol=1e-10, atol=1e-12)


def _spd_batch(rng, n, p, cells):
    """n Gram matrices of ``cells`` random rows each (rank-deficient when cells < p), packed upper triangles."""
    A = rng.normal(size=(n, cells, p)) * rng.uniform(0.1, 10.0, size=(n, 1, p))
    G = np.einsum("nkp,nkq->npq", A, A)
    iu, ju = np.triu_indices(p)
    return G, np.ascontiguousarray(G[:, iu, ju]), rng.normal(size=(n, p))


@pytest.mark.parametrize(("n", "p"), [(1, 1), (5, 2), (130, 5), (300, 17), (2100, 9), (700, 33), (260, 65)])
def test_cholesky_solve_equals_lapack_on_random_spd_batches(rng, n, p):
    """The vectorised Cholesky against np.linalg.solve, to 1e-10 relative (blocks of rows included)."""
    for cells in (p + 3, max(1, p // 2)):  # well-posed Gram matrices, and rank-deficient ones made SPD
        G, half, rhs = _spd_batch(rng, n, p, cells)
        pen = rng.uniform(0.05, 2.0, size=p)
        expected = np.linalg.solve(G + np.diag(pen), rhs[:, :, None])[:, :, 0]
        got = _cholesky_solve(half, rhs, pen)
        scale = np.abs(expected).max(axis=1, keepdims=True)
        np.testing.assert_array_less(np.abs(got - expected) / scale, 1e-10)


def test_cholesky_solve_hands_singular_rows_to_lapack(rng):
    """With (almost) no penalty a row with fewer cells than unknowns is numerically singular: it gets
    LAPACK's answer, as before, the others the Cholesky's; an exactly singular row still raises LinAlgError."""
    n, p = 200, 6
    _, half, rhs = _spd_batch(rng, n, p, p + 4)
    _, half_bad, _ = _spd_batch(rng, n, p, 3)
    bad = rng.random(n) < 0.1
    half[bad] = half_bad[bad]
    pen = np.full(p, 1e-12)
    got = _cholesky_solve(half, rhs, pen)
    np.testing.assert_array_equal(got[bad], _lapack_solve(half[bad], rhs[bad], pen))
    good = ~bad
    np.testing.assert_allclose(got[good], _lapack_solve(half[good], rhs[good], pen), rtol=1e-9, atol=1e-12)
    half[0] = 0.0
    with pytest.raises(np.linalg.LinAlgError):
        _cholesky_solve(half, rhs, np.zeros(p))


def test_rank_selection_logs_an_estimate_and_never_prints(rng, caplog, capsys):
    Z = np.where(rng.random((30, 12)) < 0.8, planted(rng, 30, 12, 2), np.nan)
    with caplog.at_level(logging.INFO, logger="fennec.subspace.factorization"):
        est = TransferSubspace("auto", candidate_ranks=(0, 1, 3), candidate_l2=(1.0, 3.0), n_folds=3).fit(Z)
    first = [r.getMessage() for r in caplog.records if "rank/l2 selection" in r.getMessage()]
    assert len(first) == 1
    assert "6 configurations x 3 folds" in first[0] and "18 fits" in first[0] and "(rank 3, the largest)" in first[0]
    assert len(est.cv_results_) == 6
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # tqdm stays silent without a terminal
