"""Plots of rankings, evaluations and the transfer subspace (matplotlib, the ``plot`` extra).

matplotlib is imported lazily, inside each function: importing :mod:`fennec.plotting` never needs it.
Every function draws on ``ax`` (a new figure when ``None``) and returns the Axes; none calls
``plt.show()``. :func:`save_figure` writes an Axes' figure to a PNG.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fennec._optional import MissingPackageError
from fennec.errors import SchemaError

logger = logging.getLogger(__name__)

#: One fixed colour per score source / method, so figures stay comparable.
SOURCE_COLORS = {"measured": "#1b9e77", "warm_start": "#d95f02", "subspace": "#7570b3", "proxy": "#e7298a",
                 "prior": "#66a61e", "archi2vec": "#e6ab02", "logme": "#a6761d"}
METHOD_COLORS = {"fennec": "#d62728", "fennec_subspace": "#ff9896", "fennec_noarch": "#ffbb78",
                 "history_prior": "#1f77b4", "imagenet_top1": "#2ca02c", "params": "#9467bd", "random": "#7f7f7f"}
METHOD_LABELS = {"fennec": "Fennec", "fennec_subspace": "Fennec (subspace fold-in)",
                 "fennec_noarch": "Fennec (no archi2vec)", "history_prior": "history prior",
                 "imagenet_top1": "ImageNet top-1", "params": "#params", "random": "random"}
METRIC_LABELS = {"kendall_tau": "Kendall τ (tau-b)", "weighted_tau_scipy": "weighted τ (scipy convention)",
                 "weighted_tau_truth": "weighted τ (weights by true rank)", "spearman": "Spearman ρ",
                 "pearson": "Pearson r", "regret_at_1": "regret@1 (points)", "regret_at_3": "regret@3 (points)"}
_FALLBACK = ("#17becf", "#bcbd22", "#8c564b", "#e377c2", "#aec7e8", "#98df8a")


def pyplot():
    """``matplotlib.pyplot``, or an error naming the extra to install."""
    try:
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib" and not str(exc.name).startswith("matplotlib."):
            raise
        raise MissingPackageError("plots need matplotlib, the 'plot' extra of fennec: pip install -c constraints.txt "
                                  "-e '.[plot]' (or pip install matplotlib)") from exc

    return plt


def _axes(ax, figsize):
    if ax is not None:
        return ax
    plt = pyplot()
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _color(mapping: dict[str, str], key: str, seen: dict[str, str]) -> str:
    if key in mapping:
        return mapping[key]
    if key not in seen:
        seen[key] = _FALLBACK[len(seen) % len(_FALLBACK)]
    return seen[key]


def save_figure(ax, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
    """Write the figure holding ``ax`` to ``path`` (PNG, atomically; parent folders created) and close it.

    The saved area grows to hold every label (``bbox_inches="tight"``): labels placed outside the axes are kept.
    """
    from fennec.artifacts import atomic_path

    plt = pyplot()
    path = Path(path)
    fig = ax.figure
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def plot_ranking(ranking, ax=None, *, top_k: int | None = None, title: str | None = None):
    """Horizontal bars of a ranking's scores, best on top, coloured by score ``source``.

    Parameters
    ----------
    ranking : Ranking or DataFrame
        :meth:`fennec.Recommender.query` output (or its table): ``model_id``, ``score`` and optionally
        ``rank``, ``source``, ``std``, ``task_id``.
    ax : matplotlib Axes, optional
    top_k : int, optional
        Show only the first ``top_k`` rows.
    """
    ranking = getattr(ranking, "frame", ranking)
    ranking = ranking[ranking["score"].notna()] if "score" in ranking.columns else ranking
    for col in ("model_id", "score"):
        if col not in ranking.columns:
            raise SchemaError(f"plot_ranking: the ranking has no {col!r} column (columns: {', '.join(ranking.columns)})")
    df = ranking.sort_values("rank") if "rank" in ranking.columns else ranking.sort_values("score", ascending=False)
    df = df.head(top_k) if top_k else df
    if df.empty:
        raise SchemaError("plot_ranking: the ranking is empty")
    ax = _axes(ax, (7, 0.9 + 0.32 * len(df)))
    sources = df["source"].fillna("").astype(str).tolist() if "source" in df.columns else [""] * len(df)
    seen: dict[str, str] = {}
    colors = [_color(SOURCE_COLORS, s, seen) for s in sources]
    y = np.arange(len(df))[::-1]
    score = pd.to_numeric(df["score"], errors="coerce").to_numpy(float)
    std = pd.to_numeric(df["std"], errors="coerce").to_numpy(float) if "std" in df.columns else None
    err = np.where(np.isfinite(std), std, 0.0) if std is not None and np.isfinite(std).any() else None
    lo = float(np.nanmin(score - (err if err is not None else 0)))
    hi = float(np.nanmax(score + (err if err is not None else 0)))
    base = lo - 0.08 * (hi - lo if hi > lo else 1.0) if lo > 0 else min(0.0, lo)
    ax.barh(y, score - base, left=base, color=colors, xerr=err, capsize=2, ecolor="#444444", height=0.72)
    ax.set_yticks(y, df["model_id"].astype(str).tolist(), fontsize=9)
    ax.set_xlim(base, hi + 0.05 * (hi - base))
    ax.set_xlabel("predicted score" + (" (± std)" if err is not None else ""))
    handles = [ax.bar(0, 0, color=_color(SOURCE_COLORS, s, seen), label=s) for s in dict.fromkeys(sources) if s]
    if handles:
        ax.legend(handles=handles, title="score source", fontsize=8, title_fontsize=8, loc="lower right")
    task = str(df["task_id"].iloc[0]) if "task_id" in df.columns else ""
    ax.set_title(title or (f"Ranking for task {task}" if task else "Ranking"))
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_predicted_vs_true(predictions: pd.DataFrame, ax=None, *, title: str | None = None):
    """Scatter of predicted against true scores, one colour per task, Kendall τ per task in the legend.

    Parameters
    ----------
    predictions : DataFrame
        ``task_id, predicted, true`` (e.g. :func:`fennec.release.evaluate.heldout_predictions`).
    """
    from fennec.evaluation.rankmetrics import kendall_tau

    missing = {"task_id", "predicted", "true"} - set(predictions.columns)
    if missing:
        raise SchemaError(f"plot_predicted_vs_true: missing column(s) {sorted(missing)}")
    ax = _axes(ax, (7.5, 5.5))
    plt = pyplot()
    cmap = plt.get_cmap("tab20")
    tasks = sorted(predictions["task_id"].astype(str).unique())
    for i, task in enumerate(tasks):
        d = predictions[predictions["task_id"].astype(str) == task]
        tau = kendall_tau(d["predicted"], d["true"]) if len(d) >= 2 else float("nan")
        label = f"{task} (τ={tau:.2f}, n={len(d)})" if np.isfinite(tau) else f"{task} (n={len(d)})"
        ax.scatter(d["true"], d["predicted"], s=22, color=cmap(i % 20), label=label, alpha=0.85,
                   edgecolors="white", linewidths=0.4)
    lo = float(np.nanmin(predictions[["predicted", "true"]].to_numpy()))
    hi = float(np.nanmax(predictions[["predicted", "true"]].to_numpy()))
    pad = 0.03 * (hi - lo if hi > lo else 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls="--", color="#888888", lw=1, label="predicted = true")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("true score (fine-tuned accuracy, %)")
    ax.set_ylabel("predicted score")
    ax.set_title(title or "Held-out cells: predicted vs true")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, title="task",
              title_fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def plot_per_task(results: pd.DataFrame, ax=None, *, protocol: str = "loto", metric: str = "kendall_tau",
                  k: int = 0, history: str | None = None, methods: list[str] | None = None,
                  title: str | None = None):
    """Grouped bars: the per-task ``metric`` of every method side by side, for one protocol (and k).

    Parameters
    ----------
    results : DataFrame
        ``evaluate_history`` / ``evaluate_benchmark`` rows (a ``history`` column needs ``history=`` when it
        holds several).
    protocol, metric, k
        Which rows and column; draws are averaged per task.
    """
    from fennec.evaluation import per_task_table

    res = results
    if "history" in res.columns:
        names = list(res["history"].drop_duplicates())
        if history is None and len(names) > 1:
            raise SchemaError(f"plot_per_task: results hold several histories ({', '.join(names)}); pass history=")
        history = history or names[0]
        res = res[res["history"] == history].drop(columns="history")
    if metric not in res.columns:
        raise SchemaError(f"plot_per_task: no metric column {metric!r}")
    if protocol not in set(res["protocol"]):
        raise SchemaError(f"plot_per_task: no rows of protocol {protocol!r} "
                          f"(protocols: {', '.join(map(str, res['protocol'].drop_duplicates()))})")
    table = per_task_table(res, metric=metric, protocol=protocol, k=k)
    if table.shape[0] <= 1:
        raise SchemaError(f"plot_per_task: no rows for protocol {protocol!r} with k={k}")
    if methods:
        table = table[[m for m in methods if m in table.columns]]
    n_tasks, n_methods = table.shape
    ax = _axes(ax, (min(14.0, max(7.0, 0.5 * n_tasks * max(n_methods, 3) / 3 + 3)), 4.8))
    width = 0.8 / n_methods
    x = np.arange(n_tasks)
    seen: dict[str, str] = {}
    for i, method in enumerate(table.columns):
        ax.bar(x - 0.4 + width * (i + 0.5), table[method].to_numpy(float), width=width,
               color=_color(METHOD_COLORS, method, seen), label=METHOD_LABELS.get(method, method))
    ax.axvline(n_tasks - 1.5, color="#555555", lw=0.8, ls=":")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(x, [str(t) for t in table.index], rotation=40, ha="right", fontsize=9)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    what = {"loto": "leave-one-task-out", "warm": f"warm start, {k} revealed", "lomo": "leave-one-model-out",
            "cells": "held-out cells"}.get(protocol, protocol)
    ax.set_title(title or f"Per-task {METRIC_LABELS.get(metric, metric)}: {what}" + (f" ({history})" if history else ""))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0, title="method",
              title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


def _pca2(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, components (2 x d), explained variance ratio)``, padded when ``d < 2``."""
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    comps = np.zeros((2, X.shape[1]))
    comps[: min(2, len(vt))] = vt[:2]
    var = s**2
    ratio = np.zeros(2)
    ratio[: min(2, len(var))] = (var / var.sum())[:2] if var.sum() > 0 else 0.0
    return mean, comps, ratio


