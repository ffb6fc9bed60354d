"""Fan a function out over items as Ray tasks, or run it here: the one Ray mechanism of the project.

archi2vec does not depend on Fennec, so it lives here; :mod:`fennec.campaign.executor` wraps it with
Fennec's outcomes and error messages. Ray is imported only when asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from archi2vec.errors import Archi2VecError

logger = logging.getLogger(__name__)

__all__ = ["map_unordered", "start_ray"]


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise Archi2VecError(
            '--ray needs Ray, which is not installed: pip install "ray>=2.9" (or "fennec[ray]")'
        ) from exc
    return ray


def start_ray(*, address: str | None = None, workers: int | None = None) -> bool:
    """Connect to (``address`` / ``$RAY_ADDRESS``; ``"auto"``: the one ``ray start --head`` started here) or
    start a local Ray cluster of ``workers`` CPUs (default: all), unless this process is connected already;
    returns whether it did (and so should shut it down)."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, **options)
    else:  # "local": a new cluster even where a stopped one left its address file behind
        ray.init(address="local", num_cpus=workers, **options)
    logger.info("Ray: %s CPU(s) in the cluster", ray.cluster_resources().get("CPU"))
    return True


def map_unordered(
    fn: Callable[[Any, Any], Any],
    items: Iterable[Any],
    *,
    shared: Any = None,
    ray: bool = False,
    address: str | None = None,
    workers: int | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    max_retries: int = 2,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(item, shared))`` for every item: in order here; in completion order on Ray
    (:func:`start_ray`; ``shared`` sent once as a Ray object; each call asks for ``num_cpus`` / ``num_gpus``;
    a killed worker's item is retried ``max_retries`` times). On Ray an item whose call raised, or whose
    worker kept dying, yields the Ray error instead of a value; here an exception propagates."""
    items = list(items)
    if not ray:
        for i, item in enumerate(items):
            yield i, fn(item, shared)
        return
    rt = _import_ray()
    started = start_ray(address=address, workers=workers)
    try:
        remote = rt.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(fn)
        ref = rt.put(shared)
        index = {remote.remote(item, ref): i for i, item in enumerate(items)}
        pending = list(index)
        while pending:
            done, pending = rt.wait(pending, num_returns=1)
            for r in done:
                try:
                    yield index[r], rt.get(r)
                except rt.exceptions.RayError as exc:
                    yield index[r], exc
    finally:
        if started:
            rt.shutdown()
