"""Evaluate Fennec and the baselines on a benchmark release's stored splits, and report the results.

:func:`evaluate_with_splits` is :func:`fennec.evaluation.evaluate_history` with the release's splits
(the warm-start revealed models and held-out cells are the stored ones) and archi2vec vectors. With the
same seed, ``evaluate_history`` draws exactly these splits itself (:func:`fennec.evaluation.splits.make_splits`),
so evaluating ``data/`` and the release give the same table. The random baseline is not part of the
splits: it is drawn from ``default_rng(config.seed)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from fennec.evaluation.protocols import EvalConfig, check_splits, evaluate_history, summarize
from fennec.history.table import History, TaskScaler
from fennec.subspace.factorization import TransferSubspace

logger = logging.getLogger(__name__)

#: Protocols a release evaluates by default (those of the README's table).
DEFAULT_PROTOCOLS = ("loto", "warm", "lomo", "cells")


def evaluate_with_splits(
    history: History,
    splits: dict,
    *,
    side: pd.DataFrame | None = None,
    config: EvalConfig | None = None,
    arch=None,
    n_draws: int | None = None,
    task_embeddings=None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run ``config.protocols`` on ``history`` with the folds of ``splits``; rows as ``evaluate_history``.

    Parameters
    ----------
    history : History
    splits : dict
        One history's splits (:func:`fennec.release.export.make_splits`); its ``models``/``tasks`` must be the
        history's matrix order.
    side : DataFrame, optional
        Models side table in ``history.model_ids`` order (baselines and cold models).
    config : EvalConfig, optional
        Protocols, subspace configuration, seed of the subspace and the random baseline. ``warm_k``
        selects among the stored k; ``n_draws`` and ``cell_fraction`` are ignored (the splits decide).
    arch : fennec.release.export.ArchiVectors, optional
        archi2vec vectors for the cold-model featurizer (default: the installed archi2vec catalogue).
    n_draws : int, optional
        Use only the first ``n_draws`` stored warm-start and cell draws (default: all).
    """
    Y, model_ids, task_ids = history.to_matrix()
    check_splits(splits, model_ids, task_ids, history.name)
    return evaluate_history(history, side=side, config=config, splits=splits, arch=arch, n_draws=n_draws,
                            task_embeddings=task_embeddings, progress=progress)


