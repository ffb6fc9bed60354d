"""PARC: the blocked exact computation against scipy's Spearman on the dense dissimilarity matrices."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.decomposition import PCA

from fennec.errors import SchemaError
from fennec.transferability import parc

PARC = importlib.import_module("fennec.transferability.parc")  # the module (``parc`` is the function)


def _pca_full(f: np.ndarray, k: int) -> np.ndarray:
    """scikit-learn's exact (full SVD) PCA scores, each component's sign set so that its loading of largest
    magnitude is positive (scikit-learn's own convention since 1.5, applied here whatever its version)."""
    pca = PCA(n_components=k, svd_solver="full").fit(f)
    comp = pca.components_
    signs = np.sign(comp[np.arange(k), np.argmax(np.abs(comp), axis=1)])
    return pca.transform(f) * signs


def _parc_dense(f: np.ndarray, y: np.ndarray, n_pca: int = 32) -> float:
    z = _pca_full(f, min(n_pca, *f.shape))
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    feat_rdm = 1 - np.corrcoef(z)
    c = len(np.unique(y))
    # 1 − corr of one-hot rows is exactly 0 (same class) or C/(C−1) (different classes). Written out
    # rather than np.corrcoef(onehot): the latter leaves ~1e-16 rounding noise that scipy then ranks
    # as distinct values (a quirk of the reference implementation, not part of the metric).
    label_rdm = (y[:, None] != y[None, :]) * (c / (c - 1))
    iu = np.triu_indices(len(y), 1)
    return 100 * spearmanr(feat_rdm[iu], label_rdm[iu])[0]


@pytest.mark.parametrize(("n", "d", "c"), [(100, 50, 4), (90, 20, 2), (120, 64, 30)])
def test_parc_equals_dense_spearman(n, d, c, make_task):
    f, y = make_task(n, d, c, signal=0.4, seed=n)
    expected = _parc_dense(f, y)
    assert parc(f, y) == pytest.approx(expected, rel=1e-9)
    assert parc(f, y, block_pairs=300) == pytest.approx(expected, rel=1e-9)  # many blocks


def test_parc_with_exact_ties_in_one_block(make_task):
    f, y = make_task(60, 16, 3, signal=0.4, seed=5)
    f, y = np.concatenate([f, f[:8]]), np.concatenate([y, y[:8]])  # duplicated samples: tied distances
    assert parc(f, y) == pytest.approx(_parc_dense(f, y), rel=1e-7)


def test_parc_needs_a_same_class_pair():
    with pytest.raises(SchemaError, match=r"PARC needs at least one class with 2 or more samples"):
        parc(np.random.default_rng(0).standard_normal((4, 3)), [0, 1, 2, 3])


@pytest.mark.parametrize("signal", [0.0, 3.0])
def test_parc_with_overlapping_and_separated_groups(signal, make_task):
    """signal 0: the two groups of distances overlap over their whole range; signal 3: most different-class
    distances lie above every same-class one (the lookup's shortcut for values outside the kept range)."""
    f, y = make_task(150, 40, 5, signal=signal, seed=3)
    assert parc(f, y) == pytest.approx(_parc_dense(f, y), rel=1e-9)


def test_parc_keeps_the_different_class_group_when_it_is_smaller(make_task):
    f, _ = make_task(110, 30, 2, signal=0.5, seed=4)
    y = np.zeros(110, dtype=int)
    y[rng_choice(110, 12)] = np.arange(12) % 3 + 1  # one class of 98: far more same-class pairs
    assert parc(f, y) == pytest.approx(_parc_dense(f, y), rel=1e-9)
    assert parc(f, y, block_pairs=500) == pytest.approx(_parc_dense(f, y), rel=1e-9)


def test_lookup_and_sorted_counts_agree(make_task, monkeypatch):
    """The grid lookup (default without duplicated samples) and the sorted chunks give the same value."""
    import importlib

    module = importlib.import_module("fennec.transferability.parc")
    f, y = make_task(300, 48, 7, signal=0.3, seed=9)
    lookup = parc(f, y, block_pairs=5_000)
    monkeypatch.setattr(module, "_may_tie", lambda r: True)
    assert parc(f, y, block_pairs=5_000) == pytest.approx(lookup, rel=1e-12)
    assert parc(f, y) == pytest.approx(lookup, rel=1e-12)


def test_may_tie_detects_duplicated_and_zero_rows():
    import importlib

    may_tie = importlib.import_module("fennec.transferability.parc")._may_tie
    r = np.random.default_rng(0).standard_normal((6, 4))
    assert not may_tie(r)
    assert may_tie(np.vstack([r, r[2:3]]))
    r[4] = 0.0
    assert may_tie(r)


def rng_choice(n: int, k: int) -> np.ndarray:
    return np.random.default_rng(1).choice(n, size=k, replace=False)


@pytest.mark.parametrize("cells", [2, 64])
def test_parc_with_crowded_grid_cells(cells, make_task, monkeypatch):
    """Weak features (the groups overlap everywhere) and a grid of a few cells, so that most streamed
    distances step over many kept values of their cell: still the dense value."""
    import importlib

    module = importlib.import_module("fennec.transferability.parc")
    f, y = make_task(160, 40, 6, signal=0.05, seed=11)
    expected = _parc_dense(f, y)
    monkeypatch.setattr(module, "CELLS_MAX", cells)
    assert parc(f, y) == pytest.approx(expected, rel=1e-9)
    assert parc(f, y, block_pairs=700) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("n", "d", "k"), [(200, 30, 10), (300, 40, 40), (40, 120, 12), (30, 200, 29)])
