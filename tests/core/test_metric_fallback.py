from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import fennec.transferability.scoring
from fennec.data.shipped import load_history
from fennec.errors import SchemaError
from fennec.query.candidates import calibrate_metric
from fennec.query.recommender import Recommender, RecommenderConfig


def test_linear_calibration_recovers_an_affine_map():
    ranking = pd.DataFrame({"model_id": ["a", "b", "c", "d"], "score": [80.0, 85.0, 90.0, 70.0]})
    metric = pd.DataFrame({"model_id": ["a", "b", "c", "new"], "score": [1.0, 2.0, 3.0, 2.5]})
    values, info = calibrate_metric(ranking, metric)
    assert info == {"calibration": "linear", "n_models": 3, "slope": pytest.approx(5.0), "intercept": pytest.approx(75.0)}
    np.testing.assert_allclose(values, [80, 85, 90, 87.5])


def test_negative_slope_is_clipped_and_moment_matching_without_overlap():
    ranking = pd.DataFrame({"model_id": ["a", "b", "c"], "score": [90.0, 85.0, 80.0]})
    metric = pd.DataFrame({"model_id": ["a", "b", "c", "x"], "score": [1.0, 2.0, 3.0, 9.0]})
    values, info = calibrate_metric(ranking, metric)
    assert info["slope"] == 0.0 and np.allclose(values, 85.0)
    metric = pd.DataFrame({"model_id": ["x", "y"], "score": [1.0, 3.0]})
    values, info = calibrate_metric(ranking, metric)
    assert info == {"calibration": "moment-matched", "n_models": 0}
    assert values.mean() == pytest.approx(85.0) and values[1] > values[0]


@pytest.fixture(scope="module")
def rec():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = load_history("sfda")
    return Recommender(RecommenderConfig(n_components=2, l2=1.0, placer_folds=3)).fit(h)


def test_fallback_scores_only_models_with_weights(rec, monkeypatch):
    calls = []
    fake = {"efficientnet-lite0": 0.3, "efficientnet-lite1": 0.1, "resnet50@w.pth": 0.2,
            "densenet121@w.pth": 0.0, "resnet101@w.pth": 0.25}

    def fake_score(models, images, labels, **kw):
        calls.append(models[0])
        return pd.DataFrame({"model_id": [models[0]], "score": [fake[models[0]]]})

    monkeypatch.setattr(fennec.transferability.scoring, "score_models", fake_score)
    images, labels = np.zeros((6, 8, 8, 3), np.uint8), np.array([0, 0, 0, 1, 1, 1])
    ranking = rec.query(task="pets").frame.set_index("model_id")["score"]
    out = rec.query(task="pets", images=images, labels=labels, fallback="logme",
                    candidates=["resnet50@w.pth", "densenet121@w.pth", "resnet101@w.pth", "efficientnet-lite0",
                                "efficientnet-lite1", "convnext_tiny"])
    src = out.frame.set_index("input")["source"].to_dict()
    assert src == {"resnet50": "measured", "densenet121": "measured", "resnet101": "measured",
                   "efficientnet-lite0": "logme", "efficientnet-lite1": "logme", "convnext_tiny": "cold"}
    assert sorted(calls) == sorted(fake)  # the bare architecture was not scored
    info = out.details["metric_fallback"]
    assert info["calibration"] == "linear" and info["n_models"] == 3 and out.fallback == "logme"
    s = out.frame.set_index("input")["score"]
    assert s["efficientnet-lite0"] > s["efficientnet-lite1"]
    # the calibrated score follows the line fitted on the three history models
    b, a = np.polyfit([0.2, 0.0, 0.25], [ranking["resnet50.tv_in1k"], ranking["densenet121.tv_in1k"],
                                         ranking["resnet101.tv_in1k"]], 1)
    assert s["efficientnet-lite0"] == pytest.approx(a + b * 0.3)
    assert out.frame.set_index("input").loc["efficientnet-lite0", "model_id"] == "tf_efficientnet_lite0.in1k"


def test_fallback_needs_candidates_and_images(rec):
    with pytest.raises(SchemaError, match="scores candidates with weights on labelled images: give both"):
        rec.query(task="pets", fallback="logme")
