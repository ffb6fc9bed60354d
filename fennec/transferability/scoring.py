"""Rank candidate models on a labelled probe set by a transferability metric alone.

This is Fennec's cold-start fallback: when no history covers a model, extract its features on the
task's images (:mod:`fennec.backbone.features`) and score them (:mod:`fennec.transferability`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fennec.data.inputs import IMAGE_EXTENSIONS
from fennec.errors import FennecError, SchemaError
from fennec.transferability import SOURCE_METRICS, get_metric

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "SCORE_COLUMNS", "load_image_folder", "score_models", "score_one"]

SCORE_COLUMNS = ["model_id", "metric", "score", "rank", "n_images", "feature_dim"]


def score_models(
    models: Sequence[str | torch.nn.Module] | str,
    images: Any,
    labels: npt.ArrayLike,
    *,
    metric: str = "logme",
    batch_size: int = 64,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    ray: bool = False,
    address: str | None = None,
) -> pd.DataFrame:
    """Score every model on (images, labels) with one metric and rank them.

    Parameters
    ----------
    models : sequence of model specs (or one spec)
        timm names, ``name@weights`` specs, ``efficientnet-lite{0,1,2}`` or built timm modules
        (see :mod:`fennec.backbone.features`).
    images : uint8 array (N, H, W[, 3]) or list of PIL images / uint8 arrays
    labels : array-like of shape (N,)
    metric : str, default="logme"
        A name in :data:`fennec.transferability.METRICS`, or ``"leep"``/``"nce"`` (these use the
        models' own ImageNet classifier heads).
    batch_size : int, default=64
    progress : bool, default=True
    cache_dir : path, optional
        Feature cache (see :func:`fennec.backbone.features.extract_features`).
    ray : bool, default=False
        Score the models as Ray tasks, one per model (:func:`fennec.campaign.executor.map_jobs`; a local
        cluster unless ``address`` or ``$RAY_ADDRESS`` names one).
    address : str, optional
        The Ray cluster to join (``"auto"``: the one started here with ``ray start --head``).

    Returns
    -------
    pandas.DataFrame
        Columns ``model_id, metric, score, rank, n_images, feature_dim``, sorted by score
        (descending, NaN last); rank 1 is the best ("min" rank for ties).
    """
    key = str(metric).strip().lower().replace("-", "_")
    if key not in SOURCE_METRICS:
        get_metric(key)  # an unknown metric fails before any model is loaded
    specs = [models] if isinstance(models, str) else list(models)
    if not specs:
        raise SchemaError("models is empty; give at least one model")
    y = np.asarray(labels)
    n_images = len(images)
    if y.ndim != 1 or y.shape[0] != n_images:
        raise SchemaError(f"images has {n_images} entries but labels has shape {y.shape}")
    probe = {"images": images, "labels": y, "metric": key, "batch_size": batch_size,
             "progress": progress and not ray, "cache_dir": cache_dir}
    if ray:
        rows = _score_on_ray(specs, probe, address)
    else:
        rows = [_logged(i, len(specs), spec, probe) for i, spec in enumerate(specs, 1)]
    return _ranked(rows)


def _score_on_ray(specs: list[Any], probe: dict[str, Any], address: str | None) -> list[dict[str, Any]]:
    """:func:`score_one` of every model as Ray tasks; the rows in the order of ``specs``."""
    from fennec.campaign.executor import map_jobs

    outcomes = sorted(map_jobs(score_one, specs, shared=probe, ray=True, address=address),
                      key=lambda o: o.index)
    bad = [o for o in outcomes if not o.ok]
    if bad:
        raise FennecError(f"model {_shown(specs[bad[0].index])}: {bad[0].error}")
    return [o.value for o in outcomes]


def _ranked(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as the table of :func:`score_models` (each model once), ranked by score."""
    seen: set[str] = set()
    for row in rows:
        if row["model_id"] in seen:
            raise SchemaError(f"model {row['model_id']!r} is listed twice")
        seen.add(row["model_id"])
    table = pd.DataFrame(rows)
    table["rank"] = table["score"].rank(ascending=False, method="min", na_option="bottom").astype(int)
    table = table.sort_values(["rank", "model_id"], kind="stable").reset_index(drop=True)
    return table[SCORE_COLUMNS]


def _logged(i: int, n: int, spec: Any, probe: dict[str, Any]) -> dict[str, Any]:
    """:func:`score_one` with one log line as each model starts and ends: the progress that shows where no
    bar does (a log file)."""
    logger.info("[%d/%d] %s: features of %d images", i, n, _shown(spec), len(probe["images"]))
    start = time.perf_counter()
    row = score_one(spec, probe)
    logger.info("[%d/%d] %s: %s = %.6g (%d images, %d-d features%s; %.1f s)", i, n, row["model_id"], row["metric"],
                row["score"], row["n_images"], row["feature_dim"], ", from the cache" if row["from_cache"] else "",
                time.perf_counter() - start)
    return row


def score_one(model: str | torch.nn.Module, probe: dict[str, Any]) -> dict[str, Any]:
    """One model's row of :func:`score_models` (``probe``: images, labels, metric, batch_size, progress,
    cache_dir)."""
    from fennec.backbone.features import extract_features

    key, y = probe["metric"], probe["labels"]
    needs_probs = key in SOURCE_METRICS
    fn = SOURCE_METRICS[key] if needs_probs else get_metric(key)
    res = extract_features(model, probe["images"], batch_size=probe["batch_size"], progress=probe["progress"],
                           with_probs=needs_probs, cache_dir=probe["cache_dir"])
    if key == "nce":
        value = fn(source_labels=res.probs.argmax(axis=1), target_labels=y)
    elif key == "leep":
        value = fn(source_probs=res.probs.astype(np.float64), target_labels=y)
    else:
        value = fn(res.features, y)
    return {"model_id": res.model_id, "metric": key, "score": float(value), "n_images": res.n_images,
            "feature_dim": res.feature_dim, "from_cache": bool(res.from_cache)}


def _shown(model: Any) -> str:
    return model if isinstance(model, str) else type(model).__name__


def load_image_folder(
    root: str | os.PathLike[str], *, n_per_class: int | None = None, random_state: int = 0
) -> tuple[list[npt.NDArray[np.uint8]], npt.NDArray[np.int64], list[str]]:
    """Read an ImageFolder-style directory: one sub-folder per class, named after the class.

    Parameters
    ----------
    root : path
    n_per_class : int, optional
        Keep a class-balanced random subset of at most this many images per class.
    random_state : int, default=0

    Returns
    -------
    images : list of uint8 arrays (H, W, 3)
    labels : ndarray of shape (N,), int64
    class_names : list of str
        Sorted sub-folder names (underscores shown as spaces); ``labels`` index into it.

    Built on :meth:`fennec.data.inputs.TaskInput.from_folder` (the one ImageFolder reader).

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        Missing folder.
    SchemaError
        No image at all, a class folder without images, a single class, or an unreadable file
        (the message names the file).
    """
    from fennec.data.examples import balanced_subsample
    from fennec.data.inputs import TaskInput

    task = TaskInput.from_folder(root, empty_classes="error")
    keep = (np.arange(len(task.labels)) if n_per_class is None
            else balanced_subsample(task.labels, int(n_per_class), random_state=random_state))
    images = [np.asarray(img, dtype=np.uint8) for img in task.load(keep)]
    logger.info("read %d images in %d classes from %s", len(images), len(task.class_names), root)
    return images, task.labels[keep], task.class_names

