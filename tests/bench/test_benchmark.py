"""Benchmark release: export layout, checksums, stored splits, evaluation on them through the product."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from fennec.artifacts import sha256_file
from fennec.data.shipped import history_path, load_history
from fennec.errors import ArtifactError, SchemaError
from fennec.evaluation import evaluate_history
from fennec.evaluation.protocols import canonical
from fennec.evaluation.rankmetrics import CONVENTIONS, ranking_metrics
from fennec.history.table import History
from fennec.query.recommender import Recommender
from fennec.release.evaluate import quick_config, results_markdown
from fennec.release.export import load_benchmark, make_splits, verify_benchmark
from fennec.zoo.registry import ModelRegistry


def _quiet_history(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_history(name)


def test_export_layout_and_manifest(release_dir, release):
    manifest = json.loads((release_dir / "manifest.json").read_text())
    assert manifest["format"] == "fennec-benchmark" and manifest["format_version"] == 1
    on_disk = {p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json"}  # every file is checksummed
    for name, digest in manifest["files"].items():
        assert sha256_file(release_dir / name) == digest
    for required in ("histories/logme.csv", "tasks.csv", "classnames.json", "models.csv", "archi2vec.safetensors",
                     "archi2vec_ids.csv", "splits.json", "conventions.json", "README.md",
                     "task_embeddings/text_minilm.safetensors"):
        assert required in manifest["files"]
    assert (release_dir / "histories/logme.csv").read_bytes() == history_path("logme").read_bytes()
    h = release.history("logme")
    reg = release.registry()
    assert sorted(release.models["model_id"]) == sorted({reg.resolve(m).model_id for m in h.model_ids})
    assert all(reg.resolve(m).resolved for m in h.model_ids)  # every history id resolves from the release alone
    assert set(release.tasks["task_id"]) == set(h.task_ids)
    for row in release.tasks.itertuples():
        assert len(release.classnames[row.classnames_key]) == row.n_classes
    assert release.archi2vec.vectors.shape == (len(release.archi2vec.archs), 256)
    assert json.loads((release_dir / "conventions.json").read_text())["metrics"] == CONVENTIONS
    readme = (release_dir / "README.md").read_text()
    assert "Licence: MIT" in readme and "thuml/Transfer-Learning-Library" in readme  # logme provenance copied
    assert "fennec evaluate --benchmark" in readme


def test_loto_on_release_equals_evaluate_history(logme_loto):
    """From the release alone, leave-one-task-out reproduces evaluate_history on the shipped data."""
    expected = evaluate_history(_quiet_history("logme"), config=quick_config(protocols=("loto",)))
    got = logme_loto.drop(columns="history")
    pd.testing.assert_frame_equal(got, expected)
    assert {"fennec", "history_prior", "imagenet_top1", "params", "random"} <= set(got["method"])


def test_lomo_uses_release_archi2vec_and_matches(release):
    """The cold-model protocol reads models and archi2vec vectors from the release and matches the catalogue's."""
    h = release.history("logme")
    cfg = quick_config(protocols=("lomo",), noarch=False)
    got = evaluate_history(h, splits=release.history_splits("logme"), registry=release.registry(), config=cfg,
                           arch=release.archi2vec.source())
    ref = evaluate_history(h, splits=release.history_splits("logme"), config=cfg)
    pd.testing.assert_frame_equal(got, ref)


