"""A set of task embeddings (one proxy) and its file format; the shipped text-proxy embeddings.

File format (``.safetensors``): one float32 tensor ``vectors`` (n_tasks, d) with metadata ``format``,
``task_ids`` (JSON list, row order), ``identity`` (JSON) and ``meta`` (JSON: provenance, per-task
counts). A human-readable JSON sidecar with the same metadata is written next to it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fennec.errors import ArtifactError, SchemaError
from fennec.proxy.base import TaskEmbedding, identity_key, l2_normalise

logger = logging.getLogger(__name__)

__all__ = ["SHIPPED_TEXT_EMBEDDINGS", "TaskEmbeddings", "load_shipped_text_embeddings"]

FORMAT = "fennec-task-embeddings-1"
SHIPPED_TEXT_EMBEDDINGS = "text_minilm.safetensors"


@dataclass
class TaskEmbeddings:
    """Embeddings of several tasks by one proxy.

    Attributes
    ----------
    task_ids : list of str
    vectors : ndarray (n_tasks, d) float32, unit rows
    identity : dict or None
        The proxy identity (None only for user arrays given without one).
    meta : dict
    """

    task_ids: list[str]
    vectors: npt.NDArray[np.float32]
    identity: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.task_ids = [str(t) for t in self.task_ids]
        v = np.asarray(self.vectors)
        if v.ndim != 2 or v.shape[0] != len(self.task_ids):
            raise SchemaError(f"task embeddings: {len(self.task_ids)} task ids but vectors of shape {v.shape}")
        if len(set(self.task_ids)) != len(self.task_ids):
            dup = sorted({t for t in self.task_ids if self.task_ids.count(t) > 1})
            raise SchemaError(f"task embeddings: task id(s) listed twice: {', '.join(dup[:5])}")
        self.vectors = l2_normalise(v, what="task embeddings")
        if self.identity is not None:
            identity_key(self.identity)  # validates

    def __len__(self) -> int:
        return len(self.task_ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def get(self, task_id: str) -> npt.NDArray[np.float32] | None:
        try:
            return self.vectors[self.task_ids.index(task_id)]
        except ValueError:
            return None

    def lookup(self, task_ids: Sequence[str]) -> tuple[npt.NDArray[np.float32], list[str]]:
        """Rows for ``task_ids`` (exact id, else its canonical benchmark id); returns ``(rows, missing)``."""
        from fennec.data.shipped import canonical_task_id

        pos = {t: i for i, t in enumerate(self.task_ids)}
        rows, missing = [], []
        for t in task_ids:
            i = pos.get(t, pos.get(canonical_task_id(t)))
            if i is None:
                missing.append(t)
                rows.append(np.full(self.dim, np.nan, np.float32))
            else:
                rows.append(self.vectors[i])
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32), missing

    @classmethod
    def coerce(cls, obj: Any, *, identity: Mapping[str, Any] | None = None) -> TaskEmbeddings:
        """From a :class:`TaskEmbeddings`, a path, a dict ``task_id -> vector``, a list of
        :class:`TaskEmbedding`, or a DataFrame (index = task ids, one column per dimension; the
        identity in ``df.attrs["proxy_identity"]``)."""
        import pandas as pd

        if isinstance(obj, TaskEmbeddings):
            return obj
        if isinstance(obj, (str, os.PathLike)):
            return cls.load(obj)
        if isinstance(obj, pd.DataFrame):
            ident = identity or obj.attrs.get("proxy_identity")
            return cls(list(map(str, obj.index)), obj.to_numpy(dtype=np.float64), dict(ident) if ident else None)
        if isinstance(obj, Mapping):
            return cls(list(obj), np.stack([np.asarray(v, float).ravel() for v in obj.values()]),
                       dict(identity) if identity else None)
        if isinstance(obj, Sequence) and obj and all(isinstance(e, TaskEmbedding) for e in obj):
            keys = {identity_key(e.identity) for e in obj}
            if len(keys) > 1:
                raise SchemaError(f"task embeddings come from {len(keys)} different proxies; use one proxy")
            return cls([e.task_id for e in obj], np.stack([e.vector for e in obj]), obj[0].identity,
                       {"n_items": {e.task_id: e.n_items for e in obj}})
        raise SchemaError(f"task_embeddings must be a TaskEmbeddings, a file path, a dict task_id -> vector or "
                          f"a DataFrame; got {type(obj).__name__}")

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str], *, sidecar: bool = True) -> Path:
        from fennec.artifacts import atomic_path, write_arrays

        path = Path(path)
        if path.suffix != ".safetensors":
            raise SchemaError(f"{path}: task embeddings are written as .safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "task_ids": json.dumps(self.task_ids),
                "identity": json.dumps(self.identity, sort_keys=True, default=str),
                "meta": json.dumps(self.meta, sort_keys=True, default=str)}
        with atomic_path(path) as tmp:
            write_arrays(tmp, {"vectors": self.vectors.astype(np.float32)}, meta)
        if sidecar:
            side = {"format": FORMAT, "file": path.name, "n_tasks": len(self), "dim": self.dim,
                    "identity": self.identity, "identity_key": identity_key(self.identity) if self.identity else None,
                    "task_ids": self.task_ids, "meta": self.meta}
            path.with_suffix(".json").write_text(json.dumps(side, indent=2, default=str) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TaskEmbeddings:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(2, "task embeddings file not found", str(path))
        if path.suffix == ".csv":
            return cls._load_csv(path)
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = fh.metadata() or {}
                vectors = fh.get_tensor("vectors")
        except Exception as exc:  # safetensors raises its own error types
            raise ArtifactError(f"{path}: cannot be read as task embeddings ({exc})") from exc
        if meta.get("format") != FORMAT:
            raise ArtifactError(f"{path}: not a Fennec task-embeddings file (format={meta.get('format')!r})")
        identity = json.loads(meta.get("identity", "null"))
        return cls(json.loads(meta["task_ids"]), vectors, identity, json.loads(meta.get("meta", "{}")))

    @classmethod
    def _load_csv(cls, path: Path) -> TaskEmbeddings:
        """A CSV ``task_id,e0,e1,...``; the identity from a JSON file of the same stem, if present."""
        import pandas as pd

        df = pd.read_csv(path)
        if "task_id" not in df.columns or df.shape[1] < 2:
            raise SchemaError(f"{path}: expected columns task_id,e0,e1,...; found {', '.join(df.columns[:5])}")
        side = path.with_suffix(".json")
        identity = json.loads(side.read_text()).get("identity") if side.is_file() else None
        if identity is None:
            logger.warning("%s: no proxy identity (%s missing); queries cannot be checked against it", path, side.name)
        return cls(df["task_id"].astype(str).tolist(), df.drop(columns="task_id").to_numpy(float), identity)


def load_shipped_text_embeddings() -> TaskEmbeddings:
    """The shipped all-MiniLM-L6-v2 class-name embeddings of every task with known class names."""
    from fennec.data.shipped import data_dir

    path = data_dir() / "task_embeddings" / SHIPPED_TEXT_EMBEDDINGS
    if not path.is_file():
        raise ArtifactError(f"shipped text embeddings not found at {path}; "
                            "rebuild them with python scripts/build_task_embeddings.py")
    return TaskEmbeddings.load(path)
