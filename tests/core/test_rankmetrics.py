from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from fennec.errors import SchemaError
from fennec.evaluation import (
    kendall_tau,
    pearson,
    ranking_metrics,
    regret_at_k,
    rel_at_k,
    spearman,
    weighted_tau,
)

scores_st = st.lists(st.integers(-1000, 1000), min_size=3, max_size=25, unique=True)


def test_golden_against_scipy(rng):
    s, t = rng.normal(size=15), rng.normal(size=15)
    assert kendall_tau(s, t) == pytest.approx(stats.kendalltau(s, t).statistic)
    assert spearman(s, t) == pytest.approx(stats.spearmanr(s, t).statistic)
    assert pearson(s, t) == pytest.approx(stats.pearsonr(s, t).statistic)
    assert weighted_tau(s, t) == pytest.approx(stats.weightedtau(s, t).statistic)
    assert weighted_tau(s, t, weigh_by="truth") == pytest.approx(stats.weightedtau(t, s, rank=None).statistic)


def test_two_weighted_conventions_differ_when_top_is_wrong():
    truth = np.arange(10.0)
    scores = truth.copy()
    scores[9] = -1.0  # the best model predicted worst; every other pair right
    a = weighted_tau(scores, truth, weigh_by="scipy")
    b = weighted_tau(scores, truth, weigh_by="truth")
    assert a != pytest.approx(b)


@settings(max_examples=50, deadline=None)
@given(scores_st, st.data())
def test_tau_properties(truth, data):
    truth = np.array(truth, dtype=float)
    scores = np.array(data.draw(st.permutations(list(truth))), dtype=float)
    for f in (kendall_tau, lambda s, t: weighted_tau(s, t), lambda s, t: weighted_tau(s, t, weigh_by="truth")):
        v = f(scores, truth)
        assert -1 - 1e-12 <= v <= 1 + 1e-12
        assert f(truth, truth) == pytest.approx(1.0)
        assert f(-truth, truth) == pytest.approx(-1.0)
        # invariant under strictly increasing transforms of the scores
        assert f(scores**3 + scores, truth) == pytest.approx(v)


def test_regret_and_rel():
    truth = np.array([80.0, 90.0, 85.0, 70.0])
    scores = np.array([4.0, 1.0, 3.0, 2.0])  # top-1 picks 80, top-3 includes 85
    assert regret_at_k(scores, truth, 1) == pytest.approx(10.0)
    assert regret_at_k(scores, truth, 3) == pytest.approx(5.0)
    assert regret_at_k(truth, truth, 1) == 0.0
    assert rel_at_k(scores, truth, 1) == pytest.approx(80 / 90)
    m = ranking_metrics(scores, truth)
    assert set(m) >= {"kendall_tau", "weighted_tau_scipy", "weighted_tau_truth", "regret_at_1", "rel_at_3"}


def test_degenerate_and_errors():
    assert np.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(SchemaError, match="scores has 2 entries but truth has 3"):
        kendall_tau([1, 2], [1, 2, 3])
    with pytest.raises(SchemaError, match="must be finite"):
        kendall_tau([1, np.nan, 2], [1, 2, 3])
    with pytest.raises(SchemaError, match="weigh_by must be 'scipy' or 'truth'"):
        weighted_tau([1, 2, 3], [1, 2, 3], weigh_by="x")
