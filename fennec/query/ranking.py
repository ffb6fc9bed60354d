"""The typed result of :meth:`fennec.Recommender.query`: a ranking of models for one task.

A :class:`Ranking` holds a table with the columns :data:`COLUMNS`, sorted best first (a
:class:`~fennec.tabular.Table`; ``.frame`` is the same table as a pandas DataFrame), plus how the task was
placed. ``score`` is the value the ranking sorts by, in the task's units where they are known (e.g.
accuracy %, ``units="task"``), otherwise in standardised units (``units="standardised"``). ``source`` says
where each score comes from:

``measured``     a fine-tuning result, from the history or given by the user;
``subspace``     predicted by the transfer subspace for a task of the history;
``warm_start``   predicted from the user's measured scores on a new task;
``proxy``        predicted from the new task's proxy embedding (its images or class names);
``prior``        no information about the task (or a proxy query too far from every historical task);
``cold``         a model without history, placed from its side information (top-1, params, architecture);
``<metric>``     a model scored by a transferability metric on the task's images (e.g. ``logme``);
``unresolved``   a candidate name the model registry does not know (score NaN; ``note`` says why);
``...+side``     in a zoo of several campaigns, a fitted model's score blended with its side-information
                 prior (``measured+side``: it has measured results, shown in ``measured``).

``input`` is the name the user gave (candidates, observed scores), ``model_id`` the registry id it resolved
to. pykeen's prediction wrappers are the model for this class.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from fennec.errors import SchemaError
from fennec.tabular import Table, json_value, to_csv

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["task_id", "rank", "model_id", "score", "source", "measured", "std", "input", "note"]
PLACEMENTS = ("history", "warm_start", "proxy", "prior")


def rank_table(task_id: str, model_ids, score, source, *, measured=None, std=None, inputs=None,
               notes=None) -> Table:
    """The one sort/rank step: best score first, ties by model id, unscored (NaN) rows last."""
    ids = list(model_ids)
    n = len(ids)
    score = np.asarray(score, float)
    na = np.isnan(score)
    order = sorted(range(n), key=lambda i: (bool(na[i]), 0.0 if na[i] else -score[i], ids[i]))
    nan = np.full(n, np.nan)
    rows = Table({
        "task_id": [task_id] * n, "model_id": ids, "score": score,
        "source": [source] * n if isinstance(source, str) else list(source),
        "measured": nan if measured is None else np.asarray(measured, float),
        "std": nan if std is None else np.asarray(std, float),
        "input": ids if inputs is None else list(inputs),
        "note": [""] * n if notes is None else list(notes)}).take(order)
    rank = np.where(na[order], 0, np.arange(1, n + 1))
    return Table({c: rank if c == "rank" else rows[c] for c in COLUMNS})


@dataclass(frozen=True)
class Ranking:
    """Models ranked for one task, with how the task was placed.

    Attributes
    ----------
    table : Table
        :data:`COLUMNS`, best first (``rank`` 0 for unscored rows); a DataFrame given here is converted.
    frame : DataFrame
        The table as a pandas DataFrame (built on first access).
    task_id : str
    placement : str
        ``history`` (a task of the fitted history), ``warm_start``, ``proxy`` or ``prior``.
    units : str
        ``task`` (the task's own units, e.g. accuracy %) or ``standardised``.
    columns : tuple of str
        The history columns the ranking used (several for a task measured by several campaigns).
    nearest_task, nearest_distance, max_distance : optional
        For a proxy placement: the nearest historical task, the cosine distance to it, the threshold.
    proxy : dict, optional
        The identity of the proxy that embedded the task.
    how : str
        One sentence on how the task was placed (for people).
    fallback : str, optional
        ``prior`` when a proxy query was too far from every historical task; a metric name when
        candidates were scored by a transferability metric.
    resolved : dict
        ``{input name: model id}`` for every candidate or observed model the registry resolved.
    unresolved : dict
        ``{input name: reason}`` for the names it did not.
    notes : tuple of str
        Warnings worth showing with the ranking (units, resolution notes).
    details : dict
        Extra facts of the placement (metric calibration, warm-start weights, ...), JSON-able.
    offset, scale : float
        ``score = offset + scale * z``, ``z`` the standardised score of the placement (identity where the
        units are standardised already); :meth:`standardised` inverts it.
    """

    table: Table
    task_id: str
    placement: str
    units: str = "task"
    columns: tuple[str, ...] = ()
    nearest_task: str | None = None
    nearest_distance: float | None = None
    max_distance: float | None = None
    proxy: Mapping[str, Any] | None = None
    how: str = ""
    fallback: str | None = None
    resolved: Mapping[str, str] = field(default_factory=dict)
    unresolved: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    offset: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", Table.of(self.table))
        missing = [c for c in COLUMNS if c not in self.table]
        if missing:
            raise SchemaError(f"a Ranking table needs the columns {COLUMNS}; missing {missing}")
        if self.placement not in PLACEMENTS:
            raise SchemaError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")

    def __len__(self) -> int:
        return len(self.table)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The table as a pandas DataFrame (built once, on first access)."""
        return self.table.to_frame()

    def __repr__(self) -> str:
        return (f"Ranking(task_id={self.task_id!r}, placement={self.placement!r}, units={self.units!r}, "
                f"{len(self)} models)\n{self.frame.head(10).to_string(index=False)}")

    @property
    def model_ids(self) -> list[str]:
        return list(self.table["model_id"])

    def standardised(self) -> pd.Series:
        """Each model's score in the placement's standardised units (indexed like the frame)."""
        return (self.frame["score"] - self.offset) / (self.scale if self.scale else 1.0)

    def top(self, k: int) -> Ranking:
        """The first ``k`` rows (all of them when ``k`` exceeds the length)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise SchemaError(f"k must be a positive integer, got {k!r}")
        return replace(self, table=self.table.head(int(k)))

    def to_frame(self) -> pd.DataFrame:
        """A copy of the ranking table."""
        return self.frame.copy()

    def info(self) -> dict[str, Any]:
        """Everything but the table, JSON-able."""
        return {"task_id": self.task_id, "placement": self.placement, "units": self.units,
                "columns": list(self.columns), "nearest_task": self.nearest_task,
                "nearest_distance": self.nearest_distance, "max_distance": self.max_distance,
                "proxy": dict(self.proxy) if self.proxy else None, "how": self.how, "fallback": self.fallback,
                "resolved": dict(self.resolved), "unresolved": dict(self.unresolved), "notes": list(self.notes),
                "details": _jsonable(dict(self.details)), "offset": self.offset, "scale": self.scale}

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str | None:
        """The table as CSV: returned as text, or written (atomically) to ``path``."""
        text = to_csv(self.table)
        if path is None:
            return text
        from fennec.artifacts import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return None

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str | None:
        """``{"ranking": [rows], **info()}`` as JSON: returned as text, or written (atomically) to ``path``."""
        rows = [{k: json_value(v) for k, v in row.items()} for row in self.table.records()]
        text = json.dumps({**self.info(), "ranking": rows}, indent=None, allow_nan=False, default=str) + "\n"
        if path is None:
            return text
        from fennec.artifacts import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
