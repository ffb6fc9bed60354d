"""The campaign runners side by side: the same small campaign in-process, on Ray with 1 worker and with 2.

    python benchmarks/bench_campaign.py [--images 200] [--seeds 3]

Each run starts from an empty output folder (features extracted again); every job uses one torch thread and
one BLAS thread. The Ray runs start their local cluster first (``ray.init(num_cpus=N)``, timed apart); a
run's wall time is from the first job sent to the last row written, so Ray's includes starting its worker
processes and their imports of torch and timm. Prints the wall times, the speed-up of 2 workers over 1,
and the per-job overhead of Ray over the in-process runner ((Ray 1 worker - in-process) / jobs).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import textwrap
import time
from pathlib import Path

# one BLAS thread everywhere, as in a Ray worker (Ray sets OMP_NUM_THREADS=1 for a 1-CPU task)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

SPEC = """
name = "bench"
out = "out"
seeds = {seeds}
recipes = ["linear_probe", "metric:logme", {{kind = "finetune", lr_head = 0.05}}]

[budget]
images = {images}
image_size = 48
epochs = 1
threads = 1

[[models]]
name = "test_vit"
pretrained = false
[[models]]
name = "test_efficientnet"
pretrained = false
[[models]]
name = "resnet10t"
pretrained = false

[[tasks]]
example = "sklearn_digits"
subsets = {{classes = 5, count = 2, seed = 0}}
"""


def run(spec, runner: str, workers: int | None, out: Path) -> tuple[float, float, int]:
    """(cluster start seconds, run seconds, jobs done)."""
    from fennec.campaign import run_campaign
    from fennec.campaign.executor import import_ray, start_ray

    start = 0.0
    if runner == "ray":
        t0 = time.perf_counter()
        start_ray(workers=workers)
        start = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        report = run_campaign(spec.with_out(out), runner=runner, workers=workers, progress=False)
        wall = time.perf_counter() - t0
    finally:
        if runner == "ray":
            import_ray().shutdown()
    if report.n_failed:
        raise SystemExit(
            f"{runner}: {report.n_failed} job(s) failed: {report.outcomes['error'].iloc[0]}"
        )
    return start, wall, report.n_done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200, help="images per task")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    from fennec.backbone.preprocess import import_timm
    from fennec.campaign import load_spec, plan

    import_timm()  # the driver's own imports are not the in-process runner's cost (a Ray worker's are Ray's)

    with tempfile.TemporaryDirectory(prefix="bench_campaign_") as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(
            textwrap.dedent(SPEC.format(seeds=list(range(args.seeds)), images=args.images))
        )
        spec = load_spec(path)
        n = len(plan(spec).jobs)
        print(
            f"campaign: {len(spec.models)} models x {len(spec.tasks)} tasks x {len(spec.recipes)} recipes x "
            f"{len(spec.seeds)} seeds = {n} jobs ({args.images} images per task, 48 px, 1 thread per job)"
        )
        results = {}
        for label, runner, workers in (
            ("in-process", "local", None),
            ("ray, 1 worker", "ray", 1),
            ("ray, 2 workers", "ray", 2),
        ):
            start, wall, done = run(
                spec, runner, workers, Path(tmp) / label.replace(" ", "_").replace(",", "")
            )
            assert done == n, (label, done, n)
            results[label] = wall
            extra = f" (+ {start:.1f} s to start the cluster)" if runner == "ray" else ""
            print(f"  {label:<15} {wall:7.1f} s  {wall / n * 1000:7.0f} ms/job{extra}")
        local, one, two = results["in-process"], results["ray, 1 worker"], results["ray, 2 workers"]
        print(f"speed-up of 2 workers over 1: {one / two:.2f}x (ideal 2x on 2 free cores)")
        print(
            f"per-job overhead of Ray (1 worker) over in-process: {(one - local) / n * 1000:.0f} ms "
            f"({(one / local - 1) * 100:+.0f} %)"
        )


if __name__ == "__main__":
    main()
