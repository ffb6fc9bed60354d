"""Training data: canonical form, stratified seeded split, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from fennec.errors import SchemaError
from fennec.train.data import as_task_data, stratified_split


def test_stratified_split_is_seeded_and_keeps_every_class_on_both_sides():
    y = np.repeat(np.arange(5), [10, 4, 3, 2, 7])
    tr, va = stratified_split(y, 0.25, seed=3)
    assert np.array_equal(np.sort(np.r_[tr, va]), np.arange(len(y)))
    assert set(y[tr]) == set(y[va]) == set(range(5))
    assert [int((y[va] == c).sum()) for c in range(5)] == [2, 1, 1, 1, 2]  # round(0.25 n), at least 1, at most n-1
    tr2, va2 = stratified_split(y, 0.25, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(y, 0.25, seed=4)[1])


def test_labels_are_remapped_with_class_names(task):
    data = as_task_data(task)
    assert data.class_names == [str(i) for i in range(10)] and data.task_id == "sklearn_digits"
    strings = as_task_data((task.images, np.array(["b", "a"] * 20)))
    assert strings.class_names == ["a", "b"] and strings.labels[:2].tolist() == [1, 0]


def test_bad_data_gives_clear_errors(task, tmp_path):
    with pytest.raises(SchemaError, match=r"train_data: 40 images but labels has shape \(39,\); expected \(40,\)"):
        as_task_data((task.images, task.labels[:-1]))
    with pytest.raises(SchemaError, match=r"a single class \['0'\]; at least 2 classes are needed"):
        as_task_data((task.images, np.zeros(40, int)))
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        as_task_data(tmp_path / "missing")
    with pytest.raises(SchemaError, match=r"val_data: label\(s\) \['7'\] are not in the training label space"):
        as_task_data((task.images[:4], np.array([0, 1, 7, 1])), what="val_data", class_names=["0", "1"])
