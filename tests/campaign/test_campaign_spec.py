"""Campaign specs: validation errors name the file and the key; job ids depend on what a job computes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from fennec.campaign import load_spec, plan
from fennec.campaign.jobs import make_jobs
from fennec.errors import SchemaError

BASE = 'recipes = ["linear_probe", "metric:logme"]\n'


def test_valid_spec_and_plan(tmp_path, make_spec):
    spec = load_spec(make_spec(tmp_path, BASE))
    assert spec.name == "tiny" and spec.out == tmp_path / "out-tiny"
    assert [m.model_id for m in spec.models] == [
        "test_vit@random-init",
        "test_efficientnet@random-init",
    ]
    assert [t.task_id for t in spec.tasks] == ["sklearn_digits", "sklearn_digits_5cls_s0k0"]
    p = plan(spec)
    assert len(p.jobs) == 2 * 2 * 2 * 2 and p.counts() == {"done": 0, "failed": 0, "pending": 16}
    assert p.frame["job_id"].is_unique
    # the first round spreads the (model, task) pairs
    first = p.frame.head(4)
    assert len(set(zip(first["model_id"], first["task_id"], strict=True))) == 4


def test_job_ids_follow_content_not_names(tmp_path, make_spec):
    ids = {j.job_id for j in make_jobs(load_spec(make_spec(tmp_path, BASE)))}
    renamed = make_spec(tmp_path, BASE, name="other")
    assert {j.job_id for j in make_jobs(load_spec(renamed))} == ids
    bigger = make_spec(tmp_path, BASE, name="bigger", images=60)
    assert not ({j.job_id for j in make_jobs(load_spec(bigger))} & ids)
    tuned = make_spec(
        tmp_path, 'recipes = [{kind = "linear_probe", C = 0.5}, "metric:logme"]\n', name="c"
    )
    changed = {j.job_id for j in make_jobs(load_spec(tuned))}
    assert len(changed & ids) == 8  # the LogME jobs are the same, the probes are new


def test_known_models_resolve_through_the_registry(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(
        textwrap.dedent("""
        recipes = ["linear_probe"]
        models = ["efficientnet-lite0", {name = "resnet18", pretrained = false}]
        tasks = ["lfw_faces"]
    """)
    )
    spec = load_spec(path)
    assert [m.model_id for m in spec.models] == [
        "tf_efficientnet_lite0.in1k",
        "resnet18@random-init",
    ]
    assert spec.models[0].load == "efficientnet-lite0" and spec.name == "m"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('recipes = ["linear_probe"]\nmodels = ["resnet18"]\n', "tasks: missing"),
        (
            'recipes = ["linear_probe"]\ntasks = ["mnist"]\nmodels = ["no_such_net"]\n',
            "models[0].name: 'no_such_net'",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = ["mnist"]\nmodels = [{name = "resnet50.a1_in1k", pretrained = false}]\n',
            "models[0].name: pretrained = false needs a timm architecture",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = ["mnist"]\nmodels = [{name = "resnet18", args = {a = 1}}]\n',
            "models[0].args",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = ["mnist"]\nmodels = ["resnet18@nope.pth"]\n',
            "models[0].name: weights file not found",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = ["mnist", "mnist"]\nmodels = ["resnet18"]\n',
            "tasks[1].id: task 'mnist'",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = ["cifar"]\nmodels = ["resnet18"]\n',
            "tasks[0].example: unknown example",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = [{folder = "nowhere"}]\nmodels = ["resnet18"]\n',
            "tasks[0].folder: folder not found",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = [{example = "mnist", csv = "a.csv"}]\nmodels = ["resnet18"]\n',
            "tasks[0]: give exactly one of",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = [{example = "mnist", subsets = {classes = 1}}]\nmodels = ["resnet18"]\n',
            "tasks[0].subsets.classes: an integer >= 2",
        ),
        (
            'recipes = ["probe"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n',
            "recipes[0].kind: unknown recipe 'probe'",
        ),
        (
            'recipes = ["metric:nope"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n',
            "recipes[0].kind: unknown metric",
        ),
        (
            'recipes = [{kind = "finetune", epochs = 3}]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n',
            "recipes[0].epochs: unknown key",
        ),
        (
            'recipes = ["linear_probe", "linear_probe"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n',
            "recipes[1].label: recipe label 'linear_probe' is used twice",
        ),
        (
            'seeds = [0, 0]\nrecipes = ["linear_probe"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n',
            "seeds: a non-empty",
        ),
        (
            'colour = 1\nrecipes = ["linear_probe"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n',
            "unknown key 'colour'",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n[budget]\nimages = 2\n',
            "budget.images: an integer >= 4",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n[budget]\nepoch = 2\n',
            "budget.epoch: unknown key",
        ),
        (
            'recipes = ["linear_probe"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n[resources]\nnum_cpus = 0\n',
            "resources.num_cpus",
        ),
        (
            'recipes = ["btune"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n',
            "recipes[0].teachers: btune needs a non-empty list of teacher model names",
        ),
        ('recipes = ["linear_probe"\n', "not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SchemaError) as err:
        load_spec(path)
    line = str(err.value)
    assert line.startswith(str(path)) and message in line and "\n" not in line


def test_cli_errors_are_one_line_with_exit_1_and_usage_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('recipes = ["probe"]\ntasks = ["mnist"]\nmodels = ["resnet18"]\n')
    run = subprocess.run(
        [sys.executable, "-m", "fennec", "campaign", "plan", str(path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"error: {path}: recipes[0].kind: unknown recipe 'probe'; valid: "
        "linear_probe, finetune, btune, metric:<name>, py:MODULE:FUNCTION"
    ]
    usage = subprocess.run(
        [sys.executable, "-m", "fennec", "campaign", "plan"], capture_output=True, text=True
    )
    assert usage.returncode == 2
    missing = subprocess.run(
        [sys.executable, "-m", "fennec", "campaign", "status", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "campaign spec not found" in missing.stderr


def test_a_recipe_runs_on_the_tasks_it_names(tmp_path, make_spec):
    spec = load_spec(
        make_spec(
            tmp_path, 'recipes = ["linear_probe", {kind = "metric:logme", tasks = ["*_5cls_*"]}]\n'
        )
    )
    p = plan(spec)
    logme = p.frame[p.frame["recipe"] == "metric_logme"]
    assert len(p.jobs) == 8 + 4 and set(logme["task_id"]) == {"sklearn_digits_5cls_s0k0"}
    path = make_spec(
        tmp_path, 'recipes = [{kind = "linear_probe", tasks = ["mnist"]}]\n', name="none"
    )
    with pytest.raises(SchemaError, match=r"recipes\[0\].tasks: 'mnist' matches no task"):
        load_spec(path)
