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


def argsort_reference(X, Q, k):
    """Plain reference: full stable sort of every row of -(Q @ X.T): score desc, then position asc."""
    S = np.asarray(Q, dtype=np.float64) @ np.asarray(X, dtype=np.float64).T
    ids = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(S, ids, axis=1), ids


def test_kernel_and_faiss_flat_equal_argsort(rng):
    X, Q = synthetic(rng)
    ids = [f"m{i}" for i in range(len(X))]
    fa = ModelIndex(backend="faiss-native").build(X, ids)
    default = ModelIndex().build(X, ids)
    npi = ModelIndex(backend="numpy").build(X, ids)
    assert fa.uses_faiss and not default.uses_faiss and not npi.uses_faiss
    ref_d, ref_i = argsort_reference(X, Q, 10)
    for index in (fa, default, npi):
        D, ids_ = index.search(Q, 10)
        check_ref_knn_with_draws(ref_d, ref_i, D, ids_)
        assert np.all(np.diff(D, axis=1) <= 1e-6)
    # the exact kernel with tiles small enough to exercise the scan and the merges
    D, ids_ = topk_inner_product(X, Q, 10, query_tile=7, model_tile=64)
    check_ref_knn_with_draws(ref_d, ref_i, D, ids_)
    np.testing.assert_array_equal(default.search(Q, 10)[1], npi.search(Q, 10)[1])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 700), st.integers(1, 5), st.integers(1, 130), st.integers(1, 300), st.integers(0, 10_000),
       st.booleans())
def test_kernel_equals_argsort_with_ties(n, d, nq, tile, seed, small_k):
    """Integer vectors: every product is exact in float32 and ties are everywhere; ids and scores must be
    identical to the full sort's, ties broken by position ascending."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    Q = rng.integers(-2, 3, size=(nq, d)).astype(np.float32)
    k = int(rng.integers(1, min(n, 12) + 1)) if small_k else int(rng.integers(1, n + 1))
    D, ids_ = topk_inner_product(X, Q, k, query_tile=int(rng.integers(1, 50)), model_tile=tile)
    ref_d, ref_i = argsort_reference(X, Q, k)
    np.testing.assert_array_equal(ids_, ref_i)
    np.testing.assert_array_equal(D, ref_d.astype(np.float32))
    assert ids_.dtype == np.int64 and D.dtype == np.float32 and D.shape == (nq, k)


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


def test_kernel_edge_shapes():
    # all models tied: positions in order; k == n returns the whole sorted order
    D, ids_ = topk_inner_product(np.ones((5, 1), np.float32), np.ones((2, 1), np.float32), 5)
    assert ids_.tolist() == [[0, 1, 2, 3, 4]] * 2 and D.tolist() == [[1.0] * 5] * 2
    # d = 1, negative query reverses the order; one model
    X = np.arange(6, dtype=np.float32)[:, None]
    assert topk_inner_product(X, [[-1.0]], 3)[1].tolist() == [[0, 1, 2]]
    assert topk_inner_product(X, [[2.0]], 2)[0].tolist() == [[10.0, 8.0]]
    assert topk_inner_product(np.ones((1, 3)), np.ones((4, 3)), 1)[1].tolist() == [[0]] * 4
    # many more models than one tile, ragged last block, ties across tiles: the first position wins
    X = np.zeros((5000, 2), np.float32)
    X[[17, 2100, 4999], 0] = 1.0
    D, ids_ = topk_inner_product(X, [[1.0, 0.0]], 4, model_tile=100)
    assert ids_.tolist() == [[17, 2100, 4999, 0]] and D.tolist() == [[1.0, 1.0, 1.0, 0.0]]
    # the same with many queries (the first slice is bounded by its block maxima, not partitioned)
    D, ids_ = topk_inner_product(X, np.tile([[1.0, 0.0]], (100, 1)), 4, model_tile=256)
    assert ids_.tolist() == [[17, 2100, 4999, 0]] * 100 and D.tolist() == [[1.0, 1.0, 1.0, 0.0]] * 100
    with pytest.raises(SchemaError, match=r"k=4 is larger than the number of indexed models \(3\)"):
        topk_inner_product(np.eye(3), np.eye(3), 4)
    with pytest.raises(SchemaError, match=r"Q has dimension 2 but X has 3"):
        topk_inner_product(np.eye(3), np.ones((1, 2)), 1)
    with pytest.raises(SchemaError, match=r"X must be a 2-D array, got shape \(3,\)"):
        topk_inner_product(np.ones(3), np.ones((1, 3)), 1)


def test_kernel_memory_is_bounded():
    """Working memory stays at a few score tiles whatever the number of models (the old path held a
    (queries x models) block and a negated copy: hundreds of MiB here)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300_000, 17)).astype(np.float32)
    Q = rng.normal(size=(1000, 17)).astype(np.float32)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        D, ids_ = topk_inner_product(X, Q, 10)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    ref_d, ref_i = argsort_reference(X, Q[:20], 10)
    check_ref_knn_with_draws(ref_d, ref_i, D[:20], ids_[:20])


def test_hnsw_goes_to_faiss():
    rng = np.random.default_rng(0)
    X, Q = synthetic(rng, n=300, d=8, nq=20)
    ids = [str(i) for i in range(300)]
    hnsw = ModelIndex(factory="HNSW32", ef_search=300).build(X, ids)
    assert hnsw.uses_faiss and type(hnsw._index).__name__.startswith("IndexHNSW")
    _, ids_ = hnsw.search(Q, 5)
    _, ref = argsort_reference(X, Q, 5)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids_, ref, strict=True)])
    assert recall >= 0.9
    assert ModelIndex(backend="numpy", factory="HNSW32").build(X, ids).uses_faiss is False


def test_search_ids_and_positions():
    idx = ModelIndex(backend="numpy").build(np.eye(3), ["a", "b", "c"])
    assert idx.search_ids([0, 1, 0.5], 2) == [("b", 1.0), ("c", 0.5)]
    assert idx.positions(["c", "a"]).tolist() == [2, 0]
    with pytest.raises(UnknownIdError, match=r"model id\(s\) not in the index: \['zz'\]"):
        idx.positions(["zz"])


@pytest.mark.parametrize("backend", ["faiss", "numpy", "faiss-native"])
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