def evaluate_benchmark(
    release,
    *,
    histories: Sequence[str] | None = None,
    config: EvalConfig | None = None,
    n_draws: int | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Evaluate every (or the named) history of a release on its stored splits.

    Parameters
    ----------
    release : BenchmarkRelease or path-like
        A path is loaded with :func:`fennec.release.export.load_benchmark` (every checksum verified first).
    histories : sequence of str, optional
        History names (default: all of the release's).
    config : EvalConfig, optional
        Default: ``EvalConfig(protocols=DEFAULT_PROTOCOLS)``.

    Returns
    -------
    DataFrame
        ``evaluate_history``'s rows with a leading ``history`` column.
    """
    from fennec.release.export import BenchmarkRelease, load_benchmark

    rel = release if isinstance(release, BenchmarkRelease) else load_benchmark(release)
    cfg = config or EvalConfig(protocols=DEFAULT_PROTOCOLS)
    names = list(histories) if histories else rel.history_names
    frames = []
    emb = rel.task_embeddings() if "proxy" in cfg.protocols else None
    for name in names:
        h = rel.history(name)
        side = rel.side_table(h.model_ids)
        res = evaluate_with_splits(h, rel.history_splits(name), side=side, config=cfg, arch=rel.archi2vec,
                                   task_embeddings=emb,
                                   n_draws=n_draws, progress=progress)
        res.insert(0, "history", name)
        frames.append(res)
    return pd.concat(frames, ignore_index=True)


def summarize_benchmark(results: pd.DataFrame) -> pd.DataFrame:
    """:func:`fennec.evaluation.summarize` per history (a leading ``history`` column)."""
    if "history" not in results.columns:
        return summarize(results)
    parts = []
    for name, res in results.groupby("history", sort=False):
        s = summarize(res.drop(columns="history"))
        s.insert(0, "history", name)
        parts.append(s)
    return pd.concat(parts, ignore_index=True)


_PROTOCOL_NAMES = {"loto": "leave-one-task-out", "proxy": "leave-one-task-out, placed by class names (text proxy)", "lomo": "leave-one-model-out (cold model)",
                   "cells": "random held-out cells (20 %)"}
_METHOD_NAMES = {"fennec": "**fennec**", "fennec_subspace": "fennec (subspace fold-in only)",
                 "fennec_noarch": "fennec without archi2vec", "history_prior": "history prior",
                 "imagenet_top1": "ImageNet top-1", "params": "params", "random": "random"}


def results_markdown(results: pd.DataFrame, *, title: str | None = None) -> str:
    """Markdown tables (one per history) of the summary: Kendall tau, both weighted taus, regret@1."""
    summary = summarize_benchmark(results)
    if "history" not in summary.columns:
        summary.insert(0, "history", "")
    out = [f"# {title}", ""] if title else []
    for name, s in summary.groupby("history", sort=False):
        if name:
            out += [f"## {name}", ""]
        out += ["| protocol | method | tasks | Kendall τ | weighted τ (scipy) | weighted τ (truth) | regret@1 |",
                "|---|---|---|---|---|---|---|"]
        last = None
        for r in s.itertuples(index=False):
            proto = _PROTOCOL_NAMES.get(r.protocol, r.protocol)
            if r.protocol == "warm":
                proto = f"warm start, {r.k} revealed"
            shown = proto if (r.protocol, r.k) != last else ""
            last = (r.protocol, r.k)
            vals = [f"{v:.3f}".replace("-", "−") if np.isfinite(v) else "" for v in
                    (r.kendall_tau, r.weighted_tau_scipy, r.weighted_tau_truth)]
            reg = f"{r.regret_at_1:.2f}" if np.isfinite(r.regret_at_1) else ""
            out.append(f"| {shown} | {_METHOD_NAMES.get(r.method, r.method)} | {r.n_tasks} | "
                       f"{' | '.join(vals)} | {reg} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def heldout_predictions(
    history: History,
    *,
    fraction: float = 0.2,
    seed: int = 0,
    config: EvalConfig | None = None,
) -> pd.DataFrame:
    """Predicted vs true scores of randomly held-out cells (task units), for :func:`plot_predicted_vs_true`.

    The cells are drawn as the first ``cells`` draw of :func:`fennec.release.export.make_splits`; the subspace
    (``config.subspace``) is fitted on the others. Returns ``task_id, model_id, predicted, true``.
    """
    from fennec.release.export import make_splits

    cfg = config or EvalConfig()
    Y, model_ids, task_ids = history.to_matrix()
    held = np.array(make_splits(history, seed=seed, n_draws=1, cell_fraction=fraction, cell_draws=1)["cells"][0],
                    dtype=int).reshape(-1, 2)
    train = Y.copy()
    train[held[:, 0], held[:, 1]] = np.nan
    ok = np.isfinite(train).sum(axis=0) >= 2
    scaler = TaskScaler.fit(np.where(ok, train, 0.0))
    Z = np.where(ok, scaler.transform(train), np.nan)
    sub = TransferSubspace(**cfg.subspace, random_state=seed).fit(Z)
    pred = scaler.inverse_transform(sub.reconstruct())
    keep = ok[held[:, 1]]
    r, c = held[keep, 0], held[keep, 1]
    return pd.DataFrame({"task_id": [task_ids[j] for j in c], "model_id": [model_ids[i] for i in r],
                         "predicted": pred[r, c], "true": Y[r, c]})


def quick_config(**kwargs) -> EvalConfig:
    """A fast :class:`EvalConfig` (fixed rank 2, l2 1) for examples and tests; keywords override fields."""
    base = EvalConfig(subspace={"n_components": 2, "l2": 1.0})
    return replace(base, **kwargs)
