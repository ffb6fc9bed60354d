"""Close the loop: append a measured fine-tuning result to a long-format history CSV.

The history format is :mod:`fennec.history.table`'s (``model_id,task_id,score,metric,source,campaign``).
A row is validated (ids non-empty, finite score, known metric, one metric per task), a repeated
``(model_id, task_id, metric)`` is refused unless ``replace=True``, and the file is rewritten
atomically (temporary file + rename), keeping its other rows, their order and any extra columns.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from fennec.artifacts import atomic_path
from fennec.errors import SchemaError
from fennec.history.table import KNOWN_METRICS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS

logger = logging.getLogger(__name__)

__all__ = ["add_history_row", "row_from_run"]


def add_history_row(
    path: str | os.PathLike[str],
    *,
    model_id: str,
    task_id: str,
    score: float,
    metric: str = "top1",
    source: str = "btune",
    campaign: str = "",
    replace: bool = False,
) -> pd.DataFrame:
    """Append one measured result to a history CSV (created if missing); returns the new table.

    Parameters
    ----------
    path : path
        Long-format history CSV.
    model_id, task_id : str
    score : float
        In the metric's unit (``top1``: percent).
    metric : str, default="top1"
        One of :data:`fennec.history.table.KNOWN_METRICS`.
    source, campaign : str
        Provenance (e.g. ``btune``, the run directory name).
    replace : bool, default=False
        Replace an existing row for the same ``(model_id, task_id, metric)`` instead of refusing.

    Raises
    ------
    SchemaError
        Empty ids, a non-finite score, an unknown metric, a task already measured with another
        metric, a duplicate row (without ``replace``), or an unreadable / malformed CSV.
    """
    path = Path(path)
    model_id, task_id = str(model_id).strip(), str(task_id).strip()
    for name, value in (("model_id", model_id), ("task_id", task_id)):
        if not value:
            raise SchemaError(f"{name} must not be empty")
    try:
        score = float(score)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"score must be a number; got {score!r}") from exc
    if not math.isfinite(score):
        raise SchemaError(f"score must be a finite number; got {score!r}")
    if metric not in KNOWN_METRICS:
        raise SchemaError(f"unknown metric {metric!r}; known metrics: {', '.join(KNOWN_METRICS)}")
    if metric == "top1" and not 0.0 <= score <= 100.0:
        raise SchemaError(f"a top1 score is a percentage in [0, 100]; got {score!r} "
                          "(use metric 'accuracy' for values in [0, 1])")
    if metric == "accuracy" and not 0.0 <= score <= 1.0:
        raise SchemaError(f"an accuracy score lies in [0, 1]; got {score!r} (use metric 'top1' for percent)")

    frame = _read(path)
    row = {"model_id": model_id, "task_id": task_id, "score": score, "metric": metric,
           "source": str(source), "campaign": str(campaign)}
    if len(frame):
        metrics = frame["metric"].replace("", "top1")
        other = sorted(set(metrics[(frame["task_id"] == task_id) & (metrics != metric)]))
        if other:
            raise SchemaError(f"{path}: task {task_id!r} is measured with metric {other[0]!r}, not {metric!r}; "
                              "a task cannot mix metrics")
        same = (frame["model_id"] == model_id) & (frame["task_id"] == task_id) & (metrics == metric)
        if same.any():
            lines = ", ".join(str(i + 2) for i in same[same].index[:5])
            if not replace:
                old = frame.loc[same, "score"].iloc[0]
                raise SchemaError(f"{path}: already has a {metric} result for model {model_id!r} on task "
                                  f"{task_id!r} (score {old}, line {lines}); pass --replace to overwrite it")
            first = same[same].index[0]
            for col, value in row.items():
                frame.loc[first, col] = value
            frame = frame.drop(index=same[same].index[1:]).reset_index(drop=True)
            logger.info("replaced %s/%s in %s (line %s)", model_id, task_id, path, lines)
        else:
            frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
    else:
        frame = pd.DataFrame([row])
    cols = list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_COLUMNS] + \
        [c for c in frame.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    frame = frame[cols]
    _write(path, frame)
    return frame


def _read(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise SchemaError(f"{path}: is a directory; expected a history CSV file")
    if not path.exists():
        if not path.parent.is_dir():
            raise FileNotFoundError(2, "folder of the history file not found", str(path.parent))
        logger.info("creating history %s", path)
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS))
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS))
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot be read as CSV ({' '.join(str(exc).split())})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(f"{path}: missing required column(s) {missing}; found {list(frame.columns)}")
    for col in OPTIONAL_COLUMNS:
        if col not in frame.columns:
            frame[col] = "top1" if col == "metric" else ""
    scores = pd.to_numeric(frame["score"], errors="coerce")
    bad = frame.index[scores.isna() & (frame["score"].str.strip() != "")]
    if len(bad):
        raise SchemaError(f"{path}: column 'score' is not numeric on line(s) {', '.join(str(i + 2) for i in bad[:5])}")
    frame = frame.astype(object)
    frame["score"] = [float(s) if s != "" else float("nan") for s in frame["score"]]
    return frame


def _write(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        frame.to_csv(fh, index=False, float_format="%.10g")


def row_from_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The history row of a completed B-Tuning / fine-tuning run: its target, task and top-1 (%)."""
    from fennec.train.btuning import load_run

    summary = load_run(run_dir)
    method = summary.get("method", "btuning")
    return {"model_id": summary["target_id"], "task_id": summary["task_id"], "score": float(summary["score"]),
            "metric": summary.get("metric", "top1"), "source": "btune" if method == "btuning" else "finetune",
            "campaign": Path(run_dir).resolve().name}
