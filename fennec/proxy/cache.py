"""On-disk cache of task embeddings, keyed by the proxy's identity and the task's content.

One ``<key>.npz`` file per entry (``vector`` float32 and ``meta``, a JSON string; no pickle), where
``key = sha256(identity key, content hash, how)``. Changing the proxy (weights, preprocessing, template)
or the task's content (any image's bytes, a label, a class name, the probe sampling) changes the key,
so a stale entry is never read; an entry whose stored identity does not match is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fennec.artifacts import atomic_path
from fennec.cachedir import cache_dir
from fennec.proxy.base import TaskEmbedding, identity_key

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingCache", "default_cache_dir"]

CACHE_FORMAT = "fennec-task-embedding-1"


def default_cache_dir() -> Path:
    """``$FENNEC_CACHE_DIR/embeddings``, else ``$XDG_CACHE_HOME/fennec/embeddings``, else
    ``~/.cache/fennec/embeddings``."""
    return cache_dir("embeddings")


class EmbeddingCache:
    """A directory of cached :class:`~fennec.proxy.base.TaskEmbedding` entries."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    @staticmethod
    def key(identity: dict[str, Any], content_hash: str, how: dict[str, Any] | None = None) -> str:
        payload = {"format": CACHE_FORMAT, "proxy": identity_key(identity), "content": content_hash,
                   "how": how or {}}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str, identity: dict[str, Any]) -> TaskEmbedding | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                vector = np.asarray(npz["vector"])
                meta = json.loads(str(npz["meta"]))
            if not isinstance(meta, dict) or vector.ndim != 1 or not np.isfinite(vector).all():
                raise ValueError(f"vector of shape {vector.shape}, meta {type(meta).__name__}")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("ignoring unreadable cache entry %s (%s: %s); recomputing", path, type(exc).__name__,
                           " ".join(str(exc).split())[:120])
            return None
        if meta.get("format") != CACHE_FORMAT or identity_key(meta.get("identity", {})) != identity_key(identity):
            logger.info("cache entry %s was written by another proxy; recomputing", path.name)
            return None
        logger.debug("task embedding read from cache %s", path.name)
        return TaskEmbedding(vector, meta["identity"], meta.get("task_id", "<new>"), int(meta.get("n_items", 0)),
                             dict(meta.get("meta", {}), cached=True))

    def put(self, key: str, emb: TaskEmbedding) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        meta = {"format": CACHE_FORMAT, "identity": emb.identity, "task_id": emb.task_id, "n_items": emb.n_items,
                "meta": emb.meta}
        with atomic_path(self.path(key)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, vector=np.asarray(emb.vector, np.float32),
                     meta=np.array(json.dumps(meta, sort_keys=True, default=str)))
        return self.path(key)
