"""Candidates through the registry: history models keep their rows, models without history are placed from
side information independently of each other, unknown names do not abort the query."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fennec.data.shipped import load_history
from fennec.errors import UnknownIdError
from fennec.query.recommender import Recommender, RecommenderConfig

COLD = ["convnext_tiny", "resnet18", "efficientnet_b0", "vit_base_patch16_224", "mobilenetv2_100",
        "torchvision/alexnet", "regnety_040", "deit_tiny_distilled_patch16_224"]


@pytest.fixture(scope="module")
def sfda_rec():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = load_history("sfda")
    return Recommender(RecommenderConfig(n_components=2, l2=1.0, placer_folds=3)).fit(h)


def test_candidates_mix_history_and_cold_models(sfda_rec):
    full = sfda_rec.query(task="cifar100").frame.set_index("model_id")
    r = sfda_rec.query(task="cifar100", candidates=["resnet50", "deit_small", "convnext_tiny", "resnet18"])
    f = r.frame.set_index("input")
    assert f.loc["resnet50", "model_id"] == "resnet50.tv_in1k" and f.loc["resnet50", "source"] == "measured"
    assert f.loc["deit_small", "model_id"] == "deit_small_patch16_224.fb_in1k"
    assert f.loc["convnext_tiny", "model_id"] == "convnext_tiny.in12k_ft_in1k"  # timm's default tag
    assert f.loc["convnext_tiny", "source"] == "cold" and f.loc["resnet18", "source"] == "cold"
    for m in ("resnet50.tv_in1k", "deit_small_patch16_224.fb_in1k"):  # history rows are unchanged
        assert r.frame.set_index("model_id").loc[m, "score"] == full.loc[m, "score"]
    cold = r.frame.loc[r.frame["source"] == "cold", "score"]
    assert np.isfinite(cold).all() and full["score"].min() - 10 < cold.min() and cold.max() < full["score"].max() + 10
    assert r.frame["rank"].tolist() == [1, 2, 3, 4]
    assert r.resolved["resnet50"] == "resnet50.tv_in1k"


def test_a_cold_model_is_scored_by_its_profile_on_the_task(sfda_rec):
    j = sfda_rec.column_ids.index("dtd")
    z = sfda_rec.profiles(["convnext_tiny.in12k_ft_in1k"])[0, j]
    r = sfda_rec.query(task="dtd", candidates=["convnext_tiny"])
    assert r.frame.iloc[0]["score"] == pytest.approx(z * sfda_rec.scaler_.std[j] + sfda_rec.scaler_.mean[j])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(COLD + ["resnet50", "byol", "nope"]), min_size=1, max_size=6, unique=True),
       st.sampled_from([{"task": "cifar100"}, {}, {"observed": {"resnet50": 84.0, "byol": 82.0, "swin_t": 88.0}}]))
def test_a_cold_models_score_does_not_depend_on_the_other_candidates(sfda_rec, others, how):
    alone = sfda_rec.query(candidates=["convnext_tiny"], **how).frame.iloc[0]["score"]
    listed = sfda_rec.query(candidates=["convnext_tiny", *[o for o in others if o != "convnext_tiny"]], **how)
    assert listed.frame.set_index("input").loc["convnext_tiny", "score"] == pytest.approx(alone, rel=1e-9)


def test_unknown_candidates_are_listed_not_fatal(sfda_rec):
    r = sfda_rec.query(task="pets", candidates="resnet50,resnet5000,hf-hub:someone/thing")
    f = r.frame.set_index("input")
    assert f.loc["resnet50", "source"] == "measured"
    assert f.loc["resnet5000", "source"] == "unresolved" and np.isnan(f.loc["resnet5000", "score"])
    assert "not in the model registry" in f.loc["resnet5000", "note"] and "did you mean" in f.loc["resnet5000", "note"]
    assert r.unresolved.keys() == {"resnet5000", "hf-hub:someone/thing"}
    assert f.loc["resnet50", "rank"] == 1 and f.loc["resnet5000", "rank"] == 0
    with pytest.raises(UnknownIdError, match=r"unknown candidate 'resnet5000': not in the model registry"):
        sfda_rec.query(task="pets", candidates="resnet50,resnet5000", strict=True)


def test_two_names_for_one_model_are_ranked_once(sfda_rec):
    r = sfda_rec.query(task="pets", candidates=["resnet50", "resnet50.tv_in1k", "torchvision/resnet50.IMAGENET1K_V1"])
    assert r.model_ids == ["resnet50.tv_in1k"]
    assert any("same model" in n for n in r.notes)


def test_a_task_alias_uses_the_history_column_not_the_text_proxy(sfda_rec):
    r = sfda_rec.query(task="oxford_flowers102", top_k=3)
    assert r.placement == "history" and r.columns == ("flowers",) and r.task_id == "flowers"
    assert (r.frame["source"] == "measured").all()


def test_warm_start_with_a_model_outside_the_history(sfda_rec):
    r = sfda_rec.query(observed={"resnet50": 84.6, "convnext_tiny": 88.0, "byol": 82.1},
                       candidates=["convnext_tiny", "resnet50", "resnet18", "deit_small"])
    f = r.frame.set_index("input")
    assert f.loc["convnext_tiny", "source"] == "measured" and f.loc["convnext_tiny", "score"] == pytest.approx(88.0)
    assert f.loc["resnet18", "source"] == "cold"
    assert any("placed from side information, then folded in" in n for n in r.notes)


def test_units_warning_for_fractions(sfda_rec, caplog):
    r = sfda_rec.query(observed={"resnet50": 0.846, "deit_small": 0.731})
    assert any("in [0, 1] but the history's scores are percentages" in n for n in r.notes)


def test_candidates_file_adds_models_outside_the_registry(sfda_rec, tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"model_id": ["my_keras_net", "my_other"], "top1": [80.0, 70.0], "params_m": [25.0, 5.0],
                  "pretraining": ["in1k_supervised", "in1k_supervised"]}).to_csv(path, index=False)
    r = sfda_rec.query(task="cifar10", candidates="my_keras_net,my_other,resnet50", candidates_file=path)
    f = r.frame.set_index("input")
    assert f.loc["my_keras_net", "source"] == "cold" and f.loc["my_keras_net", "score"] > f.loc["my_other", "score"]


def test_twenty_candidates_read_side_information_without_building_models(sfda_rec, monkeypatch):
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()
    import timm

    def boom(*a, **k):
        raise AssertionError("a query must not build networks")

    monkeypatch.setattr(timm, "create_model", boom)
    names = COLD + ["resnet34", "resnet101", "densenet121", "swin_t", "byol", "efficientnet_b3", "convnext_small",
                    "vit_small_patch16_224", "resnet152", "inception_v3", "beit_base_patch16_224", "regnetx_032"]
    r = sfda_rec.query(task="cars", candidates=names)
    assert len(r) == 20 and r.frame["score"].notna().all()


def test_no_units_warning_where_the_history_has_collapsed_runs(sfda_rec, tmp_path):
    """A score <= 1 % is a collapsed run in a history that has such runs, not a fraction."""
    from fennec.history.table import History
    from fennec.query.recommender import Recommender

    rng = np.random.default_rng(0)
    rows = [(f"net{i:02d}", f"task{j}", float(rng.uniform(0.2, 0.9) if (i + j) % 10 == 0 else rng.uniform(40, 90)))
            for i in range(12) for j in range(6)]
    hist = History.from_frame(pd.DataFrame(rows, columns=["model_id", "task_id", "score"]), name="collapses")
    rec = Recommender().fit(hist)
    assert not any("[0, 1]" in n for n in rec.query(observed={"net00": 0.6}).notes)
    # three such scores together are improbable even here: then the warning stands
    assert any("[0, 1]" in n for n in rec.query(observed={"net00": 0.6, "net01": 0.7, "net02": 0.5}).notes)
    assert any("[0, 1]" in n for n in sfda_rec.query(observed={"resnet50": 0.846}).notes)
