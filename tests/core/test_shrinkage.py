"""The history weight: another campaign's results against the side-information prior."""

from __future__ import annotations

import numpy as np
import pytest

from fennec.query import placements
from fennec.query.shrinkage import campaign_pairs, history_weight


def two_campaigns(rng, n=30, *, history_agrees: bool):
    """One task measured by campaigns A (column 0) and B (column 1); either B repeats A up to small noise
    and the side profile is noise, or the reverse."""
    a = rng.normal(size=n)
    close, noise = a + 0.05 * rng.normal(size=n), rng.normal(size=n)
    b, side = (close, noise) if history_agrees else (noise, close)
    return np.column_stack([a, b]), np.column_stack([side, side])


def test_campaign_pairs_are_ordered_pairs_of_one_task_in_two_histories():
    pairs = campaign_pairs(["cifar", "cifar", "dtd", "cifar"], ["h1", "h2", "h1", "h1"])
    assert sorted(pairs) == [(0, 1), (1, 0), (1, 3), (3, 1)]


@pytest.mark.parametrize(("history_agrees", "expected"), [(True, 1.0), (False, 0.0)])
def test_the_weight_follows_whichever_predicts_the_other_campaign(rng, history_agrees, expected):
    Z, side = two_campaigns(rng, history_agrees=history_agrees)
    w, means = history_weight(Z, side, [(0, 1), (1, 0)])
    assert w == expected and set(means) == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_no_pair_with_enough_models_means_history_only(rng):
    Z, side = two_campaigns(rng, n=2, history_agrees=False)
    assert history_weight(Z, side, [(0, 1)]) == (1.0, {})


def test_shrink_blends_history_and_side_scores():
    z = np.array([1.0, 2.0, 3.0])
    place = placements.Placement(kind="history", predict=lambda pos: z[pos], cold=lambda P: P[:, 0],
                                 source="subspace", measured={0: 1.0})
    side = np.array([[10.0], [20.0], [30.0]])
    out = placements.shrink(place, side, 0.25)
    np.testing.assert_allclose(out.predict(np.arange(3)), 0.25 * z + 0.75 * side[:, 0])
    assert out.measured == {0: pytest.approx(0.25 * 1.0 + 0.75 * 10.0)} and out.index_query is None
    assert out.source == "subspace+side" and out.measured_raw == {0: 1.0}
    assert placements.shrink(place, side, 1.0) is place
