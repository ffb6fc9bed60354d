"""Speed of Fennec's core: exact top-K queries and subspace fits, each beside its reference, in one run.

Run:  python benchmarks/bench_core.py [--threads 1] [--quick] [--repeats 3] [--only exact,hnsw,als]

1. Exact top-10 for a batch of 1000 queries over 1k, 100k and 1M synthetic models (clustered, d = 17
   and 65): Fennec's tiled kernel (``topk_inner_product``) beside raw faiss ``IndexFlatIP`` and the
   GEMM-only floor (the same tiles of matrix products, nothing else). Ratios, ids compared with faiss
   and with a full stable argsort, and the kernel's peak traced memory beyond the vectors.
2. Approximate search: faiss ``HNSW32`` at d = 17 (build time, latency, recall@10 against the exact
   answer), beside the exact kernel.
3. ALS: the two half-steps (the per-row ridge solves of models, then tasks) and one iteration of
   ``als_fit``, beside the previous
   implementation (full per-row outer products, kept below as the reference), on the largest shipped
   history and on a synthetic 10 000 models x 1 000 tasks matrix with 5 % observed cells; plus the
   full ``fit`` with rank/l2 selection on the shipped history.

Threads are fixed (BLAS and faiss, default 1). Every ratio's two sides run alternately in this one
process; times are medians of the repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def timed(store, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    store.append(time.perf_counter() - t)
    return out


def clustered(rng, n, d, nq):
    import numpy as np

    centres = rng.normal(size=(64, d)).astype(np.float32)
    X = (centres[rng.integers(0, 64, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
    return X, rng.normal(size=(nq, d)).astype(np.float32)


def gemm_floor(X, Q):
    """The kernel's matrix products alone: the same (models x queries) tiles, into one buffer."""
    import numpy as np

    from fennec.subspace.index import MODEL_TILE, QUERY_TILE

    buf = np.empty((MODEL_TILE, QUERY_TILE), dtype=np.float32)
    for q0 in range(0, len(Q), QUERY_TILE):
        QT = Q[q0:q0 + QUERY_TILE].T
        for m0 in range(0, len(X), MODEL_TILE):
            w = min(MODEL_TILE, len(X) - m0)
            np.matmul(X[m0:m0 + w], QT, out=buf[:w, :QT.shape[1]])


def traced_peak_mib(fn, *args) -> float:
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn(*args)
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        tracemalloc.stop()


def bench_exact(sizes, dims, repeats, threads, k=10, nq=1000):
    import faiss
    import numpy as np

    from fennec.subspace.index import topk_inner_product

    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(0)
    print(f"\n== exact top-{k}, batch of {nq} queries, {threads} thread(s): ms per query (median of {repeats}) ==")
    print(f"{'models':>9} {'d':>3} {'fennec':>8} {'GEMM floor':>10} {'faiss Flat':>10} {'Flat/fennec':>11} "
          f"{'fennec/floor':>12} {'ids = Flat':>10} {'ids = argsort':>13} {'fennec MiB':>10}")
    for d in dims:
        for n in sizes:
            X, Q = clustered(rng, n, d, nq)
            flat = faiss.IndexFlatIP(d)
            flat.add(X)
            t_ours, t_floor, t_flat = [], [], []
            for _ in range(repeats):  # alternate the three sides
                _, ids = timed(t_ours, topk_inner_product, X, Q, k)
                timed(t_floor, gemm_floor, X, Q)
                _, ids_flat = timed(t_flat, flat.search, Q, k)
            sample = slice(0, 50)
            S = Q[sample].astype(np.float64) @ X.T.astype(np.float64)
            ref = np.argsort(-S, axis=1, kind="stable")[:, :k]
            same_flat = float(np.mean(np.all(ids == ids_flat, axis=1)))
            same_ref = float(np.mean(np.all(ids[sample] == ref, axis=1)))
            mem = traced_peak_mib(topk_inner_product, X, Q, k)
            o, f, fl = (statistics.median(t) * 1e3 / nq for t in (t_ours, t_floor, t_flat))
            print(f"{n:>9,} {d:>3} {o:>8.4f} {f:>10.4f} {fl:>10.4f} {fl / o:>11.2f} {o / f:>12.2f} "
                  f"{same_flat:>10.3f} {same_ref:>13.3f} {mem:>10.1f}", flush=True)
            del flat, X
    print("(ids = Flat: share of queries whose 10 ids equal faiss Flat's, in order; ids = argsort: the same"
          " against a float64 stable argsort, on 50 queries)")


