"""Close the loop: append measured fine-tuning results to a long-format history CSV.

The history format is :mod:`fennec.history.table`'s (``model_id,task_id,score,metric,source,campaign``).
Every row is validated as the history reader validates it (ids non-empty strings, a finite score in its
metric's range, a known metric, one metric per task); a repeated ``(model_id, task_id, metric)`` is
refused unless ``replace=True``. Appends are serialised by a lock on the file (concurrent writers each
land their rows), and the file is rewritten atomically (temporary file + rename, so a kill leaves the old
or the new table, never half of one), keeping its other rows, their order, any extra columns, its
compression (``.csv.gz``, ``.bz2``, ``.xz``), its permission bits, and a symbolic link pointing at it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fennec.errors import SchemaError
from fennec.history.table import (
    KNOWN_METRICS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    read_csv_checked,
    score_range_problem,
)
from fennec.outputs import atomic_path, path_lock, stale_temp_files

logger = logging.getLogger(__name__)

__all__ = ["add_history_row", "append_rows", "row_from_run", "validate_row"]

_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
_COLUMNS = list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
_CELL = ("model_id", "task_id", "metric")


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
        Long-format history CSV (``.csv`` or compressed ``.csv.gz``).
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
        Empty ids, a non-finite or out-of-range score, an unknown metric, a task already measured with
        another metric, a duplicate row (without ``replace``), or an unreadable / malformed CSV.
    """
    row = {"model_id": model_id, "task_id": task_id, "score": score, "metric": metric, "source": source,
           "campaign": campaign}
    return append_rows(path, [row], replace=replace)


def append_rows(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    replace: bool = False,
    timeout: float = 60.0,
    key: Sequence[str] = ("model_id", "task_id", "metric"),
) -> pd.DataFrame:
    """Append several measured results to a history CSV in one locked, atomic rewrite; returns the table.

    All or nothing: if any row is invalid nothing is written. Safe to call from many processes at once
    (each call waits up to ``timeout`` seconds for the others); to stream a campaign's results, call it
    once per finished batch.

    Parameters
    ----------
    path : path
        Long-format history CSV, created if missing (its folder must exist).
    rows : iterable of mappings
        Each with ``model_id``, ``task_id`` (non-empty strings), ``score`` (a finite number in the
        metric's range), optionally ``metric`` (default ``top1``), ``source`` and ``campaign`` (strings,
        default empty), and any extra string columns (added to the file, empty for older rows).
    replace : bool, default=False
        A row for an existing ``(model_id, task_id, metric)`` replaces it instead of being refused.
    timeout : float, default=60
        Seconds to wait for another writer of the same file.
    key : sequence of str, default=("model_id", "task_id", "metric")
        The columns that identify a result: a row whose key is already in the file (or twice in ``rows``)
        is refused unless ``replace``. A campaign keys its rows by ``("job_id",)``: several seeds and
        recipes of one cell are separate results (a fit averages the repeats).
    """
    path = Path(path)
    rows = list(rows)
    if not rows:
        raise SchemaError(f"{path}: no rows to append")
    clean = [validate_row(r, where=f"{path}: row {k + 1}" if len(rows) > 1 else str(path))
             for k, r in enumerate(rows)]
    key = tuple(key)
    for k, r in enumerate(clean):
        if any(c not in r for c in key):
            raise SchemaError(f"{path}: row {k + 1} has no {[c for c in key if c not in r][0]!r} (a key column)")
    _refuse_repeats(path, clean, key)
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    if real.is_dir():
        raise SchemaError(f"{path}: is a directory; expected a history CSV file")
    if not real.parent.is_dir():
        raise FileNotFoundError(2, "folder of the history file not found", str(real.parent))
    with path_lock(real, timeout=timeout, what="history"):
        for stale in stale_temp_files(real):  # left by a killed writer: nobody else holds the lock
            stale.unlink(missing_ok=True)
        frame = _merge(path, _read(real), clean, replace=replace, key=key)
        _write(real, frame)
    logger.info("%s: appended %d row(s); %d rows", path, len(clean), len(frame))
    return frame


def validate_row(row: Mapping[str, Any], *, where: str = "row") -> dict[str, Any]:
    """One history row checked and normalised (strings stripped, ``score`` a float, defaults filled);
    every problem is one :class:`SchemaError` line starting with ``where``."""
    if not isinstance(row, Mapping):
        raise SchemaError(f"{where}: a row must be a mapping of column -> value; got {type(row).__name__}")
    out: dict[str, Any] = {}
    for key in ("model_id", "task_id"):
        if key not in row:
            raise SchemaError(f"{where}: missing {key}")
        value = row[key]
        if not isinstance(value, str):
            got = "null" if value is None else f"{type(value).__name__} {value!r}"
            raise SchemaError(f"{where}: {key} must be a string; got {got}")
        if not value.strip():
            raise SchemaError(f"{where}: {key} must not be empty")
        out[key] = value.strip()
    if "score" not in row:
        raise SchemaError(f"{where}: missing score")
    score = row["score"]
    if isinstance(score, bool) or score is None:
        raise SchemaError(f"{where}: score must be a number; got {'null' if score is None else repr(score)}")
    try:
        score = float(score)
    except (TypeError, ValueError):
        raise SchemaError(f"{where}: score must be a number; got {score!r}") from None
    if not math.isfinite(score):
        raise SchemaError(f"{where}: score must be a finite number; got {score!r}")
    metric = row.get("metric", "top1")
    if metric is None or (isinstance(metric, str) and not metric.strip()):
        metric = "top1"
    if not isinstance(metric, str) or metric.strip() not in KNOWN_METRICS:
        raise SchemaError(f"{where}: unknown metric {metric!r}; known metrics: {', '.join(KNOWN_METRICS)}")
    metric = metric.strip()
    problem = score_range_problem([score], metric)
    if problem is not None:
        head, tail = problem[1]
        raise SchemaError(f"{where}: {head}; got {score!r}" + (f" ({tail})" if tail else ""))
    out.update(score=score, metric=metric)
    for key, value in row.items():
        if key in out:
            continue
        if value is None:
            value = ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise SchemaError(f"{where}: column {key!r} must be a string; got {type(value).__name__}")
        out[str(key)] = str(value)
    for key in ("source", "campaign"):
        out.setdefault(key, "")
    return out


