"""Rebuild the shipped archi2vec catalogue (``data/archi2vec/``) from every timm architecture.

Resumable: progress is appended to ``data/archi2vec/.cache/progress.jsonl`` after each architecture, so
running the script again after a kill continues where it stopped. Prints the summary at the end.

    python scripts/build_archi2vec_catalogue.py                 # all timm.list_models(), resume
    python scripts/build_archi2vec_catalogue.py --fresh         # start over
    python scripts/build_archi2vec_catalogue.py --limit 50      # first 50 names (a smoke run)
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent)
)  # run from a checkout without installing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir", default=None, help="catalogue directory (default: data/archi2vec)"
    )
    parser.add_argument("--n-features", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--node-label", default="op_shape", choices=["op_shape", "op"])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per architecture")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N architectures")
    parser.add_argument("--filter", default=None, help="timm.list_models() filter, e.g. 'resnet*'")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier progress")
    parser.add_argument(
        "--retry-failed", action="store_true", help="try failed architectures again"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()
    import timm
    import torch

    import archi2vec

    torch.set_num_threads(args.threads)
    names = timm.list_models(args.filter) if args.filter else timm.list_models()
    if args.limit:
        names = names[: args.limit]
    start = time.perf_counter()
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        manifest = archi2vec.build_catalogue(
            names,
            out_dir=args.out_dir,
            n_features=args.n_features,
            iterations=args.iterations,
            node_label=args.node_label,
            timeout_s=args.timeout,
            resume=not args.fresh,
            retry_failed=args.retry_failed,
        )
    wall = time.perf_counter() - start
    t = manifest["timing"]
    print(f"architectures requested : {manifest['n_requested']}")
    print(
        f"encoded                 : {manifest['n_encoded']}  graph kinds {manifest['graph_kinds']}"
    )
    print(f"failed                  : {manifest['n_failed']}")
    for name, error in manifest["failures"].items():
        print(f"  {name}: {error[:160]}")
    print(f"this run wall time      : {wall:.1f} s ({torch.get_num_threads()} torch thread(s))")
    print(
        f"encode time, all runs   : {t['encode_seconds_total']:.1f} s (median {t['encode_seconds_median']:.3f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
