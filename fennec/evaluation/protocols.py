"""Evaluation protocols: Fennec beside the baselines, per task, measured through the product itself.

Every protocol fits a :class:`~fennec.Recommender` on its training fold (one :class:`RecommenderConfig`,
held in :class:`EvalConfig`) and asks :meth:`~fennec.Recommender.query` -- the code a user runs. Correlations
are computed per target task across models, then summarised over tasks; every method of a block is scored on
exactly the same models and cells (:mod:`fennec.evaluation.records`).

Protocols
---------
``loto``   leave-one-task-out (a cold task): fit without the task, ``query()`` (no task information).
``proxy``  as ``loto``, the held-out task placed by its proxy embedding: ``query(embedding=...)``.
``warm``   as ``loto``, then ``k`` measured models revealed: ``query(observed=...)``; the others are ranked.
``lomo``   leave-one-model-out (a cold model): fit without the model's row, ``query(task=t, candidates=[it])``;
           per task the cold scores of all models are ranked. ``fennec_noarch`` places without archi2vec.
``xgroup`` cross-group cold models: ``xgroup:G`` fits without the models of group G (a history's campaign)
           and ranks them; ``xgroup_rev:G`` fits on G alone and ranks the rest.
``cells``  random held-out cells: fit without them, ``query(task=t)``; the held-out models are ranked.
``loho``   leave-one-history-out, on several histories (:func:`fennec.evaluation.zoo.evaluate_zoo`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fennec.errors import SchemaError
from fennec.evaluation.baselines import history_prior
from fennec.evaluation.rankmetrics import METRIC_COLUMNS
from fennec.evaluation.records import Rows
from fennec.evaluation.splits import make_splits
from fennec.history.table import History, HistoryWarning
from fennec.history.union import combine
from fennec.query.recommender import Recommender, RecommenderConfig

logger = logging.getLogger(__name__)

PROTOCOLS = ("loto", "proxy", "warm", "lomo", "xgroup", "cells", "loho")
METHOD_ORDER = ("fennec", "fennec_noarch", "history_prior", "imagenet_top1", "params", "random")


def _eval_recommender() -> RecommenderConfig:
    return RecommenderConfig(candidate_ranks=(0, 1, 2, 3, 4, 6), n_folds=3, placer_folds=5)


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate; ``recommender`` is the configuration of every Recommender the protocols fit."""

    protocols: tuple[str, ...] = ("loto", "warm", "lomo", "cells")
    warm_k: tuple[int, ...] = (1, 3, 5)
    n_draws: int = 10
    n_random: int = 50
    cell_fraction: float = 0.2
    cell_draws: int = 10
    seed: int = 0
    noarch: bool = True
    recommender: RecommenderConfig = field(default_factory=_eval_recommender)

    def validate(self) -> None:
        unknown = sorted(set(self.protocols) - set(PROTOCOLS))
        if unknown:
            raise SchemaError(f"unknown protocol(s) {unknown}; choose from {', '.join(PROTOCOLS)}")
        if any(k < 1 for k in self.warm_k):
            raise SchemaError(f"warm_k must be positive integers, got {self.warm_k}")
        if not 0 < self.cell_fraction < 1:
            raise SchemaError(f"cell_fraction must be in (0, 1), got {self.cell_fraction}")

    def to_dict(self) -> dict:
        return {"protocols": list(self.protocols), "warm_k": list(self.warm_k), "n_draws": self.n_draws,
                "n_random": self.n_random, "cell_fraction": self.cell_fraction, "cell_draws": self.cell_draws,
                "seed": self.seed, "noarch": self.noarch, "recommender": self.recommender.to_dict()}