def bench_hnsw(sizes, repeats, threads, d=17, k=10, nq=1000):
    import faiss
    import numpy as np

    from fennec.subspace.index import ModelIndex, topk_inner_product

    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(1)
    print(f"\n== approximate: faiss HNSW32 (efSearch 128, ModelIndex default), d={d}, top-{k}, {nq} queries,"
          f" {threads} thread(s) ==")
    print(f"{'models':>9} {'build s':>8} {'HNSW ms/q':>10} {'fennec exact':>12} {'exact/HNSW':>10} {'recall@10':>9}")
    for n in sizes:
        X, Q = clustered(rng, n, d, nq)
        t = time.perf_counter()
        hnsw = ModelIndex(factory="HNSW32").build(X, [str(i) for i in range(n)])
        build = time.perf_counter() - t
        t_h, t_ours = [], []
        for _ in range(repeats):
            _, ids_h = timed(t_h, hnsw.search, Q, k)
            _, ids = timed(t_ours, topk_inner_product, X, Q, k)
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, ids_h, strict=True)]))
        h, o = (statistics.median(t) * 1e3 / nq for t in (t_h, t_ours))
        print(f"{n:>9,} {build:>8.1f} {h:>10.4f} {o:>12.4f} {o / h:>10.1f} {recall:>9.3f}", flush=True)


def previous_ridge_rows(mask, resid, X, penalty):
    """The half-step before issue 14: the sparse product with every row's full p x p outer products."""
    import numpy as np

    n, p = mask.shape[0], X.shape[1]
    outer = (X[:, :, None] * X[:, None, :]).reshape(len(X), p * p)
    G = np.asarray(mask @ outer).reshape(n, p, p)
    G[:, np.arange(p), np.arange(p)] += penalty
    rhs = np.asarray(resid @ X)
    return np.linalg.solve(G, rhs[:, :, None])[:, :, 0]


def previous_als_fit(rows, cols, vals, shape, *, rank, l2, bias_l2, max_iter, tol, random_state=0):
    """``als_fit`` before issue 14 (with biases), the reference of the ALS ratios."""
    import numpy as np
    import scipy.sparse as sp

    from fennec.subspace.als import Factors, _svd_init

    n, m = shape
    rng = np.random.default_rng(random_state)
    b, c, mu = np.zeros(n), np.zeros(m), float(vals.mean())
    mask = sp.csr_matrix((np.ones(len(vals)), (rows, cols)), shape=shape)
    U, V = _svd_init(rows, cols, vals - mu, shape, rank, rng)
    mask_t = mask.T.tocsr()
    order, order_t = np.lexsort((cols, rows)), np.lexsort((rows, cols))
    pen = np.append(np.full(rank, float(l2)), bias_l2)
    prev = objective = np.inf
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is returned
        r = vals - mu - c[cols]
        resid = sp.csr_matrix((r[order], mask.indices, mask.indptr), shape=(n, m))
        theta = previous_ridge_rows(mask, resid, np.hstack([V, np.ones((m, 1))]), pen)
        U, b = theta[:, :rank], theta[:, rank]
        r = vals - mu - b[rows]
        resid = sp.csr_matrix((r[order_t], mask_t.indices, mask_t.indptr), shape=(m, n))
        theta = previous_ridge_rows(mask_t, resid, np.hstack([U, np.ones((n, 1))]), pen)
        V, c = theta[:, :rank], theta[:, rank]
        mu = float(np.mean(vals - b[rows] - c[cols] - np.einsum("ij,ij->i", U[rows], V[cols])))
        err = vals - Factors(mu, b, c, U, V).predict(rows, cols)
        objective = float(err @ err + l2 * ((U**2).sum() + (V**2).sum()) + bias_l2 * (b @ b + c @ c))
        if prev - objective <= tol * max(1.0, abs(objective)):
            break
        prev = objective
    return Factors(mu, b, c, U, V), it, objective


def als_cases(quick):
    import numpy as np

    from fennec.data.shipped import load_history
    from fennec.history.table import TaskScaler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = load_history("shift_vtab")
    Y, _, _ = h.to_matrix()
    Z = TaskScaler.fit(Y).transform(Y)
    r_, c_ = np.nonzero(np.isfinite(Z))
    cases = [("shift_vtab 291x19 (90% obs)", r_, c_, Z[r_, c_], Z.shape, 4)]
    if not quick:
        rng = np.random.default_rng(0)
        n, m, r = 10_000, 1_000, 16
        full_u, full_v = rng.normal(size=(n, r)), rng.normal(size=(m, r))
        rr, cc = np.nonzero(rng.random((n, m)) < 0.05)
        vv = np.einsum("ij,ij->i", full_u[rr], full_v[cc]) + 0.1 * rng.normal(size=len(rr))
        cases.append(("synthetic 10000x1000 (5% obs)", rr, cc, vv, (n, m), r))
    return Z, cases


