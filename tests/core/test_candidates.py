from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from fennec.data.shipped import load_history
from fennec.errors import SchemaError
from fennec.query.recommender import Recommender, RecommenderConfig


@pytest.fixture(scope="module")
def sfda_rec():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = load_history("sfda")
    return Recommender(RecommenderConfig(n_components=2, l2=1.0)).fit(h)


def test_candidates_mix_history_and_architecture(sfda_rec):
    full = sfda_rec.rank_task("cifar100")
    out = sfda_rec.rank_candidates(full, ["resnet50", "deit_small", "convnext_tiny", "resnet18"])
    assert sorted(out["model_id"]) == ["convnext_tiny", "deit_small", "resnet18", "resnet50"]
    src = out.set_index("model_id")["source"]
    assert src["resnet50"] == "measured" and src["convnext_tiny"] == "archi2vec" and src["resnet18"] == "archi2vec"
    # history rows are unchanged
    for m in ("resnet50", "deit_small"):
        assert out.set_index("model_id").loc[m, "score"] == full.set_index("model_id").loc[m, "score"]
    # placed models get finite scores on the task's scale
    placed = out.loc[out["source"] == "archi2vec", "score"]
    assert np.isfinite(placed).all()
    assert full["score"].min() - 10 < placed.min() and placed.max() < full["score"].max() + 10
    assert out["rank"].tolist() == [1, 2, 3, 4]


def test_timm_weight_names_alias_history_models(sfda_rec):
    out = sfda_rec.rank_candidates(sfda_rec.rank_prior(), ["resnet50.tv_in1k"])
    assert out.iloc[0]["source"] == "prior"


def test_placement_for_a_known_task_follows_its_profile(sfda_rec):
    """A placed model's score for a history task is its own predicted profile on that task."""
    from fennec.data.shipped import load_models
    from fennec.zoo.placement import timm_side_table

    profile = sfda_rec.placer_.profiles(timm_side_table(["convnext_tiny"], known=load_models()))[0]
    j = sfda_rec.task_ids.index("dtd")
    full = sfda_rec.rank_task("dtd", prefer_measured=False)
    out = sfda_rec.rank_candidates(full, ["convnext_tiny"])
    expected = profile[j] * sfda_rec.scaler_.std[j] + sfda_rec.scaler_.mean[j]
    assert out.iloc[0]["score"] == pytest.approx(expected, abs=0.35)


def test_candidate_errors(sfda_rec, tmp_path):
    full = sfda_rec.rank_prior()
    with pytest.raises(SchemaError, match=r"unknown timm architecture 'resnet5000'"):
        sfda_rec.rank_candidates(full, ["resnet5000"])
    with pytest.raises(SchemaError, match="needs the full ranking"):
        sfda_rec.rank_candidates(full.head(3), ["resnet50"])
    sfda_rec.save(tmp_path / "a")
    loaded = Recommender.load(tmp_path / "a")
    a = loaded.rank_candidates(loaded.rank_prior(), ["convnext_tiny", "resnet50"])
    b = sfda_rec.rank_candidates(full, ["convnext_tiny", "resnet50"])
    pd.testing.assert_frame_equal(a, b)
