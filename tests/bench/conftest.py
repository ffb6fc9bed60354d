from __future__ import annotations

import warnings

import pytest

from fennec.release.export import export_benchmark, load_benchmark


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory):
    """A small release (the logme history only), exported once per session."""
    return export_benchmark(tmp_path_factory.mktemp("bench") / "release", histories=["logme"], seed=0, n_draws=3)


@pytest.fixture(scope="session")
def release(release_dir):
    return load_benchmark(release_dir)


@pytest.fixture(scope="session")
def logme_loto(release):
    """Per-task loto results of the release evaluation (fast subspace configuration)."""
    from fennec.release.evaluate import evaluate_benchmark, quick_config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_benchmark(release, config=quick_config(protocols=("loto",)))
