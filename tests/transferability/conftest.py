"""Shared fixtures for the transferability metrics."""

from __future__ import annotations

import numpy as np
import pytest


def _make_task(n: int, d: int, c: int, *, signal: float = 0.7, seed: int = 0):
    """Features with class structure (class means + unit noise) and balanced labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % c
    rng.shuffle(labels)
    means = rng.standard_normal((c, d))
    features = signal * means[labels] + rng.standard_normal((n, d))
    return features, labels


@pytest.fixture(scope="session")
def make_task():
    """The task factory ``make_task(n, d, c, *, signal=0.7, seed=0) -> (features, labels)``."""
    return _make_task


@pytest.fixture
def task():
    return _make_task(120, 24, 4, seed=1)
