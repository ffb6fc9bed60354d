"""Evaluate Fennec and the baselines on stored splits (a benchmark release), and report the results.

:func:`evaluate_with_splits` runs the same per-protocol computation as
:func:`fennec.evaluation.evaluate_history` (it reuses its internals: the row collector, the baselines, the
subspace fit, the warm-start fold-in, the cold-model placement), but takes every fold from ``splits``
(:func:`fennec.benchmark.make_splits`) instead of drawing them: the warm-start revealed models and the
held-out cells are the stored ones. ``evaluate_history`` itself is unchanged. With the same subspace
configuration and seed, the leave-one-task-out rows (including the random baseline, whose draws come
from ``numpy.random.default_rng(config.seed)`` in the same order) equal ``evaluate_history``'s.

The random baseline is not part of the splits: it is drawn from ``default_rng(config.seed)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fennec.coldstart import ModelFeaturizer, fit_placement, predict_placement
from fennec.errors import SchemaError
from fennec.evaluation.baselines import history_prior, side_baselines
from fennec.evaluation.protocols import (
    _COLD_METHODS,
    EvalConfig,
    _baselines,
    _cold_predict,
    _Rows,
    summarize,
)
from fennec.history import History, TaskScaler
from fennec.subspace import TransferSubspace
from fennec.warmstart import column_moments, complete_columns, fold_in

logger = logging.getLogger(__name__)

#: Protocols a release evaluates by default (those of the README's table).
DEFAULT_PROTOCOLS = ("loto", "warm", "lomo", "cells")


@dataclass
class _ReleaseFeaturizer(ModelFeaturizer):
    """:class:`ModelFeaturizer` with archi2vec vectors and catalogue PCA from a release, not the catalogue."""

    arch: object = None  # fennec.benchmark.ArchiVectors

    def fit(self, side: pd.DataFrame) -> _ReleaseFeaturizer:
        use, self.use_archi2vec = self.use_archi2vec, False
        try:
            super().fit(side)
        finally:
            self.use_archi2vec = use
        if use:
            self.pca_mean_ = self.arch.pca_mean
            self.pca_components_ = self.arch.pca_components[: self.n_arch_components]
        return self

    def transform(self, side: pd.DataFrame) -> np.ndarray:
        use, self.use_archi2vec = self.use_archi2vec, False
        try:
            base = super().transform(side)
        finally:
            self.use_archi2vec = use
        if not use:
            return base
        # the archi2vec block of ModelFeaturizer.transform, with the release's vectors
        archs = side.get("timm_arch", pd.Series([None] * len(side))).tolist()
        vec, known = self.arch.lookup(archs)
        proj = (vec - self.pca_mean_) @ self.pca_components_.T
        proj[~known] = 0.0
        scale = np.sqrt(np.mean(proj[known] ** 2)) if known.any() else 1.0
        return np.hstack([base, proj / max(scale, 1e-12), (~known).astype(float)[:, None]])


def _cold(Y, held, side, cfg, fit, arch) -> dict[str, np.ndarray]:
    """``protocols._cold_predict``; with ``arch`` (release vectors) the featurizer reads them instead."""
    if arch is None:
        return _cold_predict(Y, held, side, cfg, fit)
    n, m = Y.shape
    out = {name: np.full((n, m), np.nan) for name in _COLD_METHODS}
    if side is None:
        return out
    train = Y.copy()
    train[held] = np.nan
    keep = np.isfinite(train).any(axis=1)
    keep_cols = np.isfinite(train).sum(axis=0) >= 2
    if keep.sum() < 3 or keep_cols.sum() == 0:
        return out
    sc = TaskScaler.fit(train[:, keep_cols])
    Z = sc.transform(train[:, keep_cols])
    sub = fit(Z[keep])
    targets = np.hstack([sub.model_bias_[:, None], sub.model_vectors_])
    tr, te = np.flatnonzero(keep), np.flatnonzero(held)
    for name, use_arch in (("fennec", True), ("fennec_noarch", False)):
        feat = _ReleaseFeaturizer(use_archi2vec=use_arch, arch=arch).fit(side.iloc[tr])
        coef = fit_placement(feat.transform(side.iloc[tr]), targets, l2=cfg.side_l2)
        t_hat = predict_placement(feat.transform(side.iloc[te]), coef)
        z = sub.global_mean_ + t_hat[:, :1] + sub.task_bias_[None, :] + t_hat[:, 1:] @ sub.task_vectors_.T
        out[name][np.ix_(te, np.flatnonzero(keep_cols))] = z
    return out


def _check_splits(splits: dict, model_ids: list[str], task_ids: list[str], name: str) -> None:
    for key, ids in (("models", model_ids), ("tasks", task_ids)):
        if list(splits.get(key, [])) != list(ids):
            raise SchemaError(f"splits of {name}: the {key} list does not match the history's {key} "
                              f"({len(splits.get(key, []))} vs {len(ids)}); the splits belong to another history")


def evaluate_with_splits(
    history: History,
    splits: dict,
    *,
    side: pd.DataFrame | None = None,
    config: EvalConfig | None = None,
    arch=None,
    n_draws: int | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run ``config.protocols`` on ``history`` with the folds of ``splits``; rows as ``evaluate_history``.

    Parameters
    ----------
    history : History
    splits : dict
        One history's splits (:func:`fennec.benchmark.make_splits`); its ``models``/``tasks`` must be the
        history's matrix order.
    side : DataFrame, optional
        Models side table in ``history.model_ids`` order (baselines and cold models).
    config : EvalConfig, optional
        Protocols, subspace configuration, seed of the subspace and the random baseline. ``warm_k``
        selects among the stored k; ``n_draws`` and ``cell_fraction`` are ignored (the splits decide).
    arch : fennec.benchmark.ArchiVectors, optional
        archi2vec vectors for the cold-model featurizer (default: the installed archi2vec catalogue).
    n_draws : int, optional
        Use only the first ``n_draws`` stored warm-start and cell draws (default: all).
    """
    cfg = config or EvalConfig()
    cfg.validate()
    Y, model_ids, task_ids = history.to_matrix()
    _check_splits(splits, model_ids, task_ids, history.name)
    n, m = Y.shape
    if side is not None and len(side) != n:
        raise SchemaError(f"side table has {len(side)} rows for {n} models")
    mpos = {mid: i for i, mid in enumerate(model_ids)}
    tpos = {t: j for j, t in enumerate(task_ids)}
    side_vecs = side_baselines(side, n)
    rows = _Rows()
    rng = np.random.default_rng(cfg.seed)
    disable = None if progress is None else not progress

    def fit(Z):
        return TransferSubspace(**cfg.subspace, random_state=cfg.seed).fit(Z)

    if "loto" in cfg.protocols or "warm" in cfg.protocols:
        for task in tqdm(splits["loto"], desc=f"{history.name}: leave-one-task-out", disable=disable):
            j = tpos[task]
            train = np.delete(Y, j, axis=1)
            has_train = np.isfinite(train).any(axis=1)
            truth = np.where(has_train, Y[:, j], np.nan)
            if np.isfinite(truth).sum() < 3:
                continue
            scaler = TaskScaler.fit(train)
            Z = scaler.transform(train)
            sub = fit(Z)
            prior = history_prior(Z)
            if "loto" in cfg.protocols:
                rows.add("loto", task, "fennec", sub.cold_task_prediction(), truth)
                _baselines(rows, "loto", task, truth, prior, side_vecs, rng, cfg)
            if "warm" not in cfg.protocols:
                continue
            s0 = float(np.median(scaler.std))
            C = complete_columns(Z, sub.reconstruct())
            moments = column_moments(C)
            for k in cfg.warm_k:
                draws = splits["warm"].get(task, {}).get(str(k), [])[:n_draws]
                for d, ids in enumerate(draws):
                    revealed = np.array([mpos[i] for i in ids], dtype=int)
                    if not np.isfinite(truth[revealed]).all():
                        raise SchemaError(f"splits of {history.name}: warm draw {d} of task {task} reveals a "
                                          f"model not measured on it ({ids})")
                    ws = fold_in(C, revealed, truth[revealed], scale=s0, moments=moments)
                    fold = sub.fold_in_task(revealed, truth[revealed] / s0)
                    hidden = np.ones(n, bool)
                    hidden[revealed] = False
                    rows.add("warm", task, "fennec", ws.score[hidden], truth[hidden], k=k, draw=d)
                    rows.add("warm", task, "fennec_subspace", fold.prediction[hidden], truth[hidden], k=k, draw=d)
                    rows.add("warm", task, "history_prior", prior[hidden], truth[hidden], k=k, draw=d)
                    for name, vec in side_vecs.items():
                        rows.add("warm", task, name, vec[hidden], truth[hidden], k=k, draw=d)
                    rows.add_random("warm", task, truth[hidden], rng, max(cfg.n_random // max(len(draws), 1), 5), k=k)

    if "lomo" in cfg.protocols:
        cold = {name: np.full((n, m), np.nan) for name in _COLD_METHODS}
        for mid in tqdm(splits["lomo"], desc=f"{history.name}: leave-one-model-out", disable=disable):
            i = mpos[mid]
            held = np.zeros(n, bool)
            held[i] = True
            for name, z in _cold(Y, held, side, cfg, fit, arch).items():
                cold[name][i] = z[i]
        for j, task in enumerate(task_ids):
            truth = Y[:, j]
            if np.isfinite(truth).sum() < 3:
                continue
            for name, pred in cold.items():
                rows.add("lomo", task, name, pred[:, j], truth)
            _baselines(rows, "lomo", task, truth, None, side_vecs, rng, cfg)

    if "xgroup" in cfg.protocols:
        for g, members in splits["xgroup"].items():
            in_g = np.zeros(n, bool)
            in_g[[mpos[x] for x in members]] = True
            if in_g.sum() < 3 or (~in_g).sum() < 3:
                continue
            for label, held in ((f"xgroup:{g}", in_g), (f"xgroup_rev:{g}", ~in_g)):
                preds = _cold(Y, held, side, cfg, fit, arch)
                for j, task in enumerate(task_ids):
                    truth = np.where(held, Y[:, j], np.nan)
                    if np.isfinite(truth).sum() < 3:
                        continue
                    for name, z in preds.items():
                        rows.add(label, task, name, z[:, j], truth)
                    _baselines(rows, label, task, truth, None, side_vecs, rng, cfg)

    if "cells" in cfg.protocols:
        for d, cells in enumerate(tqdm(splits["cells"][:n_draws], desc=f"{history.name}: held-out cells",
                                       disable=disable)):
            held_rc = np.array(cells, dtype=int).reshape(-1, 2)
            if held_rc.size and not np.isfinite(Y[held_rc[:, 0], held_rc[:, 1]]).all():
                raise SchemaError(f"splits of {history.name}: cell draw {d} holds out unobserved cells")
            train = Y.copy()
            train[held_rc[:, 0], held_rc[:, 1]] = np.nan
            ok_cols = np.isfinite(train).sum(axis=0) >= 2
            scaler = TaskScaler.fit(np.where(ok_cols, train, 0.0))
            Z = np.where(ok_cols, scaler.transform(train), np.nan)
            sub = fit(Z)
            pred = sub.reconstruct()
            prior = history_prior(Z)
            for j, task in enumerate(task_ids):
                rows_j = held_rc[held_rc[:, 1] == j, 0]
                if len(rows_j) < 3 or not ok_cols[j]:
                    continue
                mask = np.zeros(n, bool)
                mask[rows_j] = True
                truth = np.where(mask, Y[:, j], np.nan)
                rows.add("cells", task, "fennec", pred[:, j], truth, draw=d)
                rows.add("cells", task, "history_prior", prior, truth, draw=d)
                for name, vec in side_vecs.items():
                    rows.add("cells", task, name, vec, truth, draw=d)
                rows.add_random("cells", task, truth, rng, max(cfg.n_random // 5, 5))
    out = pd.DataFrame(rows.rows)
    if out.empty:
        raise SchemaError(f"{history.name}: no task had at least 3 models to rank under {cfg.protocols}")
    return out


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
        A path is loaded with :func:`fennec.benchmark.load_benchmark` (every checksum verified first).
    histories : sequence of str, optional
        History names (default: all of the release's).
    config : EvalConfig, optional
        Default: ``EvalConfig(protocols=DEFAULT_PROTOCOLS)``.

    Returns
    -------
    DataFrame
        ``evaluate_history``'s rows with a leading ``history`` column.
    """
    from fennec.benchmark import BenchmarkRelease, load_benchmark

    rel = release if isinstance(release, BenchmarkRelease) else load_benchmark(release)
    cfg = config or EvalConfig(protocols=DEFAULT_PROTOCOLS)
    names = list(histories) if histories else rel.history_names
    frames = []
    for name in names:
        h = rel.history(name)
        side = rel.side_table(h.model_ids)
        res = evaluate_with_splits(h, rel.history_splits(name), side=side, config=cfg, arch=rel.archi2vec,
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


_PROTOCOL_NAMES = {"loto": "leave-one-task-out", "lomo": "leave-one-model-out (cold model)",
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

    The cells are drawn as the first ``cells`` draw of :func:`fennec.benchmark.make_splits`; the subspace
    (``config.subspace``) is fitted on the others. Returns ``task_id, model_id, predicted, true``.
    """
    from fennec.benchmark import make_splits

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
