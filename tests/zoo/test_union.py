"""One zoo from several histories: shared models joined, one column per (task, campaign)."""

from __future__ import annotations

import warnings

import pytest

from fennec.data.shipped import load_histories
from fennec.history.union import combine
from fennec.query.recommender import Recommender, RecommenderConfig
from fennec.zoo.registry import ModelRegistry


@pytest.fixture(scope="module")
def pair():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_histories("sfda,logme")


def test_combine_joins_shared_models_and_keeps_campaigns_apart(pair):
    joined, cols = combine(pair, ModelRegistry.load())
    assert len(joined.model_ids) == 36  # logme's 10 torchvision CNNs are sfda's
    assert "cifar100@sfda" in cols.ids and "cifar100@logme" in cols.ids
    assert [cols.ids[i] for i in cols.of_task("cifar100")] == ["cifar100@logme", "cifar100@sfda"]
    assert cols.histories == ["logme", "sfda"] or set(cols.histories) == {"sfda", "logme"}
    Y, models, columns = joined.to_matrix()
    i = models.index("resnet50.tv_in1k")
    assert Y[i, columns.index("cifar100@logme")] != Y[i, columns.index("cifar100@sfda")]  # two campaigns


def test_zoo_query_uses_every_campaign_of_a_task(pair):
    rec = Recommender(RecommenderConfig(n_components=2, l2=1.0, placer_folds=3)).fit(pair)
    r = rec.query(task="cifar100", top_k=5)
    assert set(r.columns) == {"cifar100@sfda", "cifar100@logme"} and r.placement == "history"
    assert rec.query(task="food").columns == ("food@sfda",)  # only sfda measured food
    assert len(rec.task_ids) == len(set(rec.task_ids)) == 13
    assert "resnet50.tv_in1k" in rec.model_ids and len(rec.column_ids) == 21


def test_load_histories_specs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [h.name for h in load_histories("all")] == ["logme", "model_spider", "parc", "sfda", "shift_vtab",
                                                            "transfergraph"]
        assert [h.name for h in load_histories("sfda")] == ["sfda"]


def test_components_of_the_observed_cells():
    import numpy as np

    from fennec.subspace.components import identified_cells, observed_components

    obs = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], bool)
    models, columns = observed_components(obs)
    assert models.tolist() == [0, 0, 1, 2] and columns.tolist() == [0, 0, 1, 3]  # unseen model, column: alone
    cells = identified_cells(models, columns)
    assert cells[1, 0] and cells[0, 1] and not cells[0, 2] and not cells[2, 0] and cells.sum() == 5


@pytest.fixture(scope="module")
def unlinked():
    """logme and parc share no model: two parts the subspace cannot put in one frame."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_histories("logme,parc")


def test_unlinked_parts_of_a_zoo_are_scored_from_side_information(unlinked):
    import numpy as np

    from fennec.history.table import History

    cfg = RecommenderConfig(n_components=2, l2=1.0, placer_folds=3)
    rec = Recommender(cfg).fit(unlinked)
    assert rec.identified_ is not None
    cross = ~rec.identified_
    assert cross.any() and not cross[np.isfinite(rec.Z_)].any()
    np.testing.assert_allclose(rec.reconstruction_[cross], rec.profiles(rec.model_ids)[cross])
    # the same scores scaled by 1 + 1e-13: the unidentified inner products of the subspace may move by whole
    # standard deviations, what Fennec reads from it may not
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaled = [History.from_frame(h.frame.assign(score=h.frame["score"] * (1 + 1e-13)), name=h.name)
                  for h in unlinked]
    other = Recommender(cfg).fit(scaled)
    np.testing.assert_allclose(other.reconstruction_, rec.reconstruction_, atol=1e-3)
    assert other.placer_.penalties_ == rec.placer_.penalties_
    a, b = rec.query(task="cifar100"), other.query(task="cifar100")
    assert a.placement == "history" and list(a.frame["model_id"]) == list(b.frame["model_id"])
    # one connected history: the subspace's own reconstruction
    single = Recommender(cfg).fit(unlinked[0])
    assert single.identified_ is None
    np.testing.assert_array_equal(single.reconstruction_, single.subspace_.reconstruct())
