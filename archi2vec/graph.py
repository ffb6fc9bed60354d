"""Computation graph -> ``networkx.DiGraph`` with op-kind labels and width/kernel attributes.

Nodes are numbered ``0..n-1`` in topological (execution) order. Every node has

- ``label``: the op kind: the module class name (``call_module``), the function or method name
  (``call_function`` / ``call_method``, e.g. ``add``, ``flatten``, ``getattr:shape``), ``get_attr``,
  ``input`` or ``output``;
- ``op``: the fx opcode (``placeholder``, ``call_module``, ... ; ``module`` in a module-tree graph);

and, where the module or tensor tells us, ``width`` (output channels / features / normalised size),
``in_width``, ``kernel_size``, ``stride``, ``groups`` and ``shape`` (a tensor shape). Shapes are read
from module attributes and parameter shapes, which the meta device keeps. Edges carry ``multiplicity``:
the number of times the source value appears in the target's arguments (``x + x`` gives 2), because a
``DiGraph`` keeps one edge per pair and networkx's WL hash refuses multigraphs.

Module *names* (qualified names, fx node names) are never stored, so renaming a submodule changes
nothing. A ``module_tree`` graph (the fallback when fx fails) has an ``input`` node, one node per
module in ``named_modules()`` order with ``kind="child"`` edges from parent to child, ``kind="next"``
edges chaining the leaf modules in registration order, and an ``output`` node.
"""

from __future__ import annotations

import logging
import operator
from collections import Counter
from typing import TYPE_CHECKING, Any

import networkx as nx

from archi2vec.errors import Archi2VecError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from archi2vec.trace import TraceResult

__all__ = ["module_attributes", "to_networkx"]

logger = logging.getLogger(__name__)

_WIDTH_ATTRS = (
    "out_channels",
    "out_features",
    "embedding_dim",
    "num_features",
    "num_channels",
    "normalized_shape",
    "embed_dim",
    "dim",
    "hidden_size",
)
_IN_WIDTH_ATTRS = ("in_channels", "in_features")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) for v in value):
        return int(value[-1])
    return None


def _as_tuple(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return (value,)
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) for v in value):
        return tuple(int(v) for v in value)
    return None


def module_attributes(module: torch.nn.Module) -> dict[str, Any]:
    """Width, kernel, stride and groups of one module, from its attributes and own parameters.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    dict
        Any of ``width``, ``in_width``, ``kernel_size``, ``stride``, ``groups`` that could be found.
    """
    attrs: dict[str, Any] = {}
    for name in _WIDTH_ATTRS:
        width = _as_int(getattr(module, name, None))
        if width is not None and width > 0:
            attrs["width"] = width
            break
    else:
        for param in module.parameters(recurse=False):
            if param.dim() >= 1:
                attrs["width"] = int(param.shape[0])
                break
    for name in _IN_WIDTH_ATTRS:
        width = _as_int(getattr(module, name, None))
        if width is not None and width > 0:
            attrs["in_width"] = width
            break
    for name in ("kernel_size", "stride"):
        value = _as_tuple(getattr(module, name, None))
        if value is not None:
            attrs[name] = value
    groups = getattr(module, "groups", None)
    if isinstance(groups, int) and not isinstance(groups, bool):
        attrs["groups"] = groups
    return attrs


def _fetch_attr(root: torch.nn.Module, target: str) -> Any:
    obj: Any = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _function_label(node: torch.fx.Node) -> str:
    target = node.target
    if target is getattr and len(node.args) >= 2 and isinstance(node.args[1], str):
        return f"getattr:{node.args[1]}"
    if target is operator.getitem:
        return "getitem"
    name = getattr(target, "__name__", None) or type(target).__name__
    return str(name)