def test_warm_start_uses_the_stored_draws(release):
    h = release.history("logme")
    splits = json.loads(json.dumps(release.history_splits("logme")))
    task = splits["loto"][0]
    revealed_ids = splits["warm"][task]["3"][1]
    cfg = quick_config(protocols=("warm",), warm_k=(3,))
    res = evaluate_history(h, splits=splits, registry=release.registry(), config=cfg)
    row = res[(res["task_id"] == task) & (res["method"] == "fennec") & (res["draw"] == 1)].iloc[0]
    # recompute that draw through the product from the same revealed models
    hc = canonical(h, release.registry())
    Y, models, tasks = hc.to_matrix()
    j = tasks.index(task)
    rec = Recommender(cfg.recommender, registry=release.registry()).fit(
        History.from_frame(hc.frame[hc.frame["task_id"] != task], name="logme"))
    ranking = rec.query(observed={m: Y[models.index(m), j] for m in revealed_ids}).frame.set_index("model_id")
    hidden = [m for m in models if m not in revealed_ids]
    assert row["n_models"] == len(hidden)
    expected = ranking_metrics(ranking.loc[hidden, "score"].to_numpy(), Y[[models.index(m) for m in hidden], j])
    assert row["kendall_tau"] == pytest.approx(expected["kendall_tau"])
    # other draws give other rows: the evaluation follows the splits
    splits["warm"][task]["3"][1] = splits["warm"][task]["3"][0]
    res2 = evaluate_history(h, splits=splits, registry=release.registry(), config=cfg)
    a = res2[(res2["task_id"] == task) & (res2["method"] == "fennec")]
    assert a.iloc[0]["kendall_tau"] == a.iloc[1]["kendall_tau"]


def test_splits_reproducible_from_the_seed(release):
    h = canonical(release.history("logme"), ModelRegistry.load())
    stored = release.history_splits("logme")
    again = make_splits(h, seed=0, n_draws=3)
    assert json.loads(json.dumps(again)) == stored
    assert make_splits(h, seed=1, n_draws=3)["warm"] != stored["warm"]
    # the documented generator, re-implemented independently
    Y, models, tasks = h.to_matrix()
    rng = np.random.default_rng([0, 1])
    for j, task in enumerate(tasks):
        measured = np.flatnonzero(np.isfinite(np.delete(Y, j, axis=1)).any(axis=1) & np.isfinite(Y[:, j]))
        for k in (1, 3, 5):
            if len(measured) - k < 3:
                continue
            for d in range(3):
                assert [models[i] for i in rng.choice(measured, size=k, replace=False)] == stored["warm"][task][str(k)][d]
    rng = np.random.default_rng([0, 2])
    obs_r, obs_c = np.nonzero(np.isfinite(Y))
    held = rng.random(len(obs_r)) < 0.2
    assert stored["cells"][0] == [[int(r), int(c)] for r, c in zip(obs_r[held], obs_c[held], strict=True)]


@pytest.mark.parametrize("name", ["histories/logme.csv", "splits.json", "archi2vec.safetensors", "models.csv",
                                  "task_embeddings/text_minilm.safetensors", "README.md"])
def test_one_changed_byte_fails_with_checksum_error(release_dir, tmp_path, name):
    copy = tmp_path / "release"
    shutil.copytree(release_dir, copy)
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"{name.split('/')[-1]}.*checksum"):
        load_benchmark(copy)


def test_missing_file_and_not_a_release(release_dir, tmp_path):
    copy = tmp_path / "release"
    shutil.copytree(release_dir, copy)
    (copy / "tasks.csv").unlink()
    with pytest.raises(ArtifactError, match="tasks.csv: listed in the manifest but missing"):
        verify_benchmark(copy)
    with pytest.raises(ArtifactError, match="not found"):
        load_benchmark(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load_benchmark(tmp_path / "empty")


def test_splits_of_another_history_are_refused(release):
    h = _quiet_history("sfda")
    with pytest.raises(SchemaError, match="belong to another history"):
        evaluate_history(h, splits=release.history_splits("logme"), config=quick_config(protocols=("loto",)))


def test_results_markdown(logme_loto):
    text = results_markdown(logme_loto, title="t")
    assert text.startswith("# t") and "## logme" in text and "| leave-one-task-out | **fennec** | 8 |" in text


def test_export_is_reproducible_byte_for_byte(tmp_path, monkeypatch):
    """Two exports with the same SOURCE_DATE_EPOCH are the same bytes (PCA rounded, metadata sorted)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764633600")
    from fennec.release.export import export_benchmark

    a = export_benchmark(tmp_path / "a", histories=["logme"], n_draws=2)
    b = export_benchmark(tmp_path / "b", histories=["logme"], n_draws=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
