"""One way to fan a function out over items: in this process, or as Ray tasks on a cluster.

:func:`map_jobs` yields an :class:`Outcome` per item as it finishes (in order in-process, in completion
order on Ray). An exception of ``fn`` is an outcome with its error line, never a crash of the caller. On
Ray a worker killed while running an item (out of memory, a node lost, ``kill -9``) is retried up to
``max_retries`` times by Ray itself; an item still failing then is an outcome with the error.

Ray is imported here only, and only for ``ray=True``: without it installed, the in-process path works and
the Ray path is one error line naming ``pip install "fennec[ray]"``. ``ray.init()`` starts a local cluster
(``workers`` CPUs) unless ``address`` (or ``$RAY_ADDRESS``) names one to join (``"auto"``: the cluster
started on this machine with ``ray start --head``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fennec._optional import MissingPackageError

logger = logging.getLogger(__name__)

__all__ = ["Outcome", "error_line", "import_ray", "map_jobs"]

RAY_INSTALL = 'pip install "fennec[ray]"'


@dataclass(frozen=True)
class Outcome:
    """The result of one item: ``value`` when it succeeded, else ``error`` (one line)."""

    index: int
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def error_line(exc: BaseException, limit: int = 500) -> str:
    """``Type: message`` on one line (a Ray task error shows the exception it wraps)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text[:limit]


def import_ray():
    """``ray``, or :class:`~fennec._optional.MissingPackageError` naming the install command."""
    try:
        import ray
    except ImportError as exc:
        raise MissingPackageError(
            f"the Ray runner needs Ray, which is not installed: {RAY_INSTALL}"
        ) from exc
    return ray


def map_jobs(
    fn: Callable[..., Any],
    items: Iterable[Any],
    *,
    shared: Any = None,
    ray: bool = False,
    address: str | None = None,
    workers: int | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    max_retries: int = 2,
) -> Iterator[Outcome]:
    """Call ``fn(item, shared)`` (``fn(item)`` when ``shared`` is None) for every item; yield outcomes.

    ``shared`` is sent once (a Ray object) rather than with every item. ``workers``: CPUs of a local Ray
    cluster started here (default: all); ``num_cpus`` / ``num_gpus``: what each call asks for;
    ``max_retries``: Ray's retries of a call whose worker died.
    """
    items = list(items)
    if not ray:
        yield from _local(fn, items, shared)
        return
    yield from _ray(
        fn,
        items,
        shared,
        address=address,
        workers=workers,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        max_retries=max_retries,
    )


def _call(fn: Callable[..., Any], item: Any, shared: Any) -> Any:
    return fn(item) if shared is None else fn(item, shared)


def _apply(item: Any, packed: tuple[Callable[..., Any], Any]) -> Any:
    fn, shared = packed
    return _call(fn, item, shared)


def _local(fn, items: list[Any], shared: Any) -> Iterator[Outcome]:
    for i, item in enumerate(items):
        try:
            value = _call(fn, item, shared)
        except Exception as exc:  # one failing item must not stop the others
            logger.debug("item %d failed", i, exc_info=True)
            yield Outcome(i, error=error_line(exc))
        else:
            yield Outcome(i, value=value)


def start_ray(*, address: str | None = None, workers: int | None = None) -> bool:
    """:func:`archi2vec.parallel.start_ray`, with Fennec's install message when Ray is missing."""
    from archi2vec.parallel import start_ray as start

    import_ray()
    return start(address=address, workers=workers)


def _ray(fn, items: list[Any], shared: Any, *, address, workers, num_cpus, num_gpus, max_retries):
    from archi2vec.parallel import map_unordered

    import_ray()  # Fennec's message when Ray is missing
    for i, res in map_unordered(_apply, items, shared=(fn, shared), ray=True, address=address, workers=workers,
                                num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries):
        yield Outcome(i, error=error_line(res)) if isinstance(res, BaseException) else Outcome(i, value=res)