@dataclass
class Fold:
    """What every protocol needs: the canonical history, its matrix, the baselines' side information."""

    history: History
    Y: np.ndarray
    model_ids: list[str]
    task_ids: list[str]
    registry: object
    config: EvalConfig
    arch: object = None
    task_embeddings: object = None
    progress: bool | None = None
    context: tuple = ()

    def __post_init__(self) -> None:
        side = self.registry.side_table(self.model_ids)
        self.top1 = side["top1"].to_numpy(float)
        self.params = side["params_m"].to_numpy(float)
        self.pos = {m: i for i, m in enumerate(self.model_ids)}

    def fit(self, frame: pd.DataFrame, *, embeddings: bool = False, drop_task: str | None = None,
            drop_models: Iterable[str] = ()) -> Recommender:
        """A Recommender fitted on ``frame`` (the history's training rows) -- and on the ``context``
        histories, without ``drop_task`` and ``drop_models`` (a union zoo evaluated on one history)."""
        drop_models = set(drop_models)
        parts = [(frame, self.history.name)]
        for ctx in self.context:
            f = ctx.frame
            keep = ~f["model_id"].isin(drop_models) & (f["task_id"] != drop_task)
            parts.append((f[keep], ctx.name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HistoryWarning)
            hs = [History.from_frame(f, name=n, min_models_per_task=2) for f, n in parts]
        return Recommender(self.config.recommender, registry=self.registry).fit(
            hs[0] if len(hs) == 1 else hs, self.task_embeddings if embeddings else None, arch_source=self.arch)

    def vector(self, ranking, *, standardised: bool = False) -> np.ndarray:
        """A ranking's scores in model order (NaN for models it does not rank); ``standardised`` for scores
        compared across folds (each fold has its own task scaler)."""
        out = np.full(len(self.model_ids), np.nan)
        f = ranking.frame
        scores = ranking.standardised() if standardised else f["score"]
        for m, s in zip(f["model_id"], scores, strict=True):
            if m in self.pos:
                out[self.pos[m]] = s
        return out

    def baselines(self, rec: Recommender | None = None) -> dict[str, np.ndarray]:
        out = {}
        if rec is not None:
            prior = np.full(len(self.model_ids), np.nan)
            for m, p in zip(rec.model_ids, history_prior(rec.Z_), strict=True):
                if m in self.pos:  # a union zoo also holds the context histories' models
                    prior[self.pos[m]] = p
            out["history_prior"] = prior
        return {**out, "imagenet_top1": self.top1, "params": self.params}

    def tqdm(self, items, desc: str):
        return tqdm(items, desc=f"{self.history.name}: {desc}", disable=None if self.progress is None else
                    not self.progress)


def with_unknown(registry, model_ids: Iterable[str]):
    """``registry`` plus a bare row (no side information) for every id it cannot resolve, so that a model
    held out of a fit is placed like any model whose side information is unknown."""
    unknown = [m for m in model_ids if not registry.resolve(m).resolved]
    return registry.with_models(pd.DataFrame({"model_id": unknown})) if unknown else registry


def canonical(history: History, registry) -> History:
    """The history with its model ids resolved through the registry (as every fit sees it)."""
    return combine([history], registry)[0]


def check_splits(splits: dict, model_ids: list[str], task_ids: list[str], name: str) -> None:
    """Stored splits must be for this history (same models and tasks, in matrix order)."""
    for key, ids in (("models", model_ids), ("tasks", task_ids)):
        if list(splits.get(key, [])) != list(ids):
            raise SchemaError(f"splits of {name}: the {key} list does not match the history's {key} "
                              f"({len(splits.get(key, []))} vs {len(ids)}); the splits belong to another history")


def evaluate_history(history: History, *, registry=None, side: pd.DataFrame | None = None,
                     config: EvalConfig | None = None, splits: dict | None = None, arch=None,
                     n_draws: int | None = None, task_embeddings=None, progress: bool | None = None,
                     context: Iterable[History] = ()) -> pd.DataFrame:
    """Run the protocols of ``config`` on one history; one row per (protocol block, task, method, k, draw).

    ``registry`` resolves model names (default: the shipped registry); ``side`` adds side information for
    models it does not know (a table with ``model_id`` and any of ``top1, params_m, pretraining, arch, ...``).
    ``splits``: stored folds (a benchmark release's; default drawn from ``config.seed``); ``arch``: stored
    archi2vec vectors (an :class:`~fennec.zoo.placement.ArchSource`); ``task_embeddings``: for ``proxy``.
    ``context``: other histories fitted together with this one in every fold (a union zoo; the held-out
    task or model is removed from them too; ``cells`` and ``xgroup`` ignore them).
    """
    from fennec.evaluation import cold, tasks
    from fennec.zoo.registry import ModelRegistry

    cfg = config or EvalConfig()
    cfg.validate()
    registry = registry or ModelRegistry.load()
    if side is not None:
        registry = registry.with_models(side)
    registry = with_unknown(registry, history.model_ids)
    h = canonical(history, registry)
    Y, model_ids, task_ids = h.to_matrix()
    if splits is None:
        splits = make_splits(h, seed=cfg.seed, warm_k=cfg.warm_k, n_draws=cfg.n_draws,
                             cell_fraction=cfg.cell_fraction, cell_draws=cfg.cell_draws)
    else:
        check_splits(splits, model_ids, task_ids, history.name)
    if "proxy" in cfg.protocols and task_embeddings is None:
        raise SchemaError("the 'proxy' protocol needs task embeddings (e.g. the shipped text proxy)")
    fold = Fold(h, Y, model_ids, task_ids, registry, cfg, arch, task_embeddings, progress,
                tuple(canonical(c, with_unknown(registry, c.model_ids)) for c in context))
    rows = Rows(cfg.seed, cfg.n_random)
    if any(p in cfg.protocols for p in ("loto", "warm", "proxy")):
        tasks.leave_one_task_out(fold, splits, rows, n_draws)
    if "cells" in cfg.protocols:
        tasks.held_out_cells(fold, splits, rows, n_draws)
    if "lomo" in cfg.protocols:
        cold.leave_one_model_out(fold, splits, rows)
    if "xgroup" in cfg.protocols:
        cold.cross_group(fold, splits, rows)
    out = pd.DataFrame(rows.rows)
    if out.empty:
        raise SchemaError(f"{history.name}: no task had at least 3 models to rank under {cfg.protocols}")
    return out


def _protocol_order(protocols: Iterable[str]) -> dict[str, int]:
    base = {p: i for i, p in enumerate(PROTOCOLS)}
    out = {}
    for p in dict.fromkeys(protocols):
        head = p.split(":")[0]
        out[p] = base.get(head, len(PROTOCOLS)) * 10 + (1 if p.endswith(":all") else 0)
    return out


def summarize(results: pd.DataFrame, *, metrics: Iterable[str] = METRIC_COLUMNS) -> pd.DataFrame:
    """Mean over draws within each task, then mean over tasks: one row per (protocol, k, method)."""
    metrics = [c for c in metrics if c in results.columns]
    res = results.copy()
    res["k"] = res["k"].fillna(0).astype(int)
    per_task = res.groupby(["protocol", "k", "method", "task_id"], sort=False)[metrics + ["n_models"]].mean()
    summary = per_task.groupby(level=["protocol", "k", "method"], sort=False).mean()
    summary["n_tasks"] = per_task.groupby(level=["protocol", "k", "method"], sort=False).size()
    summary = summary.reset_index()
    order = _protocol_order(summary["protocol"])
    methods = {m: i for i, m in enumerate(METHOD_ORDER)}
    key = (summary["protocol"].map(order) * 1000 + summary["k"] * 10 + summary["method"].map(methods).fillna(9))
    return summary.assign(_o=key).sort_values(["_o", "protocol"], kind="stable").drop(columns="_o").reset_index(drop=True)


def per_task_table(results: pd.DataFrame, *, metric: str = "kendall_tau", protocol: str = "loto", k: int = 0) -> pd.DataFrame:
    """Tasks as rows, methods as columns, for one protocol block and metric (draws averaged)."""
    res = results[results["protocol"] == protocol].copy()
    res["k"] = res["k"].fillna(0).astype(int)
    res = res[res["k"] == k]
    table = res.pivot_table(index="task_id", columns="method", values=metric, aggfunc="mean")
    cols = [c for c in METHOD_ORDER if c in table.columns]
    table = table[cols + [c for c in table.columns if c not in cols]]
    table.loc["mean"] = table.mean(numeric_only=True)
    return table
