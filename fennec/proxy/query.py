"""Images or class names -> proxy -> one task embedding, for a recommender's task proxy.

:func:`embed_task_query` turns what the user has about a new task (an image folder, a ``path,label`` CSV,
in-memory images, class names, a benchmark id) into a :class:`~fennec.proxy.base.TaskEmbedding` comparable
with the artifact's task embeddings: through the artifact's own proxy, or -- for a text-proxy artifact and
an image proxy with an ImageNet head -- through the ImageNet labels the image proxy assigns (the bridge).
:func:`text_proxy_embeddings` embeds history tasks by their class names (``fennec fit --text-proxy``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fennec.data.inputs import TaskInput
from fennec.errors import ArtifactError, SchemaError
from fennec.proxy.base import ProxyMismatchError, TaskEmbedding, describe_identity, identity_key
from fennec.proxy.cache import EmbeddingCache
from fennec.proxy.embed import bridge_embedding, embed_input, make_proxy, proxy_for_identity
from fennec.proxy.store import TaskEmbeddings, load_shipped_text_embeddings

logger = logging.getLogger(__name__)


def task_input(*, images: Any = None, labels: Any = None, classnames: Any = None, task: str | None = None,
               task_id: str | None = None) -> TaskInput:
    """One :class:`TaskInput` from the ways a user can describe a task.

    ``images``: a folder (ImageFolder layout), a ``path,label`` CSV, a :class:`TaskInput`, or a sequence of
    images with ``labels``; ``classnames``: a file (one per line or a JSON list) or a sequence of names;
    ``task``: a benchmark id with known class names.
    """
    if isinstance(images, TaskInput):
        return images
    if images is not None and isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.suffix.lower() == ".csv" and path.is_file():
            return TaskInput.from_csv(path, task_id=task_id)
        return TaskInput.from_folder(path, task_id=task_id)
    if images is not None:
        if labels is None:
            raise SchemaError("images given as arrays need labels (one per image)")
        return TaskInput.from_arrays(images, labels, task_id=task_id or "<arrays>")
    if classnames is not None:
        if isinstance(classnames, (str, os.PathLike)):
            return TaskInput.from_classnames_file(classnames, task_id=task_id)
        names = [str(n).strip() for n in classnames if str(n).strip()]
        if len(names) < 2 or len(set(names)) != len(names):
            raise SchemaError(f"classnames: need at least 2 distinct class names, got {names[:5]}")
        return TaskInput(names, task_id=task_id or "<new>", source="classnames")
    if task is not None:
        return TaskInput.from_task_id(task)
    raise SchemaError("nothing to embed: give images, classnames or a task id")


def embed_task_query(identity: Mapping[str, Any] | None, query: TaskInput, *, proxy: str | None = None,
                     max_images: int = 100, seed: int = 0, cache_dir: str | os.PathLike[str] | None = None,
                     progress: bool = False, scored_by: str | None = None) -> tuple[TaskEmbedding, str]:
    """Embed ``query`` for an artifact whose task embeddings have ``identity``; returns ``(embedding, how)``.

    ``proxy`` (a spec for :func:`~fennec.proxy.embed.make_proxy`) overrides the artifact's proxy; it must be
    the same proxy, or an image proxy with an ImageNet head when the artifact's proxy is the text proxy.
    ``scored_by``: the transferability metric that scores candidates on the query's images (a metric
    fallback), so that what is said about the images stays true when a text proxy places the task.
    """
    if identity is None:
        raise SchemaError("this recommender has no task embeddings; fit it with text-proxy or task embeddings "
                          "(fennec fit --text-proxy or --task-embeddings FILE)")
    store = EmbeddingCache(cache_dir)
    art_proxy = None
    if proxy is not None:
        user = make_proxy(proxy)
        if user.key == identity_key(identity):
            art_proxy = user
        elif identity.get("kind") == "text" and query.has_images and hasattr(user, "imagenet_posterior"):
            emb = bridge_embedding(user, proxy_for_identity(identity), query, max_images=max_images, seed=seed,
                                   cache=store, progress=progress)
            top = ", ".join(n for n, _ in emb.meta["imagenet_top"][:3])
            return emb, (f"images through {user.identity['arch']}'s ImageNet labels ({top}, ...) into the "
                         "text proxy")
        else:
            raise ProxyMismatchError(f"proxy {proxy} ({describe_identity(user.identity)}) is not the artifact's "
                                     f"proxy ({describe_identity(identity)}) and cannot be bridged to it")
    art_proxy = art_proxy or proxy_for_identity(identity)
    if query.has_images and art_proxy.has_images:
        emb = embed_input(art_proxy, query, use="images", max_images=max_images, seed=seed, cache=store,
                          progress=progress)
        return emb, f"{emb.n_items} images through the artifact's proxy"
    if query.has_images:
        used = f"used only by the {scored_by} fallback, to score candidates" if scored_by else "not used"
        logger.warning("the artifact's proxy is a text proxy: placing %s by its folder names (%s); the images are "
                       "%s (an image proxy such as efficientnet-lite0 places a task through their ImageNet labels)",
                       query.task_id, ", ".join(query.class_names[:5]), used)
        emb = embed_input(art_proxy, query, use="names", cache=store)
        used = f"images used only by the {scored_by} fallback" if scored_by else "images not used"
        return emb, f"{len(query.class_names)} folder names through the artifact's text proxy ({used})"
    emb = embed_input(art_proxy, query, use="names", cache=store)
    return emb, f"{len(query.class_names)} class names through the artifact's text proxy"


def text_proxy_embeddings(task_ids: Sequence[str]) -> TaskEmbeddings:
    """Text-proxy embeddings of ``task_ids``: the shipped file when it covers them and matches the
    installed encoder, else computed from ``data/classnames`` (tasks without known class names left out)."""
    from fennec._optional import MissingPackageError
    from fennec.proxy.text import TextProxy

    task_ids = list(dict.fromkeys(task_ids))
    proxy = TextProxy()
    try:
        shipped = load_shipped_text_embeddings()
    except (ArtifactError, FileNotFoundError):
        shipped = None
    covered = shipped is not None and not shipped.lookup(task_ids)[1]
    try:
        installed = proxy.key
    except MissingPackageError:
        if covered:  # the shipped file is enough to fit; querying by class names will need the package
            logger.info("text encoder package not installed; using the shipped embeddings as they are")
            return shipped
        raise
    if covered and identity_key(shipped.identity) == installed:
        return shipped
    logger.info("computing text-proxy embeddings of %d task(s) from their class names", len(task_ids))
    ids, vecs = [], []
    for t in task_ids:
        try:
            names = TaskInput.from_task_id(t).class_names
        except KeyError:
            logger.warning("no class names known for task %s; it is left out of the task projector", t)
            continue
        ids.append(t)
        vecs.append(proxy.embed_classnames(names))
    if not ids:
        raise SchemaError("none of the history's tasks has known class names; give task embeddings instead")
    return TaskEmbeddings(ids, np.stack(vecs), proxy.identity, {"source": "data/classnames (computed by fennec fit)"})
