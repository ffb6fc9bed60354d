"""History appends and validation (issue 12, cases 4-5 and the history items of the clean failures)."""

from __future__ import annotations

import gzip
import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from safety_helpers import fennec_process, run_cli, write_history

from fennec.errors import SchemaError
from fennec.history import History, add_history_row, append_rows
from fennec.history.table import MAX_MATRIX_GIB


def rows_of(path):
    return pd.read_csv(path, keep_default_na=False)


def test_eight_concurrent_history_adds_keep_every_row(tmp_path):
    path = tmp_path / "h.csv"
    procs = [fennec_process(["history", "add", path, "--model", f"m{i}", "--task", "t", "--score", 50 + i])
             for i in range(8)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert [code for code, _ in results] == [0] * 8, results
    assert sorted(rows_of(path)["model_id"]) == [f"m{i}" for i in range(8)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.csv"]  # no lock or temporary file left


def test_a_compressed_history_stays_compressed(tmp_path):
    path = tmp_path / "h.csv.gz"
    add_history_row(path, model_id="a", task_id="t", score=70.0)
    add_history_row(path, model_id="b", task_id="t", score=71.0)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    with gzip.open(path, "rt") as fh:
        assert fh.read().splitlines()[0] == "model_id,task_id,score,metric,source,campaign"
    assert rows_of(path)["model_id"].tolist() == ["a", "b"]
    add_history_row(path, model_id="c", task_id="t", score=72.0)
    assert History.from_csv(path).model_ids == ["a", "b", "c"]


def test_a_symlinked_history_is_followed_and_its_mode_kept(tmp_path):
    real = tmp_path / "store" / "h.csv"
    real.parent.mkdir()
    real.write_text("model_id,task_id,score\na,t,70\n")
    real.chmod(0o600)
    link = tmp_path / "h.csv"
    link.symlink_to(real)
    add_history_row(link, model_id="b", task_id="t", score=71.0)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert rows_of(real)["model_id"].tolist() == ["a", "b"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_append_rows_writes_all_or_nothing(tmp_path):
    path = tmp_path / "h.csv"
    frame = append_rows(path, [{"model_id": "a", "task_id": "t", "score": 70.0, "seed": 1},
                               {"model_id": "b", "task_id": "t", "score": 0.71 * 100, "campaign": "c1"}])
    assert frame["model_id"].tolist() == ["a", "b"]
    assert rows_of(path).columns.tolist() == ["model_id", "task_id", "score", "metric", "source", "campaign", "seed"]
    before = path.read_bytes()
    with pytest.raises(SchemaError, match=r"h.csv: row 2: a top1 score is a percentage in \[0, 100\]; got 250.0"):
        append_rows(path, [{"model_id": "c", "task_id": "t", "score": 60}, {"model_id": "d", "task_id": "t",
                                                                             "score": 250}])
    with pytest.raises(SchemaError, match=r"h.csv: rows 1 and 2 both give a top1 result for model 'c' on task 't'"):
        append_rows(path, [{"model_id": "c", "task_id": "t", "score": 60}] * 2)
    with pytest.raises(SchemaError, match=r"h.csv: already has a top1 result for model 'a' on task 't'"):
        append_rows(path, [{"model_id": "c", "task_id": "t", "score": 60}, {"model_id": "a", "task_id": "t",
                                                                             "score": 61}])
    assert path.read_bytes() == before
    frame = append_rows(path, [{"model_id": "a", "task_id": "t", "score": 61}], replace=True)
    assert frame["score"].tolist() == [61.0, 71.0]


@pytest.mark.parametrize(("row", "message"), [
    ({"model_id": "a", "task_id": None, "score": 70}, "task_id must be a string; got null"),
    ({"model_id": "a", "task_id": 3, "score": 70}, "task_id must be a string; got int 3"),
    ({"model_id": "a", "score": 70}, "missing task_id"),
    ({"model_id": "a", "task_id": "t", "score": True}, "score must be a number; got True"),
    ({"model_id": "a", "task_id": "t", "score": None}, "score must be a number; got null"),
    (["a", "t", 70], "a row must be a mapping of column -> value; got list"),
])
def test_invalid_rows_name_the_file(tmp_path, row, message):
    path = tmp_path / "h.csv"
    with pytest.raises(SchemaError) as err:
        append_rows(path, [row])
    assert str(err.value) == f"{path}: {message}"
    assert not path.exists()


def _run_dir(tmp_path, summary) -> str:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(summary))
    return str(run)


GOOD = {"format": "fennec-btuning-run", "method": "btuning", "target_id": "efficientnet-lite0",
        "task_id": "animals", "metric": "top1", "score": 71.5}


@pytest.mark.parametrize(("change", "message"), [
    ({"task_id": None}, "'task_id' must be a non-empty string; got null"),
    ({"score": "71.5"}, "'score' must be a finite number; got str '71.5'"),
    ({"target_id": ["a"]}, "'target_id' must be a non-empty string; got list ['a']"),
    ({"score": None}, "'score' must be a finite number; got null"),
    ({"drop": "score"}, "missing key 'score' (a completed run's summary has target_id, task_id and score)"),
])
def test_history_add_from_run_validates_the_summary(tmp_path, capsys, change, message):
    summary = {k: v for k, v in GOOD.items() if k != change.get("drop")}
    summary.update({k: v for k, v in change.items() if k != "drop"})
    run = _run_dir(tmp_path, summary)
    code, _, err = run_cli(["history", "add", tmp_path / "h.csv", "--from-run", run], capsys)
    assert code == 1
    assert err == f"error: {run}/summary.json: {message}\n"
    assert not (tmp_path / "h.csv").exists()


def test_history_add_from_run_refuses_a_json_list(tmp_path, capsys):
    run = _run_dir(tmp_path, [GOOD])
    code, _, err = run_cli(["history", "add", tmp_path / "h.csv", "--from-run", run], capsys)
    assert code == 1
    assert err == (f"error: {run}/summary.json: not a B-Tuning run summary (a JSON list, expected an object)\n")
    (tmp_path / "ok").mkdir()
    run2 = _run_dir(tmp_path / "ok", GOOD)
    code, out, err = run_cli(["history", "add", tmp_path / "h.csv", "--from-run", run2], capsys)
    assert code == 0, err
    assert rows_of(tmp_path / "h.csv")["model_id"].tolist() == ["efficientnet-lite0"]


@pytest.mark.parametrize("score", [-50, 250])
def test_fit_refuses_out_of_range_scores_like_history_add(tmp_path, capsys, score):
    path = write_history(tmp_path / "h.csv")
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + f",{score}"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(["fit", path, "--out", tmp_path / "art", "--rank", "1", "--l2", "1"], capsys)
    assert code == 1
    assert err == (f"error: {path}: column 'score': a top1 score is a percentage in [0, 100]; got {score} on line 4 "
                   "(use metric 'accuracy' for values in [0, 1])\n")
    code, _, err = run_cli(["history", "add", path, "--model", "x", "--task", "task0", "--score", score], capsys)
    assert code == 1 and "a top1 score is a percentage in [0, 100]" in err


def test_a_header_repeating_a_column_is_refused(tmp_path, capsys):
    path = tmp_path / "h.csv"
    path.write_text("model_id,task_id,score,score\na,t,1,2\nb,t,2,3\nc,t,3,4\n")
    with pytest.raises(SchemaError, match=r"h.csv: the header \(line 1\) repeats column\(s\) 'score'; each column "
                                          r"must appear once$"):
        History.from_csv(path)
    code, _, err = run_cli(["history", "add", path, "--model", "d", "--task", "t", "--score", "4"], capsys)
    assert code == 1 and "repeats column(s) 'score'" in err


def test_the_dense_size_is_checked_before_allocating(tmp_path, capsys):
    n = 20_000  # 20000 models x 20000 tasks: 3 GiB dense for 60000 cells
    ids = np.arange(n)
    rows = pd.DataFrame({"model_id": np.r_[ids, ids, ids].astype(str),
                         "task_id": np.r_[ids, (ids + 1) % n, (ids + 2) % n].astype(str), "score": 50.0})
    path = tmp_path / "wide.csv"
    rows.to_csv(path, index=False)
    assert n * n * 8 / 2**30 > MAX_MATRIX_GIB
    code, _, err = run_cli(["fit", path, "--out", tmp_path / "art", "--rank", "1", "--l2", "1"], capsys)
    assert code == 1
    assert err.startswith(f"error: {path}: 20000 models x 20000 tasks need a dense 3.0 GiB matrix for only 60000 "
                          "measured cells")
    assert "drop models and tasks with few results (or split the history)" in err


def test_history_add_errors_name_the_file(tmp_path):
    path = tmp_path / "h.csv"
    with pytest.raises(SchemaError, match=rf"^{path}: model_id must not be empty$"):
        add_history_row(path, model_id=" ", task_id="t", score=1.0)
