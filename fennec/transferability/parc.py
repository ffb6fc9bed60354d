"""PARC: Pairwise Annotation Representation Comparison (Bolya, Mittapalli, Hoffman, NeurIPS 2021).

PARC = 100 · Spearman(upper triangle of 1 − corr(F̃), upper triangle of 1 − corr(Y)), where F̃ are
the features reduced to 32 dimensions by PCA and standardised column-wise, ``corr`` is the
correlation between *samples* (rows), and Y are one-hot labels.

The PCA is exact: the top eigenvectors of the D × D scatter matrix of the centred features (or of the
N × N Gram matrix when N < D), formed a block of samples at a time with BLAS ``syrk``, each component's
sign fixed by its largest loading (the sign matters: each row of F̃ is centred before the correlation).
scikit-learn's ``PCA``, used before, switches to a randomised solver on large inputs, whose components
are approximate where the eigenvalues crowd: on the benchmark's weak features (N = 20 000, D = 2048)
it gave 0.244–0.258 over three seeds against the exact 0.286, and it was slower.

Blocked, exact, bounded memory. The label dissimilarity of two one-hot rows takes only two values:
0 for a same-class pair and C/(C−1) for a different-class pair. Spearman's ρ against a two-valued
variable is the point-biserial correlation of the feature-distance ranks, so it only needs

* S = the sum of the (average, tie-aware) ranks of the different-class pairs among all
  M = N(N−1)/2 pair distances, a Mann–Whitney statistic between the two groups of pairs, and
* the tie correction Σ(t³ − t) of the distances (for the variance of their ranks).

The samples are first ordered by class, so the same-class pairs are the upper triangles of the
diagonal class blocks and the different-class pairs are the rectangles right of them: every tile is a
plain (rows × 32)·(32 × cols) product, with no pair mask. The smaller group of pairs (usually the
same-class pairs, about M/C of them) is computed, sorted and kept in memory (8 bytes per pair; ~16 MB
at N = 20 000, C = 100; at worst M/2 pairs, 800 MB at N = 20 000 with two balanced classes), with a
grid over its range (8-16 cells per distinct value, 4 bytes each, at most 2**24 cells). The larger
group is streamed in tiles of 2**18 distances (small enough to stay in cache beside the grid) and
never sorted: each value finds its cell with one subtraction, one multiplication and one gather,
which also says whether the cell holds kept values (values beyond the kept range land in the grid's
two end cells, which need no range test); only then (about one value in four on overlapping groups)
does it gather the cell's first kept value and step over those not above it. No N×N matrix is ever
allocated, and the rank sum is exact in float64, ties between the two groups included.

Ties *within* the streamed group enter the tie correction Σ(t³ − t) only through duplicated samples or
samples with constant reduced features; then the streamed group is instead sorted in chunks of
``block_pairs`` distances and counted with ``searchsorted``, which finds the ties within a chunk (the
ones between two chunks are left out, a relative O(Σt³/M³) change of the denominator). Without such
samples two streamed distances could tie only by coincidence, each such tie changing Σ(t³ − t) by 6
against M³; they are not looked for. Either way the value equals ``scipy.stats.spearmanr`` of the
dense matrices up to these coincidences (the tests check 1e-9).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from fennec.errors import SchemaError
from fennec.transferability._validation import check_features_labels

__all__ = ["parc"]

BLOCK_PAIRS = 16_000_000  # streamed distances sorted and counted at a time
TILE_PAIRS = 1 << 20  # distances per matrix product
LOOKUP_PAIRS = 1 << 18  # distances per matrix product when counting through the grid (they stay in cache)
LOOKUP_WIDTH = 2048  # columns per such product (its right-hand factor stays in cache)
PCA_BLOCK = 1 << 21  # entries of the centred features formed at a time (16 MB)
CELLS_MAX = 1 << 24  # cells of the kept group's lookup grid (4 bytes each)


def parc(
    features: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    n_pca: int = 32,
    random_state: int = 0,
    block_pairs: int = BLOCK_PAIRS,
) -> float:
    """PARC score ×100 (higher is better; in [−100, 100]).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)
    n_pca : int, default=32
        PCA dimension before standardisation (capped at min(N, D)); the paper uses 32.
    random_state : int, default=0
        Not used: the PCA is exact and deterministic (no randomised solver). Kept so that existing calls
        stay valid.
    block_pairs : int, default=16_000_000
        The largest tile of pair distances computed at once is ``min(block_pairs, 2**20)`` (``2**18``
        for the streamed group counted through the grid); with duplicated samples, also how many
        streamed distances are sorted and counted at a time (memory ~8 bytes per pair).

    Returns
    -------
    float
        100 × Spearman's ρ between feature and label dissimilarities of all sample pairs.

    Raises
    ------
    SchemaError
        Invalid inputs, or no class with two samples (no same-class pair: ρ is undefined).
    """
    f, y, c = check_features_labels(features, labels)
    n = f.shape[0]
    counts = np.bincount(y, minlength=c).astype(np.int64)
    n_same = int(np.sum(counts * (counts - 1) // 2))
    m = n * (n - 1) // 2
    n_diff = m - n_same
    if n_same == 0:
        raise SchemaError("PARC needs at least one class with 2 or more samples (no same-class pair)")
    if isinstance(block_pairs, bool) or not (isinstance(block_pairs, (int, np.integer)) and block_pairs >= 1):
        raise SchemaError(f"The 'block_pairs' parameter of parc must be an int >= 1. Got {block_pairs!r} instead.")
    r = _unit_rows(f, n_pca)[np.argsort(y, kind="stable")]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    keep_same = n_same <= n_diff
    tile = min(int(block_pairs), TILE_PAIRS)
    kept = _Kept(np.concatenate([_distances(r, t) for t in _tiles(bounds, tile, same=keep_same)] or [np.empty(0)]))
    if _may_tie(r):
        streamed = _tiles(bounds, tile, same=not keep_same)
        less_sum, eq_sum, b_on_kept, tie_streamed = _count_sorted(r, streamed, kept, int(block_pairs))
    else:
        tile = min(tile, LOOKUP_PAIRS)
        streamed = _tiles(bounds, tile, same=not keep_same, width=LOOKUP_WIDTH)
        less_sum, eq_sum, b_on_kept, tie_streamed = _count_lookup(r, streamed, kept, tile)
    t_all = (kept.counts + b_on_kept).astype(np.float64)
    tie_term = float(np.sum(t_all**3 - t_all)) + tie_streamed
    return _rho_x100(kept.values.size, less_sum, eq_sum, tie_term, keep_same=keep_same, m=m, n_same=n_same)


def _rho_x100(n_kept: int, less_sum: int, eq_sum: int, tie_term: float, *, keep_same: bool, m: int,
              n_same: int) -> float:
    """100 x Spearman's rho between pair distance and "different class" from the kept group's rank sum.

    Rank sum of the kept group (mid-ranks): its within-group part plus the values of the other group below
    (``less_sum``) and equal (``eq_sum``); everything doubled to stay in exact integers."""
    n_diff = m - n_same
    rank_sum_kept_x2 = n_kept * (n_kept + 1) + 2 * less_sum + eq_sum
    rank_sum_diff_x2 = rank_sum_kept_x2 if not keep_same else m * (m + 1) - rank_sum_kept_x2
    num_x2 = rank_sum_diff_x2 - n_diff * (m + 1)  # 2·(S − n_diff·r̄)
    var_ranks = (m**3 - m - tie_term) / 12.0  # Σ(r − r̄)²
    denom = math.sqrt(var_ranks * n_diff * n_same / m) if n_diff else 0.0
    if denom == 0.0:
        return float("nan")
    return float(100.0 * (num_x2 / 2.0) / denom)


def _unit_rows(f: np.ndarray, n_pca: int) -> np.ndarray:
    """PCA to ``n_pca`` dimensions, columns standardised, rows centred and scaled to unit norm: the row-wise
    correlation of two samples is then the dot product of their rows."""
    n, d = f.shape
    k = min(int(n_pca), n, d)
    if k < 1:
        raise SchemaError(f"The 'n_pca' parameter of parc must be >= 1. Got {n_pca!r} instead.")
    z = _pca(f, k)
    std = z.std(axis=0)
    z = (z - z.mean(axis=0)) / np.where(std > 0, std, 1.0)
    z = z - z.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)


def _pca(f: np.ndarray, k: int) -> np.ndarray:
    """Exact PCA scores (N × k, components by decreasing variance) of the centred features X, from the top
    k eigenpairs of the D × D scatter matrix XᵀX, or of the N × N Gram matrix XXᵀ when N < D.

    Each component's sign makes its loading of largest magnitude positive (scikit-learn's convention
    since 1.5). The sign matters: PARC centres each row of the reduced features, so flipping one column
    changes the row correlations. The components are unique (up to that sign) when the k-th and
    (k+1)-th eigenvalues differ; when they (nearly) tie, so does the choice of the kept subspace.
    X is formed a block at a time (16 MB), never whole.
    """
    from scipy.linalg import eigh

    n, d = f.shape
    mean = f.mean(axis=0)
    if d <= n:
        _, v = eigh(_scatter(f, mean, rows=True), subset_by_index=[d - k, d - 1], overwrite_a=True)
        v = v[:, ::-1]  # eigh's eigenvalues ascend
        v = v * _signs(v)
        return np.concatenate([(f[s] - mean) @ v for s in _slices(n, d)])
    w, u = eigh(_scatter(f, mean, rows=False), subset_by_index=[n - k, n - 1], overwrite_a=True)
    w, u = w[::-1], u[:, ::-1]
    # Scores u·σ; the loadings are Xᵀu/σ, whose signs are those of Xᵀu.
    loadings = np.concatenate([(f[:, s] - mean[s]).T @ u for s in _slices(d, n)])
    return u * (np.sqrt(np.maximum(w, 0.0)) * _signs(loadings))


def _scatter(f: np.ndarray, mean: np.ndarray, *, rows: bool) -> np.ndarray:
    """The lower triangle (Fortran-ordered, for LAPACK to work in place) of XᵀX (``rows``: summed over
    blocks of rows) or of XXᵀ (summed over blocks of columns), X = f − mean: one BLAS syrk per block."""
    from scipy.linalg.blas import dsyrk

    n, d = f.shape
    out = np.zeros((d, d) if rows else (n, n), order="F")
    for s in _slices(n, d) if rows else _slices(d, n):
        x = f[s] - mean if rows else f[:, s] - mean[s]
        # x.T is Fortran-ordered, so no copy: trans=0 adds x.T·x, trans=1 adds x·x.T.
        out = dsyrk(1.0, x.T, beta=1.0, c=out, trans=0 if rows else 1, lower=1, overwrite_c=1)
    return out


def _slices(length: int, other: int) -> list[slice]:
    """Slices of ``range(length)`` of about PCA_BLOCK / ``other`` indices each."""
    step = max(1, PCA_BLOCK // max(other, 1))
    return [slice(a, min(a + step, length)) for a in range(0, length, step)]


def _signs(v: np.ndarray) -> np.ndarray:
    """±1 per column of ``v``: the sign of the column's entry of largest magnitude (+1 for a zero column)."""
    top = v[np.argmax(np.abs(v), axis=0), np.arange(v.shape[1])]
    return np.where(top < 0, -1.0, 1.0)


