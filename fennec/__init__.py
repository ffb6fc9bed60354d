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
)
from fennec.datasets import (
    list_histories as list_histories,
)
from fennec.datasets import (
    load_history as load_history,
)
from fennec.datasets import (
    load_models as load_models,
)
from fennec.datasets import (
    load_tasks as load_tasks,
)
from fennec.errors import (
    ArtifactError as ArtifactError,
)
from fennec.errors import (
    FennecError as FennecError,
)
from fennec.errors import (
    NotFittedError as NotFittedError,
)
from fennec.errors import (
    SchemaError as SchemaError,
)
from fennec.errors import (
    UnknownIdError as UnknownIdError,
)
from fennec.history import History as History
from fennec.history import TaskScaler as TaskScaler
from fennec.index import ModelIndex as ModelIndex
from fennec.recommender import Recommender as Recommender
from fennec.recommender import RecommenderConfig as RecommenderConfig
from fennec.subspace import TransferSubspace as TransferSubspace
