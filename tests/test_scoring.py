"""score_models, the ImageFolder reader and the ``fennec score`` command."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fennec.errors import SchemaError, UnknownIdError
from fennec.transferability.scoring import SCORE_COLUMNS, load_image_folder, score_models

MODELS = ["test_efficientnet", "test_resnet"]


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def probe():
    rng = np.random.default_rng(0)
    labels = np.arange(12) % 3
    images = (rng.integers(0, 60, size=(12, 16, 16)) + 60 * labels[:, None, None]).astype(np.uint8)
    return images, labels


def test_score_models_table(probe):
    images, labels = probe
    table = score_models(MODELS, images, labels, metric="logme", progress=False)
    assert list(table.columns) == SCORE_COLUMNS
    assert sorted(table["model_id"]) == sorted(MODELS)
    assert list(table["rank"]) == [1, 2]
    assert table["score"].is_monotonic_decreasing
    assert set(table["n_images"]) == {12} and set(table["metric"]) == {"logme"}
    assert dict(zip(table["model_id"], table["feature_dim"], strict=True)) == {"test_efficientnet": 256, "test_resnet": 96}


def test_score_models_leep_uses_source_head(probe):
    images, labels = probe
    table = score_models(["test_efficientnet"], images, labels, metric="leep", progress=False)
    assert table["score"].iloc[0] < 0


def test_score_models_errors(probe):
    images, labels = probe
    with pytest.raises(SchemaError, match=r"^images has 12 entries but labels has shape \(11,\)$"):
        score_models(MODELS, images, labels[:-1], progress=False)
    with pytest.raises(UnknownIdError, match=r"unknown metric 'nope'"):
        score_models(MODELS, images, labels, metric="nope", progress=False)
    with pytest.raises(SchemaError, match=r"model 'test_resnet' is listed twice"):
        score_models(["test_resnet", "test_resnet"], images, labels, progress=False)
    with pytest.raises(SchemaError, match=r"^models is empty; give at least one model$"):
        score_models([], images, labels, progress=False)


def _write_folder(root, classes=("cat", "dog"), n=3):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_load_image_folder(tmp_path):
    root = _write_folder(tmp_path / "task")
    images, labels, classes = load_image_folder(root)
    assert classes == ["cat", "dog"] and list(labels) == [0, 0, 0, 1, 1, 1]
    assert images[0].shape == (10, 12, 3) and images[0].dtype == np.uint8
    _, sub, _ = load_image_folder(root, n_per_class=2)
    assert np.bincount(sub).tolist() == [2, 2]


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image folder not found"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"not a directory"):
        load_image_folder(tmp_path / "file.txt")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(SchemaError, match=r"^no images found in .*empty"):
        load_image_folder(tmp_path / "empty")
    one = _write_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(SchemaError, match=r"has a single class folder with images \('only'\); at least 2 classes are needed"):
        load_image_folder(one)
    gap = _write_folder(tmp_path / "gap")
    (gap / "zebra").mkdir()
    with pytest.raises(SchemaError, match=r"class folder\(s\) without images in .*gap: zebra$"):
        load_image_folder(gap)
    bad = _write_folder(tmp_path / "bad")
    (bad / "dog" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(SchemaError, match=r"cannot read image .*broken\.jpg"):
        load_image_folder(bad)


@pytest.fixture
def cli(monkeypatch, tmp_path):
    import fennec.cli._score  # noqa: F401  (registers the command)
    from fennec.cli import app

    monkeypatch.setenv("FENNEC_CACHE_DIR", str(tmp_path / "cache"))  # the default feature cache, not ~/.cache
    return lambda args: CliRunner().invoke(app, args)


def test_cli_score_folder_json(cli, tmp_path):
    root = _write_folder(tmp_path / "task")
    result = cli(["score", "--models", ",".join(MODELS), "--images", str(root), "--format", "json", "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["rank"] for r in rows] == [1, 2] and set(rows[0]) == set(SCORE_COLUMNS)


def test_cli_score_example_task_csv(cli):
    result = cli(["score", "-m", "test_resnet", "--example-task", "sklearn_digits", "--n-per-class", "2",
                  "--metric", "sfda", "--format", "csv", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == ",".join(SCORE_COLUMNS)


def test_cli_score_needs_exactly_one_source(cli, tmp_path):
    result = cli(["score", "--models", "test_resnet"])
    assert result.exit_code == 2
    assert "give exactly one of --images DIR or --example-task NAME" in result.output


def test_cli_score_default_cache_and_per_model_progress(cli, tmp_path, caplog):
    """Features are cached under the cache root by default (read back the second time); off a terminal the
    progress is one line per model as it starts and ends; --no-cache writes nothing."""
    root = _write_folder(tmp_path / "task")
    args = ["score", "--models", ",".join(MODELS), "--images", str(root), "--format", "csv"]
    with caplog.at_level(logging.INFO):  # the handler; the CLI leaves the fennec loggers at WARNING
        first = cli(args)
        assert first.exit_code == 0, first.output
        ends = [r.getMessage() for r in caplog.records if "logme =" in r.getMessage()]
        assert [m.split(":")[0] for m in ends] == ["[1/2] test_efficientnet", "[2/2] test_resnet"]
        cached = sorted((tmp_path / "cache" / "features").glob("*.npz"))
        assert len(cached) == 2
        caplog.clear()
        second = cli(args)
        assert second.exit_code == 0 and second.stdout == first.stdout
        assert all("from the cache" in r.getMessage() for r in caplog.records if "logme =" in r.getMessage())
    other = tmp_path / "nocache"
    result = cli([*args, "--no-cache", "--no-progress"])
    assert result.exit_code == 0 and not other.exists()
    assert sorted((tmp_path / "cache" / "features").glob("*.npz")) == cached
    assert cli([*args, "--no-cache", "--cache-dir", str(other)]).exit_code == 2
