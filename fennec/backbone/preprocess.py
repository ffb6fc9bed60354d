"""The one timm preprocessing helper: a model's data config and its evaluation transform.

Every model is preprocessed with its *own* data config (``timm.data.resolve_model_data_config``: input
size, interpolation, mean/std, crop) and timm's evaluation transform (``create_transform(...,
is_training=False)``: resize, centre crop, normalise). Feature extraction
(:mod:`fennec.backbone.features`), the timm proxy (:mod:`fennec.proxy.timm_proxy`) and B-Tuning's
training data (:mod:`fennec.train.data`) all go through :func:`data_config` and :func:`eval_transform`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fennec.errors import SchemaError

if TYPE_CHECKING:
    import torch

__all__ = ["DATA_CONFIG_KEYS", "data_config", "eval_transform", "import_timm", "preprocess_images"]

#: The keys of a timm data config that preprocessing depends on (and that may be overridden).
DATA_CONFIG_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def import_timm():
    """``timm``, imported after the torchvision remedy (:func:`fennec._torch_compat.ensure_torchvision`)."""
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()
    import timm

    return timm


def data_config(net: torch.nn.Module, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model's timm data config with ``overrides`` applied (``input_size`` may be an int: square),
    as JSON-ready values (tuples become lists): it enters cache keys and run summaries."""
    cfg = dict(import_timm().data.resolve_model_data_config(net))
    if overrides:
        unknown = sorted(set(overrides) - set(DATA_CONFIG_KEYS))
        if unknown:
            raise SchemaError(f"unknown data_config keys {unknown}; valid: {', '.join(DATA_CONFIG_KEYS)}")
        cfg.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(cfg["input_size"], int):
            cfg["input_size"] = (3, cfg["input_size"], cfg["input_size"])
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items() if k in DATA_CONFIG_KEYS}


def eval_transform(cfg: Mapping[str, Any]) -> Callable[[Any], torch.Tensor]:
    """timm's evaluation transform (PIL image -> normalised (3, H, W) float tensor) of a data config."""
    return import_timm().data.create_transform(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}, is_training=False)


def preprocess_images(images: Sequence[np.ndarray], cfg: Mapping[str, Any]) -> torch.Tensor:
    """Apply :func:`eval_transform` to uint8 arrays (grayscale becomes RGB); returns (N, 3, H, W) float32."""
    import torch
    from PIL import Image

    transform = eval_transform(cfg)
    return torch.stack([transform(Image.fromarray(np.asarray(a)).convert("RGB")) for a in images]).contiguous()