@pytest.mark.parametrize("block", [1 << 21, 500])
def test_pca_equals_full_svd(n, d, k, block, monkeypatch):
    """Scatter-matrix (N >= D) and Gram-matrix (N < D) paths, in one block or many: scikit-learn's full-SVD
    scores to 1e-8, signs included (k <= rank: no null component, whose direction is arbitrary)."""
    rng = np.random.default_rng(n + d)
    f = rng.standard_normal((n, d)) * np.linspace(3.0, 0.5, d) + rng.standard_normal(d) * 5.0
    monkeypatch.setattr(PARC, "PCA_BLOCK", block)
    z = PARC._pca(f, k)
    expected = _pca_full(f, k)
    assert z.shape == (n, k)
    np.testing.assert_allclose(z, expected, rtol=0, atol=1e-8 * np.abs(expected).max())


def test_pca_sign_of_each_component_is_that_of_its_largest_loading():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((80, 6)) * [5.0, 4.0, 3.0, 2.0, 1.5, 1.0]
    z = PARC._pca(f, 4)
    loadings = np.linalg.lstsq(f - f.mean(axis=0), z, rcond=None)[0]  # z = X·V: V back from the scores
    top = loadings[np.argmax(np.abs(loadings), axis=0), np.arange(4)]
    assert np.all(top > 0)
    np.testing.assert_allclose(loadings.T @ loadings, np.eye(4), atol=1e-10)  # orthonormal components


def test_parc_sign_of_a_component_changes_the_value(make_task, monkeypatch):
    """Why the PCA fixes each component's sign: the rows of the reduced features are centred, so one
    flipped column changes the correlations between samples, and PARC."""
    f, y = make_task(150, 40, 5, signal=0.5, seed=6)
    value = parc(f, y)
    pca = PARC._pca
    monkeypatch.setattr(PARC, "_pca", lambda x, k: pca(x, k) * np.r_[-1.0, np.ones(k - 1)])
    assert abs(parc(f, y) - value) > 1e-3


@pytest.mark.parametrize(("n", "d", "c"), [(60, 150, 4), (80, 500, 8)])
def test_parc_with_fewer_samples_than_features(n, d, c, make_task):
    f, y = make_task(n, d, c, signal=0.4, seed=d)
    assert parc(f, y) == pytest.approx(_parc_dense(f, y), rel=1e-9)


def test_parc_ignores_random_state(make_task):
    """The PCA is exact: the accepted ``random_state`` changes nothing, bit for bit."""
    f, y = make_task(120, 30, 4, signal=0.3, seed=8)
    assert parc(f, y, random_state=123) == parc(f, y) == parc(f, y, random_state=0)


@pytest.mark.parametrize("kept", [
    np.random.default_rng(3).standard_normal(500) * 0.2 + 1.0,
    np.array([0.7, 0.7, 0.7]),  # one value: no span
    np.array([1.0, np.nextafter(1.0, 2.0)]),  # a span of one ulp
])
def test_lookup_brackets_every_value(kept):
    """For any x, in the kept range or beyond it, ``below[q(x)]`` is the number of kept values in lower
    cells: all below x. Unmarked (x's cell holds no kept value) it is #(kept <= x) itself; marked, the
    kept values from there up to #(kept <= x) share x's cell (the few that are compared). So x above the
    kept range counts them all and x below counts none, without a range test."""
    grid = PARC._Kept(kept)
    lo, hi = grid.lo, grid.hi
    x = np.concatenate([kept, np.nextafter(kept, -np.inf), np.nextafter(kept, np.inf),
                        [lo - 1.0, lo - 1e-12, hi + 1e-12, hi + 1.0, -0.5, 2.5],
                        np.linspace(lo - 0.1, hi + 0.1, 1001)])
    j = grid.lookup(x)
    below = np.where(j < 0, ~j, j)
    values = grid.values
    n_lt, n_le = np.searchsorted(values, x, side="left"), np.searchsorted(values, x, side="right")
    assert np.all(below <= n_lt)
    assert np.array_equal(below[j >= 0], n_le[j >= 0])
    cell_x = np.clip(grid._cell(x), 0, grid.cells - 1)
    cell_v = grid._cell(values)
    for b, e, c in zip(below[j < 0], n_le[j < 0], cell_x[j < 0], strict=True):
        assert b < values.size and cell_v[b] == c and (b == 0 or cell_v[b - 1] < c)  # the cell's first
        assert np.all(cell_v[b:e] == c)
    assert np.all(n_le[x > hi] == values.size) and np.all(below[x < lo] == 0)
    assert cell_v.max() <= grid.cells - 2 and np.all(j[cell_x == grid.cells - 1] == values.size)
