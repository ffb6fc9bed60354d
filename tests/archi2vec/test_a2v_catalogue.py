"""The shipped catalogue loads, agrees with fresh vectors, answers `nearest`; building resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from archi2vec import (
    Archi2VecError,
    UnknownArchitectureError,
    build_catalogue,
    embed_timm,
    load_catalogue,
    lookup,
    nearest,
)
from archi2vec.catalogue import catalogue_dir


@pytest.fixture(scope="module")
def shipped():
    if not (catalogue_dir() / "catalogue.npz").is_file():
        pytest.fail(f"the shipped catalogue is missing from {catalogue_dir()}")
    return load_catalogue()


def test_shipped_catalogue_loads(shipped):
    names, vectors, meta = shipped
    assert meta["format"] == "archi2vec-catalogue" and meta["format_version"] == 1
    assert len(names) == vectors.shape[0] == meta["n_encoded"] > 1300
    assert vectors.dtype == np.float32 and vectors.shape[1] == meta["config"]["n_features"] == 256
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len(set(names)) == len(names)
    assert {"networkx", "torch", "timm", "numpy"} <= set(meta["environment"])
    assert set(meta["archs"]) == set(names)
    assert meta["graph_kinds"].get("fx", 0) > 1300


def test_catalogue_rows_equal_fresh_vectors(shipped):
    names, vectors, meta = shipped
    if not meta["compatible"]:
        pytest.skip("catalogue built with another networkx version")
    row = vectors[names.index("test_convnext")]
    np.testing.assert_array_equal(row, embed_timm("test_convnext"))
    np.testing.assert_array_equal(
        lookup(["test_convnext.r160_in1k"], compute_missing=False)[0], row
    )


def test_nearest_resnet50_are_resnet_family(shipped):
    frame = nearest("resnet50", 10)
    assert list(frame.columns) == ["arch", "cosine"] and len(frame) == 10
    assert "resnet50" not in set(frame["arch"])
    assert frame["cosine"].is_monotonic_decreasing
    assert all(("resne" in a) or ("resnext" in a) for a in frame["arch"]), list(frame["arch"])


def test_nearest_deit_small_has_vit_small_first(shipped):
    frame = nearest("deit_small_patch16_224", 5)
    assert frame["cosine"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert "vit_small_patch16_224" in set(frame["arch"])


def test_nearest_of_a_vector_and_errors(shipped):
    names, vectors, _ = shipped
    frame = nearest(vectors[0], 3, include_self=True)
    assert frame["arch"].iloc[0] == names[0] or frame["cosine"].iloc[0] == pytest.approx(
        1.0, abs=1e-6
    )
    with pytest.raises(Archi2VecError, match="The 'k' parameter of nearest must be an int >= 1"):
        nearest("resnet50", 0)
    with pytest.raises(
        UnknownArchitectureError,
        match="'resnet5O' is not in the archi2vec catalogue; close matches",
    ):
        lookup(["resnet5O"], compute_missing=False)


def test_missing_catalogue_names_the_folder(tmp_path):
    with pytest.raises(Archi2VecError, match="No archi2vec catalogue in"):
        load_catalogue(tmp_path)


def test_build_logs_failures_and_resumes(tmp_path):
    manifest = build_catalogue(
        ["test_resnet", "not_a_model"], out_dir=tmp_path, n_features=32, progress=False
    )
    assert manifest["n_encoded"] == 1 and manifest["n_failed"] == 1
    assert "Unknown timm architecture 'not_a_model'" in manifest["failures"]["not_a_model"]
    names, vectors, meta = load_catalogue(tmp_path)
    assert names == ["test_resnet"] and vectors.shape == (1, 32)
    assert (
        json.loads((tmp_path / "manifest.json").read_text())["archs"]["test_resnet"]["kind"] == "fx"
    )
    progress = (tmp_path / ".cache" / "progress.jsonl").read_text().splitlines()
    assert len(progress) == 3  # header + two architectures
    again = build_catalogue(
        ["test_resnet", "not_a_model", "test_vit"], out_dir=tmp_path, n_features=32, progress=False
    )
    progress = (tmp_path / ".cache" / "progress.jsonl").read_text().splitlines()
    assert len(progress) == 4  # only test_vit was encoded
    assert again["n_encoded"] == 2
    np.testing.assert_array_equal(load_catalogue(tmp_path)[1][0], vectors[0])
