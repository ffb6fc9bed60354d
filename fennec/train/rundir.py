"""Run directories of :func:`fennec.train.btune`: layout, writing helpers and readers.

See :mod:`fennec.train.btuning` for the layout. Every file is written atomically; ``summary.json``
is written last, so a directory without it is an interrupted run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fennec.artifacts import atomic_path
from fennec.errors import ArtifactError, SchemaError
from fennec.train.loop import HISTORY
from fennec.train.teachers import FittedTeachers

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["history_file", "load_run", "load_tuned_model"]

RUN_FORMAT = "fennec-btuning-run"
RUN_FORMAT_VERSION = 1
MODEL_FORMAT = "fennec-tuned-model"


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise SchemaError("resume and overwrite exclude each other")
    if run_dir.exists() and not run_dir.is_dir():
        raise ArtifactError(f"{run_dir}: exists and is not a directory")
    if resume:
        if not run_dir.is_dir():
            raise ArtifactError(f"{run_dir}: no run directory to resume")
        return
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise ArtifactError(f"{run_dir}: already exists and is not empty; resume it (--resume) or "
                                "replace it (--overwrite)")
        if not (run_dir / "config.json").is_file():
            raise ArtifactError(f"{run_dir}: not a B-Tuning run directory (no config.json); refusing to delete it")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_teachers(path: Path, fitted: FittedTeachers, target_mean: np.ndarray) -> None:
    from fennec.artifacts import write_arrays

    arrays = {"weights": fitted.weights, "logme": fitted.logme, "target_posterior_mean": target_mean}
    for k, m in enumerate(fitted.posterior_means):
        arrays[f"posterior_mean.{k}"] = m
    with atomic_path(path) as tmp:
        write_arrays(tmp, arrays, {"model_ids": json.dumps(fitted.model_ids)})


def save_model(path: Path, net: torch.nn.Module, *, target_id: str, class_names: list[str], cfg: dict) -> None:
    from safetensors.torch import save_file

    arch = (getattr(net, "pretrained_cfg", None) or {}).get("architecture")
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in net.state_dict().items()}
    meta = {"format": MODEL_FORMAT, "format_version": "1", "target_id": target_id, "architecture": str(arch),
            "num_classes": str(len(class_names)), "class_names": json.dumps(class_names),
            "data_config": json.dumps(cfg)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``summary.json`` of a completed run directory.

    Raises
    ------
    ArtifactError
        Not a run directory, or an interrupted run (no summary: resume it first).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(2, "run directory not found", str(path))
    summary = path / "summary.json"
    if not summary.is_file():
        hint = " (interrupted run: resume it with --resume)" if (path / "config.json").is_file() else \
            " (not a B-Tuning run directory)"
        raise ArtifactError(f"{path}: no summary.json{hint}")
    try:
        data = json.loads(summary.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{summary}: corrupt JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{summary}: not a B-Tuning run summary (a JSON {type(data).__name__}, "
                            "expected an object)")
    if data.get("format") != RUN_FORMAT:
        raise ArtifactError(f"{summary}: not a B-Tuning run summary (format={data.get('format')!r})")
    return data


def load_tuned_model(run_dir: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The tuned model of a run (timm architecture + ``model.safetensors``) and its metadata."""
    from safetensors import SafetensorError, safe_open

    from fennec.backbone.loading import read_state_dict
    from fennec.backbone.preprocess import import_timm

    path = Path(run_dir) / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(2, "tuned model not found", str(path))
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path}: not a complete safetensors file ({' '.join(str(exc).split())})") from None
    if meta.get("format") != MODEL_FORMAT:
        raise ArtifactError(f"{path}: not a Fennec tuned model (format={meta.get('format')!r})")
    arch = meta.get("architecture")
    if not arch or arch == "None":
        raise ArtifactError(f"{path}: the architecture is not recorded; rebuild the model and load the state dict")
    net = import_timm().create_model(arch, pretrained=False, num_classes=int(meta["num_classes"]))
    state = read_state_dict(path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{path}: does not fit {arch} with {meta['num_classes']} classes "
                            f"({' '.join(str(exc).split())[:200]})") from None
    info = {"target_id": meta.get("target_id"), "architecture": arch,
            "class_names": json.loads(meta.get("class_names", "[]")),
            "data_config": json.loads(meta.get("data_config", "{}"))}
    return net.eval(), info


def history_file(run_dir: str | os.PathLike[str]) -> Path:
    """Path of a run's per-epoch history."""
    return Path(run_dir) / HISTORY
