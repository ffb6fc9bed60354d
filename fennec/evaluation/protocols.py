"""Evaluation protocols on a history: Fennec beside the baselines, per task, as a tidy DataFrame.

Correlations are computed per target task across models, then summarised over tasks.

Protocols
---------
``loto``   leave-one-task-out (a cold task): fit on the other tasks, rank all models for the held-out one.
           With no task information, Fennec's ranking is the subspace's model prior ``mu + b_i``.
``proxy``  leave-one-task-out with a task proxy: as ``loto``, but the held-out task is placed by its
           proxy embedding (e.g. the text proxy of its class names) through a
           :class:`~fennec.proxy.projector.TaskProjector` fitted on the training tasks' embeddings; a task
           farther than the projector's threshold from every training task falls back to the cold
           prediction, as :meth:`Recommender.rank_embedding` does. Needs ``task_embeddings``.
``warm``   warm start: as ``loto``, then ``k`` randomly chosen models of the held-out task are revealed
           (k = 1, 3, 5; ``n_draws`` draws); models not revealed are ranked. ``fennec`` is the
           recommender's warm start (:mod:`fennec.query.warmstart`: conditional Gaussian over the completed
           task columns + soft nearest-task mixture); ``fennec_subspace`` the subspace-only fold-in
           (:meth:`TransferSubspace.fold_in_task`), reported for comparison.
``lomo``   leave-one-model-out (a cold model): each model's whole row is held out and predicted from its
           side information (params, ImageNet top-1, GMACs, pretraining, family); per task, the cold
           predictions of all models are ranked. The history prior does not exist for a cold model.
``xgroup`` cross-group cold models: for each model group (the history's ``campaign``, e.g. supervised
           CNNs, self-supervised ResNet-50s, ViTs), ``xgroup:G`` fits on the other groups and ranks the
           models of G from side information; ``xgroup_rev:G`` fits on G alone and ranks the rest.
``cells``  random held-out cells (``cell_fraction`` of the observed ones); per task, the held-out models
           are ranked (tasks with fewer than 3 held-out models are skipped).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fennec.errors import SchemaError
from fennec.evaluation.baselines import history_prior, side_baselines
from fennec.evaluation.rankmetrics import METRIC_COLUMNS, ranking_metrics
from fennec.evaluation.splits import make_splits
from fennec.history.table import History, TaskScaler
from fennec.query.warmstart import column_moments, complete_columns, fold_in
from fennec.subspace.factorization import TransferSubspace

logger = logging.getLogger(__name__)

PROTOCOLS = ("loto", "proxy", "warm", "lomo", "xgroup", "cells")


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate. ``subspace`` holds :class:`TransferSubspace` keyword arguments."""

    protocols: tuple[str, ...] = ("loto", "warm", "lomo", "cells")
    projector: str = "collective"
    warm_k: tuple[int, ...] = (1, 3, 5)
    n_draws: int = 10
    n_random: int = 50
    cell_fraction: float = 0.2
    cell_draws: int = 10
    side_l2: float = 10.0
    seed: int = 0
    subspace: dict = field(default_factory=lambda: {
        "n_components": "auto", "l2": "auto", "candidate_ranks": (0, 1, 2, 3, 4, 6),
        "candidate_l2": (0.3, 1.0, 3.0, 10.0), "n_folds": 3})

    def validate(self) -> None:
        unknown = sorted(set(self.protocols) - set(PROTOCOLS))
        if unknown:
            raise SchemaError(f"unknown protocol(s) {unknown}; choose from {', '.join(PROTOCOLS)}")
        if any(k < 1 for k in self.warm_k):
            raise SchemaError(f"warm_k must be positive integers, got {self.warm_k}")
        if not 0 < self.cell_fraction < 1:
            raise SchemaError(f"cell_fraction must be in (0, 1), got {self.cell_fraction}")

    def to_dict(self) -> dict:
        return {"protocols": list(self.protocols), "projector": self.projector, "warm_k": list(self.warm_k), "n_draws": self.n_draws,
                "n_random": self.n_random, "cell_fraction": self.cell_fraction, "cell_draws": self.cell_draws,
                "side_l2": self.side_l2, "seed": self.seed,
                "subspace": {k: list(v) if isinstance(v, tuple) else v for k, v in self.subspace.items()}}


