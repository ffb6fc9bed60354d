"""PARC: the blocked exact computation against scipy's Spearman on the dense dissimilarity matrices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.decomposition import PCA

from fennec.errors import SchemaError
from fennec.transferability import parc


def _parc_dense(f: np.ndarray, y: np.ndarray, n_pca: int = 32) -> float:
    z = PCA(n_components=min(n_pca, *f.shape), random_state=0).fit_transform(f)
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
