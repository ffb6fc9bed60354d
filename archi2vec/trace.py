"""Architecture -> computation graph: a timm-aware ``torch.fx`` trace, or a module-tree fallback.

:func:`trace_model` takes a timm architecture name or any :class:`torch.nn.Module`. A timm name is built
with ``timm.create_model(name, pretrained=False)`` under ``torch.device("meta")`` (no weight memory, the
same graph), falling back to the CPU when a model's constructor needs real tensors. The model is put in
``eval()`` mode first, then traced by the tracer :func:`make_tracer` returns, a :class:`torch.fx.Tracer` that treats
timm's registered no-trace modules as leaves and auto-wraps timm's no-trace functions (the lists timm's
own FX feature extraction uses). If tracing fails, the result holds no fx graph and ``kind`` is
``"module_tree"``: :func:`archi2vec.graph.to_networkx` then builds a graph from ``named_modules()``.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from archi2vec.errors import Archi2VecError, UnknownArchitectureError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["TraceResult", "create_timm_model", "make_tracer", "resolve_arch", "trace_model"]

logger = logging.getLogger(__name__)

GraphKind = Literal["fx", "module_tree"]


@dataclass(frozen=True)
class TraceResult:
    """What :func:`trace_model` found.

    Attributes
    ----------
    graph : torch.fx.Graph or None
        The traced graph; ``None`` when tracing failed and ``kind == "module_tree"``.
    module : torch.nn.Module
        The (eval-mode) module that was traced; its parameters may live on the meta device.
    kind : {"fx", "module_tree"}
        Which graph :func:`archi2vec.graph.to_networkx` will build.
    arch : str or None
        The timm architecture name, or ``None`` for a module passed in directly.
    device : str
        Where the module's parameters live (``"meta"`` or ``"cpu"``).
    error : str or None
        Why fx tracing failed (``kind == "module_tree"`` only).
    """

    graph: torch.fx.Graph | None
    module: torch.nn.Module
    kind: GraphKind
    arch: str | None = None
    device: str = "cpu"
    error: str | None = None


def import_timm() -> Any:
    from archi2vec._torch_compat import ensure_torchvision

    ensure_torchvision()
    import timm

    return timm


def resolve_arch(name: str) -> str:
    """Return the timm architecture part of ``name`` (``"resnet50.a1_in1k"`` -> ``"resnet50"``).

    Raises
    ------
    UnknownArchitectureError
        If timm has no such architecture; the message lists close matches.
    """
    if not isinstance(name, str) or not name.strip():
        raise Archi2VecError(
            f"An architecture name must be a non-empty string. Got {name!r} instead."
        )
    timm = import_timm()
    arch = timm.models.split_model_name_tag(name.strip())[0]  # "arch.tag" -> "arch"
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
        hint = f"; close matches: {', '.join(close)}" if close else "; see timm.list_models()"
        raise UnknownArchitectureError(f"Unknown timm architecture {name!r}{hint}")
    return arch


def create_timm_model(arch: str, *, meta: bool = True) -> tuple[torch.nn.Module, str]:
    """Build ``timm.create_model(arch, pretrained=False).eval()``, on the meta device where possible.

    Returns
    -------
    module, device : (torch.nn.Module, str)
        The model and ``"meta"`` or ``"cpu"``.
    """
    import torch

    timm = import_timm()
    if meta:
        try:
            with torch.device("meta"):
                model = timm.create_model(arch, pretrained=False)
            return model.eval(), "meta"
        except Exception as exc:  # constructors that call .item()/.tolist() on tensors
            logger.debug("%s: building on the meta device failed (%s); using the CPU", arch, exc)
    model = timm.create_model(arch, pretrained=False)
    return model.eval(), "cpu"


def _notrace_lists() -> tuple[tuple[type, ...], tuple[Any, ...]]:
    """Timm's registered leaf modules and auto-wrapped functions (empty if timm is not installed)."""
    try:
        import_timm()
        from timm.layers import get_notrace_functions, get_notrace_modules
    except ImportError:  # pragma: no cover - timm is a dependency
        return (), ()
    modules = tuple(m for m in get_notrace_modules() if isinstance(m, type))
    functions = tuple(f for f in get_notrace_functions() if callable(f))
    return modules, functions


