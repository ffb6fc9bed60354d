"""Fennec: recommend which pre-trained model to fine-tune for a new image task, before fine-tuning.

The one way in::

    import fennec
    rec = fennec.Recommender().fit(fennec.load_history("sfda"))      # or load_histories("all"): one zoo
    rec.query(observed={"resnet50": 84.6, "deit_small": 73.1})       # -> fennec.Ranking
    rec.query(classnames=["tabby cat", "parrot"], candidates=["convnext_tiny", "resnet50"])

Light at import time: importing ``fennec`` imports none of its modules; each public name loads its module on
first use (pandas with the data and query modules; torch, timm, open_clip and faiss only in the modules that
need them), so the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers and readers; loaded lazily by __getattr__
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
    from fennec.history.scaler import TaskScaler as TaskScaler
    from fennec.history.table import History as History
    from fennec.query.ranking import Ranking as Ranking
    from fennec.query.recommender import Recommender as Recommender
    from fennec.query.recommender import RecommenderConfig as RecommenderConfig
    from fennec.subspace.factorization import TransferSubspace as TransferSubspace
    from fennec.subspace.index import ModelIndex as ModelIndex
    from fennec.zoo.registry import ModelRegistry as ModelRegistry

_EXPORTS = {
    "DEFAULT_HISTORY": "fennec.data.shipped",
    "list_histories": "fennec.data.shipped",
    "load_histories": "fennec.data.shipped",
    "load_history": "fennec.data.shipped",
    "load_tasks": "fennec.data.shipped",
    "ArtifactError": "fennec.errors",
    "FennecError": "fennec.errors",
    "NotFittedError": "fennec.errors",
    "SchemaError": "fennec.errors",
    "UnknownIdError": "fennec.errors",
    "History": "fennec.history.table",
    "TaskScaler": "fennec.history.scaler",
    "Ranking": "fennec.query.ranking",
    "Recommender": "fennec.query.recommender",
    "RecommenderConfig": "fennec.query.recommender",
    "TransferSubspace": "fennec.subspace.factorization",
    "ModelIndex": "fennec.subspace.index",
    "ModelRegistry": "fennec.zoo.registry",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("fennec")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0+local"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'fennec' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
