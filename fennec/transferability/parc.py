"""PARC: Pairwise Annotation Representation Comparison (Bolya, Mittapalli, Hoffman, NeurIPS 2021).

PARC = 100 · Spearman(upper triangle of 1 − corr(F̃), upper triangle of 1 − corr(Y)), where F̃ are
the features reduced to 32 dimensions by PCA and standardised column-wise, ``corr`` is the
correlation between *samples* (rows), and Y are one-hot labels.

Blocked, exact, bounded memory. The label dissimilarity of two one-hot rows takes only two values:
0 for a same-class pair and C/(C−1) for a different-class pair. Spearman's ρ against a two-valued
variable is the point-biserial correlation of the feature-distance ranks, so it only needs

* S = the sum of the (average, tie-aware) ranks of the different-class pairs among all
  M = N(N−1)/2 pair distances, a Mann–Whitney statistic between the two groups of pairs, and
* the tie correction Σ(t³ − t) of the distances (for the variance of their ranks).

The smaller group of pairs (usually the same-class pairs, about M/C of them) is computed, sorted and
kept in memory (8 bytes per pair; ~16 MB at N = 20 000, C = 100; at worst M/2 pairs, 800 MB at
N = 20 000 with two balanced classes). The larger group is streamed in blocks of rows (each block a
(b × 32)·(32 × N) product, sorted, then counted against the kept group with ``searchsorted``), so no
N×N matrix is ever allocated. The rank sum is exact in float64, ties included. The one
approximation: ties *between two distances of the streamed group that fall in different blocks*
are left out of the tie correction; such exact ties arise only from duplicated samples, and they
change the denominator by a relative O(Σt³/M³). With N(N−1)/2 ≤ ``block_pairs`` (N ≲ 2 800 by
default) everything is in one block and the result equals ``scipy.stats.spearmanr`` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from fennec.errors import SchemaError
from fennec.transferability._validation import check_features_labels

__all__ = ["parc"]


def parc(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_pca: int = 32,
    random_state: int = 0,
    block_pairs: int = 4_000_000,
) -> float:
    """PARC score ×100 (higher is better; in [−100, 100]).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)
    n_pca : int, default=32
        PCA dimension before standardisation (capped at min(N, D)); the paper uses 32.
    random_state : int, default=0
        Seed of the PCA solver (scikit-learn picks a randomised solver for large inputs).
    block_pairs : int, default=4_000_000
        About how many pair distances are held per streamed block (memory ~ 40 bytes per pair).

    Returns
    -------
    float
        100 × Spearman's ρ between feature and label dissimilarities of all sample pairs.

    Raises
    ------
    SchemaError
        Invalid inputs, or no class with two samples (no same-class pair: ρ is undefined).
    """
    from sklearn.decomposition import PCA

    f, y, c = check_features_labels(features, labels)
    n, d = f.shape
    counts = np.bincount(y, minlength=c).astype(np.int64)
    n_same = int(np.sum(counts * (counts - 1) // 2))
    m = n * (n - 1) // 2
    n_diff = m - n_same
    if n_same == 0:
        raise SchemaError("PARC needs at least one class with 2 or more samples (no same-class pair)")
    k = min(int(n_pca), n, d)
    if k < 1:
        raise SchemaError(f"The 'n_pca' parameter of parc must be >= 1. Got {n_pca!r} instead.")
    z = PCA(n_components=k, random_state=random_state).fit_transform(f)
    std = z.std(axis=0)
    z = (z - z.mean(axis=0)) / np.where(std > 0, std, 1.0)
    # Row-wise correlation = dot products of rows centred and scaled to unit norm.
    z = z - z.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    r = np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)
    block_rows = max(1, int(block_pairs) // max(n, 1))

    keep_same = n_same <= n_diff
    kept = np.sort(np.concatenate(list(_pairs(r, y, block_rows, same=keep_same)) or [np.empty(0)]))
    uniq, a_counts = np.unique(kept, return_counts=True)
    n_kept = kept.shape[0]
    less_sum = 0  # Σ over kept values of #(streamed values < it)
    eq_sum = 0  # Σ over kept values of #(streamed values == it)
    b_on_kept = np.zeros(uniq.shape[0], dtype=np.int64)  # streamed values tied with each kept value
    tie_streamed = 0.0  # Σ(t³ − t) over ties among streamed values only (within a block)
    for block in _pairs(r, y, block_rows, same=not keep_same):
        block.sort()
        left = np.searchsorted(block, uniq, side="left")
        right = np.searchsorted(block, uniq, side="right")
        less_sum += int(np.dot(left, a_counts))
        tied = right - left
        eq_sum += int(np.dot(tied, a_counts))
        b_on_kept += tied
        tie_streamed += _ties_not_in(block, uniq)
    # Rank sum of the kept group (mid-ranks): within-group part + values of the other group below.
    # Everything doubled to stay in exact integers.
    rank_sum_kept_x2 = n_kept * (n_kept + 1) + 2 * less_sum + eq_sum
    rank_sum_diff_x2 = rank_sum_kept_x2 if not keep_same else m * (m + 1) - rank_sum_kept_x2
    t_all = (a_counts + b_on_kept).astype(np.float64)
    tie_term = float(np.sum(t_all**3 - t_all)) + tie_streamed
    num_x2 = rank_sum_diff_x2 - n_diff * (m + 1)  # 2·(S − n_diff·r̄)
    var_ranks = (m**3 - m - tie_term) / 12.0  # Σ(r − r̄)²
    denom = math.sqrt(var_ranks * n_diff * n_same / m) if n_diff else 0.0
    if denom == 0.0:
        return float("nan")
    return float(100.0 * (num_x2 / 2.0) / denom)


def _pairs(r: np.ndarray, y: np.ndarray, block_rows: int, *, same: bool) -> Iterator[np.ndarray]:
    """Distances 1 − rᵢ·rⱼ of the pairs i < j whose labels are equal (``same``) or differ."""
    n = r.shape[0]
    if same:  # same-class pairs: one small product per class
        for cls in np.unique(y):
            idx = np.flatnonzero(y == cls)
            if idx.size < 2:
                continue
            for start in range(0, idx.size - 1, block_rows):
                rows = idx[start : start + block_rows]
                cols = idx[start:]
                dist = 1.0 - r[rows] @ r[cols].T
                iu = np.arange(rows.size)[:, None] < np.arange(cols.size)[None, :]
                yield dist[iu]
        return
    for start in range(0, n - 1, block_rows):
        stop = min(start + block_rows, n)
        dist = 1.0 - r[start:stop] @ r[start:].T
        upper = np.arange(stop - start)[:, None] < np.arange(n - start)[None, :]
        mask = upper & (y[start:stop, None] != y[None, start:])
        yield dist[mask]


def _ties_not_in(sorted_block: np.ndarray, uniq_kept: np.ndarray) -> float:
    """Σ(t³ − t) over runs of equal values in ``sorted_block`` whose value is not in ``uniq_kept``."""
    if sorted_block.size < 2:
        return 0.0
    starts = np.flatnonzero(np.concatenate(([True], sorted_block[1:] != sorted_block[:-1])))
    runs = np.diff(np.append(starts, sorted_block.size))
    multi = runs > 1
    if not multi.any():
        return 0.0
    values, t = sorted_block[starts[multi]], runs[multi].astype(np.int64)
    pos = np.searchsorted(uniq_kept, values)
    in_kept = (pos < uniq_kept.size) & (uniq_kept[np.minimum(pos, uniq_kept.size - 1)] == values)
    t = t[~in_kept].astype(np.float64)
    return float(np.sum(t**3 - t))
