"""Recommender.query: every way of describing a task, the Ranking it returns, top-K through the index, I/O."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from fennec.artifacts import FORMAT_VERSION, atomic_directory
from fennec.errors import ArtifactError, NotFittedError, SchemaError, UnknownIdError
from fennec.history.table import History
from fennec.query.ranking import COLUMNS, Ranking
from fennec.query.recommender import Recommender, RecommenderConfig


@pytest.fixture
def fitted(small_history_csv):
    return Recommender(RecommenderConfig(n_components=1, l2=1.0)).fit(History.from_csv(small_history_csv))


def test_known_task_uses_measured_then_predictions(fitted):
    r = fitted.query(task="cifar10")
    assert isinstance(r, Ranking) and list(r.frame.columns) == COLUMNS
    assert r.placement == "history" and r.units == "task" and r.columns == ("cifar10",)
    assert r.frame["rank"].tolist() == list(range(1, 7))
    assert r.frame.iloc[0]["model_id"] == "big_vit" and r.frame.iloc[0]["source"] == "measured"
    # small_vit has no cifar10 result: predicted, between its neighbours in the other tasks
    row = r.frame.set_index("model_id").loc["small_vit"]
    assert row["source"] == "subspace" and np.isnan(row["measured"])
    assert 91.0 < row["score"] < 98.5
    assert r.frame["score"].is_monotonic_decreasing


def test_predictions_equal_the_subspace_reconstruction(fitted):
    r = fitted.query(task="dtd").frame.set_index("model_id")
    pred = r[r["source"] == "subspace"]
    j = fitted.column_ids.index("dtd")
    Z = fitted.subspace_.reconstruct()
    for m, score in pred["score"].items():
        i = fitted.position(m)
        assert score == pytest.approx(Z[i, j] * fitted.scaler_.std[j] + fitted.scaler_.mean[j], rel=1e-5)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 6])
def test_top_k_through_the_index_is_the_head_of_the_full_ranking(fitted, k):
    for task in (None, "voc2007", "pets"):
        full = fitted.query(task=task)
        top = fitted.query(task=task, top_k=k)
        assert top.model_ids == full.model_ids[:k]
        np.testing.assert_allclose(top.frame["score"], full.frame["score"].head(k), rtol=1e-6)


def test_top_k_asks_the_index_for_k_plus_measured(fitted, monkeypatch):
    calls = []
    orig = fitted.index_.search

    def spy(q, k):
        calls.append(k)
        return orig(q, k)

    monkeypatch.setattr(fitted.index_, "search", spy)
    fitted.query(top_k=2)
    fitted.query(task="voc2007", top_k=1)  # 4 measured models on voc2007
    assert calls == [2, 5]


def test_warm_start_and_suggest(fitted):
    r = fitted.query(observed={"tiny": 50.0, "big_cnn": 70.0}, task_id="new")
    f = r.frame
    assert r.placement == "warm_start" and r.task_id == "new"
    assert set(f.loc[f["source"] == "measured", "model_id"]) == {"tiny", "big_cnn"}
    assert f.set_index("model_id").loc["tiny", "score"] == pytest.approx(50.0)
    assert f.iloc[0]["model_id"] in {"big_vit", "big_cnn"}
    nxt = fitted.suggest_next({"tiny": 50.0, "big_cnn": 70.0}, n=2).frame
    assert len(nxt) == 2 and not set(nxt["model_id"]) & {"tiny", "big_cnn"}
    assert (nxt["ucb"] >= nxt["score"]).all()


def test_prior_ranking_orders_general_quality(fitted):
    r = fitted.query()
    assert r.placement == "prior" and r.units == "standardised"
    assert r.frame.iloc[-1]["model_id"] == "tiny"
    assert r.frame.iloc[0]["model_id"] == "big_vit"


def test_ranking_helpers(fitted, tmp_path):
    r = fitted.query(task="cars")
    assert len(r.top(2)) == 2 and r.top(100).model_ids == r.model_ids
    assert r.to_frame() is not r.frame and r.to_frame().equals(r.frame)
    assert r.to_csv().splitlines()[0] == ",".join(COLUMNS)
    doc = json.loads(r.to_json())
    assert doc["placement"] == "history" and len(doc["ranking"]) == 6
    r.to_csv(tmp_path / "r.csv")
    assert pd.read_csv(tmp_path / "r.csv")["model_id"].tolist() == r.model_ids
    np.testing.assert_allclose(r.standardised(), (r.frame["score"] - r.offset) / r.scale)
    with pytest.raises(SchemaError, match="k must be a positive integer, got 0"):
        r.top(0)


def test_errors(fitted):
    with pytest.raises(UnknownIdError, match=r"unknown task 'cifar': not in the history \(5 tasks\); did you mean cifar10, cars\?"):
        fitted.query(task="cifar")
    with pytest.raises(UnknownIdError, match=r"observed model 'big_cn': not in the model registry .*did you mean"):
        fitted.query(observed={"big_cn": 1.0})
    with pytest.raises(SchemaError, match=r"observed score of 'tiny' must be finite, got nan"):
        fitted.query(observed={"tiny": float("nan")})
    with pytest.raises(SchemaError, match="observed must be a non-empty mapping"):
        fitted.query(observed={})
    with pytest.raises(SchemaError, match="describe the task one way only; got task, observed"):
        fitted.query(task="dtd", observed={"tiny": 1.0})
    with pytest.raises(SchemaError, match="top_k must be a positive integer, got 0"):
        fitted.query(top_k=0)
    with pytest.raises(SchemaError, match="fallback must be 'prior', 'none' or a transferability metric"):
        fitted.query(fallback="magic")
    with pytest.raises(SchemaError, match="no task projector"):
        fitted.query(embedding=np.ones(4))
    with pytest.raises(NotFittedError):
        Recommender().query()


def test_save_load_roundtrip(fitted, tmp_path):
    out = fitted.save(tmp_path / "art")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["kind"] == "recommender"
    assert {"subspace.safetensors", "model_ids.csv", "columns.csv", "history.csv", "placer.safetensors"} <= set(
        manifest["files"])
    assert manifest["inputs"]["n_models"] == 6 and "numpy" in manifest["environment"]
    assert not any(p.suffix in {".pkl", ".pickle"} for p in out.iterdir())
    loaded = Recommender.load(out)
    for kwargs in ({"task": "cars"}, {"observed": {"tiny": 1.0, "big_vit": 3.0}}, {},
                   {"task": "dtd", "candidates": ["tiny", "resnet18", "convnext_tiny"]}):
        pd.testing.assert_frame_equal(loaded.query(**kwargs).frame, fitted.query(**kwargs).frame)
    assert [p.name for p in tmp_path.iterdir()] == ["art"]  # no temporary directories left behind


def test_loaded_history_is_read_on_first_use_and_checked(fitted, small_history_csv, tmp_path, monkeypatch):
    """A loaded artifact reads its history table only when asked (a query needs the score matrix alone), and
    refuses a history.csv that is no longer the one its manifest vouched for."""
    out = fitted.save(tmp_path / "art")
    with monkeypatch.context() as m:
        m.setattr(History, "from_csv", classmethod(lambda cls, *a, **k: pytest.fail("history read by the load")))
        loaded = Recommender.load(out)
        loaded.query(observed={"tiny": 1.0, "big_vit": 3.0})
    np.testing.assert_array_equal(loaded.Z_, fitted.Z_)
    pd.testing.assert_frame_equal(loaded.history_.frame, fitted.history_.frame)
    digest = json.loads((out / "manifest.json").read_text())["files"]["history.csv"]
    assert (loaded.history_.name, loaded.history_.sha256) == (fitted.history_.name, digest)
    pd.testing.assert_frame_equal(loaded.columns_.frame, fitted.columns_.frame)
    stale = Recommender.load(out)
    refit = Recommender().fit(History.from_csv(small_history_csv).subset(tasks=["cars", "dtd", "pets"]))
    refit.save(out)  # replaces the directory the first load read
    pd.testing.assert_frame_equal(Recommender.load(out).subspace_.cv_results_, refit.subspace_.cv_results_)
    with pytest.raises(ArtifactError, match=r"history.csv: changed since the artifact was loaded"):
        _ = stale.history_


def test_load_refuses_newer_corrupt_or_modified(fitted, tmp_path):
    out = fitted.save(tmp_path / "art")
    m = json.loads((out / "manifest.json").read_text())
    newer = tmp_path / "newer"
    shutil.copytree(out, newer)
    (newer / "manifest.json").write_text(json.dumps({**m, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ArtifactError, match=rf"format_version {FORMAT_VERSION + 1} is newer than this Fennec supports \({FORMAT_VERSION}\); upgrade fennec"):
        Recommender.load(newer)
    modified = tmp_path / "modified"
    shutil.copytree(out, modified)
    with open(modified / "subspace.safetensors", "r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(ArtifactError, match=r"subspace.safetensors: checksum mismatch"):
        Recommender.load(modified)
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"manifest.json: corrupt manifest"):
        Recommender.load(broken)
    with pytest.raises(ArtifactError, match=r"artifact directory not found"):
        Recommender.load(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match=r"is not a directory"):
        Recommender.load(tmp_path / "file")


def test_atomic_directory_leaves_old_artifact_on_failure(tmp_path):
    target = tmp_path / "art"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target, force=True) as tmp:  # not a Fennec dir
        (tmp / "half.txt").write_text("new")
        raise RuntimeError("crash while writing")
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["art"]
