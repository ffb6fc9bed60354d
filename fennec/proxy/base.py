"""The proxy interface: what every task embedder provides, and how embeddings carry their identity.

A *proxy* turns what a user can always supply about a task -- a folder of images, or the names of its
classes -- into one unit vector. Embeddings from two proxies are not comparable, so every embedding is
stored with the proxy's ``identity``: a JSON-able dict

``kind``           ``"text"``, ``"timm"`` or ``"open_clip"``;
``arch``           the architecture (a timm or open_clip name, or the sentence encoder's name);
``weights``        a pretrained tag, ``sha256:<hex>`` of a local weights file, or the weights package;
``preprocessing``  what decides the input (image data config, prompt template, pooling);
``versions``       library versions (informative; not part of the comparison key).

Two identities are *compatible* when everything but ``versions`` is equal (:func:`identity_key`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fennec.errors import FennecError, SchemaError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TEMPLATE",
    "ProxyEmbedder",
    "ProxyMismatchError",
    "TaskEmbedding",
    "check_same_proxy",
    "describe_identity",
    "identity_key",
    "l2_normalise",
    "mean_embedding",
]

#: The prompt every text proxy wraps a class name in, unless told otherwise.
DEFAULT_TEMPLATE = "a photo of a {}."
_KEY_FIELDS = ("kind", "arch", "weights", "preprocessing")


class ProxyMismatchError(FennecError, ValueError):
    """An embedding was made by another proxy than the one the artifact or file was built with."""


def l2_normalise(x: npt.ArrayLike, *, what: str = "embeddings") -> npt.NDArray[np.float32]:
    """Rows of ``x`` scaled to unit L2 norm (float32); a zero or non-finite row is an error."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return l2_normalise(a[None], what=what)[0]
    if a.ndim != 2:
        raise SchemaError(f"{what} must be 1-D or 2-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise SchemaError(f"{what} of shape {a.shape} hold non-finite values")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if (norms <= 1e-12).any():
        bad = np.flatnonzero(norms[:, 0] <= 1e-12)[:5].tolist()
        raise SchemaError(f"{what}: row(s) {bad} have zero norm and cannot be normalised")
    return (a / norms).astype(np.float32)


def mean_embedding(
    embeddings: npt.ArrayLike, labels: npt.ArrayLike | None = None
) -> npt.NDArray[np.float32]:
    """Mean of L2-normalised rows, re-normalised. With ``labels``, every class weighs the same
    (the mean of the per-class means), whatever the class sizes."""
    e = l2_normalise(embeddings).astype(np.float64)
    if labels is None:
        return l2_normalise(e.mean(axis=0), what="mean embedding")
    y = np.asarray(labels).ravel()
    if y.shape[0] != e.shape[0]:
        raise SchemaError(f"labels has {y.shape[0]} entries for {e.shape[0]} embeddings")
    means = np.stack([e[y == c].mean(axis=0) for c in np.unique(y)])
    return l2_normalise(means.mean(axis=0), what="mean embedding")


def identity_key(identity: Mapping[str, Any]) -> str:
    """sha256 (hex, 16 chars) of the identity fields that decide the embedding (not ``versions``)."""
    if not isinstance(identity, Mapping):
        raise SchemaError(f"a proxy identity must be a dict, got {type(identity).__name__}")
    missing = [k for k in ("kind", "arch", "weights") if k not in identity]
    if missing:
        raise SchemaError(f"proxy identity lacks {', '.join(missing)}: {dict(identity)!r}")
    core = {k: identity.get(k) for k in _KEY_FIELDS}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:16]


def describe_identity(identity: Mapping[str, Any] | None) -> str:
    """One-line human description, e.g. ``text all-MiniLM-L6-v2 [package:...] key 1a2b...``."""
    if identity is None:
        return "<no proxy identity>"
    weights = str(identity.get("weights", "?"))
    if len(weights) > 40:
        weights = weights[:37] + "..."
    return f"{identity.get('kind', '?')} {identity.get('arch', '?')} [{weights}] key {identity_key(identity)}"


def check_same_proxy(
    expected: Mapping[str, Any] | None, got: Mapping[str, Any] | None, *, where: str
) -> None:
    """Raise :class:`ProxyMismatchError` (naming both) unless ``got`` is compatible with ``expected``."""
    if expected is None or got is None:
        return
    if identity_key(expected) != identity_key(got):
        raise ProxyMismatchError(
            f"{where}: the query was embedded with proxy {describe_identity(got)}, but the task embeddings "
            f"were made with {describe_identity(expected)}; embeddings of two proxies are not comparable "
            "(embed the query with the artifact's proxy)"
        )


