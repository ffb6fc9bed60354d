"""Graph -> fixed-size vector: Weisfeiler–Lehman subtree features, hashed with a stable hash.

:class:`Archi2Vec` is a Graph2Vec-style encoder. Each node gets a label string (op kind, and with
``node_label="op_shape"`` a coarse width bucket, kernel, stride and grouping); networkx's
``weisfeiler_lehman_subgraph_hashes`` gives every node one WL "word" per depth ``0..iterations``; the
words of a graph are counted, weighted by sublinear tf (``1 + log(count)``), and hashed with
``hashlib.blake2b`` into ``n_features`` signed buckets (the hashing trick); the vector is L2-normalised.

Design choice: the encoder is **stateless** (like scikit-learn's ``HashingVectorizer``). ``fit``
validates parameters and learns nothing, so a new architecture's vector is comparable with the shipped
catalogue without refitting, vectors are reproducible from the config alone, and the learned part lives
downstream (the regression from these vectors to Fennec's model vectors, fit on models with history).
IDF or SVD fitted on the timm zoo would tie every vector to one corpus snapshot.

Edge multiplicity (``x + x``) is folded into the label of the consuming node (``|dup2``) rather than
passed as ``edge_attr``: with ``edge_attr`` set, networkx (3.6) drops its successor/predecessor prefixes
for directed graphs, so in- and out-neighbours could no longer be told apart.

Nothing here uses Python's salted ``hash()``: vectors are identical across processes.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import Counter
from collections.abc import Iterable
from numbers import Integral
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, TransformerMixin

from archi2vec.errors import Archi2VecError
from archi2vec.versions import environment as environment

__all__ = ["NODE_LABELS", "Archi2Vec", "embed_model", "embed_timm", "environment", "node_label"]

NODE_LABELS = ("op", "op_shape")
_PERSON = b"archi2vec-v1"


def _bucket(width: int) -> int:
    """Octave bucket of a width: ``round(log2(width))`` (384 -> 9, 768 -> 10, 2048 -> 11)."""
    return int(round(math.log2(width))) if width > 0 else 0


def _groups_tag(attrs: dict[str, Any]) -> str | None:
    groups = attrs.get("groups")
    if not isinstance(groups, int) or groups <= 1:
        return None
    width, in_width = attrs.get("width"), attrs.get("in_width")
    if groups == in_width and (width is None or width % groups == 0):
        return "dw"
    return "grp"


def node_label(
    attrs: dict[str, Any], *, mode: str = "op_shape", multiplicities: Iterable[int] = ()
) -> str:
    """The WL start label of one node.

    Parameters
    ----------
    attrs : dict
        Node attributes from :func:`archi2vec.to_networkx` (``label`` required).
    mode : {"op", "op_shape"}
        ``"op"``: op kind only. ``"op_shape"``: plus ``w<round(log2 width)>``, ``k<kernel>``,
        ``s<stride>`` and ``g<dw|grp>`` where known.
    multiplicities : iterable of int
        Multiplicities of the node's incoming edges; those above 1 are appended (``|dup2``).
    """
    parts = [str(attrs.get("label", attrs.get("op", "?")))]
    if mode == "op_shape":
        width = attrs.get("width")
        if isinstance(width, (int, np.integer)) and width > 0:
            parts.append(f"w{_bucket(int(width))}")
        kernel = attrs.get("kernel_size")
        if kernel and any(k != 1 for k in kernel):
            parts.append("k" + "x".join(str(k) for k in kernel))
        stride = attrs.get("stride")
        if stride and any(s != 1 for s in stride):
            parts.append("s" + "x".join(str(s) for s in stride))
        groups = _groups_tag(attrs)
        if groups:
            parts.append(f"g{groups}")
    dups = sorted(int(m) for m in multiplicities if int(m) > 1)
    if dups:
        parts.append("dup" + ",".join(map(str, dups)))
    return "|".join(parts)


def _stable_index(word: str, n_features: int) -> tuple[int, float]:
    digest = hashlib.blake2b(word.encode("utf-8"), digest_size=16, person=_PERSON).digest()
    index = int.from_bytes(digest[:8], "little") % n_features
    sign = 1.0 if digest[8] & 1 else -1.0
    return index, sign


class Archi2Vec(TransformerMixin, BaseEstimator):
    """Weisfeiler–Lehman subtree features of architecture graphs, hashed to ``n_features`` dimensions.

    Parameters
    ----------
    n_features : int, default 256
        Output dimension (number of hash buckets).
    iterations : int, default 3
        WL depth; words of depths ``0..iterations`` are counted.
    node_label : {"op_shape", "op"}, default "op_shape"
        Start labels: op kind plus width bucket / kernel / stride / grouping, or op kind only
        (``"op"`` makes vit_base and deit_small identical: same topology, different widths).

    Notes
    -----
    Stateless: ``fit`` only validates parameters; ``transform`` works without it. Input graphs are
    ``networkx.DiGraph`` objects from :func:`archi2vec.to_networkx`. Output rows are float32 with unit
    L2 norm (an empty graph gives zeros), so cosine similarity is a dot product.

    Examples
    --------
    >>> from archi2vec import Archi2Vec, to_networkx, trace_model
    >>> g = to_networkx(trace_model("resnet18"))
    >>> Archi2Vec().fit_transform([g]).shape
    (1, 256)
    """

    def __init__(self, n_features: int = 256, iterations: int = 3, node_label: str = "op_shape"):
        self.n_features = n_features
        self.iterations = iterations
        self.node_label = node_label

    def _validate(self) -> None:
        name = type(self).__name__
        if (
            not isinstance(self.n_features, Integral)
            or isinstance(self.n_features, bool)
            or self.n_features < 2
        ):
            raise Archi2VecError(
                f"The 'n_features' parameter of {name} must be an int >= 2. Got {self.n_features!r} instead."
            )
        if (
            not isinstance(self.iterations, Integral)
            or isinstance(self.iterations, bool)
            or self.iterations < 1
        ):
            raise Archi2VecError(
                f"The 'iterations' parameter of {name} must be an int >= 1. Got {self.iterations!r} instead."
            )
        if self.node_label not in NODE_LABELS:
            raise Archi2VecError(
                f"The 'node_label' parameter of {name} must be one of {list(NODE_LABELS)}. "
                f"Got {self.node_label!r} instead."
            )

    def fit(self, graphs: Iterable[nx.DiGraph] | None = None, y: Any = None) -> Archi2Vec:
        """Validate the parameters (nothing is learned); return ``self``."""
        self._validate()
        self.n_features_out_ = int(self.n_features)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True  # stateless, like HashingVectorizer

    def config(self) -> dict[str, Any]:
        """The parameters plus the hashing scheme, for manifests."""
        return {
            "n_features": int(self.n_features),
            "iterations": int(self.iterations),
            "node_label": str(self.node_label),
            "tf": "sublinear",
            "hash": f"blake2b-128 person={_PERSON.decode()} index=u64le%n sign=bit0(byte8)",
            "width_bucket": "round(log2)",
            "norm": "l2",
        }

    def words(self, graph: nx.DiGraph) -> Counter:
        """Count the WL words of one graph (``"<depth>:<hash>"``)."""
        self._validate()
        if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
            raise Archi2VecError(
                f"Archi2Vec expects networkx.DiGraph objects from archi2vec.to_networkx. "
                f"Got {type(graph).__name__} instead."
            )
        if graph.number_of_nodes() == 0:
            return Counter()
        labelled = nx.DiGraph()
        for node, attrs in graph.nodes(data=True):
            mults = [d.get("multiplicity", 1) for _, _, d in graph.in_edges(node, data=True)]
            labelled.add_node(
                node, wl=node_label(attrs, mode=self.node_label, multiplicities=mults)
            )
        labelled.add_edges_from(graph.edges())
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="The hashes produced for directed graphs changed"
            )
            hashes = nx.weisfeiler_lehman_subgraph_hashes(
                labelled,
                node_attr="wl",
                iterations=int(self.iterations),
                include_initial_labels=True,
            )
        counts: Counter = Counter()
        for per_node in hashes.values():
            for depth, h in enumerate(per_node):
                counts[f"{depth}:{h}"] += 1
        return counts

    def transform_one(self, graph: nx.DiGraph) -> npt.NDArray[np.float32]:
        """Vector of one graph, shape ``(n_features,)``."""
        n = int(self.n_features)
        vec = np.zeros(n, dtype=np.float64)
        for word, count in sorted(self.words(graph).items()):
            index, sign = _stable_index(word, n)
            vec[index] += sign * (1.0 + math.log(count))
        norm = float(np.linalg.norm(vec))
        if norm > 0:
            vec /= norm
        return vec.astype(np.float32)

    def transform(self, graphs: Iterable[nx.DiGraph]) -> npt.NDArray[np.float32]:
        """Vectors of several graphs, shape ``(n_graphs, n_features)``, float32, unit rows."""
        self._validate()
        if isinstance(graphs, nx.Graph):
            raise Archi2VecError(
                "transform expects a list of graphs; wrap a single graph as [graph]."
            )
        rows = [self.transform_one(g) for g in graphs]
        if not rows:
            return np.zeros((0, int(self.n_features)), dtype=np.float32)
        return np.stack(rows)


def embed_model(
    model_or_name: Any,
    *,
    n_features: int = 256,
    iterations: int = 3,
    node_label: str = "op_shape",
) -> npt.NDArray[np.float32]:
    """Trace, graph and embed one timm architecture name or ``torch.nn.Module``: ``(n_features,)``."""
    from archi2vec.graph import to_networkx
    from archi2vec.trace import trace_model

    encoder = Archi2Vec(n_features=n_features, iterations=iterations, node_label=node_label).fit()
    return encoder.transform_one(to_networkx(trace_model(model_or_name)))


def embed_timm(
    name: str,
    *,
    n_features: int = 256,
    iterations: int = 3,
    node_label: str = "op_shape",
) -> npt.NDArray[np.float32]:
    """The archi2vec vector of a timm architecture, ``(n_features,)`` float32, unit norm.

    ``name`` may carry a pretrained tag (``"resnet50.a1_in1k"``); only the architecture counts. With the
    default parameters the result equals the shipped catalogue row when the library versions recorded
    in the catalogue's manifest match (see :func:`archi2vec.load_catalogue`).

    Raises
    ------
    UnknownArchitectureError
        If timm does not know the architecture (the message lists close matches).
    """
    if not isinstance(name, str):
        raise Archi2VecError(
            f"embed_timm expects a timm architecture name. Got {type(name).__name__} instead."
        )
    return embed_model(name, n_features=n_features, iterations=iterations, node_label=node_label)
