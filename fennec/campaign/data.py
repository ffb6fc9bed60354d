"""A campaign task's images: the task (example, folder or CSV), its class subset, the budget's image pool,
and the seeded held-out split every recipe of a job uses.

The pool (``budget.images`` class-balanced images, drawn with ``budget.data_seed``) does not depend on the
job's seed, so its features are extracted once per (model, task, image size) and shared by every recipe
and seed; the seed draws the stratified train / held-out split of the pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from fennec.campaign.spec import Budget, TaskSpec
from fennec.errors import SchemaError

logger = logging.getLogger(__name__)

__all__ = ["CampaignTask", "load_task", "subset_classes", "task_input_of"]


@dataclass(frozen=True)
class CampaignTask:
    """The pool of one task (uint8 images, labels in ``0..n_classes-1``) and one seed's split of it."""

    task_id: str
    images: list[npt.NDArray[np.uint8]]
    labels: npt.NDArray[np.int64]
    class_names: list[str]
    train_idx: npt.NDArray[np.intp]
    test_idx: npt.NDArray[np.intp]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def part(self, which: str) -> tuple[list[np.ndarray], np.ndarray]:
        """``(images, labels)`` of the ``"train"`` or ``"test"`` split."""
        idx = self.train_idx if which == "train" else self.test_idx
        return [self.images[i] for i in idx], self.labels[idx]


def subset_classes(n_classes: int, classes: int, seed: int, index: int) -> list[int]:
    """The ``index``-th class subset of size ``classes`` drawn with ``seed`` (distinct subsets for distinct
    indices, as long as there are enough of them)."""
    if classes >= n_classes:
        raise SchemaError(
            f"a subset of {classes} classes needs a task with more; this one has {n_classes}"
        )
    rng = np.random.default_rng([int(seed), 0xC1A55])
    seen: list[tuple[int, ...]] = []
    for _ in range(1000):
        pick = tuple(sorted(int(c) for c in rng.choice(n_classes, classes, replace=False)))
        if pick not in seen:
            seen.append(pick)
        if len(seen) > index:
            return list(seen[index])
    raise SchemaError(
        f"cannot draw {index + 1} distinct subsets of {classes} of {n_classes} classes"
    )


@lru_cache(maxsize=16)
def _base(kind: str, source: str) -> tuple[object, np.ndarray, tuple[str, ...]]:
    """``(loader, labels, class names)`` of a whole task: ``loader(indices)`` gives its uint8 images."""
    if kind == "example":
        from fennec.data.examples import load_example_task

        task = load_example_task(source)
        images = task.images
        return (
            (lambda idx: [np.asarray(images[i]) for i in idx]),
            task.labels,
            tuple(task.class_names),
        )
    from fennec.data.inputs import TaskInput

    ti = TaskInput.from_folder(source) if kind == "folder" else TaskInput.from_csv(source)

    def load(idx):
        return [np.asarray(img, dtype=np.uint8) for img in ti.load(np.asarray(idx, dtype=np.intp))]

    return load, ti.labels, tuple(ti.class_names)


def load_task(task: TaskSpec, budget: Budget, seed: int) -> CampaignTask:
    """The pool of ``task`` under ``budget`` and the split of ``seed`` (see the module docstring)."""
    from fennec.data.examples import balanced_subsample
    from fennec.train.data import stratified_split

    loader, labels, names = _base(task.kind, task.source)
    index = np.arange(len(labels))
    names = list(names)
    if task.classes is not None:
        keep = subset_classes(len(names), task.classes, task.subset_seed, task.subset_index)
        mask = np.isin(labels, keep)
        index = index[mask]
        remap = {c: k for k, c in enumerate(keep)}
        labels = np.array([remap[int(v)] for v in labels[mask]], dtype=np.int64)
        names = [names[c] for c in keep]
    per_class = max(1, budget.images // len(names))
    pick = balanced_subsample(labels, per_class, random_state=budget.data_seed)
    pool_labels = np.asarray(labels[pick], dtype=np.int64)
    if len(np.unique(pool_labels)) < 2:
        raise SchemaError(f"task {task.task_id}: fewer than 2 classes have images")
    train_idx, test_idx = stratified_split(pool_labels, budget.test_fraction, seed=seed)
    images = loader(index[pick])
    logger.debug(
        "task %s: %d images (%d classes), %d train / %d held out (seed %d)",
        task.task_id,
        len(images),
        len(names),
        len(train_idx),
        len(test_idx),
        seed,
    )
    return CampaignTask(task.task_id, images, pool_labels, names, train_idx, test_idx)


def task_input_of(task: TaskSpec, budget: Budget):
    """The pool of ``task`` (the budget's images, no split) as a :class:`~fennec.data.inputs.TaskInput`, e.g. for
    ``fennec embed-tasks --campaign``."""
    from fennec.data.inputs import TaskInput

    pool = load_task(task, budget, seed=budget.data_seed)
    return TaskInput(
        pool.class_names,
        list(pool.images),
        pool.labels,
        task.task_id,
        f"campaign task {task.task_id}",
    )
