from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from fennec.artifacts import FORMAT_VERSION, atomic_directory
from fennec.errors import ArtifactError, NotFittedError, SchemaError, UnknownIdError
from fennec.history.table import History
from fennec.query.recommender import RANKING_COLUMNS, Recommender, RecommenderConfig


@pytest.fixture
def fitted(small_history_csv):
    return Recommender(RecommenderConfig(n_components=1, l2=1.0)).fit(History.from_csv(small_history_csv))


def test_rank_known_task_uses_measured_then_predictions(fitted):
    r = fitted.rank_task("cifar10")
    assert list(r.columns) == RANKING_COLUMNS
    assert r["rank"].tolist() == list(range(1, 7))
    assert r.iloc[0]["model_id"] == "big_vit" and r.iloc[0]["source"] == "measured"
    # small_vit has no cifar10 result: predicted, between its neighbours in the other tasks
    row = r.set_index("model_id").loc["small_vit"]
    assert row["source"] == "subspace" and np.isnan(row["measured"])
    assert 91.0 < row["score"] < 98.5
    assert r["score"].is_monotonic_decreasing


def test_index_scores_equal_subspace_reconstruction(fitted):
    r = fitted.rank_task("dtd", prefer_measured=False).set_index("model_id")
    Z = fitted.subspace_.reconstruct()
    j = fitted.task_ids.index("dtd")
    expected = Z[:, j] * fitted.scaler_.std[j] + fitted.scaler_.mean[j]
    got = r.loc[fitted.model_ids, "score"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_warm_start_and_suggest(fitted):
    r = fitted.rank_observed({"tiny": 50.0, "big_cnn": 70.0}, task_id="new")
    assert set(r.loc[r["source"] == "measured", "model_id"]) == {"tiny", "big_cnn"}
    assert r.set_index("model_id").loc["tiny", "score"] == 50.0
    assert r.iloc[0]["model_id"] in {"big_vit", "big_cnn"}
    nxt = fitted.suggest_next({"tiny": 50.0, "big_cnn": 70.0}, n=2)
    assert len(nxt) == 2 and not set(nxt["model_id"]) & {"tiny", "big_cnn"}
    assert (nxt["ucb"] >= nxt["score"]).all()


def test_prior_ranking_orders_general_quality(fitted):
    r = fitted.rank_prior()
    assert r.iloc[-1]["model_id"] == "tiny"
    assert r.iloc[0]["model_id"] == "big_vit"


def test_errors(fitted):
    with pytest.raises(UnknownIdError, match=r"unknown task 'cifar': not in the history \(5 tasks\); did you mean cifar10, cars\?"):
        fitted.rank_task("cifar")
    with pytest.raises(UnknownIdError, match=r"unknown model id\(s\) in observed scores: 'big_cn' \(did you mean 'big_cnn'\?\)"):
        fitted.rank_observed({"big_cn": 1.0})
    with pytest.raises(SchemaError, match=r"observed score of 'tiny' must be finite, got nan"):
        fitted.rank_observed({"tiny": float("nan")})
    with pytest.raises(SchemaError, match="observed is empty"):
        fitted.rank_observed({})
    with pytest.raises(SchemaError, match=r"top_k=7 is larger than the number of models in the artifact \(6\)"):
        fitted.rank_task("dtd", top_k=7)
    with pytest.raises(NotFittedError):
        Recommender().rank_prior()


def test_save_load_roundtrip(fitted, tmp_path):
    out = fitted.save(tmp_path / "art")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["kind"] == "recommender"
    assert set(manifest["files"]) == {"subspace.safetensors", "model_ids.csv", "task_ids.csv", "history.csv"}
    assert manifest["inputs"]["n_models"] == 6 and "numpy" in manifest["environment"]
    assert not any(p.suffix in {".pkl", ".pickle"} for p in out.iterdir())
    loaded = Recommender.load(out)
    pd.testing.assert_frame_equal(loaded.rank_task("cars"), fitted.rank_task("cars"))
    pd.testing.assert_frame_equal(loaded.rank_observed({"tiny": 1.0, "big_vit": 3.0}),
                                  fitted.rank_observed({"tiny": 1.0, "big_vit": 3.0}))
    # no temporary directories left behind
    assert [p.name for p in tmp_path.iterdir()] == ["art"]


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
