"""Fennec: recommend which pre-trained model to fine-tune for a new image task, before fine-tuning.

The one way in::

    import fennec
    rec = fennec.Recommender().fit(fennec.load_history("sfda"))      # or load_histories("all"): one zoo
    rec.query(observed={"resnet50": 84.6, "deit_small": 73.1})       # -> fennec.Ranking
    rec.query(classnames=["tabby cat", "parrot"], candidates=["convnext_tiny", "resnet50"])

Light at import time: torch, timm, open_clip and faiss are imported only by the modules that need them.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("fennec")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+local"

from fennec.data.shipped import DEFAULT_HISTORY as DEFAULT_HISTORY
from fennec.data.shipped import list_histories as list_histories
from fennec.data.shipped import load_histories as load_histories
from fennec.data.shipped import load_history as load_history
from fennec.data.shipped import load_tasks as load_tasks
from fennec.errors import ArtifactError as ArtifactError
from fennec.errors import FennecError as FennecError
from fennec.errors import NotFittedError as NotFittedError
from fennec.errors import SchemaError as SchemaError
from fennec.errors import UnknownIdError as UnknownIdError
from fennec.history.table import History as History
from fennec.history.table import TaskScaler as TaskScaler
from fennec.query.ranking import Ranking as Ranking
from fennec.query.recommender import Recommender as Recommender
from fennec.query.recommender import RecommenderConfig as RecommenderConfig
from fennec.subspace.factorization import TransferSubspace as TransferSubspace
from fennec.subspace.index import ModelIndex as ModelIndex
from fennec.zoo.registry import ModelRegistry as ModelRegistry
