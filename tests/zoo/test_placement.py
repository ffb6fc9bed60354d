"""Cold-model placement: side information -> profiles over the fitted columns, every row independent of the others."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from fennec.errors import SchemaError
from fennec.zoo.features import SideFeaturizer
from fennec.zoo.placement import ModelPlacer, ridge


def planted(rng, n=40, m=6, r=2):
    """Models whose general quality follows top-1 within their kind, plus a task-specific part."""
    kinds = rng.choice(["in1k_supervised", "in21k_supervised"], size=n)
    top1 = rng.uniform(70, 85, size=n)
    b = 0.2 * (top1 - 77) + np.where(kinds == "in21k_supervised", 1.0, 0.0) + 0.1 * rng.normal(size=n)
    U = 0.3 * rng.normal(size=(n, r))
    V = rng.normal(size=(m, r))
    side = pd.DataFrame({"model_id": [f"m{i}" for i in range(n)], "top1": top1, "pretraining": kinds,
                         "params_m": rng.uniform(5, 80, size=n), "gmacs": rng.uniform(1, 20, size=n),
                         "family": rng.choice(["a", "b", "c"], size=n), "arch": [f"arch{i % 13}" for i in range(n)]})
    Z = b[:, None] + U @ V.T
    return side, b, V, Z


def test_placement_recovers_quality_from_top1_within_kind(rng):
    side, b, V, Z = planted(rng)
    p = ModelPlacer(use_archi2vec=False).fit(side.iloc[:30], Z[:30], Z=Z[:30])
    b_hat = p.profiles(side.iloc[30:]).mean(axis=1)
    assert kendalltau(b_hat, b[30:]).statistic > 0.6
    # an in21k model is placed above an in1k model of the same top-1
    pair = pd.DataFrame({"top1": [80.0, 80.0], "pretraining": ["in21k_supervised", "in1k_supervised"],
                         "params_m": [20.0, 20.0], "gmacs": [5.0, 5.0]})
    quality = p.profiles(pair).mean(axis=1)
    assert quality[0] > quality[1]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 39), min_size=1, max_size=15))
def test_a_rows_placement_does_not_depend_on_the_batch(rows):
    rng = np.random.default_rng(3)
    side, _, V, Z = planted(rng)
    p = ModelPlacer(use_archi2vec=False, n_folds=3).fit(side.iloc[:25], Z[:25], Z=Z[:25])
    batch = p.profiles(side.iloc[[0, *rows]].reset_index(drop=True))
    alone = p.profiles(side.iloc[[0]].reset_index(drop=True))
    np.testing.assert_allclose(batch[0], alone[0], rtol=1e-12, atol=1e-12)


def test_state_round_trip(rng):
    side, _, V, Z = planted(rng)
    p = ModelPlacer(use_archi2vec=True, n_folds=3).fit(side, Z, Z=Z)
    params, arrays = p.to_state()
    q = ModelPlacer.from_state(params, arrays)
    new = side.assign(top1=side["top1"] + 1.0)
    np.testing.assert_allclose(q.profiles(new), p.profiles(new))


def test_without_archi2vec_the_stage_is_off(rng):
    side, _, V, Z = planted(rng)
    p = ModelPlacer(use_archi2vec=False, n_folds=3).fit(side, Z, Z=Z)
    assert all(np.isinf(pens[2]) for pens in p.penalties_.values())
    assert all(coefs[2] is None for coefs in p.coefs_.values())
    assert {r["archi2vec"] for r in p.selection_} == {np.inf}
    assert p.out_of_fold_.shape == Z.shape


def test_ridge_intercept_is_not_penalised():
    X = np.arange(10.0)[:, None]
    coef = ridge(X, 5.0 + 0 * X, l2=1e6)
    assert coef[0, 0] == pytest.approx(5.0) and abs(coef[1, 0]) < 1e-9


def test_featurizer_imputes_top1_by_kind_and_flags_it():
    side = pd.DataFrame({"top1": [70.0, 80.0, np.nan, 90.0], "pretraining": ["k1", "k1", "k1", "k2"],
                         "params_m": [1.0, 10.0, 100.0, np.nan], "gmacs": [1.0, 2.0, 3.0, 4.0]})
    f = SideFeaturizer().fit(side)
    X = f.transform(side)
    names = f.names()
    assert X[2, names.index("top1_missing")] == 1.0
    assert X[2, names.index("top1")] == pytest.approx(X[[0, 1], names.index("top1")].mean())  # k1's mean
    assert X[3, names.index("params_m_missing")] == 1.0


def test_each_regime_chooses_its_own_corrections(rng):
    """Models with a top-1 follow it; models without one follow their size: the regime without a top-1
    turns the size stage on, the regime with one places by top-1 and keeps size off."""
    side, b, V, Z = planted(rng, n=80)
    no_top1 = np.arange(80) % 2 == 1
    logp = np.log10(side["params_m"].to_numpy())
    b = b.copy()
    b[no_top1] = 1.5 * (logp[no_top1] - logp.mean()) + 0.05 * rng.normal(size=no_top1.sum())
    Z = Z - Z.mean(axis=1, keepdims=True) + b[:, None]  # the planted quality, the same task-specific parts
    side = side.assign(top1=np.where(no_top1, np.nan, side["top1"]))
    p = ModelPlacer(use_archi2vec=False, n_folds=4).fit(side, Z, Z=Z)
    assert np.isfinite(p.penalties_["no_top1"][1]) and np.isinf(p.penalties_["top1"][1])
    quality = p.profiles(side).mean(axis=1)
    assert kendalltau(quality[no_top1], b[no_top1]).statistic > 0.6
    assert kendalltau(quality[~no_top1], b[~no_top1]).statistic > 0.6
    # a model's regime is its own: the same row placed alone or beside models of the other regime
    np.testing.assert_allclose(p.profiles(side.iloc[[0]].reset_index(drop=True))[0], p.profiles(side)[0])


def test_an_older_placement_state_is_refused(rng):
    side, _, V, Z = planted(rng)
    params, arrays = ModelPlacer(use_archi2vec=False, n_folds=3).fit(side, Z, Z=Z).to_state()
    with pytest.raises(SchemaError, match="older Fennec"):
        ModelPlacer.from_state({**params, "stages": ["base", "archi2vec"]}, arrays)
    coordinates = {k: v for k, v in params.items() if k != "targets"}  # the placement of subspace coordinates
    with pytest.raises(SchemaError, match="older Fennec"):
        ModelPlacer.from_state(coordinates, arrays)


def test_ridge_with_unknown_targets_fits_each_column_on_its_known_rows(rng):
    """Golden: every column equals a plain ridge (an augmented least-squares system) on its finite rows."""
    X = rng.normal(size=(30, 3))
    T = X @ rng.normal(size=(3, 4)) + rng.normal(size=(30, 4))
    T[:12, 1] = np.nan
    T[20:, 2] = np.nan
    T[:, 3] = np.nan
    coef = ridge(X, T, l2=2.0)
    for j in range(3):
        ok = np.isfinite(T[:, j])
        A = np.vstack([np.hstack([np.ones((ok.sum(), 1)), X[ok]]), np.hstack([np.zeros((3, 1)), np.sqrt(2.0) * np.eye(3)])])
        want = np.linalg.lstsq(A, np.r_[T[ok, j], np.zeros(3)], rcond=None)[0]
        np.testing.assert_allclose(coef[:, j], want, rtol=1e-6, atol=1e-8)
    assert np.isnan(coef[:, 3]).all()  # known on no row


def test_a_placement_on_two_unlinked_parts_shares_quality_and_learns_the_rest_per_part(rng):
    """Profiles with NaN where the subspace does not determine a cell: every model (and a new one) gets a
    finite profile over every column; a column's own part is learnt from the models of its part only, the
    general quality (a model's mean centred score) from every model."""
    side, _, V, Z = planted(rng, n=40, m=6)
    part = np.arange(40) < 20
    T = Z.copy()
    T[np.ix_(part, [3, 4, 5])] = np.nan
    T[np.ix_(~part, [0, 1, 2])] = np.nan
    p = ModelPlacer(use_archi2vec=False, n_folds=3).fit(side, T, Z=T)
    assert np.isfinite(p.profiles(side)).all() and np.isfinite(p.out_of_fold_).all()
    one = {"l2_grid": (3.0,), "size_l2_grid": (10.0,), "use_archi2vec": False, "n_folds": 3}  # no choice to differ
    a = ModelPlacer(**one).fit(side, T, Z=T)
    E = rng.normal(size=(20, 3))
    E = E - E.mean(axis=0) - E.mean(axis=1, keepdims=True) + E.mean()  # the second part's own structure only
    T2 = T.copy()
    T2[~part, 3:] += E
    c = ModelPlacer(**one).fit(side, T2, Z=T2)
    np.testing.assert_allclose(c.profiles(side)[:, :3], a.profiles(side)[:, :3], rtol=1e-9, atol=1e-9)
    assert not np.allclose(c.profiles(side)[:, 3:], a.profiles(side)[:, 3:])
    # a shift of the second part's models' quality reaches the first part's columns
    T3 = T.copy()
    T3[~part, 3:] += np.linspace(-1, 1, 20)[:, None]
    d = ModelPlacer(**one).fit(side, T3, Z=T3)
    assert not np.allclose(d.profiles(side)[:, :3], a.profiles(side)[:, :3])
