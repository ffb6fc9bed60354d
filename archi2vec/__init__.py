"""archi2vec: model architecture -> computation graph -> fixed-size vector.

``trace_model`` (timm-aware torch.fx trace, module-tree fallback) -> ``to_networkx`` (op-kind labelled
DiGraph) -> ``Archi2Vec`` (Weisfeiler–Lehman subtree features, stable hashing). ``embed_timm`` does all
three for a timm name; ``load_catalogue`` / ``nearest`` use the shipped vectors of every timm architecture.
Importing this package does not import torch or timm; tracing does.
"""

from __future__ import annotations

__version__ = "0.1.0"

from archi2vec.catalogue import build_catalogue as build_catalogue
from archi2vec.catalogue import load_catalogue as load_catalogue
from archi2vec.catalogue import lookup as lookup
from archi2vec.catalogue import nearest as nearest
from archi2vec.embed import Archi2Vec as Archi2Vec
from archi2vec.embed import embed_model as embed_model
from archi2vec.embed import embed_timm as embed_timm
from archi2vec.embed import environment as environment
from archi2vec.errors import Archi2VecError as Archi2VecError
from archi2vec.errors import UnknownArchitectureError as UnknownArchitectureError
from archi2vec.graph import to_networkx as to_networkx
from archi2vec.trace import TraceResult as TraceResult
from archi2vec.trace import trace_model as trace_model

__all__ = [
    "Archi2Vec",
    "Archi2VecError",
    "TraceResult",
    "UnknownArchitectureError",
    "__version__",
    "build_catalogue",
    "embed_model",
    "embed_timm",
    "environment",
    "load_catalogue",
    "lookup",
    "nearest",
    "to_networkx",
    "trace_model",
]
