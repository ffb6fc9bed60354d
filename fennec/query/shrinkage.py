"""How much to trust a model's history from other campaigns against what its side information says.

Two fine-tuning campaigns of the same task disagree (Kendall ~0.56 between two campaigns of the same models),
so for a new run of a task a model's measured result elsewhere is evidence, not the answer. In a zoo where
some task is measured by several campaigns, the weight ``w`` of the history-based score against the
side-information prior is chosen on exactly that situation: for every ordered pair of campaigns (A, B) of
the same task, the models measured by both are ranked for A by ``w * z_B + (1 - w) * s_A`` -- their
standardised result in B and their out-of-fold side-information profile on A (a placement fitted without
them) -- and ``w`` maximises the mean per-pair Kendall tau against A. Without such pairs (one campaign per
task, e.g. one history) ``w = 1``: a history's own tasks are ranked by its own results. Arrays in, arrays out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_MODELS = 3


def campaign_pairs(task_ids: Sequence[str], histories: Sequence[str]) -> list[tuple[int, int]]:
    """Ordered pairs of column positions (A, B) measuring the same task in two histories."""
    out = []
    for a, (ta, ha) in enumerate(zip(task_ids, histories, strict=True)):
        for b, (tb, hb) in enumerate(zip(task_ids, histories, strict=True)):
            if a != b and ta == tb and ha != hb:
                out.append((a, b))
    return out


def history_weight(Z: npt.NDArray[np.float64], side_profiles: npt.NDArray[np.float64],
                   pairs: Sequence[tuple[int, int]], grid: Sequence[float] = GRID) -> tuple[float, dict[float, float]]:
    """``(w, {w: mean Kendall})`` over the campaign ``pairs`` (module docstring); ``(1.0, {})`` without any."""
    from scipy.stats import kendalltau

    scores: dict[float, list[float]] = {float(w): [] for w in grid}
    for a, b in pairs:
        ok = np.isfinite(Z[:, a]) & np.isfinite(Z[:, b]) & np.isfinite(side_profiles[:, a])
        if ok.sum() < MIN_MODELS:
            continue
        for w in scores:
            pred = w * Z[ok, b] + (1 - w) * side_profiles[ok, a]
            if np.ptp(pred) > 0 and np.ptp(Z[ok, a]) > 0:
                scores[w].append(float(kendalltau(pred, Z[ok, a]).statistic))
    means = {w: float(np.mean(v)) for w, v in scores.items() if v}
    if not means:
        return 1.0, {}
    best = max(means, key=lambda w: (round(means[w], 3), w))  # near-ties: the larger weight on history
    return best, means
