from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fennec.errors import SchemaError, UnknownIdError
from fennec.history.table import History, HistoryWarning, TaskScaler


def frame(rows):
    return pd.DataFrame(rows, columns=["model_id", "task_id", "score"])


def test_from_csv_small_fixture(small_history_csv):
    h = History.from_csv(small_history_csv)
    Y, models, tasks = h.to_matrix()
    assert models == sorted(["big_cnn", "mid_cnn", "small_cnn", "big_vit", "small_vit", "tiny"])
    assert tasks == ["cars", "cifar10", "dtd", "pets", "voc2007"]
    assert Y.shape == (6, 5)
    assert np.isnan(Y).sum() == 30 - 26
    assert Y[models.index("big_vit"), tasks.index("cifar10")] == 98.5
    assert h.task_metric()["voc2007"] == "map"
    assert len(h.sha256) == 64


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        History.from_csv(tmp_path / "nope.csv")
    assert str(tmp_path / "nope.csv") in str(info.value)


def test_missing_column_named(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("model_id,task,score\na,b,1\n")
    with pytest.raises(SchemaError, match=r"h.csv: missing required column\(s\) 'task_id'; found 'model_id', 'task', 'score'"):
        History.from_csv(p)


def test_empty_id_names_line(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("model_id,task_id,score\na,t,1\n,t,2\nc,t,3\n")
    with pytest.raises(SchemaError, match=r"h.csv: column 'model_id' is empty on line 3$"):
        History.from_csv(p)


def test_non_finite_score_names_lines(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("model_id,task_id,score\na,t,1\nb,t,inf\nc,t,abc\nd,t,\n")
    with pytest.raises(SchemaError, match=r"column 'score' must be a finite number; got .* on lines 3, 4, 5"):
        History.from_csv(p)


def test_unknown_metric_named():
    df = frame([("a", "t", 1.0), ("b", "t", 2.0), ("c", "t", 3.0)]).assign(metric=["top1", "f1", "top1"])
    with pytest.raises(SchemaError, match=r"unknown metric 'f1' in column 'metric' on line 3; known metrics: top1"):
        History.from_frame(df, name="h")


def test_task_mixing_metrics_rejected():
    df = frame([("a", "t", 1.0), ("b", "t", 2.0), ("c", "t", 3.0)]).assign(metric=["top1", "map", "top1"])
    with pytest.raises(SchemaError, match=r"task\(s\) 't' mix several metrics"):
        History.from_frame(df, name="h")


def test_metric_filter(small_history_csv):
    h = History.from_csv(small_history_csv, metric="map")
    assert h.task_ids == ["voc2007"]
    with pytest.raises(SchemaError, match=r"no rows with metric 'neg_error'; the history has 'map', 'top1'"):
        History.from_csv(small_history_csv, metric="neg_error")


def test_duplicates_are_averaged_with_warning():
    df = frame([("a", "t", 1.0), ("a", "t", 3.0), ("b", "t", 5.0), ("c", "t", 7.0)])
    with pytest.warns(HistoryWarning, match=r"h: 2 rows repeat 1 \(model_id, task_id\) pair\(s\) \('a/t', lines 2, 3\); averaging"):
        h = History.from_frame(df, name="h")
    Y, models, _ = h.to_matrix()
    assert Y[models.index("a"), 0] == 2.0


def test_sparse_task_dropped_with_warning():
    df = frame([("a", "t", 1.0), ("b", "t", 2.0), ("c", "t", 3.0), ("a", "u", 1.0), ("b", "u", 2.0)])
    with pytest.warns(HistoryWarning, match=r"dropping task\(s\) with fewer than 3 models.*'u \(2 models\)'"):
        h = History.from_frame(df, name="h")
    assert h.task_ids == ["t"]


def test_model_with_a_single_cell_warns_naming_the_line():
    df = frame([("a", "t", 1.0), ("b", "t", 2.0), ("c", "t", 3.0), ("a", "u", 1.0), ("b", "u", 2.0), ("d", "u", 5.0)])
    with pytest.warns(HistoryWarning, match=r"h: model\(s\) 'c', 'd' measured on a single task \(lines 4, 7\)"):
        h = History.from_frame(df, name="h")
    assert h.model_ids == ["a", "b", "c", "d"]


def test_all_tasks_too_sparse_is_an_error():
    df = frame([("a", "t", 1.0)])
    with pytest.warns(HistoryWarning), pytest.raises(SchemaError, match="no task has at least 3 models"):
        History.from_frame(df, name="h")


def test_empty_history():
    with pytest.raises(SchemaError, match="h: the history has no rows"):
        History.from_frame(frame([]), name="h")


def test_subset_unknown_id(small_history_csv):
    h = History.from_csv(small_history_csv)
    with pytest.raises(UnknownIdError, match=r"unknown model_id 'nope'"):
        h.subset(models=["nope"])
    assert h.subset(tasks=["cars", "dtd"]).task_ids == ["cars", "dtd"]


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (6, 4), elements=st.floats(-100, 100)), st.floats(0.1, 10), st.floats(-50, 50))
def test_scaler_is_invertible_and_affine_invariant(Y, a, b):
    Y = Y.copy()
    Y[0, 0] = np.nan
    sc = TaskScaler.fit(Y)
    Z = sc.transform(Y)
    np.testing.assert_allclose(sc.inverse_transform(Z), Y, atol=1e-9)
    # a positive affine change of a task's units leaves its standardised scores unchanged
    Z2 = TaskScaler.fit(a * Y + b).transform(a * Y + b)
    varying = sc.std > 1e-6
    np.testing.assert_allclose(Z2[:, varying], Z[:, varying], atol=1e-6)
