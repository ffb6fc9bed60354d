"""Exact top-K search over model vectors: a cache-tiled NumPy kernel, or faiss for approximate indexes.

The vectors indexed are the subspace's *augmented* model vectors ``[u_i, mu + b_i]``; a query
``[v, a]`` then scores ``a (mu + b_i) + u_i . v``, so the top-K of the index is exactly the top-K of the
subspace's prediction (the task's own offset does not change the order).

Exact search (the ``"Flat"`` factory, or ``backend="numpy"``) is :func:`topk_inner_product`: tiles of
scores from one matrix product each, a running k-th-best threshold per query, and a merge of only the
entries above it. It returns the same ids as a full sort (score descending, ties by position
ascending), 3-6x faster than faiss ``IndexFlatIP`` on one thread with a few MiB of working memory
(``benchmarks/bench_core.py`` prints both). faiss answers the approximate factories (``HNSW32``,
``IVF...``), and ``backend="faiss-native"`` sends ``"Flat"`` to faiss too.

faiss's own checks are bare assertions, and a ``k`` above the number of vectors silently returns ``-1``
ids; :class:`ModelIndex` validates first and raises :class:`~fennec.errors.SchemaError` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fennec.errors import NotFittedError, SchemaError, UnknownIdError

logger = logging.getLogger(__name__)

BACKENDS = ("faiss", "numpy", "faiss-native")
EXACT_FACTORY = "Flat"

# Kernel tiling (see topk_inner_product): queries per tile, models per score tile, models per block of
# the block maxima, the largest score tile of the first (partitioned) slice in floats.
QUERY_TILE = 512
MODEL_TILE = 2048
BLOCK = 64
HEAD_ELEMS = 1 << 20
PENDING_PER_QUERY = 4  # candidates held (per query of the tile) before a merge


def _as_float32_2d(x: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise SchemaError(f"{what} must be a 1-D or 2-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise SchemaError(f"{what} holds {int((~np.isfinite(a)).sum())} non-finite value(s)")
    return np.ascontiguousarray(a)


def _check_k(k: object, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SchemaError(f"k must be a positive integer, got {k!r}")
    if k > n:
        raise SchemaError(f"k={k} is larger than the number of indexed models ({n}); ask for at most {n}")
    return int(k)


class ModelIndex:
    """Inner-product index over model vectors, addressed by model id.

    Parameters
    ----------
    backend : {"faiss", "numpy", "faiss-native"}
        ``faiss`` (default): the exact ``"Flat"`` factory is answered by Fennec's tiled kernel
        (:func:`topk_inner_product`, faiss is not even imported); any other factory string goes to
        ``faiss.index_factory(d, factory, METRIC_INNER_PRODUCT)``. ``numpy``: the exact kernel whatever
        the factory. ``faiss-native``: faiss for every factory, ``"Flat"`` included (``IndexFlatIP``, the
        reference the kernel is measured against).
    factory : str
        faiss index factory string. ``"Flat"`` (default) is exact. ``"HNSW32"`` is approximate: on
        inner-product queries unlike the indexed vectors its recall is low (``benchmarks/bench_core.py``
        measures it), so keep ``Flat`` unless the zoo is very large and a lower recall is acceptable.
    ef_search : int
        HNSW search breadth (recall vs speed), used only by HNSW factories.
    """

    def __init__(self, *, backend: str = "faiss", factory: str = "Flat", ef_search: int = 128) -> None:
        if backend not in BACKENDS:
            raise SchemaError(f"The 'backend' parameter of ModelIndex must be one of {BACKENDS}. Got {backend!r} instead.")
        self.backend = backend
        self.factory = factory
        self.ef_search = ef_search

    @property
    def uses_faiss(self) -> bool:
        """Whether searches go to a faiss index (approximate factories, or ``backend="faiss-native"``)."""
        if self.backend == "numpy":
            return False
        return self.backend == "faiss-native" or self.factory != EXACT_FACTORY

    def build(self, vectors: npt.ArrayLike, ids: Sequence[str]) -> ModelIndex:
        """Index ``vectors`` (n, d) under ``ids`` (n unique strings)."""
        X = _as_float32_2d(vectors, "vectors")
        ids = [str(i) for i in ids]
        if len(ids) != X.shape[0]:
            raise SchemaError(f"got {len(ids)} ids for {X.shape[0]} vectors (shape {X.shape})")
        if len(set(ids)) != len(ids):
            seen, dups = set(), []
            for i in ids:
                (dups.append(i) if i in seen else seen.add(i))
            raise SchemaError(f"model ids must be unique; repeated: {sorted(set(dups))[:5]}")
        if X.shape[0] == 0:
            raise SchemaError("cannot build an index over 0 vectors")
        self.ids_ = ids
        self.dim_ = X.shape[1]
        self._position = {m: k for k, m in enumerate(ids)}
        if self.uses_faiss:
            import faiss

            index = faiss.index_factory(self.dim_, self.factory, faiss.METRIC_INNER_PRODUCT)
            if not index.is_trained:
                index.train(X)
            index.add(X)
            if hasattr(index, "hnsw"):
                index.hnsw.efSearch = int(self.ef_search)
            self._index = index
            self._vectors = None
        else:
            self._index = None
            self._vectors = X
        return self

    @property
    def ntotal(self) -> int:
        self._check_built()
        return len(self.ids_)

    def _check_built(self) -> None:
        if not hasattr(self, "ids_"):
            raise NotFittedError("This ModelIndex is empty; call build() first.")

    def search(self, queries: npt.ArrayLike, k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-``k`` inner products. Returns ``(scores, positions)``, each (n_queries, k), best first.

        Exact search orders ties by position (the earlier-built model first).
        """
        self._check_built()
        Q = _as_float32_2d(queries, "queries")
        if Q.shape[1] != self.dim_:
            raise SchemaError(
                f"query dimension {Q.shape[1]} does not match the index dimension {self.dim_} (query shape {Q.shape})")
        k = _check_k(k, len(self.ids_))
        if self._index is not None:
            D, ids = self._index.search(Q, k)
            if (ids < 0).any():  # approximate indexes may return fewer hits than asked
                raise SchemaError(f"the faiss index {self.factory!r} returned fewer than k={k} results; use 'Flat'")
            return D, ids.astype(np.int64)
        return topk_inner_product(self._vectors, Q, k)

    def search_ids(self, query: npt.ArrayLike, k: int) -> list[tuple[str, float]]:
        """Top-``k`` ``(model_id, score)`` pairs for one query vector."""
        D, ids = self.search(query, k)
        return [(self.ids_[i], float(s)) for i, s in zip(ids[0], D[0], strict=True)]

    def positions(self, model_ids: Sequence[str]) -> npt.NDArray[np.intp]:
        self._check_built()
        unknown = [m for m in model_ids if m not in self._position]
        if unknown:
            raise UnknownIdError(f"model id(s) not in the index: {unknown[:5]}")
        return np.array([self._position[m] for m in model_ids], dtype=np.intp)


