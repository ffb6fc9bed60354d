"""Speed of Fennec's core: index queries and subspace fits, each beside a plain reference, in one run.

Run:  python benchmarks/bench_core.py [--threads 1] [--quick]

1. Query latency: top-10 for a batch of 1000 queries over 1k, 100k and 1M synthetic models (17-d
   augmented vectors, clustered), faiss ``Flat`` (exact) and ``HNSW32`` beside NumPy brute force
   (matmul + argpartition, the same exact answer). Median of repeats, ms per query, ratios.
2. Fit time: our vectorised sparse ALS beside a plain per-row NumPy ALS (same model, same iterations)
   on the largest shipped history (shift_vtab) and on a synthetic 10 000 models x 1 000 tasks matrix
   with 5 % observed cells; plus the full ``fit`` with rank selection on the shipped history.

Times are medians; the two sides of each ratio run alternately in this one process.
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


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def timed(store, fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    store.append(time.perf_counter() - t)
    return out


def bench_index(sizes, repeats, threads):
    import faiss
    import numpy as np

    from fennec.subspace.index import ModelIndex, topk_inner_product

    faiss.omp_set_num_threads(threads)
    rng = np.random.default_rng(0)
    d, nq, k = 17, 1000, 10
    print(f"\n== top-{k} query latency, batch of {nq} queries, d={d}, {threads} thread(s) ==")
    print(f"{'models':>9} {'numpy ms/q':>11} {'faiss Flat':>11} {'Flat/numpy':>11} {'HNSW32':>9} "
          f"{'HNSW recall':>12} {'build HNSW s':>13}")
    for n in sizes:
        centres = rng.normal(size=(64, d)).astype(np.float32)
        X = (centres[rng.integers(0, 64, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
        Q = rng.normal(size=(nq, d)).astype(np.float32)
        ids = [str(i) for i in range(n)]
        flat = ModelIndex(backend="faiss", factory="Flat").build(X, ids)
        t = time.perf_counter()
        hnsw = ModelIndex(backend="faiss", factory="HNSW32").build(X, ids)
        build = time.perf_counter() - t
        t_np, t_flat, t_h = [], [], []
        for _ in range(repeats):  # alternate the sides
            I_np = timed(t_np, topk_inner_product, X, Q, k)[1]
            I_f = timed(t_flat, flat.search, Q, k)[1]
            I_h = timed(t_h, hnsw.search, Q, k)[1]
        same = np.mean([len(set(a) & set(b)) / k for a, b in zip(I_np, I_f, strict=True)])
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(I_np, I_h, strict=True)])
        m_np, m_f, m_h = (statistics.median(x) * 1e3 / nq for x in (t_np, t_flat, t_h))
        print(f"{n:>9,} {m_np:>11.4f} {m_f:>11.4f} {m_f / m_np:>11.2f} {m_h:>9.4f} {recall:>12.3f} {build:>13.1f}"
              + ("" if same > 0.999 else f"   (Flat vs numpy overlap {same:.3f})"))


def reference_als(rows, cols, vals, shape, rank, l2, bias_l2, iters, seed=0):
    """Plain per-row ALS with a Python loop over models and tasks (the reference for the ratio)."""
    import numpy as np

    n, m = shape
    rng = np.random.default_rng(seed)
    U, V = rng.normal(scale=0.1, size=(n, rank)), rng.normal(scale=0.1, size=(m, rank))
    b, c, mu = np.zeros(n), np.zeros(m), vals.mean()
    by_row = [np.flatnonzero(rows == i) for i in range(n)]
    by_col = [np.flatnonzero(cols == j) for j in range(m)]
    pen = np.r_[np.full(rank, l2), bias_l2]
    for _ in range(iters):
        for i, idx in enumerate(by_row):
            X = np.hstack([V[cols[idx]], np.ones((len(idx), 1))])
            t = np.linalg.solve(X.T @ X + np.diag(pen), X.T @ (vals[idx] - mu - c[cols[idx]]))
            U[i], b[i] = t[:rank], t[rank]
        for j, idx in enumerate(by_col):
            X = np.hstack([U[rows[idx]], np.ones((len(idx), 1))])
            t = np.linalg.solve(X.T @ X + np.diag(pen), X.T @ (vals[idx] - mu - b[rows[idx]]))
            V[j], c[j] = t[:rank], t[rank]
    return U, V


def bench_fit(repeats, quick):
    import numpy as np

    from fennec.data.shipped import load_history
    from fennec.history.table import TaskScaler
    from fennec.subspace.factorization import TransferSubspace, als_fit

    print("\n== subspace fit ==")
    print(f"{'matrix':<34} {'rank':>4} {'iters':>5} {'ours s':>8} {'ours s/iter':>11} {'ref s/iter':>10} {'ref/ours':>9}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = load_history("shift_vtab")
    Y, _, _ = h.to_matrix()
    Z = TaskScaler.fit(Y).transform(Y)
    r_, c_ = np.nonzero(np.isfinite(Z))
    cases = [("shift_vtab 291x19 (90% obs)", r_, c_, Z[r_, c_], Z.shape, 4, 20)]
    if not quick:
        rng = np.random.default_rng(0)
        n, m, r = 10_000, 1_000, 16
        full_u, full_v = rng.normal(size=(n, r)), rng.normal(size=(m, r))
        obs = rng.random((n, m)) < 0.05
        rr, cc = np.nonzero(obs)
        vv = np.einsum("ij,ij->i", full_u[rr], full_v[cc]) + 0.1 * rng.normal(size=len(rr))
        cases.append(("synthetic 10000x1000 (5% obs)", rr, cc, vv, (n, m), r, 5))
    for name, rows, cols, vals, shape, rank, ref_iters in cases:
        ours, refs, iters = [], [], 0
        for _ in range(repeats):
            t = time.perf_counter()
            _, iters, _ = als_fit(rows, cols, vals, shape, rank=rank, l2=1.0, bias_l2=1.0, max_iter=100, tol=1e-6)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            reference_als(rows, cols, vals, shape, rank, 1.0, 1.0, ref_iters)
            refs.append((time.perf_counter() - t) / ref_iters)
        o = statistics.median(ours)
        ref = statistics.median(refs)
        print(f"{name:<34} {rank:>4} {iters:>5} {o:>8.2f} {o / iters:>11.4f} {ref:>10.4f} {ref / (o / iters):>9.1f}")
    t = median_time(lambda: TransferSubspace("auto").fit(Z), 1)
    est = TransferSubspace("auto").fit(Z)
    print(f"shift_vtab full fit with rank/l2 selection (5-fold x {len(est.cv_results_)} configs): {t:.1f} s "
          f"-> rank {est.n_components_}, l2 {est.l2_:g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/faiss threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="small sizes only (1k, 100k models; no 10k x 1k fit)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    set_threads(args.threads)
    import numpy as np

    print(f"fennec core benchmark: numpy {np.__version__}, {os.cpu_count()} cpus, threads={args.threads}")
    sizes = [1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]
    bench_index(sizes, args.repeats, args.threads)
    bench_fit(args.repeats, args.quick)


if __name__ == "__main__":
    main()