class _Rows:
    """Collects per-task metric rows."""

    def __init__(self, seed: int = 0) -> None:
        self.rows: list[dict] = []
        self.seed = int(seed)
        self._calls: dict[str, int] = {}

    def add(self, protocol: str, task: str, method: str, scores, truth, *, k=np.nan, draw=np.nan) -> None:
        scores = np.asarray(scores, dtype=float)
        truth = np.asarray(truth, dtype=float)
        ok = np.isfinite(scores) & np.isfinite(truth)
        if ok.sum() < 3:
            return
        row = {"protocol": protocol, "task_id": task, "method": method, "k": k, "draw": draw,
               "n_models": int(ok.sum())}
        row.update(ranking_metrics(scores[ok], truth[ok]))
        self.rows.append(row)

    def add_random(self, protocol: str, task: str, truth, rng, n_random: int, *, k=np.nan) -> None:
        """Random-baseline metrics. Draws come from a generator keyed by (seed, protocol, task, k, call
        count), so they do not depend on which other protocols run (``rng`` is kept for its seed only)."""
        truth = np.asarray(truth, dtype=float)
        ok = np.isfinite(truth)
        if ok.sum() < 3:
            return
        key = f"{protocol}|{task}|{k}"
        self._calls[key] = self._calls.get(key, 0) + 1
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode()), self._calls[key]])
        draws = [ranking_metrics(rng.random(ok.sum()), truth[ok]) for _ in range(n_random)]
        row = {"protocol": protocol, "task_id": task, "method": "random", "k": k, "draw": np.nan,
               "n_models": int(ok.sum())}
        row.update({c: float(np.nanmean([d[c] for d in draws])) for c in draws[0]})
        self.rows.append(row)


def _baselines(rows: _Rows, protocol, task, truth, prior, side, rng, cfg, *, k=np.nan) -> None:
    if prior is not None:
        rows.add(protocol, task, "history_prior", prior, truth, k=k)
    for name, vec in side.items():
        rows.add(protocol, task, name, vec, truth, k=k)
    rows.add_random(protocol, task, truth, rng, cfg.n_random, k=k)


_COLD_METHODS = ("fennec", "fennec_noarch")


def _cold_predict(Y, held, side, cfg, fit, arch=None) -> dict[str, np.ndarray]:
    """Standardised predictions for the ``held`` models' rows from side information alone.

    The subspace is fitted without the held rows; ridge maps each training model's features to its
    ``[b_i, u_i]``; the held models get ``mu + b + c_j + u . v_j``. ``fennec`` uses archi2vec + params,
    GMACs, ImageNet top-1, pre-training; ``fennec_noarch`` the same without archi2vec.
    """
    from fennec.zoo.placement import (
        ModelFeaturizer,
        StoredVectorsFeaturizer,
        fit_placement,
        predict_placement,
    )

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
        feat = (ModelFeaturizer(use_archi2vec=use_arch) if arch is None
                else StoredVectorsFeaturizer(use_archi2vec=use_arch, arch=arch)).fit(side.iloc[tr])
        coef = fit_placement(feat.transform(side.iloc[tr]), targets, l2=cfg.side_l2)
        t_hat = predict_placement(feat.transform(side.iloc[te]), coef)
        z = sub.global_mean_ + t_hat[:, :1] + sub.task_bias_[None, :] + t_hat[:, 1:] @ sub.task_vectors_.T
        out[name][np.ix_(te, np.flatnonzero(keep_cols))] = z
    return out


def _proxy_prediction(sub, Z, E_train, has_emb, query, cfg):
    """Cold-task prediction from a proxy embedding (None with fewer than 3 embedded training tasks)."""
    from fennec.proxy.projector import TaskProjector

    idx = np.flatnonzero(has_emb)
    if len(idx) < 3:
        return None
    proj = TaskProjector(cfg.projector, random_state=cfg.seed).fit(E_train[idx], Z=Z[:, idx], subspace=sub,
                                                                 task_index=idx)
    _, dist = proj.nearest(query)
    return sub.cold_task_prediction() if dist > proj.max_distance_ else proj.predict(query)


def check_splits(splits: dict, model_ids: list[str], task_ids: list[str], name: str) -> None:
    """Stored splits must be for this history (same models and tasks, in matrix order)."""
    for key, ids in (("models", model_ids), ("tasks", task_ids)):
        if list(splits.get(key, [])) != list(ids):
            raise SchemaError(f"splits of {name}: the {key} list does not match the history's {key} "
                              f"({len(splits.get(key, []))} vs {len(ids)}); the splits belong to another history")


