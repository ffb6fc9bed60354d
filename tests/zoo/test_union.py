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
