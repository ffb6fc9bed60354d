"""archi2vec: model architecture -> computation graph -> fixed-size vector.

``trace_model`` (timm-aware torch.fx trace, module-tree fallback) -> ``to_networkx`` (op-kind labelled
DiGraph) -> ``Archi2Vec`` (Weisfeiler–Lehman subtree features, stable hashing). ``embed_timm`` does all
three for a timm name; ``load_catalogue`` / ``nearest`` use the shipped vectors of every timm architecture.
Importing this package imports nothing heavy: each name loads its module on first use (torch and timm
only for tracing, networkx only for embedding).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "build_catalogue": "archi2vec.catalogue", "load_catalogue": "archi2vec.catalogue",
    "catalogue_names": "archi2vec.catalogue",
    "lookup": "archi2vec.catalogue", "nearest": "archi2vec.catalogue",
    "Archi2Vec": "archi2vec.embed", "embed_model": "archi2vec.embed", "embed_timm": "archi2vec.embed",
    "environment": "archi2vec.versions", "Archi2VecError": "archi2vec.errors",
    "UnknownArchitectureError": "archi2vec.errors", "to_networkx": "archi2vec.graph",
    "TraceResult": "archi2vec.trace", "trace_model": "archi2vec.trace",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'archi2vec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