def _make_tracer_class() -> type:
    import torch.fx

    class _Tracer(torch.fx.Tracer):
        """A :class:`torch.fx.Tracer` that keeps timm's no-trace modules as leaves."""

        def __init__(
            self, leaf_modules: Sequence[type] = (), autowrap_functions: Sequence[Any] = ()
        ):
            super().__init__(autowrap_functions=tuple(autowrap_functions))
            self.leaf_modules = tuple(leaf_modules)

        def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
            if self.leaf_modules and isinstance(m, self.leaf_modules):
                return True
            return super().is_leaf_module(m, module_qualified_name)

    return _Tracer


_TRACER_CLASS: type | None = None


def make_tracer() -> Any:
    """Return a fresh :class:`torch.fx.Tracer` using timm's leaf-module and auto-wrap lists."""
    global _TRACER_CLASS
    if _TRACER_CLASS is None:
        _TRACER_CLASS = _make_tracer_class()
    leaves, functions = _notrace_lists()
    return _TRACER_CLASS(leaf_modules=leaves, autowrap_functions=functions)


def _module_device(module: torch.nn.Module) -> str:
    for tensor in module.parameters():
        return tensor.device.type
    for tensor in module.buffers():
        return tensor.device.type
    return "cpu"


def _propagate_shapes(
    module: torch.nn.Module, graph: torch.fx.Graph, input_size: Sequence[int]
) -> None:
    """Store ``tensor_meta`` (shapes) on the fx nodes by running the graph on an empty input."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    size = tuple(int(s) for s in input_size)
    if len(size) == 3:
        size = (1, *size)
    device = _module_device(module)
    try:
        gm = torch.fx.GraphModule(module, graph)
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(size, device=device))
    except Exception as exc:
        logger.info(
            "shape propagation at input size %s failed (%s); widths come from modules only",
            size,
            exc,
        )


def _as_module(model_or_name: str | torch.nn.Module) -> tuple[str | None, torch.nn.Module, str]:
    """``(timm architecture or None, module in eval mode, device)`` of what :func:`trace_model` was given."""
    import torch

    if isinstance(model_or_name, str):
        arch = resolve_arch(model_or_name)
        try:
            module, device = create_timm_model(arch)
        except Exception as exc:
            raise Archi2VecError(f"Could not build timm architecture {arch!r}: {exc}") from exc
    elif isinstance(model_or_name, torch.nn.Module):
        arch, module = None, model_or_name.eval()
        device = _module_device(module)
    else:
        raise Archi2VecError(
            "trace_model expects a timm architecture name or a torch.nn.Module. "
            f"Got {type(model_or_name).__name__} instead."
        )
    return arch, module, device


def trace_model(
    model_or_name: str | torch.nn.Module,
    *,
    input_size: Sequence[int] | None = None,
    fallback: bool = True,
) -> TraceResult:
    """Trace a timm architecture (by name) or any module into a graph.

    Parameters
    ----------
    model_or_name : str or torch.nn.Module
        A timm architecture name (``"resnet50"``; an ``arch.tag`` name loses its tag) or a module.
        Modules are switched to ``eval()`` mode (in place).
    input_size : sequence of int, optional
        ``(C, H, W)`` or ``(N, C, H, W)``. When given, the traced graph is run once on an empty tensor
        of that size (on the module's device, so free on meta) and each node records its output
        shape in ``node.meta["tensor_meta"]``. Not needed for the default embedding.
    fallback : bool, default True
        Return a ``"module_tree"`` result when fx tracing fails; with ``False`` the error is raised.

    Returns
    -------
    TraceResult

    Raises
    ------
    UnknownArchitectureError
        For an unknown timm name (the message lists close matches).
    Archi2VecError
        If the model cannot be built, or tracing fails and ``fallback`` is False.
    """
    arch, module, device = _as_module(model_or_name)
    try:
        graph = make_tracer().trace(module)
    except Exception as exc:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        if not fallback:
            raise Archi2VecError(
                f"fx tracing of {arch or type(module).__name__} failed: {message}"
            ) from exc
        logger.info(
            "%s: fx tracing failed (%s); using the module tree",
            arch or type(module).__name__,
            message,
        )
        return TraceResult(None, module, "module_tree", arch, device, message)
    if input_size is not None:
        _propagate_shapes(module, graph, input_size)
    return TraceResult(graph, module, "fx", arch, device, None)
