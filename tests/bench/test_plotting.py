"""Plots: each function returns an Axes and writes a non-empty PNG with the Agg backend."""

from __future__ import annotations

import sys
import warnings

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from fennec.errors import SchemaError  # noqa: E402
from fennec.plotting import (  # noqa: E402
    plot_per_task,
    plot_predicted_vs_true,
    plot_ranking,
    plot_subspace,
    save_figure,
)
from fennec.query.recommender import Recommender, RecommenderConfig  # noqa: E402
from fennec.release.evaluate import heldout_predictions, quick_config  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def rec():
    from fennec.data.shipped import load_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = load_history("sfda")
    return Recommender(RecommenderConfig(n_components=3, l2=1.0, index_backend="numpy")).fit(h)


def _png(ax, path):
    save_figure(ax, path)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000
    return path


def test_plot_ranking(rec, tmp_path):
    ranking = rec.query(observed={"resnet50": 84.6, "deit_small": 73.1, "byol": 82.1}, top_k=12)
    ax = plot_ranking(ranking)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(labels) == set(ranking.frame["source"])
    assert [t.get_text() for t in ax.get_yticklabels()][0] == ranking.frame["model_id"].iloc[0]  # best on top
    _png(ax, tmp_path / "ranking.png")


def test_plot_predicted_vs_true(tmp_path):
    from fennec.data.shipped import load_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = load_history("logme")
    pred = heldout_predictions(h, config=quick_config())
    assert list(pred.columns) == ["task_id", "model_id", "predicted", "true"] and len(pred) > 5
    _png(plot_predicted_vs_true(pred), tmp_path / "pvt.png")


def test_plot_per_task(logme_loto, tmp_path):
    ax = plot_per_task(logme_loto, protocol="loto", metric="kendall_tau")
    assert "Fennec" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "mean"
    _png(ax, tmp_path / "per_task.png")
    with pytest.raises(SchemaError, match="no rows of protocol 'warm'"):
        plot_per_task(logme_loto, protocol="warm")


def test_plot_subspace(rec, tmp_path):
    ax = plot_subspace(rec)
    texts = {t.get_text() for t in ax.texts}
    assert set(rec.task_ids) <= texts
    _png(ax, tmp_path / "subspace.png")


def test_plots_accept_an_axes(rec):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    assert plot_ranking(rec.query(task="cifar10", top_k=5), ax=axes[0]) is axes[0]
    assert plot_subspace(rec, ax=axes[1]) is axes[1]
    plt.close(fig)


def test_bad_input_and_missing_matplotlib(monkeypatch):
    import pandas as pd

    with pytest.raises(SchemaError, match="no 'score' column"):
        plot_ranking(pd.DataFrame({"model_id": ["a"]}))
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"'plot' extra"):
        plot_ranking(pd.DataFrame({"model_id": ["a"], "score": [1.0]}))
