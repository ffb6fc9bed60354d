"""Benchmark archi2vec: seconds per architecture (trace / graph / embed) and the catalogue rebuild rate.

    python benchmarks/bench_archi2vec.py                 # 5 archs x 3 repeats, every 25th timm arch
    python benchmarks/bench_archi2vec.py --stride 10 --repeats 5

Runs with 1 torch thread (report it: the 2 cores here are shared). Times are medians after timm is imported;
the rebuild rate encodes an evenly spaced sample of ``timm.list_models()`` into a temporary directory and
projects the full catalogue time. The shipped manifest's own build timing is printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ARCHS = (
    "resnet50",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_base_patch16_224",
    "swin_tiny_patch4_window7_224",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--stride", type=int, default=25, help="sample every N-th timm architecture"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()
    import timm
    import torch

    import archi2vec
    from archi2vec import Archi2Vec, to_networkx, trace_model

    torch.set_num_threads(args.threads)
    import_s = time.perf_counter() - t0
    encoder = Archi2Vec().fit()
    trace_model("test_resnet")  # warm-up: first fx trace pays one-off costs

    print(
        f"torch threads {torch.get_num_threads()}; import archi2vec+timm {import_s:.2f} s; timm {timm.__version__}"
    )
    print(
        f"\n{'arch':32s} {'nodes':>6s} {'trace s':>8s} {'graph s':>8s} {'embed s':>8s} {'total s':>8s}"
    )
    totals = []
    for arch in ARCHS:
        rows = []
        for _ in range(args.repeats):
            a = time.perf_counter()
            tr = trace_model(arch)
            b = time.perf_counter()
            g = to_networkx(tr)
            c = time.perf_counter()
            encoder.transform_one(g)
            d = time.perf_counter()
            rows.append((b - a, c - b, d - c, d - a))
        med = [statistics.median(col) for col in zip(*rows, strict=True)]
        totals.append(med[3])
        print(
            f"{arch:32s} {g.number_of_nodes():6d} {med[0]:8.3f} {med[1]:8.3f} {med[2]:8.3f} {med[3]:8.3f}"
        )
    print(
        f"{'median over archs':32s} {'':6s} {'':8s} {'':8s} {'':8s} {statistics.median(totals):8.3f}"
    )

    names = timm.list_models()[:: args.stride]
    with tempfile.TemporaryDirectory() as tmp:
        a = time.perf_counter()
        manifest = archi2vec.build_catalogue(names, out_dir=tmp, progress=False)
        wall = time.perf_counter() - a
    rate = len(names) / wall
    n_all = len(timm.list_models())
    print(
        f"\ncatalogue rebuild sample: {len(names)} archs (every {args.stride}th) in {wall:.1f} s = {rate:.2f} arch/s"
    )
    print(
        f"  failures {manifest['n_failed']}; projected full catalogue ({n_all} archs): {n_all / rate / 60:.1f} min"
    )
    try:
        _, _, meta = archi2vec.load_catalogue()
        t = meta["timing"]
        print(
            f"shipped catalogue: {meta['n_encoded']} encoded, {meta['n_failed']} failed, encode total "
            f"{t['encode_seconds_total']:.0f} s, last build session wall {t['last_session_wall_seconds']:.0f} s "
            f"(threads {meta.get('threads')})"
        )
    except archi2vec.Archi2VecError as exc:
        print(f"shipped catalogue: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
