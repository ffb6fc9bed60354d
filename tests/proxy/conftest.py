from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from proxy_helpers import FakeProxy, write_folder


@pytest.fixture
def fake_proxy() -> FakeProxy:
    return FakeProxy()


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_folder(tmp_path / "task", {"cat": 7, "dog": 5, "fox": 3})


@pytest.fixture(scope="session")
def shipped_text():
    from fennec.proxy import load_shipped_text_embeddings

    return load_shipped_text_embeddings()


@pytest.fixture(scope="session")
def sfda_history():
    from fennec.data.shipped import load_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_history("sfda")


@pytest.fixture(scope="session")
def sfda_rec(sfda_history, shipped_text):
    """sfda with the shipped text embeddings; fixed rank/l2 (no CV) to stay fast."""
    from fennec.query.recommender import Recommender, RecommenderConfig

    cfg = RecommenderConfig(n_components=3, l2=1.0, index_backend="numpy")
    return Recommender(cfg).fit(sfda_history, shipped_text)
