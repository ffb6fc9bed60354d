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
* ``pretrained="laion2b_s34b_b79k"`` (a tag): fetched the way open_clip fetches it, through the Hugging
  Face hub cache (downloaded once; with ``HF_HUB_OFFLINE=1`` or no network only the cache is used, and a
  missing file is one error line naming the file and the cache folder). Tags served from a URL instead go
  to ``~/.cache/clip``;
* ``pretrained=None``: random weights (seeded), for tests.

Every file is checked by :func:`fennec.backbone.loading.read_state_dict` (``weights_only=True``, no
pickled objects, not truncated) before open_clip reads it.
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

__all__ = ["OpenCLIPProxy", "pretrained_file"]

_HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _open_clip():
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()
    from fennec._optional import require

    return require("open_clip", "open_clip_torch", purpose="the open_clip proxy")


def pretrained_file(arch: str, tag: str) -> str:
    """The local file of open_clip's pretrained ``(arch, tag)`` weights: from the Hugging Face hub cache
    (downloaded if missing and online) or, for URL-served tags, ``~/.cache/clip``.

    Raises :class:`UnknownIdError` if open_clip knows no such tag for ``arch``, and one
    :class:`FennecError` line naming the file and where to place it when it cannot be had offline.
    """
    from fennec.backbone.loading import hub_file

    oc = _open_clip()
    cfg = oc.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = [t for a, t in oc.list_pretrained() if a == arch]
        hint = f"; known tags for {arch}: {', '.join(tags[:8])}" if tags else f"; unknown architecture {arch!r}"
        raise UnknownIdError(f"open_clip has no pretrained tag {tag!r} for {arch!r}{hint}")
    instead = f"pass a local weights file as pretrained=FILE (--proxy open_clip:{arch}@FILE)"
    if cfg.get("file"):
        return cfg["file"]
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])
        names = [filename] if filename else list(_HF_FILES[1:])
        if names[0].endswith((".bin", ".pth")):
            stem = "open_clip_model" if names[0] == _HF_FILES[1] else names[0].rsplit(".", 1)[0]
            names.insert(0, f"{stem}.safetensors")
        return hub_file(repo, names, what=f"open_clip weights {arch}/{tag}", instead=instead)
    url = cfg.get("url", "")
    local = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
    if local.is_file():
        return str(local)
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or not url:
        raise FennecError(f"open_clip weights {arch}/{tag}: {local.name} is not in {local.parent} and cannot be "
                          f"downloaded offline; fetch {url} into that folder, or {instead}")
    return str(oc.pretrained.download_pretrained_from_url(url, cache_dir=str(local.parent)))


class OpenCLIPProxy(ProxyEmbedder):
    """open_clip image and text towers as one proxy.

    Parameters
    ----------
    arch : str, default "ViT-B-32"
    pretrained : str or None
        A pretrained tag (through the Hugging Face cache), a local weights file, or None (random weights).
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
        """``(file or None, identity string)``; the file is checked before open_clip reads it."""
        from fennec.artifacts import sha256_file
        from fennec.backbone.loading import read_state_dict

        p = self.pretrained
        if p is None:
            return None, "random-init-seed0"
        if Path(p).expanduser().is_file():
            path = str(Path(p).expanduser())
            read_state_dict(path)  # one clear line for an empty, truncated or pickled file
            return path, f"sha256:{sha256_file(path)}"
        if os.sep in p or p.endswith((".bin", ".pt", ".pth", ".safetensors")):
            raise FileNotFoundError(2, "open_clip weights file not found", p)
        path = pretrained_file(self.arch, p)
        read_state_dict(path)
        return path, f"tag:{p}"

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
