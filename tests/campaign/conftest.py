"""Shared pieces of the campaign tests: tiny specs (random-weight timm test models, a few digits images) and
a module of recipes that fail on purpose (importable by Ray workers through PYTHONPATH)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

FAULTS = '''
import os


def crash_once(model, task, params, seed):
    """Kill the worker process on the first call of the campaign (a marker file tells), then succeed."""
    try:
        fd = os.open(params["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return {"score": 50.0 + seed, "metric": "top1"}
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os._exit(1)


def always_crash(model, task, params, seed):
    """Kill the worker every time for one job (seed 0 of test_vit on the full task); succeed elsewhere."""
    if seed == 0 and model.model_id == "test_vit@random-init" and task.task_id == "sklearn_digits":
        os._exit(1)
    return {"score": 40.0, "metric": "top1"}


def always_fails(model, task, params, seed):
    raise ValueError("this recipe always fails")
'''


def write_spec(folder: Path, body: str, *, name: str = "tiny", images: int = 40) -> Path:
    """A spec in ``folder`` with two random-weight timm test models and the given extra lines."""
    path = folder / f"{name}.toml"
    head = f'''
    name = "{name}"
    out = "out-{name}"
    seeds = [0, 1]
    '''
    tail = f"""
    [budget]
    images = {images}
    image_size = 32

    [[models]]
    name = "test_vit"
    pretrained = false
    [[models]]
    name = "test_efficientnet"
    pretrained = false

    [[tasks]]
    example = "sklearn_digits"
    subsets = {{classes = 5, count = 1, seed = 0}}
    """
    path.write_text(
        textwrap.dedent(head) + textwrap.dedent(body) + textwrap.dedent(tail), encoding="utf-8"
    )
    return path


@pytest.fixture
def make_spec():
    """:func:`write_spec`."""
    return write_spec


@pytest.fixture(scope="session")
def faults_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("campaign_faults")
    (folder / "campaign_faults.py").write_text(FAULTS, encoding="utf-8")
    return folder


@pytest.fixture
def faults(faults_dir, monkeypatch) -> Path:
    """The faults module importable here (``py:campaign_faults:...`` recipes)."""
    monkeypatch.syspath_prepend(str(faults_dir))
    return faults_dir
