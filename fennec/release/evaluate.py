"""Evaluate Fennec and the baselines on the shipped histories or a benchmark release, and report the results.

:func:`evaluate_shipped` runs the per-history protocols (:func:`fennec.evaluation.evaluate_history`) and
leave-one-history-out (:func:`fennec.evaluation.evaluate_zoo`) on histories of ``data/``;
:func:`evaluate_benchmark` does the same from a release alone, on its stored splits, models and archi2vec
vectors. With the same seed, ``evaluate_history`` draws exactly the stored splits itself
(:func:`fennec.evaluation.splits.make_splits`), so evaluating ``data/`` and the release give the same table.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from fennec.evaluation.protocols import EvalConfig, evaluate_history, summarize
from fennec.evaluation.zoo import evaluate_zoo
from fennec.history.table import History

logger = logging.getLogger(__name__)

#: Protocols a release evaluates by default (those of the README's table).
DEFAULT_PROTOCOLS = ("loto", "warm", "lomo", "cells")


def _run(histories: dict[str, History], cfg: EvalConfig, *, union: bool = False, registry=None, splits=None,
         arch=None, n_draws=None, task_embeddings=None, progress=None) -> pd.DataFrame:
    per_history = tuple(p for p in cfg.protocols if p != "loho")
    need_emb = "proxy" in cfg.protocols or "loho" in cfg.protocols
    if task_embeddings is None and need_emb:
        from fennec.proxy import load_shipped_text_embeddings

        task_embeddings = load_shipped_text_embeddings()
    frames = []
    if per_history:
        sub = replace(cfg, protocols=per_history)
        for name, h in histories.items():
            context = [o for n, o in histories.items() if n != name] if union else ()
            res = evaluate_history(h, registry=registry, config=sub, splits=(splits or {}).get(name), arch=arch,
                                   n_draws=n_draws, task_embeddings=task_embeddings, progress=progress,
                                   context=context)
            frames.append(res.assign(history=name + ("+zoo" if union else "")))
    if "loho" in cfg.protocols:
        frames.append(evaluate_zoo(list(histories.values()), registry=registry, config=cfg,
                                   task_embeddings=task_embeddings, progress=progress).assign(history="zoo"))
    out = pd.concat(frames, ignore_index=True)
    if out["history"].nunique() == 1 and not union:
        out = out.drop(columns="history")
    else:
        out.insert(0, "history", out.pop("history"))
    return out


def evaluate_shipped(histories: Sequence[History], *, config: EvalConfig | None = None, union: bool = False,
                     progress: bool | None = None, task_embeddings=None) -> pd.DataFrame:
    """Evaluate histories of ``data/`` (per-history protocols; ``loho`` over all of them; ``union``: every
    fold of a history's protocols also fits the other histories, one zoo). A ``history`` column is added
    when there are several blocks. ``task_embeddings`` (a :class:`~fennec.proxy.TaskEmbeddings`) place the
    held-out task of the ``proxy`` protocol (default: the shipped text proxy of class names)."""
    from fennec.history.union import history_label

    cfg = config or EvalConfig()
    return _run({history_label(h): h for h in histories}, cfg, union=union, progress=progress,
                task_embeddings=task_embeddings)


def evaluate_benchmark(release, *, histories: Sequence[str] | None = None, config: EvalConfig | None = None,
                       n_draws: int | None = None, progress: bool | None = None) -> pd.DataFrame:
    """Evaluate every (or the named) history of a release on its stored splits, from the release alone.

    ``release``: a :class:`~fennec.release.export.BenchmarkRelease` or a path (every checksum verified
    first). Returns the evaluation rows with a leading ``history`` column.
    """
    from fennec.release.export import BenchmarkRelease, load_benchmark

    rel = release if isinstance(release, BenchmarkRelease) else load_benchmark(release)
    cfg = config or EvalConfig(protocols=DEFAULT_PROTOCOLS)
    names = list(histories) if histories else rel.history_names
    hs = {n: rel.history(n) for n in names}
    emb = rel.task_embeddings() if ("proxy" in cfg.protocols or "loho" in cfg.protocols) else None
    out = _run(hs, cfg, registry=rel.registry(), splits={n: rel.history_splits(n) for n in names},
               arch=rel.archi2vec.source(), n_draws=n_draws, task_embeddings=emb, progress=progress)
    if "history" not in out.columns:
        out.insert(0, "history", names[0])
    return out


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


_PROTOCOL_NAMES = {"loho": "leave-one-history-out", "loto": "leave-one-task-out", "proxy": "leave-one-task-out, placed by class names (text proxy)", "lomo": "leave-one-model-out (cold model)",
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


def heldout_predictions(history: History, *, fraction: float = 0.2, seed: int = 0,
                        config: EvalConfig | None = None) -> pd.DataFrame:
    """Predicted vs true scores of randomly held-out cells (task units), for :func:`plot_predicted_vs_true`.

    The cells are the first ``cells`` draw of :func:`fennec.evaluation.splits.make_splits`; a Recommender
    (``config.recommender``) is fitted on the others and asked ``query(task=t)``. Returns
    ``task_id, model_id, predicted, true``.
    """
    import warnings

    from fennec.evaluation.protocols import canonical
    from fennec.evaluation.splits import make_splits
    from fennec.history.table import HistoryWarning
    from fennec.query.recommender import Recommender
    from fennec.zoo.registry import ModelRegistry

    cfg = config or EvalConfig()
    h = canonical(history, ModelRegistry.load())
    Y, model_ids, task_ids = h.to_matrix()
    held = np.array(make_splits(h, seed=seed, n_draws=1, cell_fraction=fraction, cell_draws=1)["cells"][0],
                    dtype=int).reshape(-1, 2)
    cells = set(zip((model_ids[r] for r in held[:, 0]), (task_ids[c] for c in held[:, 1]), strict=True))
    keep = [(m, t) not in cells for m, t in zip(h.frame["model_id"], h.frame["task_id"], strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HistoryWarning)
        rec = Recommender(cfg.recommender).fit(History.from_frame(h.frame[keep], name=h.name, min_models_per_task=2))
    rows = []
    for j, task in enumerate(task_ids):
        mine = held[held[:, 1] == j, 0]
        if not len(mine) or task not in rec.column_ids:
            continue
        frame = rec.query(task=task).frame.set_index("model_id")
        for i in mine:
            if model_ids[i] in frame.index:
                rows.append({"task_id": task, "model_id": model_ids[i], "predicted": frame.at[model_ids[i], "score"],
                             "true": Y[i, j]})
    return pd.DataFrame(rows, columns=["task_id", "model_id", "predicted", "true"])


def quick_config(**kwargs) -> EvalConfig:
    """A fast :class:`EvalConfig` (fixed rank 2, l2 1) for examples and tests; keywords override fields."""
    from fennec.query.recommender import RecommenderConfig

    base = EvalConfig(recommender=RecommenderConfig(n_components=2, l2=1.0, placer_folds=3))
    return replace(base, **kwargs)
