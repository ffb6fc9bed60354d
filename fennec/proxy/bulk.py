"""Embed many tasks with one proxy, in this process or fanned out over a Ray cluster
(:func:`fennec.campaign.executor.map_jobs`), saving the embeddings file after every finished task (so an
interrupted run resumes). Used by ``fennec embed-tasks``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from fennec.errors import FennecError

logger = logging.getLogger(__name__)

__all__ = ["BulkTask", "embed_many", "embed_one"]


@dataclass(frozen=True)
class BulkTask:
    """A task to embed: a folder or ``path,label`` CSV (``path``), or a campaign task (``campaign``: a
    :class:`~fennec.campaign.spec.TaskSpec` with the campaign's budget)."""

    task_id: str
    path: str | None = None
    campaign: tuple[Any, Any] | None = None


@lru_cache(maxsize=2)
def _proxy(spec: str):
    from fennec.proxy import make_proxy

    return make_proxy(spec)


def embed_one(task: BulkTask, settings: dict[str, Any]) -> np.ndarray:
    """The embedding vector of one task (``settings``: proxy, use, max_images, seed, cache)."""
    from fennec.proxy import EmbeddingCache, embed_input
    from fennec.proxy.query import task_input

    if task.campaign is not None:
        from fennec.campaign.data import task_input_of

        query = task_input_of(*task.campaign)
    else:
        query = task_input(images=task.path, task_id=task.task_id)
    emb = embed_input(
        _proxy(settings["proxy"]),
        query,
        use=settings["use"],
        max_images=settings["max_images"],
        seed=settings["seed"],
        cache=EmbeddingCache(settings["cache"]),
    )
    return np.asarray(emb.vector)


def embed_many(
    tasks: Sequence[BulkTask],
    settings: dict[str, Any],
    *,
    done: dict[str, np.ndarray],
    save: Callable[[dict[str, np.ndarray]], None],
    ray: bool = False,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Embed the tasks not in ``done``; ``save(vectors)`` (``done`` and the new ones) after each. A failing
    task is an error naming it (after the others finished and were saved)."""
    from tqdm.auto import tqdm

    from fennec.campaign.executor import map_jobs

    vectors = dict(done)
    todo = [t for t in tasks if t.task_id not in vectors]
    order = list(done) + [t.task_id for t in todo]  # the file's order does not depend on completion order

    def ordered() -> dict[str, np.ndarray]:
        return {k: vectors[k] for k in order if k in vectors}

    failed: list[str] = []
    outcomes = map_jobs(embed_one, todo, shared=settings, ray=ray, address=address, workers=workers)
    for o in tqdm(
        outcomes, total=len(todo), desc="tasks", unit="task", disable=None if progress else True
    ):
        if not o.ok:
            failed.append(f"{todo[o.index].task_id}: {o.error}")
            continue
        vectors[todo[o.index].task_id] = o.value
        save(ordered())
    if failed:
        raise FennecError(f"{len(failed)} task(s) could not be embedded; first: {failed[0]}")
    return ordered()
