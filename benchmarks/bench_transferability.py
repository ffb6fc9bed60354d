"""Time the transferability metrics against the floor of any exact method.

The floor is one Gram matrix FᵀF plus one symmetric eigendecomposition (``np.linalg.eigh``, float64),
the work any exact LogME/H-score must do at least once. Each size runs ours and the floor in
alternation in one process; medians of the repeats and their ratio are printed side by side.
BLAS runs on one thread unless ``--threads`` says otherwise (the machines are shared: fix it and
report it). Features have class structure (class means plus noise), float64.

    python benchmarks/bench_transferability.py                 # all four sizes
    python benchmarks/bench_transferability.py --sizes small   # (1000, 512, 10) and (5000, 2048, 100)
    python benchmarks/bench_transferability.py --only parc     # the PARC table only

PARC is timed at (N, 2048, 100), N = ``--parc-n`` (20 000), beside the floor of the same size.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", choices=["small", "all"], default="all")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per size (medians are reported)")
    p.add_argument("--parc-n", type=int, default=20000, help="N of the PARC timing (D=2048, C=100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["parc"], default=None, help="run only this section (parc: the PARC table)")
    return p.parse_args()


ARGS = _parse()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from fennec.transferability import METRICS, LogME, shrinkage_hscore  # noqa: E402

SIZES = [(1000, 512, 10), (5000, 2048, 100), (20000, 2048, 100), (50000, 2048, 1000)]


def make_data(n: int, d: int, c: int, seed: int, signal: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % c
    rng.shuffle(labels)
    feats = rng.standard_normal((n, d), dtype=np.float32)
    feats += signal * rng.standard_normal((c, d), dtype=np.float32)[labels]
    return feats.astype(np.float64), labels


def floor(f: np.ndarray) -> None:
    np.linalg.eigh(f.T @ f)


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def load() -> str:
    try:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average n/a"


def main() -> int:
    sizes = SIZES[:2] if ARGS.sizes == "small" else SIZES
    blas = ", ".join(f"{i['internal_api']} {i.get('version')}" for i in threadpool_info())
    print(f"python {platform.python_version()}, numpy {np.__version__}, BLAS: {blas}")
    print(f"BLAS threads: {ARGS.threads}; repeats: {ARGS.repeats} (medians); {load()} at start; cpus: {os.cpu_count()}")
    print()
    if ARGS.only == "parc":
        with threadpool_limits(limits=ARGS.threads):
            parc_table()
        return 0
    print(f"{'N':>6} {'D':>5} {'C':>5} | {'floor s':>8} | {'LogME s':>8} {'ratio':>6} | {'shrinkH s':>9} {'ratio':>6} | LogME score")
    print("-" * 86)
    with threadpool_limits(limits=ARGS.threads):
        for n, d, c in sizes:
            f, y = make_data(n, d, c, ARGS.seed)
            t_floor, t_logme, t_shr = [], [], []
            score = float("nan")
            for _ in range(ARGS.repeats):  # alternate: floor, LogME, shrinkage H-score
                t_floor.append(timed(floor, f))
                t0 = time.perf_counter()
                score = LogME().fit(f, y).score_
                t_logme.append(time.perf_counter() - t0)
                t_shr.append(timed(shrinkage_hscore, f, y))
            mf, ml, ms = (statistics.median(t) for t in (t_floor, t_logme, t_shr))
            print(f"{n:>6} {d:>5} {c:>5} | {mf:8.3f} | {ml:8.3f} {ml / mf:6.2f} | {ms:9.3f} {ms / mf:6.2f} | {score:.6f}",
                  flush=True)
            del f
        print(f"({load()} after the LogME/H-score table)")
        print()
        other_metrics(sizes)
        parc_table()
    print(f"\nprocess max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; {load()} at end")
    return 0


def other_metrics(sizes) -> None:
    names = [m for m in sorted(METRICS) if m not in ("logme", "shrinkage_hscore")]
    print("other metrics, seconds (one run each; floor of the same size for scale):")
    print(f"{'N':>6} {'D':>5} {'C':>5} | {'floor':>6} | " + " ".join(f"{m:>9}" for m in names))
    for n, d, c in sizes[:2]:
        f, y = make_data(n, d, c, ARGS.seed)
        cells = []
        for m in names:
            if m == "nleep" and c > 10:
                cells.append(f"{'skipped':>9}")  # 5·C = 500 full-covariance GMM components
                continue
            if m == "parc" and n > 10000:
                cells.append(f"{'below':>9}")
                continue
            cells.append(f"{timed(METRICS[m], f, y):9.3f}")
        print(f"{n:>6} {d:>5} {c:>5} | {timed(floor, f):6.3f} | " + " ".join(cells), flush=True)
    print("(nleep skipped at C=100: a GMM with 5·C = 500 full-covariance components is a different cost class)")
    print()


def parc_table() -> None:
    """PARC beside the floor of the same size, alternating, on the benchmark's features (class-mean
    signal 0.5: the two groups of pair distances barely overlap) and on weak features (signal 0.05:
    they overlap everywhere, the costlier case)."""
    n, d, c = ARGS.parc_n, 2048, 100
    print(f"PARC at (N, D, C) = ({n}, {d}, {c}) beside the floor (median of {ARGS.repeats}; weak features: one run)")
    print(f"{'features':<22} | {'floor s':>8} | {'PARC s':>8} {'ratio':>6} | {'score':>10} | peak MiB beyond input")
    for name, signal, repeats in (("class signal 0.5", 0.5, ARGS.repeats), ("weak, signal 0.05", 0.05, 1)):
        f, y = make_data(n, d, c, ARGS.seed, signal=signal)
        t_floor, t_parc = [], []
        value = float("nan")
        for _ in range(repeats):
            t_floor.append(timed(floor, f))
            t0 = time.perf_counter()
            value = METRICS["parc"](f, y)
            t_parc.append(time.perf_counter() - t0)
        mf, mp = statistics.median(t_floor), statistics.median(t_parc)
        peak = traced_peak(METRICS["parc"], f, y) if repeats > 1 else float("nan")
        print(f"{name:<22} | {mf:8.3f} | {mp:8.3f} {mp / mf:6.2f} | {value:10.6f} | {peak:.0f}", flush=True)
    dense = n * n * 8 / 2**20
    print(f"(one dense N×N float64 matrix would be {dense:.0f} MiB)")


def traced_peak(fn, *args) -> float:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn(*args)
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        tracemalloc.stop()


if __name__ == "__main__":
    sys.exit(main())
