"""The Ray runner on a local 2-CPU cluster: a worker killed mid-campaign is retried, every job's row lands
exactly once, a second run does nothing, failures are recorded, and it agrees with the in-process runner."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from fennec.campaign import load_spec, plan, run_campaign, status_of
from fennec.campaign.results import read_results

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

LIGHT = 'recipes = ["linear_probe", "metric:logme"]\n'


@pytest.fixture(scope="module")
def cluster(faults_dir):
    """``ray.init(num_cpus=2)``, its workers able to import the faults module."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(faults_dir), old) if p)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def test_killed_worker_is_retried_and_every_row_lands_once(tmp_path, make_spec, cluster, faults):
    marker = tmp_path / "killed.pid"
    spec = load_spec(
        make_spec(
            tmp_path,
            f'''
recipes = ["linear_probe", "metric:logme", {{kind = "py:campaign_faults:crash_once", label = "crashy", marker = "{marker}"}}]
max_retries = 2
''',
        )
    )
    report = run_campaign(spec, runner="ray", progress=False)
    assert (
        marker.is_file() and int(marker.read_text()) != os.getpid()
    )  # a worker process was killed
    assert (report.n_jobs, report.n_done, report.n_failed) == (24, 24, 0)
    results = read_results(spec.out)
    assert len(results) == 24 and results["job_id"].is_unique
    assert set(results["job_id"]) == {j.job_id for j in plan(spec).jobs}
    assert len(pd.read_csv(spec.out / "histories" / "crashy.csv")) == 8
    again = run_campaign(spec, runner="ray", progress=False)
    assert (again.n_skipped, len(again.outcomes)) == (24, 0)
    st = status_of(plan(spec))
    assert st.counts() == {"done": 24, "failed": 0, "pending": 0}
    assert not (spec.out / "failures.csv").exists()


def test_permanent_failures_are_recorded(tmp_path, make_spec, cluster, faults):
    spec = load_spec(
        make_spec(
            tmp_path,
            """
recipes = ["metric:logme", {kind = "py:campaign_faults:always_fails", label = "bad"},
           {kind = "py:campaign_faults:always_crash", label = "crash"}]
max_retries = 1
""",
        )
    )
    report = run_campaign(spec, runner="ray", progress=False)
    assert (report.n_done, report.n_failed) == (15, 9)
    fails = pd.read_csv(spec.out / "failures.csv")
    bad, crash = fails[fails["recipe"] == "bad"], fails[fails["recipe"] == "crash"]
    assert len(bad) == 8 and set(bad["error"]) == {"ValueError: this recipe always fails"}
    assert len(crash) == 1 and crash["error"].iloc[0].startswith("WorkerCrashedError")
    assert (crash["model_id"].iloc[0], crash["task_id"].iloc[0], crash["seed"].iloc[0]) == (
        "test_vit@random-init",
        "sklearn_digits",
        0,
    )
    assert status_of(plan(spec)).counts() == {"done": 15, "failed": 9, "pending": 0}


def test_local_and_ray_runners_agree(tmp_path, make_spec, cluster):
    spec = load_spec(make_spec(tmp_path, LIGHT))
    local = run_campaign(spec.with_out(tmp_path / "local"), runner="local", progress=False)
    remote = run_campaign(spec.with_out(tmp_path / "ray"), runner="ray", progress=False)
    assert local.n_done == remote.n_done == 16
    a = read_results(tmp_path / "local").set_index("job_id")["score"].astype(float)
    b = read_results(tmp_path / "ray").set_index("job_id")["score"].astype(float)
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index(), rtol=1e-6)


def test_score_models_on_ray_matches_in_process(cluster):
    from fennec.data.examples import load_example_task
    from fennec.transferability.scoring import score_models

    task = load_example_task("sklearn_digits", n_per_class=4)
    models = ["test_vit", "test_efficientnet"]
    local = score_models(models, task.images, task.labels, progress=False)
    remote = score_models(models, task.images, task.labels, progress=False, ray=True)
    pd.testing.assert_frame_equal(local, remote)


def test_embed_tasks_on_ray_matches_in_process(tmp_path, make_spec, cluster):
    import numpy as np

    from fennec.proxy.bulk import BulkTask, embed_many

    spec = load_spec(make_spec(tmp_path, LIGHT))
    items = [BulkTask(t.task_id, campaign=(t, spec.budget)) for t in spec.tasks]
    settings = {
        "proxy": "timm:test_vit",
        "use": "images",
        "max_images": 20,
        "seed": 0,
        "cache": str(tmp_path / "c"),
    }
    saved = []
    local = embed_many(items, settings, done={}, save=saved.append, progress=False)
    settings["cache"] = str(tmp_path / "c2")
    remote = embed_many(items, settings, done={}, save=saved.append, ray=True, progress=False)
    assert list(local) == list(remote) == [t.task_id for t in spec.tasks] and len(saved) == 4
    for k in local:
        np.testing.assert_allclose(local[k], remote[k], rtol=1e-4, atol=1e-5)  # 1 vs 2 torch threads


def test_build_catalogue_on_ray_matches_in_process(tmp_path, cluster):
    import numpy as np

    from archi2vec.catalogue import build_catalogue

    names = ["resnet10t", "test_vit"]
    a = build_catalogue(names, out_dir=tmp_path / "a", progress=False)
    b = build_catalogue(names, out_dir=tmp_path / "b", progress=False, ray=True)
    assert a["n_encoded"] == b["n_encoded"] == 2
    with (
        np.load(tmp_path / "a" / "catalogue.npz") as x,
        np.load(tmp_path / "b" / "catalogue.npz") as y,
    ):
        np.testing.assert_array_equal(x["vectors"], y["vectors"])
        assert list(x["names"]) == list(y["names"]) == names
