"""Teachers of B-Tuning: from a ranking or a list of specs, frozen, mapped to the task's label space.

Every teacher k is a frozen feature extractor f_k (pre-logits features, its own preprocessing). Its
features on the training split are computed **once** (and cached on disk by
:func:`fennec.backbone.features.extract_features`), then LogME on (features, training labels) gives

- the teacher's score ``LogME_k`` and weight ``pi = softmax(LogME / T)``;
- its posterior mean ``m_k`` (C x D_k), mapping its features to the C-dim label space.

The distillation target of a training image x is then ``sum_k pi_k * f_k(x) @ m_k.T`` (C values), a
fixed array: teachers are never run during training.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fennec.errors import FennecError, SchemaError, UnknownIdError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = [
    "FittedTeachers",
    "Teacher",
    "fit_teachers",
    "normalize_model_spec",
    "teacher_weights",
    "teachers_from_ranking",
]


@dataclass(frozen=True)
class Teacher:
    """One teacher.

    Parameters
    ----------
    model : str or torch.nn.Module
        A model spec of :func:`fennec.backbone.features.resolve_model` (timm name, ``name@weights.pth``,
        ``efficientnet-lite{0,1,2}`` or ``efficientnet_lite{0,1,2}``) or a built timm module.
    weights : path, optional
        Local weights file for a model given by name.
    rank, ranking_score : optional
        Where the teacher came from (recorded in the run's summary, not used in the loss).
    features : ndarray of shape (n_images, D), optional
        Pre-computed pre-logits features of **all** training images, in the order of the training
        data (the model is then not run).
    posterior_mean : ndarray of shape (C, D), optional
        Pre-computed LogME posterior mean on the task's labels (needs ``features`` and ``classes``);
        by default it is computed on the training split.
    classes : sequence of str, optional
        The class names of the rows of ``posterior_mean``; they must be the task's classes.
    """

    model: Any
    weights: str | os.PathLike[str] | None = None
    rank: int | None = None
    ranking_score: float | None = None
    features: npt.NDArray[np.floating] | None = field(default=None, repr=False)
    posterior_mean: npt.NDArray[np.floating] | None = field(default=None, repr=False)
    classes: Sequence[str] | None = None

    @property
    def label(self) -> str:
        if isinstance(self.model, str):
            return self.model if self.weights is None else f"{self.model}@{Path(self.weights).name}"
        return type(self.model).__name__


@dataclass(frozen=True)
class FittedTeachers:
    """Teachers mapped to the task's label space.

    Attributes
    ----------
    model_ids : list of str
    logme : ndarray of shape (K,)
        LogME score of every teacher on the training split.
    weights : ndarray of shape (K,)
        ``softmax(logme / temperature)``.
    posterior_means : list of ndarray (C, D_k)
    targets : ndarray of shape (n_train, C), float32
        ``sum_k weights[k] * F_k @ posterior_means[k].T``.
    feature_dims : list of int
    feature_keys : list of str
        sha256 keys of the teachers' features (model identity, preprocessing, images): the names of
        their files in the feature cache.
    """

    model_ids: list[str]
    logme: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]
    posterior_means: list[npt.NDArray[np.float64]]
    targets: npt.NDArray[np.float32]
    feature_dims: list[int]
    feature_keys: list[str]
    ranks: list[int | None] = field(default_factory=list)
    ranking_scores: list[float | None] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per teacher (summary.json, CLI output)."""
        out = []
        for k, mid in enumerate(self.model_ids):
            out.append({
                "model_id": mid, "logme": float(self.logme[k]), "weight": float(self.weights[k]),
                "feature_dim": int(self.feature_dims[k]), "feature_key": self.feature_keys[k],
                "rank": self.ranks[k] if k < len(self.ranks) else None,
                "ranking_score": self.ranking_scores[k] if k < len(self.ranking_scores) else None,
            })
        return out


def teacher_weights(scores: npt.ArrayLike, temperature: float) -> npt.NDArray[np.float64]:
    """``softmax(scores / temperature)``, computed stably.

    Parameters
    ----------
    scores : array-like of shape (K,)
        Transferability scores (LogME), higher is better.
    temperature : float
        T > 0; small T concentrates the weight on the best teacher.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
        raise SchemaError(f"teacher scores must be a non-empty 1-D array of finite numbers; got {s!r}")
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise SchemaError(f"temperature must be > 0; got {temperature!r}")
    z = s / float(temperature)
    z -= z.max()
    e = np.exp(z)
    return e / e.sum()


def normalize_model_spec(spec: str) -> str:
    """Accept ``efficientnet_lite1`` (and any case) for the packaged ``efficientnet-lite1``."""
    from fennec.backbone.features import PACKAGED_MODELS

    s = spec.strip()
    alias = s.lower().replace("_", "-")
    return alias if alias in PACKAGED_MODELS else s


def teachers_from_ranking(ranking: pd.DataFrame | str | os.PathLike[str], top_k: int) -> list[Teacher]:
    """The top-``top_k`` models of a ranking as teachers.

    Parameters
    ----------
    ranking : DataFrame or path to a CSV
        Needs a ``model_id`` column. Rows are ordered by ``rank`` when present, else by ``score``
        (descending), else kept in file order. A ``task_id`` column, if present, must hold one task.
        Recommender rankings (``fennec query``) and score tables (``fennec score``) both qualify.
    top_k : int

    Raises
    ------
    SchemaError
        Missing ``model_id`` column, several tasks, repeated models, or fewer rows than ``top_k``.
    """
    name = "<ranking>"
    if not isinstance(ranking, pd.DataFrame):
        path = Path(ranking)
        if not path.is_file():
            if path.is_dir():
                raise SchemaError(f"{path}: is a directory; expected a ranking CSV file")
            raise FileNotFoundError(2, "ranking file not found", str(path))
        name = str(path)
        try:
            ranking = pd.read_csv(path, dtype={"model_id": str, "task_id": str}, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise SchemaError(f"{path}: cannot be read as CSV ({' '.join(str(exc).split())})") from exc
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise SchemaError(f"top_k must be an int >= 1; got {top_k!r}")
    if "model_id" not in ranking.columns:
        raise SchemaError(f"{name}: a ranking needs a 'model_id' column; found {list(ranking.columns)}")
    df = ranking.reset_index(drop=True).copy()
    df["model_id"] = df["model_id"].astype(str).str.strip()
    if "task_id" in df.columns:
        tasks = sorted(set(df["task_id"].astype(str)))
        if len(tasks) > 1:
            raise SchemaError(f"{name}: the ranking holds {len(tasks)} tasks ({tasks[:5]}); "
                              "keep the rows of one task")
    if "rank" in df.columns:
        df = df.sort_values("rank", kind="stable")
    elif "score" in df.columns:
        df = df.sort_values("score", ascending=False, kind="stable")
    if df["model_id"].eq("").any():
        raise SchemaError(f"{name}: column 'model_id' is empty on some rows")
    dup = sorted(set(df["model_id"][df["model_id"].duplicated()]))
    if dup:
        raise SchemaError(f"{name}: model(s) {dup} appear more than once in the ranking")
    if len(df) < top_k:
        raise SchemaError(f"{name}: the ranking has {len(df)} row{'s' if len(df) != 1 else ''} but top_k={top_k}; "
                          "lower top_k or rank more models")
    out = []
    for i, row in enumerate(df.head(top_k).itertuples(index=False)):
        rank = int(row.rank) if "rank" in df.columns and pd.notna(row.rank) else i + 1
        score = float(row.score) if "score" in df.columns and pd.notna(pd.to_numeric(row.score, errors="coerce")) \
            else None
        out.append(Teacher(normalize_model_spec(row.model_id), rank=rank, ranking_score=score))
    logger.info("teachers from %s: %s", name, ", ".join(t.label for t in out))
    return out


def coerce_teachers(teachers: Any, top_k: int) -> list[Teacher]:
    """A ranking (DataFrame or CSV path) or a sequence of specs / :class:`Teacher` -> list of Teacher."""
    import torch

    if isinstance(teachers, (pd.DataFrame, Path)) or (isinstance(teachers, str) and teachers.endswith(".csv")):
        return teachers_from_ranking(teachers, top_k)
    if isinstance(teachers, (str, Teacher, torch.nn.Module)):
        teachers = [teachers]
    if not isinstance(teachers, Sequence) or len(teachers) == 0:
        raise SchemaError("teachers must be a ranking (DataFrame or CSV path) or a non-empty list of model specs")
    out = []
    for i, t in enumerate(teachers):
        if isinstance(t, Teacher):
            out.append(t)
        elif isinstance(t, str):
            out.append(Teacher(normalize_model_spec(t), rank=i + 1))
        elif isinstance(t, torch.nn.Module):
            out.append(Teacher(t, rank=i + 1))
        else:
            raise SchemaError(f"teacher {i}: expected a model spec, an nn.Module or a Teacher; got {type(t).__name__}")
    return out


def teacher_features(
    teachers: Sequence[Teacher],
    images: Sequence[np.ndarray],
    train_idx: npt.NDArray[np.intp],
    *,
    image_size: int | None,
    cache_dir: str | os.PathLike[str] | None,
    progress: bool,
    batch_size: int = 64,
) -> list[tuple[str, np.ndarray, str]]:
    """Features of every teacher on the training split: ``[(model_id, F (n_train, D), feature_key)]``.

    Computed once per run (and cached on disk with ``cache_dir``); the teachers stay frozen.
    """
    from fennec.backbone.features import extract_features

    out = []
    train_images = [images[i] for i in train_idx]
    overrides = {"input_size": int(image_size)} if image_size is not None else None
    for k, t in enumerate(teachers):
        where = f"teacher {t.label!r}" + (f" (rank {t.rank})" if t.rank is not None else f" (#{k + 1})")
        if t.features is not None:
            f = np.asarray(t.features)
            if f.ndim != 2 or f.shape[0] != len(images):
                raise SchemaError(f"{where}: pre-computed features have shape {f.shape}; expected "
                                  f"({len(images)}, D), one row per training image")
            out.append((t.label, np.ascontiguousarray(f[train_idx], dtype=np.float64), f"features:{t.label}"))
            continue
        try:
            res = extract_features(t.model, train_images, weights=t.weights, batch_size=batch_size,
                                   progress=progress, cache_dir=cache_dir, data_config=overrides)
        except UnknownIdError as exc:
            raise UnknownIdError(f"{where}: {exc}") from exc
        except FennecError as exc:
            raise type(exc)(f"{where}: {exc}") from exc
        out.append((res.model_id, res.features.astype(np.float64), res.cache_key))
    ids = [o[0] for o in out]
    dup = sorted({i for i, t in zip(ids, teachers, strict=True) if ids.count(i) > 1 and isinstance(t.model, str)})
    if dup:
        raise SchemaError(f"teacher(s) {dup} are listed more than once")
    # built modules of one class share a name: number them
    return [(f"{mid}#{k + 1}" if ids.count(mid) > 1 else mid, f, key) for k, (mid, f, key) in enumerate(out)]


def fit_teachers(
    features: Sequence[tuple[str, np.ndarray, str]],
    labels: npt.NDArray[np.int64],
    class_names: Sequence[str],
    *,
    temperature: float,
    teachers: Sequence[Teacher] | None = None,
) -> FittedTeachers:
    """LogME of every teacher on the training split, its weight and the distillation targets.

    Parameters
    ----------
    features : list of (model_id, F, feature_key)
        ``F`` of shape (n_train, D_k).
    labels : ndarray of shape (n_train,)
        Class codes ``0..C-1``; every class must be present.
    class_names : sequence of str
        The task's label space (length C).
    temperature : float
    teachers : sequence of Teacher, optional
        The specs (pre-computed posterior means and provenance are read from them).

    Raises
    ------
    SchemaError
        A pre-computed posterior mean for another label space or number of classes.
    """
    from fennec.transferability.logme import LogME

    y = np.asarray(labels, dtype=np.int64)
    n_classes = len(class_names)
    missing = sorted(set(range(n_classes)) - set(np.unique(y).tolist()))
    if missing:
        raise SchemaError(f"class(es) {[class_names[c] for c in missing]} have no training image; "
                          "every class needs at least one")
    scores, means, dims = [], [], []
    targets = np.zeros((len(y), n_classes), dtype=np.float64)
    for k, (mid, f, _) in enumerate(features):
        if f.shape[0] != len(y):
            raise SchemaError(f"teacher {mid!r}: {f.shape[0]} feature rows for {len(y)} training images")
        est = LogME().fit(f, y)
        m = est.weights_
        spec = teachers[k] if teachers is not None else None
        if spec is not None and spec.posterior_mean is not None:
            m = _check_posterior(mid, spec, f.shape[1], class_names)
        scores.append(est.score_)
        means.append(m)
        dims.append(int(f.shape[1]))
        logger.info("teacher %s: LogME %.6g on %d images (%d-d features)", mid, est.score_, len(y), f.shape[1])
    pi = teacher_weights(scores, temperature)
    for k, (_, f, _) in enumerate(features):
        targets += pi[k] * (f @ means[k].T)
    return FittedTeachers(
        model_ids=[f[0] for f in features], logme=np.asarray(scores), weights=pi, posterior_means=means,
        targets=targets.astype(np.float32), feature_dims=dims, feature_keys=[f[2] for f in features],
        ranks=[t.rank for t in teachers] if teachers is not None else [],
        ranking_scores=[t.ranking_score for t in teachers] if teachers is not None else [],
    )


def _check_posterior(mid: str, spec: Teacher, dim: int, class_names: Sequence[str]) -> np.ndarray:
    m = np.asarray(spec.posterior_mean, dtype=np.float64)
    task = list(class_names)
    if spec.classes is None:
        raise SchemaError(f"teacher {mid!r}: a pre-computed posterior_mean needs classes= (the class of each row)")
    classes = [str(c) for c in spec.classes]
    if m.ndim != 2 or m.shape[0] != len(classes):
        raise SchemaError(f"teacher {mid!r}: posterior_mean has shape {m.shape} for {len(classes)} classes")
    if len(classes) != len(task):
        raise SchemaError(
            f"teacher {mid!r} maps to {len(classes)} classes but the task has {len(task)}; its posterior mean "
            "must be computed on the task's own labels")
    if classes != task:
        diff = sorted(set(classes) ^ set(task))[:6]
        raise SchemaError(
            f"teacher {mid!r} has a different label space: its classes {classes[:10]} differ from the task's "
            f"{task[:10]}" + (f" (not shared: {diff})" if diff else " (same names, different order)"))
    if m.shape[1] != dim:
        raise SchemaError(f"teacher {mid!r}: posterior_mean has {m.shape[1]} columns but its features have {dim}")
    return m


def target_posterior_mean(
    net: torch.nn.Module, inputs: torch.Tensor, labels: npt.NDArray[np.int64], *, batch_size: int = 64
) -> tuple[np.ndarray, float]:
    """LogME posterior mean ``m_t`` (C x D) and score of the target's **pre-trained** features.

    ``inputs`` are the preprocessed training images; the model runs in eval mode without gradients.
    """
    import torch

    from fennec.transferability.logme import LogME

    was_training = net.training
    net.eval()
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, inputs.shape[0], batch_size):
                x = inputs[start:start + batch_size]
                chunks.append(net.forward_head(net.forward_features(x), pre_logits=True).double().numpy())
    finally:
        net.train(was_training)
    feats = np.concatenate(chunks)
    est = LogME().fit(feats, labels)
    return est.weights_, float(est.score_)
