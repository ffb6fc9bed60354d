"""Recommender with task embeddings: rank_embedding, fallback, artifact round trip, identity checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fennec.errors import SchemaError
from fennec.proxy import ProxyMismatchError, TaskEmbedding, TaskEmbeddings
from fennec.query.recommender import RANKING_COLUMNS, Recommender, RecommenderConfig


def test_rank_embedding_of_a_known_task_follows_that_task(sfda_rec, shipped_text):
    q = TaskEmbedding(shipped_text.get("cifar10"), shipped_text.identity, "cifar10-again")
    r = sfda_rec.rank_embedding(q)
    assert list(r.columns) == RANKING_COLUMNS and set(r["source"]) == {"proxy"}
    assert r.attrs["nearest_task"] == "cifar10" and r.attrs["nearest_distance"] < 1e-6 and not r.attrs["fallback"]
    truth = sfda_rec.rank_task("cifar10").set_index("model_id")["score"]
    prior = sfda_rec.rank_prior().set_index("model_id")["score"]
    pred = r.set_index("model_id")["score"]
    from scipy.stats import kendalltau

    assert kendalltau(pred, truth[pred.index]).statistic > kendalltau(prior[pred.index], truth[pred.index]).statistic


def test_far_query_falls_back_to_the_prior(sfda_rec, shipped_text, caplog):
    far = TaskEmbedding(shipped_text.get("diabetic_retinopathy"), shipped_text.identity, "retina")
    r = sfda_rec.rank_embedding(far, top_k=5)
    assert set(r["source"]) == {"prior"} and r.attrs["fallback"] and len(r) == 5
    assert r.attrs["nearest_distance"] > r.attrs["max_distance"]
    assert "far from every historical task" in caplog.text
    assert r["model_id"].tolist() == sfda_rec.rank_prior(top_k=5)["model_id"].tolist()


def test_query_from_another_proxy_is_refused(sfda_rec, shipped_text):
    other = dict(shipped_text.identity, preprocessing={"template": "a sketch of a {}."})
    with pytest.raises(ProxyMismatchError, match=r"embedded with proxy text .*key .* but the task embeddings were "
                       r"made with text sentence-transformers/all-MiniLM-L6-v2"):
        sfda_rec.rank_embedding(TaskEmbedding(shipped_text.get("dtd"), other))
    with pytest.raises(SchemaError, match=r"query embedding has shape \(5,\)"):
        sfda_rec.rank_embedding(np.ones(5))


def test_artifact_round_trip_with_embeddings(sfda_rec, shipped_text, tmp_path):
    sfda_rec.save(tmp_path / "art")
    manifest = json.loads((tmp_path / "art" / "manifest.json").read_text())
    assert manifest["proxy"]["identity"]["kind"] == "text" and manifest["proxy"]["n_embedded_tasks"] == 44
    assert {"proxy.safetensors", "task_embeddings.csv"} <= set(manifest["files"])
    back = Recommender.load(tmp_path / "art")
    assert back.proxy_identity == shipped_text.identity
    for t in ("stl10", "pcam", "nabirds"):
        q = TaskEmbedding(shipped_text.get(t), shipped_text.identity, t)
        pd.testing.assert_frame_equal(back.rank_embedding(q), sfda_rec.rank_embedding(q))
    # the old paths are untouched
    pd.testing.assert_frame_equal(back.rank_task("dtd"), sfda_rec.rank_task("dtd"))


def test_fit_from_a_dict_and_errors(sfda_history, shipped_text, caplog):
    cfg = RecommenderConfig(n_components=2, l2=1.0, index_backend="numpy", projector="ridge")
    some = {t: shipped_text.get(t) for t in ("cifar10", "dtd", "pets", "food")}
    rec = Recommender(cfg).fit(sfda_history, some)
    assert rec.proxy_identity is None and rec.projector_.task_ids_ == ["cifar10", "dtd", "food", "pets"]
    assert "9 task(s) of the history have no embedding" in caplog.text
    assert len(rec.rank_embedding(shipped_text.get("stl10"))) == 36
    with pytest.raises(SchemaError, match="only 2 of the history's 13 tasks have an embedding"):
        Recommender(cfg).fit(sfda_history, {t: shipped_text.get(t) for t in ("cifar10", "dtd")})
    plain = Recommender(cfg).fit(sfda_history)
    with pytest.raises(SchemaError, match="has no task projector: fit it with task embeddings"):
        plain.rank_embedding(shipped_text.get("dtd"))
    df = pd.DataFrame(shipped_text.vectors, index=shipped_text.task_ids)
    df.attrs["proxy_identity"] = shipped_text.identity
    assert TaskEmbeddings.coerce(df).identity == shipped_text.identity
