"""Fennec: recommend which pre-trained model to fine-tune for a new image task, before fine-tuning.

Light at import time: torch, timm, open_clip and faiss are imported only by the modules that need them.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("fennec")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+local"

from fennec.datasets import (
    DEFAULT_HISTORY as DEFAULT_HISTORY,
    list_histories as list_histories,
    load_history as load_history,
    load_models as load_models,
    load_tasks as load_tasks,
)
from fennec.errors import (
    ArtifactError as ArtifactError,
    FennecError as FennecError,
    NotFittedError as NotFittedError,
    SchemaError as SchemaError,
    UnknownIdError as UnknownIdError,
)
from fennec.history import History as History, TaskScaler as TaskScaler
from fennec.index import ModelIndex as ModelIndex
from fennec.recommender import Recommender as Recommender, RecommenderConfig as RecommenderConfig
from fennec.subspace import TransferSubspace as TransferSubspace
