"""TaskProjector: properties on synthetic data, persistence, the far-query threshold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fennec.errors import SchemaError
from fennec.proxy.projector import METHODS, TaskProjector
from fennec.subspace.factorization import TransferSubspace


@pytest.fixture(scope="module")
def synthetic():
    """8 tasks in 2 clusters; a task's column follows its cluster; embeddings cluster the same way."""
    rng = np.random.default_rng(0)
    n, T = 20, 8
    prior = rng.normal(size=n)
    dirs = rng.normal(size=(2, n)) * 1.5
    cluster = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    Z = prior[:, None] + dirs[cluster].T + 0.2 * rng.normal(size=(n, T))
    Z = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    centres = rng.normal(size=(2, 16))
    E = centres[cluster] + 0.15 * rng.normal(size=(T, 16))
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    sub = TransferSubspace(2, l2=1.0).fit(Z)
    return Z, E, sub, cluster


@pytest.mark.parametrize("method", METHODS)
def test_query_equal_to_a_training_task_ranks_like_its_cluster(synthetic, method):
    Z, E, sub, cluster = synthetic
    proj = TaskProjector(method).fit(E, Z=Z, subspace=sub)
    for j in (0, 5):
        pred = proj.predict(E[j])
        own = stats.kendalltau(pred, Z[:, j]).statistic
        other = stats.kendalltau(pred, Z[:, 7 - j if j == 0 else 1]).statistic
        assert own > other, (method, j, own, other)
    assert proj.nearest(E[3]) == ("3", pytest.approx(0.0, abs=1e-6))


def test_mixture_at_low_temperature_reproduces_the_task_column(synthetic):
    Z, E, sub, _ = synthetic
    proj = TaskProjector("mixture", temperature=1e-4).fit(E, Z=Z, subspace=sub)
    assert np.allclose(proj.predict(E[2]), Z[:, 2], atol=1e-6)
    flat = TaskProjector("mixture", temperature=np.inf).fit(E, Z=Z, subspace=sub)
    assert np.allclose(flat.predict(E[2]), Z.mean(1))  # infinite temperature: the history prior


def test_auto_temperature_is_chosen_on_the_training_tasks(synthetic):
    Z, E, sub, _ = synthetic
    proj = TaskProjector("mixture").fit(E, Z=Z, subspace=sub)
    assert proj.params_["temperature"] in (0.02, 0.05, 0.1, 0.2, 0.5, np.inf)
    assert len(proj.selection_) == 6 and all("loto_kendall" in s for s in proj.selection_)


def test_far_threshold_is_calibrated_on_loo_distances(synthetic):
    Z, E, sub, _ = synthetic
    proj = TaskProjector("ridge", distance_margin=1.0).fit(E, Z=Z, subspace=sub)
    S = E @ E.T
    np.fill_diagonal(S, -2)
    assert proj.max_distance_ == pytest.approx((1 - S.max(1)).max())
    far = -E.mean(0)
    assert proj.is_far(far) and not proj.is_far(E[0])


@pytest.mark.parametrize("method", METHODS)
def test_state_round_trip(synthetic, method):
    Z, E, sub, _ = synthetic
    proj = TaskProjector(method).fit(E, Z=Z, subspace=sub, task_ids=list("abcdefgh"))
    params, arrays = proj.to_state()
    back = TaskProjector.from_state(params, arrays, sub)
    q = E[1] + E[6]
    assert np.allclose(back.predict(q), proj.predict(q), atol=1e-8)
    assert back.nearest(q) == proj.nearest(q) and back.max_distance_ == proj.max_distance_


def test_errors(synthetic):
    Z, E, sub, _ = synthetic
    with pytest.raises(SchemaError, match="'method' parameter of TaskProjector must be one of"):
        TaskProjector("svm").fit(E, Z=Z, subspace=sub)
    with pytest.raises(SchemaError, match=r"Z has shape \(20, 8\) but there are 7 task embeddings"):
        TaskProjector().fit(E[:7], Z=Z, subspace=sub)
    proj = TaskProjector("ridge").fit(E, Z=Z, subspace=sub)
    with pytest.raises(SchemaError, match=r"query embedding has shape \(3,\); the task embeddings .* are 16-d"):
        proj.predict(np.ones(3))