@dataclass(frozen=True)
class TaskEmbedding:
    """One task's proxy embedding with the identity of the proxy that made it.

    Attributes
    ----------
    vector : ndarray (d,), float32, unit norm
    identity : dict
        The proxy identity (module docstring).
    task_id : str
    n_items : int
        How many images or class names were averaged.
    meta : dict
        Free-form provenance (source folder, class names, bridge used, ...).
    """

    vector: npt.NDArray[np.float32]
    identity: dict[str, Any]
    task_id: str = "<new>"
    n_items: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vector", l2_normalise(np.asarray(self.vector).ravel(), what="task embedding"))


class ProxyEmbedder(ABC):
    """Base class of every proxy: embeds images and/or class names into one unit-norm space.

    Subclasses implement :meth:`_encode_images` (a batch of PIL RGB images -> raw features) and/or
    :meth:`_encode_texts` (strings -> raw features), and :attr:`identity`.
    """

    #: Whether :meth:`embed_images` is available.
    has_images: bool = False
    #: Whether :meth:`embed_classnames` is available.
    has_text: bool = False
    template: str = DEFAULT_TEMPLATE
    batch_size: int = 32

    @property
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """The identity dict (module docstring)."""

    @property
    def key(self) -> str:
        return identity_key(self.identity)

    # ------------------------------------------------------------------ images
    def _encode_images(self, images: list[Any]) -> np.ndarray:  # pragma: no cover - abstract-ish
        raise FennecError(f"proxy {describe_identity(self.identity)} cannot embed images")

    def embed_images(self, images: Sequence[Any], *, progress: bool = False) -> npt.NDArray[np.float32]:
        """``(n, d)`` float32 L2-normalised embeddings of images (PIL images or uint8 arrays)."""
        if not self.has_images:
            raise FennecError(f"proxy {describe_identity(self.identity)} cannot embed images "
                              "(it is a text proxy; give class names instead)")
        from fennec.data.inputs import to_pil_rgb

        imgs = [to_pil_rgb(im, name=f"image {i}") for i, im in enumerate(images)]
        if not imgs:
            raise SchemaError("no images to embed")
        from tqdm.auto import tqdm

        out = []
        starts = range(0, len(imgs), self.batch_size)
        for s in tqdm(starts, desc="embedding images", unit="batch", disable=None if progress else True):
            out.append(np.asarray(self._encode_images(imgs[s : s + self.batch_size]), dtype=np.float64))
        return l2_normalise(np.concatenate(out), what="image embeddings")

    def embed_task(
        self, images: Sequence[Any], labels: npt.ArrayLike | None = None, *, progress: bool = False
    ) -> npt.NDArray[np.float32]:
        """``(d,)`` task embedding: mean of the normalised image embeddings (class-balanced with
        ``labels``), re-normalised."""
        return mean_embedding(self.embed_images(images, progress=progress), labels)

    # ------------------------------------------------------------------ text
    def _encode_texts(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract-ish
        raise FennecError(f"proxy {describe_identity(self.identity)} cannot embed text")

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """``(n, d)`` float32 L2-normalised embeddings of strings."""
        if not self.has_text:
            raise FennecError(f"proxy {describe_identity(self.identity)} has no text encoder; "
                              "use the text proxy or an open_clip proxy for class names")
        texts = [str(t) for t in texts]
        if not texts:
            raise SchemaError("no text to embed")
        return l2_normalise(np.asarray(self._encode_texts(texts), dtype=np.float64), what="text embeddings")

    def embed_classnames(self, names: Sequence[str], template: str | None = None) -> npt.NDArray[np.float32]:
        """``(d,)`` task embedding from class names: each name in the prompt ``template``
        (default the proxy's, ``"a photo of a {}."``), embedded, normalised, averaged, re-normalised."""
        template = self.template if template is None else template
        if template != self.template:
            raise SchemaError(
                f"template {template!r} differs from this proxy's {self.template!r}, which its identity records; "
                "build the proxy with template=... instead")
        names = [str(n).strip() for n in names]
        if len(names) < 1 or any(not n for n in names):
            raise SchemaError(f"class names must be non-empty strings; got {names[:5]!r}")
        return mean_embedding(self.embed_texts([template.format(n) for n in names]))


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of distributions (``"absent"`` when not installed)."""
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out
