"""``fennec btune`` and ``fennec history add`` end to end on a tiny run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fennec.cli import main

RANKING = "task_id,rank,model_id,score\nsklearn_digits,1,test_convnext,-0.1\nsklearn_digits,2,test_resnet,-0.2\n"
TINY = ["--example-task", "sklearn_digits", "--per-class", "4", "--epochs", "2", "--batch-size", "16",
        "--image-size", "32", "--threads", "1", "--no-progress"]


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("verb", [["btune"], ["history", "add"], ["history"]])
def test_help(verb, capsys):
    code, out, _ = run([*verb, "--help"], capsys)
    assert code == 0 and "Usage" in out


def test_btune_then_history_add_end_to_end(tmp_path, capsys):
    ranking = tmp_path / "ranking.csv"
    ranking.write_text(RANKING)
    out = tmp_path / "run"
    code, stdout, err = run(["btune", "--target", "test_efficientnet", "--teachers-from", str(ranking),
                             "--top-k", "2", "--out", str(out), "--temperature", "0.5", *TINY], capsys)
    assert code == 0, err
    assert "teacher     test_convnext: LogME" in stdout and "val top-1" in stdout
    for name in ("config.json", "history.json", "summary.json", "model.safetensors", "teachers.safetensors",
                 "checkpoints/last.safetensors", "checkpoints/best.safetensors"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "btuning" and summary["config"]["temperature"] == 0.5
    assert [t["model_id"] for t in summary["teachers"]] == ["test_convnext", "test_resnet"]
    assert len(json.loads((out / "history.json").read_text())) == 2

    # resume a completed run with more epochs: inputs and settings come from the run directory
    code, stdout, err = run(["btune", "--out", str(out), "--resume", "--epochs", "3", "--no-progress"], capsys)
    assert code == 0, err
    assert len(json.loads((out / "history.json").read_text())) == 3

    hist = tmp_path / "history.csv"
    code, stdout, err = run(["history", "add", str(hist), "--from-run", str(out)], capsys)
    assert code == 0, err
    row = pd.read_csv(hist).iloc[0]
    summary = json.loads((out / "summary.json").read_text())
    assert (row["model_id"], row["task_id"], row["metric"], row["source"], row["campaign"]) == \
        ("test_efficientnet", "sklearn_digits", "top1", "btune", "run")
    assert row["score"] == pytest.approx(summary["score"])
    code, _, err = run(["history", "add", str(hist), "--from-run", str(out)], capsys)
    assert code == 1 and err.startswith("error: ") and "pass --replace to overwrite it" in err
    assert err.count("\n") == 1
    code, _, err = run(["history", "add", str(hist), "--model", "x", "--task", "sklearn_digits", "--score", "55"],
                       capsys)
    assert code == 0, err
    assert len(pd.read_csv(hist)) == 2


def test_baseline(tmp_path, capsys):
    code, stdout, err = run(["btune", "--target", "test_efficientnet", "--baseline", "--out", str(tmp_path / "b"),
                             *TINY], capsys)
    assert code == 0, err
    assert "plain fine-tuning" in stdout
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["teachers"] == []


def test_bad_input_exits_1_with_one_line(tmp_path, capsys):
    ranking = tmp_path / "ranking.csv"
    ranking.write_text(RANKING)
    base = ["btune", "--target", "test_efficientnet", "--teachers-from", str(ranking), "--out", str(tmp_path / "r")]
    cases = [
        (base + ["--data", str(tmp_path / "nope")], f"error: image folder not found: {tmp_path / 'nope'}"),
        (base + ["--top-k", "3", *TINY], "the ranking has 2 rows but top_k=3; lower top_k or rank more models"),
        (["btune", "--target", "nonexistent_net", "--teachers", "test_resnet", "--out", str(tmp_path / "r"), *TINY],
         "error: target: unknown timm model 'nonexistent_net'"),
        (["btune", "--target", "test_efficientnet", "--teachers", "test_resnet,nonexistent_net",
          "--out", str(tmp_path / "r"), *TINY],
         "error: teacher 'nonexistent_net' (rank 2): unknown timm model 'nonexistent_net'"),
        (["history", "add", str(tmp_path / "h.csv"), "--from-run", str(tmp_path / "norun")],
         "error: run directory not found"),
    ]
    for args, message in cases:
        code, _, err = run(args, capsys)
        assert code == 1, args
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()  # a run that fails before its first epoch leaves nothing behind
    code, _, err = run(base + ["--example-task", "sklearn_digits", "--data", str(tmp_path)], capsys)
    assert code == 2 and "give exactly one of --data DIR or --example-task NAME" in err
    code, _, err = run(["history", "add", str(tmp_path / "h.csv"), "--model", "m"], capsys)
    assert code == 2 and "missing --task, --score" in err
