"""Fan a function out over items as Ray tasks, or run it here: archi2vec's own small helper (archi2vec
does not depend on Fennec). Ray is imported only when asked for."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from archi2vec.errors import Archi2VecError

__all__ = ["map_unordered"]


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise Archi2VecError(
            '--ray needs Ray, which is not installed: pip install "ray>=2.9" (or "fennec[ray]")'
        ) from exc
    return ray


def map_unordered(
    fn: Callable[[Any, Any], Any],
    items: Iterable[Any],
    *,
    shared: Any = None,
    ray: bool = False,
    address: str | None = None,
    max_retries: int = 2,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(item, shared))`` for every item, in completion order on Ray (a local cluster
    unless ``address`` or ``$RAY_ADDRESS`` names one; a killed worker's item is retried ``max_retries``
    times), in order here. ``fn`` is expected to catch its own errors; an item whose Ray worker kept dying
    yields the Ray error instead of a value."""
    items = list(items)
    if not ray:
        for i, item in enumerate(items):
            yield i, fn(item, shared)
        return
    rt = _import_ray()
    started = not rt.is_initialized()
    if started:
        if address or os.environ.get("RAY_ADDRESS"):
            rt.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            rt.init(address="local", include_dashboard=False, log_to_driver=False)
    try:
        remote = rt.remote(max_retries=max_retries)(fn)
        ref = rt.put(shared)
        index = {remote.remote(item, ref): i for i, item in enumerate(items)}
        pending = list(index)
        while pending:
            done, pending = rt.wait(pending, num_returns=1)
            for r in done:
                try:
                    yield index[r], rt.get(r)
                except rt.exceptions.RayError as exc:  # the worker died more often than retried
                    yield index[r], exc
    finally:
        if started:
            rt.shutdown()