def topk_inner_product(
    X: npt.ArrayLike, Q: npt.ArrayLike, k: int, *, query_tile: int = QUERY_TILE, model_tile: int = MODEL_TILE
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Exact top-``k`` of ``Q @ X.T`` per row: ``(scores, positions)``, each (n_queries, k), float32/int64.

    Rows are ordered by score descending, ties by position ascending: the first ``k`` columns of a
    stable ``argsort`` of ``-(Q @ X.T)``. Every score is computed once, in float32.

    Per tile of ``query_tile`` queries, each slice of ``model_tile`` models is scored with one matrix
    product into a (models x queries) tile; its maxima over blocks of 64 models are compared with each
    query's running k-th best score, and only the blocks above it are read and merged. Models are
    visited in position order, so an entry that only equals the running k-th best can never enter the
    top-k. The first slice has no running k-th best yet: the k-th largest of its block maxima is a lower
    bound of it (k blocks hold an entry at least that high), and every entry at or above that bound is
    merged. With fewer than 64 queries, or when ``k`` exceeds the first slice's number of blocks, the
    first ``max(model_tile, 4 k)`` models are partitioned instead. Working memory is a few score tiles (~4 MiB each), whatever the
    number of models.
    """
    X = _check_float32_matrix(X, "X")
    Q = _check_float32_matrix(Q, "Q")
    if Q.shape[1] != X.shape[1]:
        raise SchemaError(f"Q has dimension {Q.shape[1]} but X has {X.shape[1]} (shapes {Q.shape} and {X.shape})")
    n = X.shape[0]
    k = _check_k(k, n)
    tile = int(model_tile)
    # the first slice has >= k blocks: its block maxima bound the k-th best, no partition needed (a few
    # queries are answered faster by the partition: it is then one short row each)
    from_blocks = Q.shape[0] >= 64 and k <= -(-min(n, tile) // BLOCK)
    head = 0 if from_blocks else min(n, max(tile, 4 * k))
    out_s = np.empty((Q.shape[0], k), dtype=np.float32)
    out_i = np.empty((Q.shape[0], k), dtype=np.int64)
    for q0 in range(0, Q.shape[0], int(query_tile)):
        Qt = Q[q0:q0 + int(query_tile)]
        if from_blocks:  # placeholders that every real entry beats
            best_s, best_i = np.full((len(Qt), k), -np.inf, dtype=np.float32), np.full((len(Qt), k), n)
        else:
            best_s, best_i = _head_topk(X[:head], Qt, k)
        if head < n:
            _scan(X, Qt, best_s, best_i, head, tile, seeded=not from_blocks)
        out_s[q0:q0 + len(Qt)], out_i[q0:q0 + len(Qt)] = best_s, best_i
    return out_s, out_i


def _check_float32_matrix(a: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
    a = np.asarray(a)
    if a.ndim != 2:
        raise SchemaError(f"{what} must be a 2-D array, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _head_topk(Xh: np.ndarray, Qt: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of the first ``len(Xh)`` models: partition, then order the entries >= the k-th best."""
    w = Xh.shape[0]
    best_s = np.empty((len(Qt), k), dtype=np.float32)
    best_i = np.empty((len(Qt), k), dtype=np.int64)
    rows = max(1, HEAD_ELEMS // w)
    for r0 in range(0, len(Qt), rows):
        S = Qt[r0:r0 + rows] @ Xh.T
        kth = np.partition(S, w - k, axis=1)[:, w - k] if k < w else S.min(axis=1)
        flat = np.flatnonzero(S >= kth[:, None])  # at least k per row; more only on ties
        q, pos = np.divmod(flat, w)
        s, i = _select(q, pos, S.ravel()[flat], len(S), k)
        best_s[r0:r0 + rows], best_i[r0:r0 + rows] = s, i
    return best_s, best_i


def _select(q: np.ndarray, pos: np.ndarray, s: np.ndarray, nrows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best ``(s desc, pos asc)`` entries of each of rows ``0..nrows-1`` (each row has >= k entries)."""
    order = np.lexsort((pos, -s, q))
    counts = np.bincount(q, minlength=nrows)
    starts = np.cumsum(counts) - counts
    take = order[starts[:, None] + np.arange(k)]
    return s[take], pos[take]


def _scan(X: np.ndarray, Qt: np.ndarray, best_s: np.ndarray, best_i: np.ndarray, start: int, tile: int,
          *, seeded: bool = True) -> None:
    """Merge models ``start..n-1`` into the running top-k ``best_s/best_i`` (updated in place).

    ``seeded=False``: ``best_s/best_i`` hold placeholders only, and the first slice's candidates are
    the entries at or above the k-th largest of its block maxima. Later candidates are merged in
    batches of a few thousand: a threshold a few slices old is still a lower bound of the final k-th
    best, so it only lets a few more candidates through.
    """
    n, b, k = X.shape[0], len(Qt), best_s.shape[1]
    buf = np.empty((-(-tile // BLOCK) * BLOCK, b), dtype=np.float32)
    thr = best_s[:, -1].copy()
    QT = Qt.T
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n_pending = 0
    for m0 in range(start, n, tile):
        w = min(tile, n - m0)
        nb = -(-w // BLOCK)
        S = buf[:nb * BLOCK]
        np.matmul(X[m0:m0 + w], QT, out=S[:w])
        S[w:] = -np.inf  # the ragged last block never beats a threshold
        block_max = S.reshape(nb, BLOCK, b).max(axis=1)
        if not seeded:
            bound = np.partition(block_max, nb - k, axis=0)[nb - k]
            _merge(best_s, best_i, *_above(S, block_max, bound, m0, inclusive=True))
            thr, seeded = best_s[:, -1].copy(), True
            continue
        found = _above(S, block_max, thr, m0, inclusive=False)
        if found[0].size == 0:
            continue
        pending.append(found)
        n_pending += found[0].size
        if n_pending >= PENDING_PER_QUERY * b:
            _merge(best_s, best_i, *(np.concatenate(c) for c in zip(*pending, strict=True)))
            thr = best_s[:, -1].copy()
            pending, n_pending = [], 0
    if pending:
        _merge(best_s, best_i, *(np.concatenate(c) for c in zip(*pending, strict=True)))


def _above(S: np.ndarray, block_max: np.ndarray, thr: np.ndarray, m0: int, *, inclusive: bool):
    """Entries ``(query, position, score)`` of a score tile above ``thr`` (or at it, ``inclusive``),
    reading only the blocks whose maximum qualifies."""
    cmp = np.greater_equal if inclusive else np.greater
    blk, q = np.divmod(np.flatnonzero(cmp(block_max, thr)), S.shape[1])
    rows = blk[:, None] * BLOCK + np.arange(BLOCK)
    vals = S[rows, q[:, None]]
    pi, pj = np.nonzero(cmp(vals, thr[q, None]))
    return q[pi], rows[pi, pj] + m0, vals[pi, pj]


def _merge(best_s: np.ndarray, best_i: np.ndarray, q: np.ndarray, pos: np.ndarray, s: np.ndarray) -> None:
    """Merge candidate entries ``(q, pos, s)`` into the rows of ``best_s/best_i`` they belong to."""
    nq, k = best_s.shape
    hit = np.bincount(q, minlength=nq) > 0
    touched = np.flatnonzero(hit)
    local = np.cumsum(hit) - 1
    rows = np.concatenate([np.repeat(np.arange(touched.size), k), local[q]])
    ss = np.concatenate([best_s[touched].ravel(), s])
    pp = np.concatenate([best_i[touched].ravel(), pos])
    best_s[touched], best_i[touched] = _select(rows, pp, ss, touched.size, k)
