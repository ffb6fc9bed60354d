"""Training checkpoints as safetensors: tensors in the file, everything else as JSON metadata. No pickle.

One ``.safetensors`` file holds

=============================  ============================================================
tensor name                    content
=============================  ============================================================
``model.<key>``                every entry of ``model.state_dict()`` (parameters and buffers,
                               e.g. BatchNorm running statistics)
``optimizer.state.<i>.<name>`` every tensor of the optimiser's per-parameter state, ``i`` the
                               parameter's index in ``optimizer.state_dict()`` (for SGD:
                               ``momentum_buffer``)
``rng.torch``                  ``torch.get_rng_state()`` (uint8), for dropout after a resume
=============================  ============================================================

and string metadata (safetensors allows only ``str -> str``):

- ``format`` = ``fennec-train-checkpoint``, ``format_version`` = ``1``;
- ``optimizer``: JSON of ``{"param_groups": [...], "state": {i: {name: {"tensor": NAME} |
  {"value": v}}}}`` -- the param groups exactly as ``optimizer.state_dict()`` gives them
  (learning rate, momentum, nesterov, parameter indices ...), non-tensor state values inline;
- ``meta``: JSON of the trainer's own state (epoch, config, best accuracy, per-epoch history ...).

:func:`load_checkpoint` rebuilds ``optimizer.state_dict()``'s structure, so
``optimizer.load_state_dict(ckpt.optimizer_state)`` restores it bit for bit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fennec.artifacts import atomic_path
from fennec.errors import ArtifactError

if TYPE_CHECKING:
    import torch

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]

FORMAT = "fennec-train-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """The content of a checkpoint file."""

    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    rng_state: torch.Tensor | None
    meta: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    rng_state: torch.Tensor | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, then one rename)."""
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        tensors[f"model.{key}"] = value.detach().cpu().clone().contiguous()
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "meta": json.dumps(meta or {}, sort_keys=True)}
    if optimizer is not None:
        sd = optimizer.state_dict()
        state_json: dict[str, dict[str, Any]] = {}
        for idx, entries in sd["state"].items():
            state_json[str(idx)] = {}
            for name, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tname = f"optimizer.state.{idx}.{name}"
                    tensors[tname] = value.detach().cpu().clone().contiguous()
                    state_json[str(idx)][name] = {"tensor": tname}
                else:
                    state_json[str(idx)][name] = {"value": value}
        metadata["optimizer"] = json.dumps({"param_groups": sd["param_groups"], "state": state_json})
    if rng_state is not None:
        tensors["rng.torch"] = rng_state.detach().cpu().clone().contiguous()
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        No such file.
    ArtifactError
        Not a safetensors file, another format, or a newer format version.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "checkpoint not found", str(path))
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot be read as safetensors ({exc})") from exc
    if metadata.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a Fennec training checkpoint (format={metadata.get('format')!r})")
    version = int(metadata.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise ArtifactError(f"{path}: checkpoint format_version {version} is newer than this Fennec "
                            f"supports ({FORMAT_VERSION}); upgrade fennec")
    try:
        meta = json.loads(metadata.get("meta", "{}"))
        opt_json = json.loads(metadata["optimizer"]) if "optimizer" in metadata else None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path}: corrupt checkpoint metadata ({exc})") from exc
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    optimizer_state = None
    if opt_json is not None:
        state: dict[int, dict[str, Any]] = {}
        for idx, entries in opt_json["state"].items():
            state[int(idx)] = {}
            for name, spec in entries.items():
                if "tensor" in spec:
                    if spec["tensor"] not in tensors:
                        raise ArtifactError(f"{path}: optimizer tensor {spec['tensor']!r} is missing")
                    state[int(idx)][name] = tensors[spec["tensor"]]
                else:
                    state[int(idx)][name] = spec["value"]
        optimizer_state = {"state": state, "param_groups": opt_json["param_groups"]}
    return Checkpoint(model_state, optimizer_state, tensors.get("rng.torch"), meta)
