"""open_clip proxy: CLIP's image tower for image tasks and its text tower for class names, in one space.

With CLIP weights, historical tasks can be embedded from their class names (text tower) and a user's
task from its images (image tower), and the two are comparable -- with the caveat that CLIP's image and
text embeddings sit in two separate cones of the sphere (the "modality gap"): cosine distances between
an image-task and a text-task embedding are larger than between two text tasks, so the far-query
threshold calibrated on text-text distances flags image queries unless it is re-calibrated (pass
``max_distance`` to the projector). Untested here with real CLIP weights: none can be had offline.

Weights
-------
* ``pretrained="/path/file"``: a local state dict or safetensors file (sha256 in the identity);
* ``pretrained="laion2b_s34b_b79k"`` (a tag): works offline **only if the file is already in the local
  Hugging Face (or open_clip URL) cache**; otherwise a clear error says so. No registry package ships
  CLIP weights, so there is nothing to install instead;
* ``pretrained=None``: random weights (seeded), for tests.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from fennec.errors import FennecError, SchemaError, UnknownIdError
from fennec.proxy.base import DEFAULT_TEMPLATE, ProxyEmbedder, library_versions

logger = logging.getLogger(__name__)

__all__ = ["OpenCLIPProxy", "cached_pretrained_file"]

_HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _open_clip():
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()
    from fennec._optional import require

    return require("open_clip", "open_clip_torch", purpose="the open_clip proxy")


def cached_pretrained_file(arch: str, tag: str) -> str | None:
    """The local file holding open_clip's pretrained ``(arch, tag)`` weights, or None if not cached.

    Raises :class:`UnknownIdError` if open_clip knows no such tag for ``arch``.
    """
    oc = _open_clip()
    cfg = oc.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = [t for a, t in oc.list_pretrained() if a == arch]
        hint = f"; known tags for {arch}: {', '.join(tags[:8])}" if tags else f"; unknown architecture {arch!r}"
        raise UnknownIdError(f"open_clip has no pretrained tag {tag!r} for {arch!r}{hint}")
    if cfg.get("file"):
        return cfg["file"] if Path(cfg["file"]).is_file() else None
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(hub)
        for name in ([filename] if filename else []) + list(_HF_FILES):
            hit = try_to_load_from_cache(repo_id=repo, filename=name)
            if isinstance(hit, str) and Path(hit).is_file():
                return hit
    url = cfg.get("url", "")
    if url:
        local = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if local.is_file():
            return str(local)
    return None


class OpenCLIPProxy(ProxyEmbedder):
    """open_clip image and text towers as one proxy.

    Parameters
    ----------
    arch : str, default "ViT-B-32"
    pretrained : str or None
        A pretrained tag (must be cached locally), a local weights file, or None (random weights).
    template : str, default ``"a photo of a {}."``
    device : str, default "cpu"
    batch_size : int, default 32
    """

    has_images = True
    has_text = True

    def __init__(self, arch: str = "ViT-B-32", pretrained: str | None = "laion2b_s34b_b79k", *,
                 template: str = DEFAULT_TEMPLATE, device: str = "cpu", batch_size: int = 32) -> None:
        self.arch = arch
        self.pretrained = pretrained
        self.template = template
        self.device = device
        self.batch_size = int(batch_size)

    @functools.cached_property
    def _weights(self) -> tuple[str | None, str]:
        """``(file or None, identity string)``."""
        from fennec.backbone.features import file_sha256

        p = self.pretrained
        if p is None:
            return None, "random-init-seed0"
        if Path(p).expanduser().is_file():
            return str(Path(p).expanduser()), f"sha256:{file_sha256(Path(p).expanduser())}"
        if os.sep in p or p.endswith((".bin", ".pt", ".pth", ".safetensors")):
            raise FileNotFoundError(2, "open_clip weights file not found", p)
        hit = cached_pretrained_file(self.arch, p)
        if hit is None:
            raise FennecError(
                f"open_clip weights {self.arch}/{p} are not in the local cache, and Fennec does not download "
                "them; put the checkpoint in the Hugging Face cache, or pass its path as pretrained=FILE "
                "(--proxy open_clip:ARCH@FILE)")
        return hit, f"tag:{p}"

    @functools.cached_property
    def _built(self):
        import torch

        oc = _open_clip()
        path, _ = self._weights
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model, _, preprocess = oc.create_model_and_transforms(self.arch, pretrained=path, device=self.device)
        except RuntimeError as exc:
            if "Unknown model" in str(exc) or "not found" in str(exc):
                raise UnknownIdError(f"unknown open_clip architecture {self.arch!r}") from exc
            raise
        model.eval()
        return model, preprocess, oc.get_tokenizer(self.arch)

    @functools.cached_property
    def identity(self) -> dict[str, Any]:  # type: ignore[override]
        if "{}" not in self.template:
            raise SchemaError(f"template must contain '{{}}'; got {self.template!r}")
        _, weights = self._weights
        preprocess = self._built[1]
        return {
            "kind": "open_clip",
            "arch": self.arch,
            "weights": weights,
            "preprocessing": {"image": " ".join(repr(preprocess).split()), "template": self.template,
                              "pooling": "mean of L2-normalised embeddings"},
            "versions": library_versions("open_clip_torch", "torch", "torchvision"),
        }

    def _encode_images(self, images: list[Any]) -> np.ndarray:
        import torch

        model, preprocess, _ = self._built
        with torch.inference_mode():
            x = torch.stack([preprocess(im) for im in images]).to(self.device)
            return model.encode_image(x).float().cpu().numpy()

    def _encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        model, _, tokenizer = self._built
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), 256):
                out.append(model.encode_text(tokenizer(texts[s : s + 256]).to(self.device)).float().cpu().numpy())
        return np.concatenate(out)
