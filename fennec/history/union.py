"""One zoo from several histories: canonical model ids, canonical task ids, one column per (task, campaign).

Each history's model ids are resolved through the model registry (a shipped history by its own table of
ids, any other by the registry's rules), so the same weights measured by two histories are one row. With
one history a column is a task (``cifar100``); with several, every (task, history) pair is its own
column (``cifar100@sfda``, ``cifar100@logme``): two campaigns of the same task disagree (Kendall ~0.56
between two campaigns of the same models), and the shared models tie their columns together.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from fennec.errors import SchemaError
from fennec.tabular import Table

if TYPE_CHECKING:
    import pandas as pd

    from fennec.history.table import History

logger = logging.getLogger(__name__)

COLUMN_SEP = "@"


@dataclass(frozen=True)
class Columns:
    """The columns of a fitted zoo: ``table`` has ``column_id, task_id, history, metric`` in column order (a
    :class:`~fennec.tabular.Table`; a DataFrame given here is converted); ``frame`` is it as a DataFrame."""

    table: Table

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", Table.of(self.table))

    @cached_property
    def frame(self) -> pd.DataFrame:
        return self.table.to_frame()

    @property
    def ids(self) -> list[str]:
        return list(self.table["column_id"])

    def of_task(self, task_id: str) -> list[int]:
        """Positions of the columns that measure ``task_id`` (a canonical task id), any campaign."""
        return [i for i, t in enumerate(self.table["task_id"]) if t == task_id]

    def task_of(self, column_id: str) -> str:
        for c, t in zip(self.table["column_id"], self.table["task_id"], strict=True):
            if c == column_id:
                return str(t)
        return column_id

    @property
    def task_ids(self) -> list[str]:
        return list(dict.fromkeys(self.table["task_id"]))

    @property
    def histories(self) -> list[str]:
        return list(dict.fromkeys(self.table["history"]))


def history_label(history: History) -> str:
    """A short name for a history in column ids: the shipped name, or the file's stem."""
    name = history.name
    return Path(name).stem if (name.endswith((".csv", ".gz")) or "/" in name) else name


def combine(histories: Sequence[History], registry, *, canonical_task=None) -> tuple[History, Columns]:
    """Resolve model and task ids and join ``histories`` into one history whose tasks are the columns.

    Returns the joined :class:`History` (its ``task_id`` is the column id) and the :class:`Columns` table.
    ``registry`` is a :class:`~fennec.zoo.registry.ModelRegistry`; ``canonical_task`` maps a task id to its
    canonical benchmark id (default: the shipped aliases).
    """
    import pandas as pd

    from fennec.history.table import History, HistoryWarning

    if not histories:
        raise SchemaError("no history given")
    if canonical_task is None:
        from fennec.data.shipped import canonical_task_id as canonical_task
    labels = [history_label(h) for h in histories]
    if len(set(labels)) != len(labels):
        raise SchemaError(f"two histories share the name(s) {sorted({x for x in labels if labels.count(x) > 1})}")
    many = len(histories) > 1
    frames, renamed = [], 0
    for h, label in zip(histories, labels, strict=True):
        local = registry.history_models(label)
        f = h.frame.copy()
        ids = [local.get(m) or registry.canonical(m) for m in f["model_id"]]
        renamed += sum(a != b for a, b in zip(ids, f["model_id"], strict=True))
        f["model_id"] = ids
        f["task_id"] = [canonical_task(t) for t in f["task_id"]]
        f["history"] = label
        f["column_id"] = f["task_id"] + COLUMN_SEP + label if many else f["task_id"]
        frames.append(f)
    long = pd.concat(frames, ignore_index=True)
    cols = (long[["column_id", "task_id", "history", "metric"]].drop_duplicates("column_id")
            .sort_values("column_id", kind="stable").reset_index(drop=True))
    frame = long.drop(columns=["task_id", "history"]).rename(columns={"column_id": "task_id"})
    name = "+".join(labels) if many else histories[0].name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HistoryWarning)  # the inputs were validated (and warned about) already
        joined = History.from_frame(frame, name=name, sha256=_joint_sha(histories) if many else histories[0].sha256)
    cols = cols[cols["column_id"].isin(joined.task_ids)].reset_index(drop=True)
    if renamed:
        logger.info("%s: %d cell(s) had their model id resolved to a canonical registry id", name, renamed)
    return joined, Columns(cols)


def _joint_sha(histories: Sequence[History]) -> str:
    import hashlib

    h = hashlib.sha256()
    for hist in histories:
        h.update(f"{history_label(hist)}:{hist.sha256};".encode())
    return h.hexdigest()
