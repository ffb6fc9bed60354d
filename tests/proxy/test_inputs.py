"""Task inputs: folders, CSVs, arrays, ids; class-balanced sampling; every bad-input message."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from proxy_helpers import write_folder

from fennec.data.inputs import to_pil_rgb
from fennec.errors import SchemaError, UnknownIdError
from fennec.proxy import TaskInput


def test_folder_class_names_are_folder_names(folder):
    t = TaskInput.from_folder(folder)
    assert t.class_names == ["cat", "dog", "fox"] and t.task_id == "task"
    assert np.bincount(t.labels).tolist() == [7, 5, 3]


def test_underscores_in_folder_names_read_as_spaces(tmp_path):
    t = TaskInput.from_folder(write_folder(tmp_path / "t", {"golden_retriever": 1, "tabby_cat": 1}))
    assert t.class_names == ["golden retriever", "tabby cat"]


@pytest.mark.parametrize("cap, expected", [(6, [2, 2, 2]), (9, [3, 3, 3]), (12, [4, 4, 3]), (None, [7, 5, 3])])
def test_class_balanced_sampling_counts(folder, cap, expected):
    t = TaskInput.from_folder(folder)
    idx = t.sample(cap, seed=0)
    assert np.bincount(t.labels[idx]).tolist() == expected
    assert np.all(np.diff(idx) > 0)  # sorted, no repeats


def test_sampling_is_deterministic_given_seed(folder):
    t = TaskInput.from_folder(folder)
    assert np.array_equal(t.sample(6, seed=3), t.sample(6, seed=3))
    draws = {tuple(t.sample(6, seed=s)) for s in range(10)}
    assert len(draws) > 1


def test_cap_below_number_of_classes_takes_one_per_class(folder, caplog):
    t = TaskInput.from_folder(folder)
    assert np.bincount(t.labels[t.sample(2)]).tolist() == [1, 1, 1]
    assert "below the number of classes" in caplog.text


def test_grayscale_and_rgba_become_rgb(tmp_path):
    gray = to_pil_rgb(np.zeros((10, 12), np.uint8))
    rgba = to_pil_rgb(np.zeros((10, 12, 4), np.uint8))
    p = tmp_path / "p.png"
    Image.fromarray(np.zeros((9, 9), np.uint8)).convert("P").save(p)
    assert gray.mode == rgba.mode == to_pil_rgb(p).mode == "RGB" and gray.size == (12, 10)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        TaskInput.from_folder(tmp_path / "nope")
    assert e.value.strerror == "image folder not found" and e.value.filename.endswith("nope")


def test_no_images(tmp_path):
    (tmp_path / "t" / "a").mkdir(parents=True)
    (tmp_path / "t" / "a" / "notes.txt").write_text("x")
    with pytest.raises(SchemaError, match=r"no images found in .*t \(expected one sub-folder per class"):
        TaskInput.from_folder(tmp_path / "t")


def test_images_without_class_folders(tmp_path):
    write_folder(tmp_path, {"t": 2})
    with pytest.raises(SchemaError, match="no class sub-folders in .*holds 2 image file"):
        TaskInput.from_folder(tmp_path / "t")


def test_one_class(tmp_path):
    with pytest.raises(SchemaError, match=r"has a single class folder with images \('only'\); at least 2"):
        TaskInput.from_folder(write_folder(tmp_path / "t", {"only": 3}))


def test_empty_class_folder_is_dropped_with_a_warning(tmp_path, caplog):
    root = write_folder(tmp_path / "t", {"a": 2, "b": 2})
    (root / "empty").mkdir()
    t = TaskInput.from_folder(root)
    assert t.class_names == ["a", "b"] and "without images: empty" in caplog.text


def test_corrupt_file_is_named(tmp_path):
    root = write_folder(tmp_path / "t", {"a": 2, "b": 2})
    (root / "b" / "broken.png").write_bytes(b"not a png at all")
    t = TaskInput.from_folder(root)
    with pytest.raises(SchemaError, match=r"cannot read image .*b/broken\.png"):
        t.load()


def test_tiny_image_is_named(tmp_path):
    root = write_folder(tmp_path / "t", {"a": 1, "b": 1}, size=4)
    with pytest.raises(SchemaError, match=r"a/0\.png is 4x4 pixels; the smaller side must be at least 8"):
        TaskInput.from_folder(root).load()


def test_mixed_sizes_load(tmp_path):
    root = write_folder(tmp_path / "t", {"a": 2}, size=10)
    write_folder(root, {"b": 2}, size=33, mode="RGB")
    assert {im.size for im in TaskInput.from_folder(root).load()} == {(10, 10), (33, 33)}


def test_csv_input_and_errors(tmp_path, folder):
    csv = tmp_path / "task.csv"
    csv.write_text("path,label\ntask/cat/0.png,cat\ntask/dog/0.png,dog\n")
    t = TaskInput.from_csv(csv)
    assert t.class_names == ["cat", "dog"] and len(t.load()) == 2
    csv.write_text("file,label\nx.png,cat\n")
    with pytest.raises(SchemaError, match="missing column\\(s\\) path; found file, label"):
        TaskInput.from_csv(csv)
    csv.write_text("path,label\ntask/cat/0.png,cat\ntask/cat/missing.png,dog\n")
    with pytest.raises(SchemaError, match=r"line 3: image file not found: .*missing\.png"):
        TaskInput.from_csv(csv)


def test_arrays_and_task_ids():
    t = TaskInput.from_arrays(np.zeros((4, 9, 9), np.uint8), [5, 7, 5, 7])
    assert t.class_names == ["5", "7"] and t.labels.tolist() == [0, 1, 0, 1]
    pets = TaskInput.from_task_id("Oxford_IIIT_Pet")  # alias resolved
    assert pets.task_id == "pets" and len(pets.class_names) == 37 and not pets.has_images
    with pytest.raises(UnknownIdError, match="no class names known for task 'cifar11'.*did you mean cifar10"):
        TaskInput.from_task_id("cifar11")


def test_classnames_file(tmp_path):
    f = tmp_path / "names.txt"
    f.write_text("# my classes\nbolt\n\nnut\nwasher\n")
    assert TaskInput.from_classnames_file(f).class_names == ["bolt", "nut", "washer"]
    f.write_text('["bolt"]')
    with pytest.raises(SchemaError, match="needs at least 2 class names, found 1"):
        TaskInput.from_classnames_file(f)
    f.write_text("a\nb\na\n")
    with pytest.raises(SchemaError, match="class name\\(s\\) listed twice: a"):
        TaskInput.from_classnames_file(f)
