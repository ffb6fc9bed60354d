"""The in-process runner: a tiny campaign end to end, resuming, failures recorded, features shared."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fennec._optional import MissingPackageError
from fennec.campaign import load_spec, map_jobs, plan, run_campaign, status_of
from fennec.campaign.results import read_results
from fennec.errors import ArtifactError, SchemaError
from fennec.history.append import append_rows
from fennec.history.table import History

RECIPES = 'recipes = ["linear_probe", "metric:logme"]\n'


def test_local_run_resume_and_history(tmp_path, make_spec):
    spec = load_spec(make_spec(tmp_path, RECIPES))
    report = run_campaign(spec, progress=False)
    assert (report.n_jobs, report.n_done, report.n_failed, report.n_skipped) == (16, 16, 0, 0)
    results = read_results(spec.out)
    assert sorted(results["job_id"]) == sorted(j.job_id for j in plan(spec).jobs)
    hist = pd.read_csv(spec.out / "histories" / "linear_probe.csv")
    assert len(hist) == 8 and hist["score"].between(0, 100).all()
    for col in (
        "job_id",
        "recipe_hash",
        "seed",
        "versions",
        "wall_s",
        "host",
        "campaign",
        "source",
    ):
        assert col in hist.columns and (hist[col].astype(str) != "").all()
    assert set(hist["source"]) == {"linear_probe"} and set(hist["campaign"]) == {"tiny"}
    scores = pd.read_csv(spec.out / "scores.csv")
    assert len(scores) == 8 and set(scores["metric"]) == {"logme"}
    # features extracted once per (model, task), shared by both recipes and both seeds
    assert len(list((spec.out / "features").glob("*.npz"))) == 2 * 2
    # the history is one `fennec fit` reads (seeds of a cell averaged)
    with pytest.warns(UserWarning, match="averaging the repeats"):
        h = History.from_csv(spec.out / "histories" / "linear_probe.csv", min_models_per_task=2)
    assert h.n_cells == 4
    again = run_campaign(spec, progress=False)
    assert (again.n_skipped, len(again.outcomes)) == (16, 0)
    assert len(pd.read_csv(spec.out / "histories" / "linear_probe.csv")) == 8
    assert status_of(plan(spec)).counts() == {"done": 16, "failed": 0, "pending": 0}


def test_failing_job_is_recorded_not_dropped(tmp_path, make_spec, faults):
    spec = load_spec(
        make_spec(
            tmp_path,
            'recipes = ["metric:logme", {kind = "py:campaign_faults:always_fails", '
            'label = "bad"}]\n',
        )
    )
    report = run_campaign(spec, progress=False)
    assert (report.n_done, report.n_failed) == (8, 8)
    fails = pd.read_csv(spec.out / "failures.csv")
    assert len(fails) == 8 and set(fails["error"]) == {"ValueError: this recipe always fails"}
    st = status_of(plan(spec))
    assert st.counts() == {"done": 8, "failed": 8, "pending": 0}
    assert st.by_recipe.set_index("recipe").loc["bad", "failed"] == 8
    assert (
        len(run_campaign(spec, progress=False).outcomes) == 0
    )  # failed jobs wait for --retry-failed
    retried = run_campaign(spec, retry_failed=True, progress=False)
    assert (
        retried.n_failed == 8 and len(pd.read_csv(spec.out / "failures.csv")) == 8
    )  # once per job


def test_cli_run_status_export(tmp_path, make_spec):
    path = make_spec(tmp_path, RECIPES)
    fennec = [sys.executable, "-m", "fennec", "campaign"]
    run = subprocess.run(
        [*fennec, "run", str(path), "--runner", "local", "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "16 jobs: 16 done, 0 failed, 0 pending" in run.stderr
    status = subprocess.run(
        [*fennec, "status", str(path), "-f", "csv"], capture_output=True, text=True
    )
    assert status.returncode == 0
    assert status.stdout.splitlines()[1:] == ["linear_probe,8,0,0", "metric_logme,8,0,0"]
    out = tmp_path / "lp.csv"
    export = subprocess.run(
        [*fennec, "export", str(path), "--recipe", "linear_probe", "--to", str(out)],
        capture_output=True,
        text=True,
    )
    assert export.returncode == 0, export.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["model_id", "task_id", "score", "metric", "source", "campaign"]
    assert len(frame) == 4
    bad = subprocess.run(
        [*fennec, "export", str(path), "--recipe", "metric_logme", "--to", str(out)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "no accuracy recipe labelled 'metric_logme'" in bad.stderr


def test_refuses_a_folder_it_did_not_write(tmp_path, make_spec):
    spec = load_spec(make_spec(tmp_path, RECIPES))
    spec.out.mkdir()
    (spec.out / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="not a Fennec campaign folder"):
        run_campaign(spec, progress=False)
    assert (spec.out / "notes.txt").read_text() == "mine"


def test_ray_runner_without_ray_is_one_line(tmp_path, make_spec, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    spec = load_spec(make_spec(tmp_path, RECIPES))
    with pytest.raises(MissingPackageError, match=r'pip install "fennec\[ray\]"'):
        run_campaign(spec, runner="ray", progress=False)
    assert not spec.out.exists()
    assert len(run_campaign(spec, runner="local", progress=False).outcomes) == 16


def test_map_jobs_in_process_reports_errors():
    def half(x):
        if x == 2:
            raise ZeroDivisionError("no")
        return x / 2

    out = list(map_jobs(half, [0, 2, 4]))
    assert [o.ok for o in out] == [True, False, True] and out[1].error == "ZeroDivisionError: no"
    assert [o.value for o in out if o.ok] == [0.0, 2.0]
    assert [o.value for o in map_jobs(np.add, [1, 2], shared=10)] == [11, 12]


def test_append_rows_keyed_by_job_id(tmp_path):
    path = tmp_path / "h.csv"
    row = {"model_id": "m", "task_id": "t", "score": 50.0, "job_id": "a"}
    append_rows(path, [row, {**row, "job_id": "b", "score": 60.0}], key=("job_id",))
    with pytest.raises(SchemaError, match="already has a row with job_id"):
        append_rows(path, [{**row, "score": 1.0}], key=("job_id",))
    with pytest.raises(SchemaError, match="already has a top1 result"):
        append_rows(path, [{**row, "job_id": "c"}])
    frame = append_rows(path, [{**row, "score": 55.0}], key=("job_id",), replace=True)
    assert frame["score"].tolist() == [55.0, 60.0]


def test_embed_tasks_of_a_campaign_cli(tmp_path, make_spec):
    from fennec.proxy import TaskEmbeddings

    path = make_spec(tmp_path, RECIPES)
    out = tmp_path / "emb.safetensors"
    cmd = [
        sys.executable,
        "-m",
        "fennec",
        "embed-tasks",
        "--campaign",
        str(path),
        "--proxy",
        "timm:test_vit",
        "--max-images",
        "20",
        "--cache",
        str(tmp_path / "cache"),
        "--out",
        str(out),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    emb = TaskEmbeddings.load(out)
    assert emb.task_ids == ["sklearn_digits", "sklearn_digits_5cls_s0k0"]
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0 and "already embedded" in again.stderr


def test_btune_recipe_trains_with_its_teachers(tmp_path, make_spec):
    """B-Tuning as a campaign recipe: a packaged pretrained teacher, the target's held-out accuracy in the
    recipe's history with the teachers named, the teachers' features cached in the campaign's folder."""
    body = 'recipes = [{kind = "btune", teachers = ["efficientnet-lite0"], tasks = ["sklearn_digits"]}]\n'
    spec = load_spec(make_spec(tmp_path, body))
    report = run_campaign(spec, progress=False)
    assert (report.n_done, report.n_failed) == (report.n_jobs, 0) and report.n_jobs == 4
    hist = pd.read_csv(spec.out / "histories" / "btune.csv")
    assert len(hist) == 4 and hist["score"].between(0, 100).all() and set(hist["source"]) == {"btune"}
    assert hist["extra"].str.contains("teachers=efficientnet-lite0").all()
    assert any((spec.out / "features" / "teachers").rglob("*"))