def _shape_of(node: torch.fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        return None


def _fx_node_attributes(node: torch.fx.Node, root: torch.nn.Module) -> dict[str, Any]:
    op = node.op
    attrs: dict[str, Any] = {"op": op}
    if op == "placeholder":
        attrs["label"] = "input"
    elif op == "output":
        attrs["label"] = "output"
    elif op == "call_module":
        sub = root.get_submodule(str(node.target))
        attrs["label"] = type(sub).__name__
        attrs.update(module_attributes(sub))
    elif op == "call_function":
        attrs["label"] = _function_label(node)
    elif op == "call_method":
        attrs["label"] = str(node.target)
    elif op == "get_attr":
        attrs["label"] = "get_attr"
        try:
            value = _fetch_attr(root, str(node.target))
        except AttributeError:
            value = None
        shape = getattr(value, "shape", None)
        if shape is not None:
            attrs["shape"] = tuple(int(s) for s in shape)
            if len(shape) >= 1:
                attrs["width"] = int(shape[-1])
    else:  # pragma: no cover - fx has no other opcodes
        attrs["label"] = op
    shape = _shape_of(node)
    if shape is not None:
        attrs["shape"] = shape
        if "width" not in attrs and len(shape) >= 2:
            attrs["width"] = shape[1] if len(shape) == 4 else shape[-1]
    return attrs


def _input_counts(node: torch.fx.Node) -> Counter:
    import torch.fx

    counts: Counter = Counter()

    def visit(arg: torch.fx.Node) -> torch.fx.Node:
        counts[arg] += 1
        return arg

    torch.fx.node.map_arg(node.args, visit)
    torch.fx.node.map_arg(node.kwargs, visit)
    return counts


def _fx_to_networkx(graph: torch.fx.Graph, root: torch.nn.Module) -> nx.DiGraph:
    index: dict[Any, int] = {}
    g = nx.DiGraph()
    for i, node in enumerate(graph.nodes):  # fx keeps nodes in a topological order
        index[node] = i
        g.add_node(i, **_fx_node_attributes(node, root))
    for node in graph.nodes:
        for src, count in _input_counts(node).items():
            g.add_edge(index[src], index[node], multiplicity=int(count), kind="data")
    return g


def _module_tree_to_networkx(root: torch.nn.Module) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_node(0, op="placeholder", label="input")
    index: dict[int, int] = {}
    leaves: list[int] = []
    for _, module in root.named_modules():  # registration order; names are not used
        i = len(index) + 1
        index[id(module)] = i
        g.add_node(i, op="module", label=type(module).__name__, **module_attributes(module))
        if next(module.children(), None) is None:
            leaves.append(i)
    for _, module in root.named_modules():
        parent = index[id(module)]
        for child in module.children():
            child_index = index.get(id(child))
            if child_index is not None and child_index != parent:
                g.add_edge(parent, child_index, multiplicity=1, kind="child")
    out = len(index) + 1
    g.add_node(out, op="output", label="output")
    chain = [0, *leaves, out]
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        if g.has_edge(a, b):
            g.edges[a, b]["multiplicity"] += 1
        else:
            g.add_edge(a, b, multiplicity=1, kind="next")
    return g


def to_networkx(trace_result: TraceResult) -> nx.DiGraph:
    """Turn a :class:`~archi2vec.trace.TraceResult` into a labelled ``networkx.DiGraph``.

    Parameters
    ----------
    trace_result : TraceResult
        From :func:`archi2vec.trace_model`.

    Returns
    -------
    networkx.DiGraph
        Nodes ``0..n-1`` in topological order with ``label``/``op`` and, where known, ``width``,
        ``in_width``, ``kernel_size``, ``stride``, ``groups``, ``shape``; edges with
        ``multiplicity``. ``G.graph`` holds ``kind`` and ``arch``.
    """
    kind = getattr(trace_result, "kind", None)
    if kind == "fx" and trace_result.graph is not None:
        g = _fx_to_networkx(trace_result.graph, trace_result.module)
    elif kind == "module_tree":
        g = _module_tree_to_networkx(trace_result.module)
    else:
        raise Archi2VecError(
            f"to_networkx expects a TraceResult with kind 'fx' or 'module_tree'. Got {trace_result!r} instead."
        )
    g.graph["kind"] = kind
    g.graph["arch"] = trace_result.arch
    logger.debug(
        "%s: %s graph with %d nodes, %d edges",
        trace_result.arch,
        kind,
        g.number_of_nodes(),
        g.number_of_edges(),
    )
    return g