def _refuse_repeats(path: Path, rows: list[dict[str, Any]], key: tuple[str, ...]) -> None:
    seen: dict[tuple[str, ...], int] = {}
    for k, r in enumerate(rows):
        cell = tuple(str(r[c]) for c in key)
        if cell in seen:
            if key == _CELL:
                raise SchemaError(f"{path}: rows {seen[cell] + 1} and {k + 1} both give a {cell[2]} result for "
                                  f"model {cell[0]!r} on task {cell[1]!r}")
            raise SchemaError(f"{path}: rows {seen[cell] + 1} and {k + 1} have the same {', '.join(key)} {cell}")
        seen[cell] = k


def _merge(path: Path, frame: pd.DataFrame, rows: list[dict[str, Any]], *, replace: bool,
           key: tuple[str, ...] = ("model_id", "task_id", "metric")) -> pd.DataFrame:
    frame = frame.copy()
    metrics = frame["metric"].replace("", "top1")
    task_metric = dict(zip(frame["task_id"], metrics, strict=True))
    new = []
    for r in rows:
        known = task_metric.setdefault(r["task_id"], r["metric"])
        if known != r["metric"]:
            raise SchemaError(f"{path}: task {r['task_id']!r} is measured with metric {known!r}, not "
                              f"{r['metric']!r}; a task cannot mix metrics")
        same = _same(frame, metrics, r, key)
        if not same.any():
            new.append(r)
            continue
        hits = same[same].index
        lines = ", ".join(str(i + 2) for i in hits[:5])
        if not replace:
            old = frame.loc[hits[0], "score"]
            if key != _CELL:
                raise SchemaError(f"{path}: already has a row with {', '.join(key)} "
                                  f"{tuple(str(r[c]) for c in key)} (line {lines})")
            raise SchemaError(f"{path}: already has a {r['metric']} result for model {r['model_id']!r} on task "
                              f"{r['task_id']!r} (score {old}, line {lines}); pass --replace to overwrite it")
        for col, value in r.items():
            if col not in frame.columns:
                frame[col] = ""
            frame.loc[hits[0], col] = value
        frame = frame.drop(index=hits[1:]).reset_index(drop=True)
        metrics = frame["metric"].replace("", "top1")
        logger.info("replaced %s/%s in %s (line %s)", r["model_id"], r["task_id"], path, lines)
    if new:
        frame = pd.concat([frame, pd.DataFrame(new)], ignore_index=True) if len(frame) else pd.DataFrame(new)
    frame = frame.astype(object).where(frame.notna(), "")
    extra = [c for c in frame.columns if c not in _COLUMNS]
    for col in _COLUMNS:
        if col not in frame.columns:
            frame[col] = ""
    return frame[_COLUMNS + extra]


def _same(frame: pd.DataFrame, metrics: pd.Series, row: dict[str, Any], key: tuple[str, ...]) -> pd.Series:
    """Which rows of ``frame`` have ``row``'s key (``metric`` compared with the empty metric as top1)."""
    same = pd.Series(True, index=frame.index)
    for col in key:
        if col == "metric":
            same &= metrics == row["metric"]
        elif col not in frame.columns:
            return pd.Series(False, index=frame.index)
        else:
            same &= frame[col].astype(str) == str(row[col])
    return same


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        logger.info("creating history %s", path)
        return pd.DataFrame(columns=_COLUMNS)
    if path.stat().st_size == 0:
        return pd.DataFrame(columns=_COLUMNS)
    frame = read_csv_checked(path, dtype=str, keep_default_na=False)
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
    method = _COMPRESSION.get(path.suffix.lower())
    compression: Any = {"method": "gzip", "mtime": 0} if method == "gzip" else method
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g", compression=compression)


def row_from_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The history row of a completed B-Tuning / fine-tuning run: its target, task and top-1 (%).

    The run's ``summary.json`` is checked: a missing key, a wrong type or a null is one error naming the
    file and the key.
    """
    from fennec.train.btuning import load_run

    summary = load_run(run_dir)
    where = str(Path(run_dir) / "summary.json")
    for key in ("target_id", "task_id", "score"):
        if key not in summary:
            raise SchemaError(f"{where}: missing key {key!r} (a completed run's summary has target_id, "
                              "task_id and score)")
    for key in ("target_id", "task_id", "method", "metric"):
        value = summary.get(key, "")
        if not isinstance(value, str) or (key in ("target_id", "task_id") and not value.strip()):
            got = "null" if value is None else f"{type(value).__name__} {value!r}"
            raise SchemaError(f"{where}: {key!r} must be a non-empty string; got {got}")
    score = summary["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        got = "null" if score is None else f"{type(score).__name__} {score!r}"
        raise SchemaError(f"{where}: 'score' must be a finite number; got {got}")
    method = summary.get("method") or "btuning"
    return {"model_id": summary["target_id"], "task_id": summary["task_id"], "score": float(score),
            "metric": summary.get("metric") or "top1", "source": "btune" if method == "btuning" else "finetune",
            "campaign": Path(run_dir).resolve().name}
