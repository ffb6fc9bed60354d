"""Helpers shared by the proxy tests (imported as a plain module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fennec.proxy.base import ProxyEmbedder


def write_folder(root: Path, counts: dict[str, int], *, size: int = 16, mode: str = "L", seed: int = 0) -> Path:
    """An ImageFolder with ``counts[class]`` random PNGs per class."""
    rng = np.random.default_rng(seed)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size, size) if mode == "L" else (size, size, 3)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


class FakeProxy(ProxyEmbedder):
    """A deterministic torch-free proxy: image embedding = colour histogram, text = hashed characters."""

    has_images = True
    has_text = True

    def __init__(self, version: str = "1") -> None:
        self.version = version
        self.calls = 0

    @property
    def identity(self):
        return {"kind": "fake", "arch": "histogram", "weights": f"v{self.version}",
                "preprocessing": {"bins": 8}, "versions": {"numpy": np.__version__}}

    def _encode_images(self, images):
        self.calls += 1
        out = []
        for im in images:
            a = np.asarray(im, dtype=float)
            out.append(np.concatenate([np.histogram(a[..., c], bins=8, range=(0, 255))[0] for c in range(3)]) + 1.0)
        return np.array(out)

    def _encode_texts(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), 24))
        for i, t in enumerate(texts):
            for j, ch in enumerate(t.encode()):
                out[i, (ch + j) % 24] += 1.0
        return out