def _tiles(
    bounds: np.ndarray, max_pairs: int, *, same: bool, width: int | None = None
) -> Iterator[tuple[slice, slice, bool]]:
    """Tiles ``(rows, cols, triangular)`` of at most ``max_pairs`` pairs covering every pair i < j of
    samples ordered by class: same-class pairs (``same``) or different-class pairs, each exactly once;
    the rectangular tiles have at most ``width`` columns."""
    n = int(bounds[-1])
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if same:
            step = max(1, min(stop - start, max_pairs // max(stop - start, 1)))
            for a in range(start, stop - 1, step):
                b = min(a + step, stop)
                yield slice(a, b), slice(a, b), True
                if b < stop:
                    yield from _rectangle(a, b, b, stop, max_pairs, width)
        elif stop < n:
            yield from _rectangle(start, stop, stop, n, max_pairs, width)


def _rectangle(
    r0: int, r1: int, c0: int, c1: int, max_pairs: int, width: int | None = None
) -> Iterator[tuple[slice, slice, bool]]:
    width = min(c1 - c0, max_pairs, width or max_pairs)
    rows = max(1, max_pairs // width)
    for a in range(r0, r1, rows):
        for b in range(c0, c1, width):
            yield slice(a, min(a + rows, r1)), slice(b, min(b + width, c1)), False


def _distances(r: np.ndarray, tile: tuple[slice, slice, bool], out: np.ndarray | None = None) -> np.ndarray:
    """Distances 1 − rᵢ·rⱼ of a tile, flattened (a triangular tile keeps only its pairs i < j)."""
    rows, cols, triangular = tile
    if triangular:
        dist = 1.0 - r[rows] @ r[cols].T
        return dist[np.triu_indices(dist.shape[0], 1)]
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    dist = np.matmul(r[rows], r[cols].T, out=None if out is None else out[: shape[0] * shape[1]].reshape(shape))
    return np.subtract(1.0, dist, out=dist).ravel()


class _Kept:
    """The kept group of distances, sorted, with its distinct values and a lookup grid over its range.

    The grid maps a distance x to a cell ``q(x) = clip(trunc((x - lo)·scale), 0, T − 1)``, a non-decreasing
    function of x computed the same way for every value, so a kept value in a lower cell than x is
    below x, one in a higher cell is above it, and only the kept values of x's own cell need comparing.
    The scale puts the kept values in cells 0 to T − 2: the last cell never holds one, so a value there
    is above them all, and a value below lo lands in cell 0, whose first kept value, lo, is above it;
    no value needs a range test.
    ``below[q]`` is the number of kept values in cells < q (the index of the first kept value that is not
    below x), stored as −1 − that number when cell q holds kept values, so that the one gather also tells
    which x need comparing at all (a few in ten: there are 8-16 cells per distinct kept value). The sorted
    values end with a +inf sentinel, so a scan from there up to the first value above x needs no bound.
    """

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.sort(values)
        first = np.concatenate(([True], self.values[1:] != self.values[:-1]))
        self.uniq = self.values[first]
        self.counts = np.diff(np.append(np.flatnonzero(first), self.values.size))
        self.lo, self.hi = float(self.values[0]), float(self.values[-1])
        self.cells = int(max(4, min(CELLS_MAX, 1 << (int(self.uniq.size).bit_length() + 3))))
        span = self.hi - self.lo
        # At most 2**60: |x − lo| <= ~2 for distances, so (x − lo)·scale stays an exact int64 cast.
        self.scale = min((self.cells - 2) / span, 2.0**60) if span > 0 else 2.0**60
        cell = self._cell(self.values)  # sorted, like the values; at most T − 2
        starts = np.flatnonzero(np.concatenate(([True], cell[1:] != cell[:-1])))  # each occupied cell's first
        occupied = cell[starts]
        runs = np.diff(np.concatenate(([-1], occupied, [self.cells - 1])))  # cells up to each occupied one
        index = np.int32 if self.values.size < 2**31 else np.int64
        self.below = np.repeat(np.append(starts, self.values.size).astype(index), runs)
        self.below[occupied] = ~self.below[occupied]  # marked: −1 − below (negative) for occupied cells
        self.padded = np.append(self.values, np.inf)

    def _cell(self, x: np.ndarray) -> np.ndarray:
        q = x - self.lo
        q *= self.scale
        return q.astype(np.intp)

    def lookup(self, x: np.ndarray) -> np.ndarray:
        """``below[q(x)]`` (marked) for any x; np.take's clip to [0, T − 1] is the clip of q(x)."""
        return np.take(self.below, self._cell(x), mode="clip")  # np.take: faster than indexing


def _may_tie(r: np.ndarray) -> bool:
    """Whether two pair distances can tie other than by coincidence: duplicated rows, or a zero row
    (a sample whose reduced features are constant: every distance to it is exactly 1)."""
    if not np.all(np.any(r != 0, axis=1)):
        return True
    return np.unique(np.ascontiguousarray(r).view(np.dtype((np.void, r.dtype.itemsize * r.shape[1])))).size < len(r)


def _count_lookup(r, tiles, kept: _Kept, tile: int) -> tuple[int, int, np.ndarray, float]:
    """Count the streamed distances against the kept group tile by tile through the kept group's grid.

    Returns Σ_kept #(streamed < value), Σ_kept #(streamed == value), the streamed values tied with each
    kept distinct value, and 0.0: without duplicated or zero rows, two streamed distances can only tie
    by coincidence of the dot products of distinct pairs of distinct samples, and such ties (each a
    change of 6 in Σ(t³ − t), against M³) are not looked for.
    """
    n_kept = kept.values.size
    less, eq, ties = 0, 0, []
    buf = np.empty(tile)
    for t in tiles:
        x = _distances(r, t, out=buf)
        j = kept.lookup(x)
        hit = np.flatnonzero(j < 0)  # x's cell holds kept values: j = −1 − (the index of the first)
        first = ~np.take(j, hit)
        # #(kept <= x) = #(kept below x's cell) + #(kept values of x's cell that are <= x): less gets
        # n_kept minus it; the first term, with the marks undone, sums to Σj + 2·Σfirst + #hit.
        less += n_kept * x.size - int(j.sum(dtype=np.int64)) - 2 * int(first.sum(dtype=np.int64)) - hit.size
        x, j = np.take(x, hit), first
        v = np.take(kept.padded, j)
        step = np.flatnonzero(v <= x)
        while step.size:  # x's cell holds kept values <= x: step over them (the sentinel stops every x)
            x, j, v = np.take(x, step), np.take(j, step) + 1, np.take(v, step)
            less -= x.size
            eq += _record_ties(v, x, ties)
            v = np.take(kept.padded, j)
            step = np.flatnonzero(v <= x)
    b_on_kept = np.zeros(kept.uniq.size, dtype=np.int64)
    if ties:  # each streamed value equal to a kept value was counted once per kept copy of it
        tied, per = np.unique(np.concatenate(ties), return_counts=True)
        idx = np.searchsorted(kept.uniq, tied)
        b_on_kept[idx] += per // kept.counts[idx]
    return less, eq, b_on_kept, 0.0


def _record_ties(v: np.ndarray, x: np.ndarray, ties: list) -> int:
    same = v == x
    if not same.any():
        return 0
    ties.append(x[same])
    return int(np.count_nonzero(same))


def _count_sorted(r, tiles, kept: _Kept, chunk: int) -> tuple[int, int, np.ndarray, float]:
    """As :func:`_count_lookup`, but on sorted chunks of ``chunk`` distances, which also finds the ties
    among streamed distances (within a chunk): the path for samples that may tie."""
    acc = [0, 0, np.zeros(kept.uniq.size, dtype=np.int64), 0.0]
    buf = np.empty(chunk)
    used = 0
    for tile in tiles:
        size = (tile[0].stop - tile[0].start) * (tile[1].stop - tile[1].start)
        if used + size > chunk:
            _count_chunk(buf[:used], kept.uniq, kept.counts, acc)
            used = 0
        if tile[2]:  # a triangle holds fewer pairs than its square
            vals = _distances(r, tile)
            buf[used:used + vals.size] = vals
            used += vals.size
        else:
            _distances(r, tile, out=buf[used:])
            used += size
    if used:
        _count_chunk(buf[:used], kept.uniq, kept.counts, acc)
    return acc[0], acc[1], acc[2], acc[3]


def _count_chunk(block: np.ndarray, uniq: np.ndarray, a_counts: np.ndarray, acc: list) -> None:
    """Sort one chunk of streamed distances and count it against the kept distinct values (into ``acc``)."""
    block.sort()
    left = np.searchsorted(block, uniq, side="left")
    acc[0] += int(np.dot(left, a_counts))
    inside = np.flatnonzero(left < block.size)
    hit = inside[block[left[inside]] == uniq[inside]]  # kept values that also occur in the chunk
    if hit.size:
        tied = np.searchsorted(block, uniq[hit], side="right") - left[hit]
        acc[1] += int(np.dot(tied, a_counts[hit]))
        acc[2][hit] += tied
    acc[3] += _ties_not_in(block, uniq)


def _ties_not_in(sorted_block: np.ndarray, uniq_kept: np.ndarray) -> float:
    """Σ(t³ − t) over runs of equal values in ``sorted_block`` whose value is not in ``uniq_kept``."""
    if sorted_block.size < 2 or not np.any(sorted_block[1:] == sorted_block[:-1]):
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
