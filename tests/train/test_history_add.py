"""Closing the loop: appending measured results to a history CSV."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest

from fennec.errors import SchemaError
from fennec.history.table import History
from fennec.train import add_history_row


def test_append_creates_validates_and_refuses_duplicates(tmp_path):
    path = tmp_path / "h.csv"
    add_history_row(path, model_id="efficientnet-lite0", task_id="animal_mnist", score=71.25, campaign="run1")
    add_history_row(path, model_id="efficientnet-lite1", task_id="animal_mnist", score=74.0)
    frame = add_history_row(path, model_id="efficientnet-lite2", task_id="animal_mnist", score=75.5, source="manual")
    assert list(frame.columns) == ["model_id", "task_id", "score", "metric", "source", "campaign"]
    on_disk = pd.read_csv(path, keep_default_na=False)
    assert on_disk["score"].tolist() == [71.25, 74.0, 75.5]
    assert on_disk["source"].tolist() == ["btune", "btune", "manual"] and on_disk["campaign"][0] == "run1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = History.from_csv(path)  # the result is a valid history
    assert hist.model_ids == ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]

    before = path.read_bytes()
    with pytest.raises(SchemaError, match=r"h.csv: already has a top1 result for model 'efficientnet-lite0' on task "
                                          r"'animal_mnist' \(score 71.25, line 2\); pass --replace to overwrite it"):
        add_history_row(path, model_id="efficientnet-lite0", task_id="animal_mnist", score=80.0)
    assert path.read_bytes() == before  # untouched
    frame = add_history_row(path, model_id="efficientnet-lite0", task_id="animal_mnist", score=80.0, replace=True)
    assert frame["score"].tolist() == [80.0, 74.0, 75.5] and len(frame) == 3


def test_existing_rows_and_extra_columns_are_kept(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("model_id,task_id,score,seed\nresnet50,cifar10,96.5,0\n")
    frame = add_history_row(path, model_id="vit_small", task_id="cifar10", score=97.1)
    assert frame["model_id"].tolist() == ["resnet50", "vit_small"]
    text = path.read_text().splitlines()
    assert text[0] == "model_id,task_id,score,metric,source,campaign,seed"
    assert text[1] == "resnet50,cifar10,96.5,top1,,,0"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"score": math.nan}, "score must be a finite number; got nan"),
    ({"score": "abc"}, "score must be a number; got 'abc'"),
    ({"score": 0.71}, None),
    ({"score": 171.0}, "a top1 score is a percentage in [0, 100]; got 171.0"),
    ({"score": 71.0, "metric": "accuracy"}, "an accuracy score lies in [0, 1]; got 71.0"),
    ({"score": 1.0, "metric": "f1"}, "unknown metric 'f1'; known metrics: top1, map, accuracy, neg_error"),
    ({"score": 1.0, "model_id": " "}, "model_id must not be empty"),
])
def test_invalid_rows(tmp_path, kwargs, message):
    args = {"model_id": "m", "task_id": "t", **kwargs}
    if message is None:
        add_history_row(tmp_path / "ok.csv", **args)
        return
    with pytest.raises(SchemaError) as err:
        add_history_row(tmp_path / "h.csv", **args)
    assert message in str(err.value)
    assert not (tmp_path / "h.csv").exists()


def test_a_task_cannot_mix_metrics(tmp_path):
    path = tmp_path / "h.csv"
    add_history_row(path, model_id="a", task_id="voc2007", score=80.0, metric="map")
    with pytest.raises(SchemaError, match="task 'voc2007' is measured with metric 'map', not 'top1'"):
        add_history_row(path, model_id="b", task_id="voc2007", score=81.0)


def test_malformed_history(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("model,task,score\na,b,1\n")
    with pytest.raises(SchemaError, match=r"missing required column\(s\) \['model_id', 'task_id'\]"):
        add_history_row(path, model_id="m", task_id="t", score=1.0)
    with pytest.raises(FileNotFoundError, match="folder of the history file not found"):
        add_history_row(tmp_path / "nope" / "h.csv", model_id="m", task_id="t", score=1.0)
