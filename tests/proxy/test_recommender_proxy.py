"""Recommender with task embeddings: query(embedding=...), the far-query fallback, artifact round trip, identity."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from fennec.errors import SchemaError
from fennec.proxy import ProxyMismatchError, TaskEmbedding, TaskEmbeddings
from fennec.query.ranking import COLUMNS
from fennec.query.recommender import Recommender, RecommenderConfig


def test_embedding_of_a_known_task_follows_that_task(sfda_rec, shipped_text):
    q = TaskEmbedding(shipped_text.get("cifar10"), shipped_text.identity, "cifar10-again")
    r = sfda_rec.query(embedding=q)
    assert list(r.frame.columns) == COLUMNS and set(r.frame["source"]) == {"proxy"}
    assert r.placement == "proxy" and r.task_id == "cifar10-again" and r.proxy == shipped_text.identity
    assert r.nearest_task == "cifar10" and r.nearest_distance < 1e-6 and r.fallback is None
    truth = sfda_rec.query(task="cifar10").frame.set_index("model_id")["score"]
    prior = sfda_rec.query().frame.set_index("model_id")["score"]
    pred = r.frame.set_index("model_id")["score"]
    assert kendalltau(pred, truth[pred.index]).statistic > kendalltau(prior[pred.index], truth[pred.index]).statistic


def test_far_query_falls_back_to_the_prior(sfda_rec, shipped_text, caplog):
    far = TaskEmbedding(shipped_text.get("diabetic_retinopathy"), shipped_text.identity, "retina")
    r = sfda_rec.query(embedding=far, top_k=5)
    assert set(r.frame["source"]) == {"prior"} and r.fallback == "prior" and len(r) == 5
    assert r.nearest_distance > r.max_distance
    assert "far from every historical task" in caplog.text
    assert r.model_ids == sfda_rec.query(top_k=5).model_ids
    kept = sfda_rec.query(embedding=far, top_k=5, fallback="none")
    assert set(kept.frame["source"]) == {"proxy"} and kept.fallback is None


def test_query_from_another_proxy_is_refused(sfda_rec, shipped_text):
    other = dict(shipped_text.identity, preprocessing={"template": "a sketch of a {}."})
    with pytest.raises(ProxyMismatchError, match=r"embedded with proxy text .*key .* but the task embeddings were "
                       r"made with text sentence-transformers/all-MiniLM-L6-v2"):
        sfda_rec.query(embedding=TaskEmbedding(shipped_text.get("dtd"), other))
    with pytest.raises(SchemaError, match=r"query embedding has shape \(5,\)"):
        sfda_rec.query(embedding=np.ones(5))


def test_artifact_round_trip_with_embeddings(sfda_rec, shipped_text, tmp_path):
    sfda_rec.save(tmp_path / "art")
    manifest = json.loads((tmp_path / "art" / "manifest.json").read_text())
    assert manifest["proxy"]["identity"]["kind"] == "text" and manifest["proxy"]["n_embedded_tasks"] == 44
    assert {"proxy.safetensors", "task_embeddings.csv"} <= set(manifest["files"])
    back = Recommender.load(tmp_path / "art")
    assert back.proxy_identity == shipped_text.identity
    for t in ("stl10", "pcam", "nabirds"):
        q = TaskEmbedding(shipped_text.get(t), shipped_text.identity, t)
        pd.testing.assert_frame_equal(back.query(embedding=q).frame, sfda_rec.query(embedding=q).frame)
    # the other paths are untouched
    pd.testing.assert_frame_equal(back.query(task="dtd").frame, sfda_rec.query(task="dtd").frame)
    # a benchmark the history lacks, given by id, is placed by its class names
    assert sfda_rec.query(embedding=shipped_text.get("stl10"), task_id="stl10").placement == "proxy"


def test_fit_from_a_dict_and_errors(sfda_history, shipped_text, caplog):
    cfg = RecommenderConfig(n_components=2, l2=1.0, index_backend="numpy", projector="ridge")
    some = {t: shipped_text.get(t) for t in ("cifar10", "dtd", "pets", "food")}
    rec = Recommender(cfg).fit(sfda_history, some)
    assert rec.proxy_identity is None and rec.projector_.task_ids_ == ["cifar10", "dtd", "food", "pets"]
    assert "9 column(s) of the history have no task embedding" in caplog.text
    assert len(rec.query(embedding=shipped_text.get("stl10"))) == 36
    with pytest.raises(SchemaError, match="only 2 of the history's 13 columns have a task embedding"):
        Recommender(cfg).fit(sfda_history, {t: shipped_text.get(t) for t in ("cifar10", "dtd")})
    plain = Recommender(cfg).fit(sfda_history)
    with pytest.raises(SchemaError, match="has no task projector: fit it with task embeddings"):
        plain.query(embedding=shipped_text.get("dtd"))
    df = pd.DataFrame(shipped_text.vectors, index=shipped_text.task_ids)
    df.attrs["proxy_identity"] = shipped_text.identity
    assert TaskEmbeddings.coerce(df).identity == shipped_text.identity
