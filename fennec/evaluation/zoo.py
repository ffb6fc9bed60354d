"""Leave-one-history-out: hold out one whole history, fit the others as one zoo, rank the held-out history.

This is where users are: their models are partly in the zoo (under another campaign) and partly not, their
task partly known. For each task of the held-out history, :meth:`~fennec.Recommender.query` is asked the way
a user would: ``query(task=t, candidates=<the history's models>)`` -- the models resolve through the
registry (those shared with the fitted histories use their history, the rest are cold); a task the zoo
measured (canonical id, any campaign) uses its columns, any other is placed by its class names (the text
proxy). Rows are ``protocol = "loho:<history>"`` blocks, beside ImageNet top-1, params and random on the
same models and cells.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fennec.errors import SchemaError
from fennec.evaluation.protocols import EvalConfig, Fold, canonical, with_unknown
from fennec.evaluation.records import Rows
from fennec.history.table import History, HistoryWarning
from fennec.history.union import history_label
from fennec.query.recommender import Recommender

logger = logging.getLogger(__name__)


def evaluate_zoo(histories: Sequence[History], *, registry=None, config: EvalConfig | None = None,
                 task_embeddings=None, progress: bool | None = None) -> pd.DataFrame:
    """``loho`` over ``histories`` (at least 2): one block of rows per held-out history."""
    from fennec.zoo.registry import ModelRegistry

    cfg = config or EvalConfig(protocols=("loho",))
    if len(histories) < 2:
        raise SchemaError("leave-one-history-out needs at least 2 histories")
    registry = registry or ModelRegistry.load()
    for h in histories:
        registry = with_unknown(registry, h.model_ids)
    rows = Rows(cfg.seed, cfg.n_random)
    for held in histories:
        others = [h for h in histories if h is not held]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HistoryWarning)
            rec = Recommender(cfg.recommender, registry=registry).fit(others, task_embeddings)
        _rank_history(rec, held, registry, cfg, rows, task_embeddings, progress)
    out = pd.DataFrame(rows.rows)
    if out.empty:
        raise SchemaError("leave-one-history-out: no held-out task had at least 3 models to rank")
    return out


def _rank_history(rec, held: History, registry, cfg, rows, task_embeddings, progress) -> None:
    h = canonical(held, registry)
    Y, model_ids, task_ids = h.to_matrix()
    fold = Fold(h, Y, model_ids, task_ids, registry, cfg, progress=progress)
    recs = {"fennec": rec}
    if cfg.noarch and rec.config.use_archi2vec:
        recs["fennec_noarch"] = rec.with_placer(use_archi2vec=False)
    label = f"loho:{history_label(held)}"
    for j, task in enumerate(fold.tqdm(task_ids, "leave-one-history-out")):
        scores = {}
        for name, r in recs.items():
            ranking = _query(r, task, model_ids, task_embeddings)
            if ranking is None:
                break
            scores[name] = fold.vector(ranking)
        if scores:
            rows.block(label, task, Y[:, j], {**scores, "imagenet_top1": fold.top1, "params": fold.params})


def _query(rec, task: str, model_ids: list[str], task_embeddings):
    """The held-out task as a user would give it: by id when the zoo measured it, else by its class names
    (through the shipped text-proxy embedding of them when there is one)."""
    if rec.columns_.of_task(task):
        return rec.query(task=task, candidates=model_ids, strict=True)
    if rec.projector_ is None:
        logger.info("task %s is not in the zoo and there is no task proxy: skipped", task)
        return None
    vec = task_embeddings.get(task) if task_embeddings is not None else None
    if vec is not None:
        return rec.query(embedding=np.asarray(vec), candidates=model_ids, strict=True, task_id=task)
    try:
        return rec.query(task=task, candidates=model_ids, strict=True)
    except KeyError:
        logger.info("task %s has no known class names: skipped", task)
        return None
