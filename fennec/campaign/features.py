"""Models of a campaign and their features, extracted once per (model, task, image size) and shared.

The features of a task's whole image pool (:mod:`fennec.campaign.data`) are written to
``out/features/<model>--<task>--<size>-<hash>.npz`` (``allow_pickle=False``; written atomically under the
file's lock, so two workers needing the same features compute them once: the second waits and reads),
read back by :func:`fennec.backbone.features.read_cached_features`, the reader of the backbone's cache.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fennec.campaign.spec import Budget, ModelSpec, TaskSpec, safe_name, stable_hash
from fennec.outputs import atomic_path, path_lock

if TYPE_CHECKING:
    import torch

    from fennec.campaign.data import CampaignTask

logger = logging.getLogger(__name__)

__all__ = ["FEATURES_FORMAT", "PoolFeatures", "build_model", "features_path", "pool_features"]

FEATURES_FORMAT = "fennec-campaign-features-1"


def build_model(model: ModelSpec) -> torch.nn.Module:
    """The model of a spec entry: random weights from a fixed seed (``pretrained = false``) or loaded by
    :func:`fennec.backbone.loading.resolve_model` (packaged, timm tag through the hub cache, NAME@FILE)."""
    from fennec.backbone.loading import create_random, resolve_model

    if not model.pretrained:
        return create_random(model.load, **dict(model.args))
    return resolve_model(model.load)[0]


@dataclass(frozen=True)
class PoolFeatures:
    """Pre-logits features of a task's pool (and the source classifier's softmax, if asked for)."""

    features: npt.NDArray[np.float32]
    probs: npt.NDArray[np.float32] | None
    from_cache: bool


def features_path(
    out: Path, model: ModelSpec, task: TaskSpec, budget: Budget, *, with_probs: bool
) -> Path:
    key = stable_hash(
        {
            "format": FEATURES_FORMAT,
            "model": model.key(),
            "task": task.key(),
            "images": budget.images,
            "data_seed": budget.data_seed,
            "image_size": budget.image_size,
            "probs": with_probs,
        }
    )
    size = budget.image_size or "native"
    return out / "features" / f"{safe_name(model.model_id)}--{task.task_id}--{size}-{key}.npz"


def pool_features(
    out: Path,
    model: ModelSpec,
    task_spec: TaskSpec,
    task: CampaignTask,
    budget: Budget,
    *,
    with_probs: bool = False,
) -> PoolFeatures:
    """The features of ``task``'s pool under ``model``: from the cache, or extracted and cached."""
    path = features_path(out, model, task_spec, budget, with_probs=with_probs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path_lock(path, timeout=3600.0, what="campaign features"):
        from fennec.backbone.features import extract_features, read_cached_features

        cached = read_cached_features(path, n_images=len(task.labels), with_probs=with_probs)
        if cached is not None:
            return PoolFeatures(cached[0], cached[1], True)
        cfg = {"input_size": budget.image_size} if budget.image_size else None
        res = extract_features(
            build_model(model), task.images, progress=False, with_probs=with_probs, data_config=cfg
        )
        arrays = {
            "features": res.features,
            "labels": task.labels,
            "meta": np.array(
                json.dumps(
                    {
                        "model": model.to_dict(),
                        "task": task_spec.to_dict(),
                        "data_config": res.data_config,
                    },
                    sort_keys=True,
                )
            ),
        }
        if with_probs:
            arrays["probs"] = res.probs
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        logger.info(
            "features of %s on %s: %s, cached in %s",
            model.model_id,
            task_spec.task_id,
            res.features.shape,
            path.name,
        )
        return PoolFeatures(res.features, res.probs, False)

