"""Per-task metric rows for the evaluation, every method scored on exactly the same models and cells.

:meth:`Rows.block` takes, for one (protocol, task), the true results and every method's scores (Fennec,
the baselines). Two blocks are written:

- ``<protocol>``: the models where *every* method has a score -- so where ImageNet top-1 is known for some
  models, all methods are compared on those models only (and the task is left out of this block when fewer
  than 3 remain); a baseline that scores no model at all (top-1 on a zoo of fine-tuned checkpoints) is left
  out;
- ``<protocol>:all``: every model with a true result, for the methods that score all of them (Fennec, the
  history prior; not the side-information baselines) -- the view that does not depend on which models have
  a top-1.

The random baseline is the mean over seeded random scorings of the same cells; its generator is keyed by
(seed, block, task, k, call count), so it does not depend on which other protocols run.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from fennec.evaluation.rankmetrics import ranking_metrics

MIN_MODELS = 3
#: baselines known for some models only (left out of the ``:all`` blocks even on a task where they happen to
#: cover every measured model, so that an ``:all`` block has the same methods on every task)
PARTIAL = ("imagenet_top1", "params")


class Rows:
    """Collects per-task metric rows (one per protocol block, task, method, k, draw)."""

    def __init__(self, seed: int = 0, n_random: int = 50) -> None:
        self.rows: list[dict] = []
        self.seed = int(seed)
        self.n_random = int(n_random)
        self._calls: dict[str, int] = {}

    def block(self, protocol: str, task: str, truth, methods: Mapping[str, np.ndarray], *, k=np.nan, draw=np.nan,
              n_random: int | None = None) -> None:
        """Score ``methods`` against ``truth`` on common cells (module docstring); NaN = no score."""
        truth = np.asarray(truth, dtype=float)
        have = np.isfinite(truth)
        scores = {m: np.asarray(s, dtype=float) for m, s in methods.items()}
        kept = {m: s for m, s in scores.items() if np.isfinite(s).any()}
        common = have.copy()
        for s in kept.values():
            common &= np.isfinite(s)
        self._write(protocol, task, truth, kept, common, k=k, draw=draw, n_random=n_random)
        full = {m: s for m, s in kept.items() if m not in PARTIAL and np.isfinite(s[have]).all()}
        if full and not np.array_equal(common, have):
            self._write(f"{protocol}:all", task, truth, full, have, k=k, draw=draw, n_random=n_random)

    def _write(self, protocol, task, truth, methods, mask, *, k, draw, n_random) -> None:
        if mask.sum() < MIN_MODELS or not methods:
            return
        base = {"protocol": protocol, "task_id": task, "k": k, "draw": draw, "n_models": int(mask.sum())}
        for name, s in methods.items():
            self.rows.append({**base, "method": name, **ranking_metrics(s[mask], truth[mask])})
        self._random(protocol, task, truth[mask], k=k, draw=draw, n=n_random or self.n_random)

    def _random(self, protocol: str, task: str, truth: np.ndarray, *, k, draw, n: int) -> None:
        key = f"{protocol}|{task}|{k}"
        self._calls[key] = self._calls.get(key, 0) + 1
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode()), self._calls[key]])
        draws = [ranking_metrics(rng.random(len(truth)), truth) for _ in range(n)]
        row = {"protocol": protocol, "task_id": task, "method": "random", "k": k, "draw": draw,
               "n_models": len(truth)}
        row.update({c: float(np.nanmean([d[c] for d in draws])) for c in draws[0]})
        self.rows.append(row)
