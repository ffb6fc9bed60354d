from __future__ import annotations

import logging

import pytest

from fennec._torch_compat import ensure_torchvision

ensure_torchvision()

import torch  # noqa: E402

from fennec.data.examples import load_example_task  # noqa: E402
from fennec.train import BTuningConfig  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(caplog):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    caplog.set_level(logging.ERROR, logger="fennec.backbone")  # "random weights" warnings of test models
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def task():
    """40 real 8x8 digits (4 per class), upscaled by the models' transforms."""
    return load_example_task("sklearn_digits", n_per_class=4, random_state=0)


@pytest.fixture
def small_config() -> BTuningConfig:
    return BTuningConfig(epochs=2, batch_size=16, image_size=32, num_threads=1, val_fraction=0.25)
