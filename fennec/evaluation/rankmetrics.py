"""Per-task ranking metrics: scores predicted for the models of one task against their true results.

Conventions (recorded in every evaluation output):

- ``kendall_tau``: scipy's tau-b (``scipy.stats.kendalltau``, ties handled by tau-b).
- ``weighted_tau_scipy``: ``scipy.stats.weightedtau(scores, truth)`` with scipy's defaults (hyperbolic
  weigher, ``rank=True``: the average of the values weighted by the rank of ``scores`` and by the rank
  of ``truth``), as used by the SFDA and TransferGraph code.
- ``weighted_tau_truth``: ``scipy.stats.weightedtau(truth, scores, rank=None)``: weights from the
  decreasing rank of the *true* result only, as in the LogME and Model Spider tables. The two differ by
  up to ~0.3 on one task.
- ``regret_at_k``: best true result minus the best true result among the top-k predicted (in the task's
  units, e.g. accuracy points); ``rel_at_k``: the latter divided by the former.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from fennec.errors import SchemaError

CONVENTIONS = {
    "kendall_tau": "scipy.stats.kendalltau (tau-b)",
    "spearman": "scipy.stats.spearmanr",
    "pearson": "scipy.stats.pearsonr",
    "weighted_tau_scipy": "scipy.stats.weightedtau(scores, truth) (defaults: hyperbolic weigher, rank=True)",
    "weighted_tau_truth": "scipy.stats.weightedtau(truth, scores, rank=None) (weights by true rank)",
    "regret_at_k": "max(truth) - max(truth[top-k by score]), in the task's units",
    "rel_at_k": "max(truth[top-k by score]) / max(truth)",
}


def _pair(scores: npt.ArrayLike, truth: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=float).ravel()
    t = np.asarray(truth, dtype=float).ravel()
    if s.shape != t.shape:
        raise SchemaError(f"scores has {s.size} entries but truth has {t.size}")
    if not (np.isfinite(s).all() and np.isfinite(t).all()):
        raise SchemaError("scores and truth must be finite (drop unmeasured models first)")
    return s, t


def _constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def kendall_tau(scores: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """Kendall tau-b; NaN when fewer than 2 models or either side is constant."""
    s, t = _pair(scores, truth)
    if s.size < 2 or _constant(s) or _constant(t):
        return float("nan")
    return float(stats.kendalltau(s, t).statistic)


def spearman(scores: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    s, t = _pair(scores, truth)
    if s.size < 2 or _constant(s) or _constant(t):
        return float("nan")
    return float(stats.spearmanr(s, t).statistic)


def pearson(scores: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    s, t = _pair(scores, truth)
    if s.size < 2 or _constant(s) or _constant(t):
        return float("nan")
    return float(stats.pearsonr(s, t).statistic)


def weighted_tau(scores: npt.ArrayLike, truth: npt.ArrayLike, *, weigh_by: str = "scipy") -> float:
    """Weighted Kendall tau in one of two conventions (module docstring): ``"scipy"`` or ``"truth"``."""
    s, t = _pair(scores, truth)
    if weigh_by not in ("scipy", "truth"):
        raise SchemaError(f"weigh_by must be 'scipy' or 'truth', got {weigh_by!r}")
    if s.size < 2 or _constant(s) or _constant(t):
        return float("nan")
    if weigh_by == "scipy":
        return float(stats.weightedtau(s, t).statistic)
    return float(stats.weightedtau(t, s, rank=None).statistic)


def regret_at_k(scores: npt.ArrayLike, truth: npt.ArrayLike, k: int = 1) -> float:
    s, t = _pair(scores, truth)
    if k < 1:
        raise SchemaError(f"k must be >= 1, got {k}")
    top = np.argsort(-s, kind="stable")[:k]
    return float(t.max() - t[top].max())


def rel_at_k(scores: npt.ArrayLike, truth: npt.ArrayLike, k: int = 1) -> float:
    s, t = _pair(scores, truth)
    top = np.argsort(-s, kind="stable")[:k]
    best = t.max()
    return float(t[top].max() / best) if best != 0 else float("nan")


def ranking_metrics(scores: npt.ArrayLike, truth: npt.ArrayLike, *, ks: tuple[int, ...] = (1, 3)) -> dict[str, float]:
    """All metrics above for one task, as a flat dict (column names of the evaluation table)."""
    out = {
        "kendall_tau": kendall_tau(scores, truth),
        "spearman": spearman(scores, truth),
        "pearson": pearson(scores, truth),
        "weighted_tau_scipy": weighted_tau(scores, truth, weigh_by="scipy"),
        "weighted_tau_truth": weighted_tau(scores, truth, weigh_by="truth"),
    }
    for k in ks:
        out[f"regret_at_{k}"] = regret_at_k(scores, truth, k)
        out[f"rel_at_{k}"] = rel_at_k(scores, truth, k)
    return out


METRIC_COLUMNS = ("kendall_tau", "spearman", "pearson", "weighted_tau_scipy", "weighted_tau_truth",
                  "regret_at_1", "rel_at_1", "regret_at_3", "rel_at_3")
