from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fennec.errors import NotFittedError, SchemaError, UnknownIdError
from fennec.subspace.index import ModelIndex, topk_inner_product


def synthetic(rng, n=500, d=9, nq=40):
    centres = rng.normal(size=(8, d))
    X = centres[rng.integers(0, 8, n)] + 0.3 * rng.normal(size=(n, d))
    Q = rng.normal(size=(nq, d))
    return X.astype(np.float32), Q.astype(np.float32)


def check_ref_knn_with_draws(ref_scores, ref_ids, new_scores, new_ids, rtol=1e-5):
    """Top-k lists agree up to ties: equal scores, and equal id sets once tied groups are accounted for."""
    np.testing.assert_allclose(new_scores, ref_scores, rtol=rtol, atol=1e-5)
    for rs, ri, ni in zip(ref_scores, ref_ids, new_ids, strict=True):
        cut = rs[-1]
        strict = set(ri[rs > cut + 1e-5])
        assert strict <= set(ni)


def test_faiss_equals_numpy_equals_argsort(rng):
    X, Q = synthetic(rng)
    ids = [f"m{i}" for i in range(len(X))]
    fa = ModelIndex(backend="faiss").build(X, ids)
    npi = ModelIndex(backend="numpy").build(X, ids)
    D1, I1 = fa.search(Q, 10)
    D2, I2 = npi.search(Q, 10)
    S = Q.astype(np.float64) @ X.T.astype(np.float64)
    ref_i = np.argsort(-S, axis=1, kind="stable")[:, :10]
    ref_d = np.take_along_axis(S, ref_i, axis=1)
    check_ref_knn_with_draws(ref_d, ref_i, D1, I1)
    check_ref_knn_with_draws(ref_d, ref_i, D2, I2)
    assert np.all(np.diff(D1, axis=1) <= 1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 60), st.integers(1, 6), st.integers(0, 1000))
def test_numpy_topk_matches_full_sort(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Q = rng.normal(size=(3, d)).astype(np.float32)
    k = int(rng.integers(1, n + 1))
    D, idx = topk_inner_product(X, Q, k)
    S = Q @ X.T
    for q in range(3):
        np.testing.assert_allclose(np.sort(S[q])[::-1][:k], D[q], rtol=1e-6)
        np.testing.assert_allclose(S[q, idx[q]], D[q], rtol=1e-6)


def test_search_ids_and_positions():
    idx = ModelIndex(backend="numpy").build(np.eye(3), ["a", "b", "c"])
    assert idx.search_ids([0, 1, 0.5], 2) == [("b", 1.0), ("c", 0.5)]
    assert idx.positions(["c", "a"]).tolist() == [2, 0]
    with pytest.raises(UnknownIdError, match=r"model id\(s\) not in the index: \['zz'\]"):
        idx.positions(["zz"])


@pytest.mark.parametrize("backend", ["faiss", "numpy"])
def test_errors(backend):
    idx = ModelIndex(backend=backend).build(np.eye(3), ["a", "b", "c"])
    with pytest.raises(SchemaError, match=r"k=5 is larger than the number of indexed models \(3\); ask for at most 3"):
        idx.search(np.ones(3), 5)
    with pytest.raises(SchemaError, match=r"query dimension 4 does not match the index dimension 3 \(query shape \(1, 4\)\)"):
        idx.search(np.ones(4), 1)
    with pytest.raises(SchemaError, match="k must be a positive integer, got 0"):
        idx.search(np.ones(3), 0)
    with pytest.raises(SchemaError, match="non-finite"):
        idx.search([np.nan, 1, 1], 1)
    with pytest.raises(SchemaError, match=r"got 2 ids for 3 vectors"):
        ModelIndex(backend=backend).build(np.eye(3), ["a", "b"])
    with pytest.raises(SchemaError, match=r"model ids must be unique; repeated: \['a'\]"):
        ModelIndex(backend=backend).build(np.eye(3), ["a", "b", "a"])
    with pytest.raises(NotFittedError):
        ModelIndex(backend=backend).search(np.ones(3), 1)
    with pytest.raises(SchemaError, match=r"'backend' parameter of ModelIndex must be one of"):
        ModelIndex(backend="annoy")
