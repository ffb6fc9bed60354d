"""The animal_mnist example ships in a safe format (issue 11 item 6, issue 12): no second install step,
no pickle anywhere."""

from __future__ import annotations

import ast
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from fennec.data.examples import ANIMAL_DRAW_SEEDS, ANIMAL_DRAW_SIZES, load_example_task
from fennec.errors import SchemaError

REPO = Path(__file__).resolve().parents[2]
# sha256 of images + labels of the README's draw (20 per class, seed 0), as animal-mnist 0.4's own files give it
README_DRAW_SHA256 = "6855b696b77eff377a187c0052db0121651312f04e700595f44dbc894a60cb32"


def _digest(task) -> str:
    return hashlib.sha256(task.images.tobytes() + task.labels.astype(np.int64).tobytes()).hexdigest()


def test_animal_mnist_needs_no_extra_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "animal_mnist", None)  # not installed
    task = load_example_task("animal_mnist", n_per_class=20, random_state=0)
    assert task.images.shape == (200, 28, 28) and np.bincount(task.labels).tolist() == [20] * 10
    assert _digest(task) == README_DRAW_SHA256
    assert task.class_names[:3] == ["bear", "bird", "cat"] and "MIT" in task.source


def test_every_documented_draw_ships_and_others_are_refused():
    for n in ANIMAL_DRAW_SIZES:
        for seed in ANIMAL_DRAW_SEEDS:
            task = load_example_task("animal_mnist", n_per_class=n, random_state=seed)
            assert np.bincount(task.labels).tolist() == [n] * 10 and task.images.max() > 100
    everything = load_example_task("animal_mnist")
    assert len(everything) == 2125 and everything.images.min(axis=(1, 2)).max() < 255
    with pytest.raises(SchemaError, match=r"^animal_mnist: the shipped subset holds the draws n_per_class in "
                                          r"\[4, 5, 10, 20, 40\] with random_state in \[0, 1, 2\] \(2125 images\); "
                                          r"n_per_class=7, random_state=0 needs others"):
        load_example_task("animal_mnist", n_per_class=7)


def test_the_subset_is_documented_with_its_licence():
    folder = REPO / "data" / "examples"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256((folder / "animal_mnist_subset.npz").read_bytes()).hexdigest()
    assert digest in readme and "MIT licence" in readme
    assert (folder / "LICENSE-animal-mnist").read_text().startswith("MIT License")
    with np.load(folder / "animal_mnist_subset.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["images", "index", "labels"]


def test_one_install_step():
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install --quiet -c constraints.txt -e ".[dev]"' in ci and "animal-mnist" not in ci
    assert "nvidia-" in ci  # the CUDA check stays
    deps = (REPO / "pyproject.toml").read_text().split("dependencies = [", 1)[1].split("]", 1)[0]
    assert '"filelock>=' in deps
    assert "animal-mnist" not in (REPO / "README.md").read_text()


def _calls(tree, names):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f"{f.value.id}.{f.attr}" if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            if name in names:
                yield node


@pytest.mark.parametrize("package", ["fennec", "archi2vec", "scripts"])
def test_no_pickle_anywhere(package):
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.split(".")[0] in ("pickle", "dill", "cloudpickle", "joblib") for m in mods), path
        for call in _calls(tree, {"torch.load"}):
            kw = {k.arg: k.value for k in call.keywords}
            assert isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True, \
                f"{path}:{call.lineno}: torch.load without weights_only=True"
        for call in _calls(tree, {"np.load", "numpy.load"}):
            kw = {k.arg: k.value for k in call.keywords}
            assert not (isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value), \
                f"{path}:{call.lineno}: np.load with allow_pickle"