def evaluate_history(
    history: History,
    *,
    side: pd.DataFrame | None = None,
    config: EvalConfig | None = None,
    splits: dict | None = None,
    arch=None,
    n_draws: int | None = None,
    task_embeddings=None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run the protocols of ``config`` on ``history``; one row per (protocol, task, method, k, draw).

    Parameters
    ----------
    side : DataFrame, optional
        The models side table (``fennec.data.shipped.model_side_table``) in ``history.model_ids`` order, used by
        the ImageNet top-1 / params baselines and by the cold-model protocols.
    config : EvalConfig, optional
    splits : dict, optional
        The folds and random draws (:func:`fennec.evaluation.splits.make_splits`); by default drawn from
        ``config.seed``. A benchmark release passes its stored splits.
    arch : optional
        Stored archi2vec vectors for the cold-model featurizer (a release's); default: the catalogue.
    n_draws : int, optional
        Use only the first ``n_draws`` warm-start and cell draws of ``splits``.
    task_embeddings : TaskEmbeddings, optional
        Proxy embeddings of the tasks (``fennec.proxy.load_shipped_text_embeddings()``), for ``proxy``.
    """
    cfg = config or EvalConfig()
    cfg.validate()
    Y, model_ids, task_ids = history.to_matrix()
    if splits is None:
        splits = make_splits(history, seed=cfg.seed, warm_k=cfg.warm_k, n_draws=cfg.n_draws,
                             cell_fraction=cfg.cell_fraction, cell_draws=cfg.cell_draws)
    else:
        check_splits(splits, model_ids, task_ids, history.name)
    n, m = Y.shape
    if side is not None and len(side) != n:
        raise SchemaError(f"side table has {len(side)} rows for {n} models")
    mpos = {mid: i for i, mid in enumerate(model_ids)}
    tpos = {t: j for j, t in enumerate(task_ids)}
    side_vecs = side_baselines(side, n)
    rows = _Rows(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    disable = None if progress is None else not progress

    def fit(Z):
        return TransferSubspace(**cfg.subspace, random_state=cfg.seed).fit(Z)

    if "proxy" in cfg.protocols:
        if task_embeddings is None:
            raise SchemaError("the 'proxy' protocol needs task embeddings (e.g. the shipped text proxy)")
        E_all, missing = task_embeddings.lookup(task_ids)
        has_emb = np.array([t not in missing for t in task_ids])
    if any(p in cfg.protocols for p in ("loto", "warm", "proxy")):
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
            if "proxy" in cfg.protocols and has_emb[j]:
                pred = _proxy_prediction(sub, Z, np.delete(E_all, j, axis=0), np.delete(has_emb, j),
                                         E_all[j], cfg)
                if pred is not None:
                    rows.add("proxy", task, "fennec", pred, truth)
                    _baselines(rows, "proxy", task, truth, prior, side_vecs, rng, cfg)
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
            for name, z in _cold_predict(Y, held, side, cfg, fit, arch).items():
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
                preds = _cold_predict(Y, held, side, cfg, fit, arch)
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


def summarize(results: pd.DataFrame, *, metrics: Iterable[str] = METRIC_COLUMNS) -> pd.DataFrame:
    """Mean over draws within each task, then mean over tasks: one row per (protocol, k, method)."""
    metrics = [c for c in metrics if c in results.columns]
    res = results.copy()
    res["k"] = res["k"].fillna(0).astype(int)
    per_task = res.groupby(["protocol", "k", "method", "task_id"], sort=False)[metrics + ["n_models"]].mean()
    summary = per_task.groupby(level=["protocol", "k", "method"], sort=False).agg(["mean"])
    summary.columns = [c[0] for c in summary.columns]
    summary["n_tasks"] = per_task.groupby(level=["protocol", "k", "method"], sort=False).size()
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    order.update({p: len(PROTOCOLS) + i for i, p in enumerate(sorted(set(results["protocol"]) - set(PROTOCOLS)))})
    methods = {m: i for i, m in enumerate(("fennec", "fennec_subspace", "fennec_noarch", "history_prior", "imagenet_top1", "params", "random"))}
    summary = summary.reset_index()
    summary["_o"] = summary["protocol"].map(order).fillna(99) * 1000 + summary["k"] * 10 + summary["method"].map(methods).fillna(9)
    return summary.sort_values("_o").drop(columns="_o").reset_index(drop=True)


def per_task_table(results: pd.DataFrame, *, metric: str = "kendall_tau", protocol: str = "loto", k: int = 0) -> pd.DataFrame:
    """Tasks as rows, methods as columns, for one protocol and metric (draws averaged)."""
    res = results[results["protocol"] == protocol].copy()
    res["k"] = res["k"].fillna(0).astype(int)
    res = res[res["k"] == k]
    table = res.pivot_table(index="task_id", columns="method", values=metric, aggfunc="mean")
    cols = [c for c in ("fennec", "fennec_subspace", "fennec_noarch", "history_prior", "imagenet_top1", "params", "random") if c in table.columns]
    table = table[cols + [c for c in table.columns if c not in cols]]
    table.loc["mean"] = table.mean(numeric_only=True)
    return table
