from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Keep BLAS single-threaded in tests: the CI machine has 2 shared cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def small_history_csv() -> Path:
    return FIXTURES / "history_small.csv"


@pytest.fixture(params=[0, 1, 7])
def global_random_seed(request) -> int:
    """Seeded tests must pass for any seed; a few are exercised."""
    return request.param


@pytest.fixture
def rng(global_random_seed) -> np.random.Generator:
    return np.random.default_rng(global_random_seed)