def half_step_inputs(rows, cols, vals, shape, rank):
    """Inputs of the two half-steps (models, then tasks) on the cells ``(rows, cols)``."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    out = []
    for r, c, (n, m) in ((rows, cols, shape), (cols, rows, shape[::-1])):
        mask = sp.csr_matrix((np.ones(len(vals)), (r, c)), shape=(n, m))
        resid = sp.csr_matrix((vals, (r, c)), shape=(n, m))
        X = np.hstack([rng.normal(size=(m, rank)), np.ones((m, 1))])
        out.append((mask, resid, X, np.ones(rank + 1)))
    return out


def bench_als(repeats, quick, iters=5):
    import numpy as np

    from fennec.subspace.als import _ridge_rows
    from fennec.subspace.factorization import TransferSubspace, als_fit

    Z, cases = als_cases(quick)
    print(f"\n== ALS: fennec beside the previous implementation, seconds (median of {repeats}); half-steps: the "
          f"models' and the tasks' ridge solves; iteration: als_fit over {iters} iterations minus 1 ==")
    print(f"{'matrix':<30} {'rank':>4} {'models':>8} {'previous':>9} {'ratio':>6} {'tasks':>8} {'previous':>9} "
          f"{'ratio':>6} {'both':>6} {'iter':>7} {'previous':>9} {'ratio':>6} {'max |diff|':>10}")
    for name, rows, cols, vals, shape, rank in cases:
        sides = half_step_inputs(rows, cols, vals, shape, rank)
        kw = dict(rank=rank, l2=1.0, bias_l2=1.0, tol=0.0)
        t = {key: [] for key in ("m", "m0", "t", "t0", "i", "i0")}
        for _ in range(repeats):  # alternate ours and the previous implementation
            for side, args in zip("mt", sides, strict=True):
                timed(t[side], _ridge_rows, *args)
                timed(t[side + "0"], previous_ridge_rows, *args)
            for key, fit in (("i", als_fit), ("i0", previous_als_fit)):
                t1, t2 = [], []
                _, it1, _ = timed(t1, fit, rows, cols, vals, shape, max_iter=1, **kw)
                _, it2, _ = timed(t2, fit, rows, cols, vals, shape, max_iter=iters, **kw)
                t[key].append((t2[0] - t1[0]) / max(it2 - it1, 1))
        f_new, _, _ = als_fit(rows, cols, vals, shape, max_iter=iters, **kw)
        f_old, _, _ = previous_als_fit(rows, cols, vals, shape, max_iter=iters, **kw)
        diff = max(float(np.max(np.abs(getattr(f_new, a) - getattr(f_old, a)))) for a in ("b", "c", "U", "V"))
        m, m0, ts, t0, i, i0 = (statistics.median(t[key]) for key in ("m", "m0", "t", "t0", "i", "i0"))
        print(f"{name:<30} {rank:>4} {m:>8.4f} {m0:>9.4f} {m0 / m:>6.2f} {ts:>8.4f} {t0:>9.4f} {t0 / ts:>6.2f} "
              f"{(m0 + t0) / (m + ts):>6.2f} {i:>7.4f} {i0:>9.4f} {i0 / i:>6.2f} {diff:>10.1e}", flush=True)
    t0 = time.perf_counter()
    est = TransferSubspace("auto").fit(Z)
    print(f"shift_vtab full fit with rank/l2 selection (5-fold x {len(est.cv_results_)} configs): "
          f"{time.perf_counter() - t0:.1f} s -> rank {est.n_components_}, l2 {est.l2_:g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/faiss threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="small sizes only (1k, 100k models; no 10k x 1k fit)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="exact,hnsw,als",
                    help="comma-separated sections to run: exact, hnsw, als (default: all)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if not only or only - {"exact", "hnsw", "als"}:
        ap.error(f"--only takes exact, hnsw and/or als; got {args.only!r}")
    set_threads(args.threads)
    import numpy as np
    from threadpoolctl import threadpool_info

    blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)" for i in threadpool_info())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"fennec core benchmark: numpy {np.__version__}, {os.cpu_count()} cpus, threads={args.threads}; "
          f"BLAS {blas}; load average {load}")
    sizes = [1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]
    if "exact" in only:
        bench_exact(sizes, (17, 65), args.repeats, args.threads)
    if "hnsw" in only:
        bench_hnsw(sizes[1:], args.repeats, args.threads)
    if "als" in only:
        bench_als(args.repeats, args.quick)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
