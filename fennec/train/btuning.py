"""B-Tuning (You et al., JMLR 2022, "Ranking and Tuning Pre-trained Models") and its baseline.

:func:`btune` fine-tunes a target model with the top-K ranked models as frozen teachers::

    loss = CE(head(phi(x)), y) + tradeoff * MSE(phi(x) @ m_t.T, sum_k pi_k * f_k(x) @ m_k.T)

- ``phi`` the target's pre-logits features, ``head`` a new C-class classifier;
- ``f_k`` teacher k's pre-logits features, computed once on the training split (cached);
- ``m_k`` (C x D_k) teacher k's LogME posterior mean on the training split; ``m_t`` (C x D_t) the
  target's own, computed once on its **pre-trained** features and then fixed;
- ``pi = softmax(LogME / temperature)`` over the teachers (LogME on the training split).

Every model is mapped into the task's C-dim label space, so heterogeneous teachers combine.
:func:`finetune` is the same loop without teachers (plain fine-tuning, the baseline with the same
budget); ``btune`` with ``tradeoff=0`` follows it step for step.

A run directory (``run_dir=``) holds ::

    config.json                     configuration, target, teachers (LogME, weights), data
    teachers.safetensors            pi, LogME scores, m_t, every m_k (B-Tuning only)
    history.json                    one record per epoch (loss parts, accuracies, seconds)
    checkpoints/last.safetensors    model + optimizer + RNG state after the last epoch (resume)
    checkpoints/best.safetensors    the best epoch's weights
    model.safetensors               the returned model (best validation epoch)
    summary.json                    written last: a run without it was interrupted (resume it)
    feature_cache/                  teachers' features (``fennec.backbone.features`` cache)

Every file is written atomically (temporary file + rename).
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fennec.artifacts import write_json
from fennec.errors import FennecError, SchemaError, UnknownIdError
from fennec.train.config import BTuningConfig
from fennec.train.data import TaskData, as_task_data, data_config, preprocess, stratified_split
from fennec.train.loop import LAST, deterministic_cpu, run_loop
from fennec.train.rundir import (
    RUN_FORMAT,
    RUN_FORMAT_VERSION,
    load_run,
    load_tuned_model,
    now_utc,
    prepare_run_dir,
    save_model,
    write_teachers,
)
from fennec.train.teachers import (
    Teacher,
    coerce_teachers,
    fit_teachers,
    normalize_model_spec,
    target_posterior_mean,
    teacher_features,
)

if TYPE_CHECKING:
    import pandas as pd
    import torch

logger = logging.getLogger(__name__)

__all__ = ["BTuningResult", "btune", "finetune", "load_run", "load_tuned_model"]  # the last two from .rundir



@dataclass
class BTuningResult:
    """The outcome of :func:`btune` or :func:`finetune`.

    Attributes
    ----------
    model : torch.nn.Module
        The tuned target (weights of the best validation epoch), in eval mode.
    method : {"btuning", "finetune"}
    target_id : str
    val_accuracy : float
        Validation accuracy of ``model`` (the best epoch), in [0, 1].
    final_val_accuracy : float
        Validation accuracy after the last epoch run.
    best_epoch, epochs_run : int
    stopped_early : bool
    history : list of dict
        One record per epoch (see ``history.json``).
    teachers : list of dict
        ``model_id, logme, weight, feature_dim, rank, ranking_score`` (empty for fine-tuning).
    class_names : list of str
    task_id : str
    n_train, n_val : int
    config : BTuningConfig
    wall_time_s : float
    run_dir : Path or None
    summary : dict
        The content of ``summary.json``.
    """

    model: Any
    method: str
    target_id: str
    val_accuracy: float
    final_val_accuracy: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, Any]]
    teachers: list[dict[str, Any]]
    class_names: list[str]
    task_id: str
    n_train: int
    n_val: int
    config: BTuningConfig
    wall_time_s: float
    run_dir: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def btune(
    target: str | torch.nn.Module,
    teachers: pd.DataFrame | str | os.PathLike[str] | Sequence[str | Teacher | torch.nn.Module],
    train_data: Any,
    *,
    config: BTuningConfig | None = None,
    val_data: Any = None,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    task_id: str | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    inputs: dict[str, Any] | None = None,
) -> BTuningResult:
    """Fine-tune ``target`` on ``train_data`` with frozen teachers (B-Tuning).

    Parameters
    ----------
    target : str or torch.nn.Module
        A model spec of :func:`fennec.backbone.features.resolve_model` (timm name -- random weights --,
        ``name@weights.pth``, ``efficientnet-lite{0,1,2}`` / ``efficientnet_lite{0,1,2}``) or a timm
        module (copied, never modified). Its classifier is replaced by a new C-class head.
    teachers : ranking or list
        A ranking (DataFrame or CSV path with a ``model_id`` column; its top ``config.top_k`` rows
        are used) or a list of model specs / :class:`~fennec.train.teachers.Teacher` (all used).
    train_data : path, (images, labels[, class_names]) or an object with ``images``, ``labels``
        An ImageFolder directory, arrays, or e.g. :func:`fennec.data.examples.load_example_task`.
    config : BTuningConfig, optional
    val_data : same forms as ``train_data``, optional
        Explicit validation data (labels must be in the training label space); by default a
        stratified ``config.val_fraction`` of ``train_data`` is held out.
    run_dir : path, optional
        Write checkpoints, history and summary here (see the module docstring).
    resume : bool, default=False
        Continue an interrupted run in ``run_dir`` (same data, target, teachers and config;
        ``epochs`` may grow).
    overwrite : bool, default=False
        Replace an existing run directory.
    cache_dir : path, optional
        Teachers' feature cache; default ``run_dir/feature_cache`` (no cache without a run dir).
    task_id : str, optional
        Name of the task in the summary (default: the example task or folder name).
    progress : bool, default=True
    on_epoch_end : callable, optional
        Called with every epoch's record after its checkpoint is written.
    inputs : dict, optional
        JSON-ready description of how the run was called, recorded in ``config.json`` (the CLI
        stores its arguments there, so that ``--resume`` needs no repetition).

    Returns
    -------
    BTuningResult

    Raises
    ------
    SchemaError
        Bad data, a ranking with fewer than ``top_k`` rows, teachers for another label space.
    UnknownIdError
        An unknown target or teacher model (the message names which).
    FileNotFoundError
        A missing data directory or ranking file.
    """
    config = config or BTuningConfig()
    return _run("btuning", target, teachers, train_data, config=config, val_data=val_data, run_dir=run_dir,
                resume=resume, overwrite=overwrite, cache_dir=cache_dir, task_id=task_id, progress=progress,
                on_epoch_end=on_epoch_end, inputs=inputs)


def finetune(
    target: str | torch.nn.Module,
    train_data: Any,
    *,
    config: BTuningConfig | None = None,
    val_data: Any = None,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    task_id: str | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    inputs: dict[str, Any] | None = None,
) -> BTuningResult:
    """Plain fine-tuning: the loop of :func:`btune` with cross-entropy only (no teachers).

    ``config.top_k``, ``temperature`` and ``tradeoff`` are ignored; every other parameter means the
    same as in :func:`btune`, so both methods get the same budget.
    """
    config = config or BTuningConfig()
    return _run("finetune", target, None, train_data, config=config, val_data=val_data, run_dir=run_dir,
                resume=resume, overwrite=overwrite, cache_dir=None, task_id=task_id, progress=progress,
                on_epoch_end=on_epoch_end, inputs=inputs)


# ---------------------------------------------------------------------------------------------------------
def _resolve_target(target: Any) -> tuple[torch.nn.Module, str, str]:
    import torch

    from fennec.backbone.features import resolve_model

    if isinstance(target, torch.nn.Module):
        net, model_id, identity = resolve_model(copy.deepcopy(target))
    elif isinstance(target, str):
        spec = normalize_model_spec(target)
        if spec and Path(spec).suffix in (".pth", ".pt", ".bin", ".safetensors") and "@" not in spec:
            raise SchemaError(f"target {spec!r} looks like a weights file; give it as ARCH@FILE "
                              "(e.g. resnet50@/path/weights.pth)")
        try:
            net, model_id, identity = resolve_model(spec)
        except UnknownIdError as exc:
            raise UnknownIdError(f"target: {exc}") from exc
    else:
        raise SchemaError(f"target must be a model spec or an nn.Module; got {type(target).__name__}")
    needed = ("forward_features", "forward_head", "reset_classifier", "get_classifier")
    missing = [m for m in needed if not hasattr(net, m)]
    if missing:
        raise FennecError(f"target {model_id!r} lacks {', '.join(missing)}; pass a timm model")
    return net, model_id, identity


@dataclass(frozen=True)
class _Prepared:
    data: TaskData
    train: TaskData
    val: TaskData
    train_idx: np.ndarray
    explicit_val: bool
    specs: list[Teacher]
    task_id: str


def _run(
    method: str, target: Any, teachers: Any, train_data: Any, *, config: BTuningConfig, val_data: Any,
    run_dir: str | os.PathLike[str] | None, resume: bool, overwrite: bool,
    cache_dir: str | os.PathLike[str] | None, task_id: str | None, progress: bool,
    on_epoch_end: Callable[[dict[str, Any]], None] | None, inputs: dict[str, Any] | None = None,
) -> BTuningResult:

    if not isinstance(config, BTuningConfig):
        raise SchemaError(f"config must be a BTuningConfig; got {type(config).__name__}")
    t_start = time.perf_counter()
    data = as_task_data(train_data, what="train_data")
    if val_data is not None:
        val = as_task_data(val_data, what="val_data", class_names=data.class_names)
        train, train_idx = data, np.arange(len(data))
        missing = sorted(set(range(data.n_classes)) - set(data.labels.tolist()))
        if missing:
            raise SchemaError(f"train_data has no image of class(es) {[data.class_names[c] for c in missing]}")
    else:
        train_idx, val_idx = stratified_split(data.labels, config.val_fraction, seed=config.seed)
        train, val = data.take(train_idx), data.take(val_idx)
    task = task_id or data.task_id
    specs = coerce_teachers(teachers, config.top_k) if method == "btuning" else []
    out = Path(run_dir) if run_dir is not None else None
    fresh_dir = out is not None and not resume and not (out.is_dir() and any(out.iterdir()))
    if out is not None:
        prepare_run_dir(out, resume=resume, overwrite=overwrite)
    elif resume:
        raise SchemaError("resume=True needs run_dir")
    if cache_dir is None and out is not None:
        cache_dir = out / "feature_cache"

    try:
        with deterministic_cpu(config.num_threads):
            prep = _Prepared(data, train, val, train_idx, val_data is not None, specs, task)
            return _train(method, target, prep, config=config, out=out, resume=resume, cache_dir=cache_dir,
                          progress=progress, on_epoch_end=on_epoch_end, inputs=inputs, t_start=t_start)
    except BaseException:
        # a run that failed before its first epoch leaves nothing behind (a later one can reuse the name)
        if fresh_dir and out is not None and not (out / LAST).exists():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _train(
    method: str, target: Any, prep: _Prepared, *, config: BTuningConfig, out: Path | None, resume: bool,
    cache_dir: str | os.PathLike[str] | None, progress: bool,
    on_epoch_end: Callable[[dict[str, Any]], None] | None, inputs: dict[str, Any] | None, t_start: float,
) -> BTuningResult:
    import torch

    data, train, val, task = prep.data, prep.train, prep.val, prep.task_id
    net, target_id, identity = _resolve_target(target)
    cfg = data_config(net, config.image_size)
    train_x, val_x = preprocess(train.images, cfg), preprocess(val.images, cfg)
    train_y = torch.as_tensor(train.labels, dtype=torch.long)
    val_y = torch.as_tensor(val.labels, dtype=torch.long)
    fitted = targets = target_mean = target_logme = None
    if method == "btuning":
        fitted, targets, target_mean, target_logme = _teacher_targets(net, prep, train_x, config=config,
                                                                      cache_dir=cache_dir, progress=progress)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net.reset_classifier(data.n_classes)
    teacher_records = fitted.records() if fitted is not None else []
    static = {
        "method": method, "target_id": target_id, "target_identity": identity,
        "teachers": [r["model_id"] for r in teacher_records],
        "data_sha256": data.sha256(), "val_sha256": val.sha256() if prep.explicit_val else None,
        "class_names": data.class_names, "n_train": len(train), "n_val": len(val),
    }
    if out is not None and not resume:
        write_json(out / "config.json", {
            "format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, **static, "task_id": task,
            "config": config.to_dict(), "data_config": cfg, "teachers": teacher_records,
            "target_logme": target_logme, "inputs": inputs or {}, "created_utc": now_utc(),
        })
        if fitted is not None:
            write_teachers(out / "teachers.safetensors", fitted, target_mean.numpy())
    state, best_state = run_loop(
        net, train_inputs=train_x, train_labels=train_y, val_inputs=val_x, val_labels=val_y, config=config,
        tradeoff=config.tradeoff if method == "btuning" else 0.0, teacher_targets=targets,
        target_mean=target_mean, run_dir=out, resume=resume, static_meta=static, progress=progress,
        on_epoch_end=on_epoch_end)
    net.load_state_dict(best_state)
    net.eval()

    wall = time.perf_counter() - t_start
    final_acc = state.history[-1]["val_accuracy"] if state.history else float("nan")
    summary = _summary(method, target_id, prep, state, final_acc, teacher_records, target_logme, config, cfg, wall)
    if out is not None:
        from fennec.artifacts import library_versions

        summary["environment"] = library_versions()
        save_model(out / "model.safetensors", net, target_id=target_id, class_names=data.class_names, cfg=cfg)
        write_json(out / "summary.json", summary)
        logger.info("wrote %s", out)
    return BTuningResult(
        model=net, method=method, target_id=target_id, val_accuracy=state.best_val_accuracy,
        final_val_accuracy=final_acc, best_epoch=state.best_epoch, epochs_run=state.epoch,
        stopped_early=state.stopped_early, history=state.history, teachers=teacher_records,
        class_names=data.class_names, task_id=task, n_train=len(train), n_val=len(val), config=config,
        wall_time_s=wall, run_dir=out, summary=summary)


def _teacher_targets(net, prep: _Prepared, train_x, *, config: BTuningConfig, cache_dir, progress: bool):
    """B-Tuning's distillation targets: the teachers fitted on the training images (LogME weights), their
    targets and the target model's posterior mean. Returns (fitted, targets, target_mean, target LogME)."""
    import torch

    data, train = prep.data, prep.train
    feats = teacher_features(prep.specs, data.images, prep.train_idx, image_size=config.image_size,
                             cache_dir=cache_dir, progress=progress)
    fitted = fit_teachers(feats, train.labels, data.class_names, temperature=config.temperature, teachers=prep.specs)
    m_t, target_logme = target_posterior_mean(net, train_x, train.labels)
    logger.info("teachers %s: LogME %s -> weights %s (T=%g)", fitted.model_ids, np.round(fitted.logme, 4).tolist(),
                np.round(fitted.weights, 4).tolist(), config.temperature)
    return (fitted, torch.as_tensor(fitted.targets, dtype=torch.float32), torch.as_tensor(m_t, dtype=torch.float32),
            target_logme)


def _summary(method: str, target_id: str, prep: _Prepared, state, final_acc: float, teacher_records: list,
             target_logme, config: BTuningConfig, cfg: dict, wall: float) -> dict[str, Any]:
    """The run's ``summary.json`` (without the environment, added where it is written)."""
    data, train, val = prep.data, prep.train, prep.val
    return {
        "format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, "status": "completed",
        "method": method, "target_id": target_id, "task_id": prep.task_id,
        "val_accuracy": state.best_val_accuracy, "final_val_accuracy": final_acc,
        "metric": "top1", "score": 100.0 * state.best_val_accuracy,
        "best_epoch": state.best_epoch, "epochs_run": state.epoch, "stopped_early": state.stopped_early,
        "n_train": len(train), "n_val": len(val), "n_classes": data.n_classes, "class_names": data.class_names,
        "teachers": teacher_records, "target_logme": target_logme, "config": config.to_dict(),
        "data_config": cfg, "wall_time_s": wall, "completed_utc": now_utc(),
    }