def _spread(x: np.ndarray, y: np.ndarray, *, gap: float, xgap: float) -> np.ndarray:
    """Label heights pushed apart (at least ``gap``) among labels closer than ``xgap`` horizontally."""
    y = np.asarray(y, dtype=float).copy()
    order = np.argsort(y)
    for _ in range(50):
        moved = False
        for a, b in zip(order[:-1], order[1:], strict=True):
            if abs(x[a] - x[b]) < xgap and y[b] - y[a] < gap:
                shift = (gap - (y[b] - y[a])) / 2 + 1e-9
                y[a] -= shift
                y[b] += shift
                moved = True
        order = np.argsort(y)
        if not moved:
            break
    return y


def plot_subspace(recommender, ax=None, *, label_models: int = 8, title: str | None = None):
    """2-D PCA map of the subspace: models as points (by campaign), tasks as arrows.

    Models are the index vectors ``[u_i, mu + b_i]`` (their inner product with a task's query
    ``[v_j, 1]`` is the task's score up to the task bias); the PCA is fitted on the models and the task
    queries are projected onto the same axes and drawn as directions: models far along a task's arrow are
    predicted to transfer well to it. The ``label_models`` best models by prior are labelled.
    """
    sub = getattr(recommender, "subspace_", None)
    if sub is None:
        raise SchemaError("plot_subspace: the recommender is not fitted (fit or load it first)")
    U = np.hstack([sub.model_vectors_, (sub.global_mean_ + sub.model_bias_)[:, None]])
    V = np.hstack([sub.task_vectors_, np.ones((sub.task_vectors_.shape[0], 1))])
    mean, comps, ratio = _pca2(U)
    T = V @ comps.T
    comps[T.mean(axis=0) < 0] *= -1  # orient the axes so that tasks point right / up on average
    P = (U - mean) @ comps.T
    T = V @ comps.T
    ax = _axes(ax, (8, 6.5))
    plt = pyplot()
    model_ids, task_ids = list(sub.model_ids_), list(sub.task_ids_)
    history = getattr(recommender, "history_", None)
    groups = np.array(["models"] * len(model_ids), dtype=object)
    if history is not None and "campaign" in history.frame.columns:
        camp = history.frame.groupby("model_id")["campaign"].agg(lambda s: sorted(set(map(str, s)))[0])
        groups = np.array([camp.get(m, "") or "models" for m in model_ids], dtype=object)
    cmap = plt.get_cmap("tab10")
    for i, g in enumerate(sorted(set(groups))):
        sel = groups == g
        ax.scatter(P[sel, 0], P[sel, 1], s=26, color=cmap(i % 10), label=f"{g} ({sel.sum()})", alpha=0.85,
                   edgecolors="white", linewidths=0.4, zorder=3)
    prior = U[:, -1]
    best = np.argsort(-prior)[:label_models]
    span = float(np.ptp(P[:, 1])) or 1.0
    for i, y in zip(best, _spread(P[best, 0], P[best, 1], gap=0.035 * span, xgap=0.25 * (float(np.ptp(P[:, 0])) or 1)),
                    strict=True):
        ax.annotate(model_ids[i], P[i], xytext=(P[i, 0] + 0.01 * span, y + 0.01 * span), fontsize=7, zorder=4,
                    arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.5})
    radius = float(np.max(np.linalg.norm(P, axis=1))) if len(P) else 1.0
    norms = np.linalg.norm(T, axis=1)
    ends = T * (0.9 * radius / max(float(norms.max()), 1e-12))
    label_y = _spread(ends[:, 0], ends[:, 1], gap=0.045 * span, xgap=0.3 * radius)
    for j, t in enumerate(task_ids):
        ax.annotate("", xy=ends[j], xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "#444444", "lw": 0.9},
                    zorder=2)
        ax.annotate(t, ends[j], xytext=(ends[j, 0] + 0.02 * radius, label_y[j]), fontsize=8, color="#222222",
                    fontweight="bold", zorder=5, va="center",
                    arrowprops={"arrowstyle": "-", "color": "#bbbbbb", "lw": 0.5})
    ax.axhline(0, color="#bbbbbb", lw=0.6, zorder=1)
    ax.axvline(0, color="#bbbbbb", lw=0.6, zorder=1)
    ax.set_xlabel(f"PC 1 of model vectors ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({ratio[1]:.0%})")
    ax.set_title(title or f"Transfer subspace (rank {sub.model_vectors_.shape[1]}): models and task directions")
    ax.legend(fontsize=8, title="model group", title_fontsize=8, loc="best", framealpha=0.9)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.2)
    return ax
