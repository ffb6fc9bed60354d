"""Exact top-K search over model vectors: faiss inner product, or a NumPy backend with identical results.

The vectors indexed are the subspace's *augmented* model vectors ``[u_i, mu + b_i]``; a query
``[v, a]`` then scores ``a (mu + b_i) + u_i . v``, so the top-K of the index is exactly the top-K of the
subspace's prediction (the task's own offset does not change the order).

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

BACKENDS = ("faiss", "numpy")


def _as_float32_2d(x: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise SchemaError(f"{what} must be a 1-D or 2-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise SchemaError(f"{what} holds {int((~np.isfinite(a)).sum())} non-finite value(s)")
    return np.ascontiguousarray(a)


class ModelIndex:
    """Inner-product index over model vectors, addressed by model id.

    Parameters
    ----------
    backend : {"faiss", "numpy"}
        ``faiss`` uses ``index_factory(d, factory, METRIC_INNER_PRODUCT)``; ``numpy`` a matrix product and
        ``argpartition``. With the default exact ``"Flat"`` factory both give the same ids (up to ties).
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
        if self.backend == "faiss":
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
        """Top-``k`` inner products. Returns ``(scores, positions)``, each (n_queries, k), best first."""
        self._check_built()
        Q = _as_float32_2d(queries, "queries")
        if Q.shape[1] != self.dim_:
            raise SchemaError(
                f"query dimension {Q.shape[1]} does not match the index dimension {self.dim_} (query shape {Q.shape})")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise SchemaError(f"k must be a positive integer, got {k!r}")
        n = len(self.ids_)
        if k > n:
            raise SchemaError(f"k={k} is larger than the number of indexed models ({n}); ask for at most {n}")
        if self._index is not None:
            D, ids = self._index.search(Q, int(k))
            if (ids < 0).any():  # approximate indexes may return fewer hits than asked
                raise SchemaError(f"the faiss index {self.factory!r} returned fewer than k={k} results; use 'Flat'")
            return D, ids.astype(np.int64)
        return topk_inner_product(self._vectors, Q, int(k))

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
    X: npt.NDArray[np.float32], Q: npt.NDArray[np.float32], k: int, *, block: int | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Exact top-k of ``Q @ X.T`` per row, best first, by blocks of queries (NumPy reference backend).

    Blocks keep the score matrix under ~256 MB whatever the number of models.
    """
    n = X.shape[0]
    if block is None:
        block = int(max(1, min(1024, (1 << 26) // max(n, 1))))
    out_d = np.empty((Q.shape[0], k), dtype=np.float32)
    out_i = np.empty((Q.shape[0], k), dtype=np.int64)
    for s in range(0, Q.shape[0], block):
        S = Q[s:s + block] @ X.T
        if k < n:
            part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(n), (S.shape[0], n))
        vals = np.take_along_axis(S, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)  # by score desc, ties by position
        out_i[s:s + block] = np.take_along_axis(part, order, axis=1)
        out_d[s:s + block] = np.take_along_axis(vals, order, axis=1)
    return out_d, out_i
