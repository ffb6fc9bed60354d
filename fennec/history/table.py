"""Fine-tuning histories: read, validate and turn a long table into a model x task matrix.

A history is a long table with one row per fine-tuning result::

    model_id,task_id,score,metric,source,campaign

``metric`` and the two provenance columns are optional (``metric`` defaults to ``top1``). Validation
follows one rule: every problem names the file, the column and the offending rows (as 1-based CSV line
numbers, the header being line 1) or ids.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from fennec.errors import SchemaError, UnknownIdError
from fennec.history.scaler import TaskScaler as TaskScaler  # its home before it had its own module

logger = logging.getLogger(__name__)

#: Metrics a history may hold; all are "higher is better".
KNOWN_METRICS: dict[str, str] = {
    "top1": "top-1 accuracy (%)",
    "map": "mean average precision (%), multi-label tasks such as voc2007",
    "accuracy": "accuracy in [0, 1]",
    "neg_error": "negative regression error (higher is better)",
}
REQUIRED_COLUMNS = ("model_id", "task_id", "score")
OPTIONAL_COLUMNS = ("metric", "source", "campaign")
#: The values each metric can take (inclusive); a score outside is a unit mistake or a typo.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "top1": (0.0, 100.0),
    "map": (0.0, 100.0),
    "accuracy": (0.0, 1.0),
    "neg_error": (-np.inf, 0.0),
}
_RANGE_HINTS = {  # (what the range is, what to do instead)
    "top1": ("a top1 score is a percentage in [0, 100]", "use metric 'accuracy' for values in [0, 1]"),
    "map": ("a map score is a percentage in [0, 100]", ""),
    "accuracy": ("an accuracy score lies in [0, 1]", "use metric 'top1' for percent"),
    "neg_error": ("a neg_error score is a negative error, at most 0", ""),
}
#: Largest dense model x task matrix (GiB) a history may need; ``$FENNEC_MAX_MATRIX_GIB`` overrides it.
MAX_MATRIX_GIB = 2.0


class HistoryWarning(UserWarning):
    """A history was accepted after a repair (duplicates averaged, sparse tasks dropped)."""


def score_range_problem(
    scores: npt.ArrayLike, metrics: Sequence[str] | str
) -> tuple[np.ndarray, tuple[str, str]] | None:
    """``(offending positions, (range, remedy))`` of the first metric whose scores leave
    :data:`METRIC_RANGES`, or None.

    The one range check of the project: :meth:`History.from_frame` and :func:`fennec.history.append.append_rows`
    both use it.
    """
    values = np.asarray(scores, dtype=float)
    metric_arr = np.full(values.shape, metrics, dtype=object) if isinstance(metrics, str) else \
        np.asarray(list(metrics), dtype=object)
    for metric, (lo, hi) in METRIC_RANGES.items():
        bad = np.flatnonzero((metric_arr == metric) & ((values < lo) | (values > hi)))
        if len(bad):
            return bad, _RANGE_HINTS[metric]
    return None


def read_csv_checked(path: Path, **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` (compression from the suffix) that refuses a header repeating a column."""
    try:
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError as exc:
        raise SchemaError(f"{path}: empty file (expected a header line model_id,task_id,score)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise SchemaError(f"{path}: cannot be read as CSV ({' '.join(str(exc).split())})") from exc
    names = [str(c).strip() for c in header.iloc[0]] if len(header) else []
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise SchemaError(f"{path}: the header (line 1) repeats column(s) {_names(repeated)}; "
                          "each column must appear once")
    return frame


def _lines(index: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(i + 2) for i in list(index)[:limit])
    more = f" and {len(index) - limit} more" if len(index) > limit else ""
    return f"line{'s' if len(index) > 1 else ''} {shown}{more}"


def _names(items: Sequence[str], limit: int = 8) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _check_frame(frame, name: str) -> None:
    """A non-empty DataFrame with the required columns."""
    if not isinstance(frame, pd.DataFrame):
        raise SchemaError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(f"{name}: missing required column(s) {_names(missing)}; found {_names(list(frame.columns))}")
    if len(frame) == 0:
        raise SchemaError(f"{name}: the history has no rows")


def _clean_ids(df: pd.DataFrame, name: str) -> None:
    """Strip ``model_id`` and ``task_id`` (in place); none may be empty."""
    for col in ("model_id", "task_id"):
        ids = df[col].astype("string").str.strip()
        empty = np.flatnonzero(ids.isna().to_numpy() | (ids.fillna("") == "").to_numpy())
        if len(empty):
            raise SchemaError(f"{name}: column {col!r} is empty on {_lines(empty)}")
        df[col] = ids.astype(str)


def _clean_scores(df: pd.DataFrame, name: str) -> None:
    """``score`` as finite floats (in place)."""
    scores = pd.to_numeric(df["score"], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(scores.to_numpy(dtype=float, na_value=np.nan)))
    if len(bad):
        shown = ", ".join(repr(df["score"].iloc[i]) for i in bad[:3])
        raise SchemaError(f"{name}: column 'score' must be a finite number; got {shown} on {_lines(bad)}")
    df["score"] = scores.astype(float)


def _clean_metrics(df: pd.DataFrame, name: str) -> None:
    """``metric`` filled (default top1) and known, each score in its metric's range (in place)."""
    if "metric" not in df.columns:
        df["metric"] = "top1"
    df["metric"] = df["metric"].astype(str).str.strip().replace("", "top1")
    unknown = sorted(set(df["metric"]) - set(KNOWN_METRICS))
    if unknown:
        rows = np.flatnonzero(df["metric"].isin(unknown).to_numpy())
        raise SchemaError(
            f"{name}: unknown metric {_names(unknown)} in column 'metric' on {_lines(rows)}; "
            f"known metrics: {', '.join(KNOWN_METRICS)}"
        )
    out_of_range = score_range_problem(df["score"].to_numpy(), df["metric"].tolist())
    if out_of_range is not None:
        rows, (head, tail) = out_of_range
        shown = ", ".join(f"{df['score'].iloc[i]:g}" for i in rows[:3])
        raise SchemaError(f"{name}: column 'score': {head}; got {shown} on {_lines(rows)}"
                          + (f" ({tail})" if tail else ""))


def _select_metric(df: pd.DataFrame, name: str, metric: str | None) -> pd.DataFrame:
    """The rows of ``metric`` (all rows without it); every task must then have a single metric."""
    if metric is not None:
        if metric not in KNOWN_METRICS:
            raise SchemaError(f"unknown metric {metric!r}; known metrics: {', '.join(KNOWN_METRICS)}")
        if not (df["metric"] == metric).any():
            raise SchemaError(
                f"{name}: no rows with metric {metric!r}; the history has {_names(sorted(set(df['metric'])))}"
            )
        df = df[df["metric"] == metric].reset_index(drop=True)
    per_task = df.groupby("task_id")["metric"].nunique()
    mixed = per_task[per_task > 1].index.tolist()
    if mixed:
        raise SchemaError(
            f"{name}: task(s) {_names(mixed)} mix several metrics; pass metric=... (--metric) to pick one"
        )
    return df


@dataclass(frozen=True)
class History:
    """A validated fine-tuning history (one row per model x task cell, repeats already averaged).

    Build it with :meth:`from_csv`, :meth:`from_frame` or :func:`fennec.data.shipped.load_history`.

    Attributes
    ----------
    frame : DataFrame
        Columns ``model_id, task_id, score, metric, source, campaign``, one row per cell, sorted.
    name : str
        Where it came from (a file path or a shipped history name); used in messages and manifests.
    """

    frame: pd.DataFrame
    name: str = "<frame>"
    sha256: str = field(default="", compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_csv(cls, path: str | Path, **kwargs) -> History:
        """Read and validate a long CSV. Keyword arguments go to :meth:`from_frame`."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(2, "history file not found", str(path))
        if path.is_dir():
            raise SchemaError(f"{path}: is a directory; expected a history CSV file")
        raw = path.read_bytes()
        frame = read_csv_checked(path, dtype={"model_id": str, "task_id": str}, keep_default_na=False,
                                 na_values={"score": ["", "nan", "NaN", "NA"]})
        return cls.from_frame(frame, name=str(path), sha256=hashlib.sha256(raw).hexdigest(), **kwargs)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        name: str = "<frame>",
        metric: str | None = None,
        min_models_per_task: int = 3,
        sha256: str | None = None,
    ) -> History:
        """Validate a long table.

        Parameters
        ----------
        frame : DataFrame
            Columns ``model_id, task_id, score`` and optionally ``metric, source, campaign``.
        name : str
            Used in error messages (a file path, a history name).
        metric : str, optional
            Keep only rows of this metric (it must be present). Without it, every task must still have a
            single metric: per-task standardisation makes different tasks' metrics comparable, but one
            task cannot mix two.
        min_models_per_task : int
            Tasks measured on fewer models cannot be standardised or ranked; they are dropped with a
            :class:`HistoryWarning` naming them.
        """
        df = cls._validate(frame, name=name, metric=metric, min_models_per_task=min_models_per_task)
        if sha256 is None:
            sha256 = hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()
        return cls(frame=df, name=name, sha256=sha256)

    @staticmethod
    def _validate(frame: pd.DataFrame, *, name: str, metric: str | None, min_models_per_task: int) -> pd.DataFrame:
        _check_frame(frame, name)
        df = frame.reset_index(drop=True).copy()
        _clean_ids(df, name)
        _clean_scores(df, name)
        _clean_metrics(df, name)
        df = _select_metric(df, name, metric)
        for col in ("source", "campaign"):
            if col not in df.columns:
                df[col] = ""
            df[col] = df[col].fillna("").astype(str)

        df = History._repair(df, frame, name=name, min_models_per_task=min_models_per_task)
        cols = ["model_id", "task_id", "score", "metric", "source", "campaign"]
        return df[cols].sort_values(["task_id", "model_id"], kind="stable").reset_index(drop=True)

    @staticmethod
    def _repair(df: pd.DataFrame, frame: pd.DataFrame, *, name: str, min_models_per_task: int) -> pd.DataFrame:
        """Average repeated cells, drop tasks with too few models, warn about single-task models."""
        dup = df.duplicated(["model_id", "task_id"], keep=False)
        if dup.any():
            pairs = df.loc[dup, ["model_id", "task_id"]].drop_duplicates()
            shown = _names([f"{m}/{t}" for m, t in pairs.itertuples(index=False)], limit=5)
            msg = (f"{name}: {int(dup.sum())} rows repeat {len(pairs)} (model_id, task_id) pair(s) "
                   f"({shown}, {_lines(np.flatnonzero(dup.to_numpy()))}); averaging the repeats")
            warnings.warn(msg, HistoryWarning, stacklevel=5)
            logger.warning(msg)
            df = (
                df.groupby(["model_id", "task_id"], as_index=False, sort=False)
                .agg(score=("score", "mean"), metric=("metric", "first"), source=("source", "first"),
                     campaign=("campaign", lambda s: ";".join(sorted(set(s)))))
            )

        counts = df.groupby("task_id")["model_id"].nunique()
        sparse = counts[counts < min_models_per_task]
        if len(sparse):
            detail = _names([f"{t} ({n} model{'s' if n != 1 else ''})" for t, n in sparse.items()])
            msg = (f"{name}: dropping task(s) with fewer than {min_models_per_task} models, "
                   f"too few to standardise and rank: {detail}")
            warnings.warn(msg, HistoryWarning, stacklevel=5)
            logger.warning(msg)
            df = df[~df["task_id"].isin(sparse.index)]
        if df.empty:
            raise SchemaError(f"{name}: no task has at least {min_models_per_task} models; nothing to fit")
        per_model = df.groupby("model_id")["task_id"].nunique()
        lonely = per_model[per_model < 2]
        if len(lonely):
            rows = np.flatnonzero(frame["model_id"].astype(str).str.strip().isin(lonely.index).to_numpy())
            msg = (f"{name}: model(s) {_names(list(lonely.index))} measured on a single task "
                   f"({_lines(rows)}): only their general quality can be estimated, not a task profile")
            warnings.warn(msg, HistoryWarning, stacklevel=5)
            logger.warning(msg)
        return df

    # ------------------------------------------------------------------ views
    @property
    def model_ids(self) -> list[str]:
        return sorted(self.frame["model_id"].unique())

    @property
    def task_ids(self) -> list[str]:
        return sorted(self.frame["task_id"].unique())

    @property
    def n_cells(self) -> int:
        return len(self.frame)

    def to_matrix(self) -> tuple[npt.NDArray[np.float64], list[str], list[str]]:
        """Return ``(Y, model_ids, task_ids)``: ``Y[i, j]`` the score, NaN where not measured."""
        model_ids, task_ids = self.model_ids, self.task_ids
        self.check_dense_size(len(model_ids), len(task_ids))
        mi = pd.Index(model_ids).get_indexer(self.frame["model_id"])
        ti = pd.Index(task_ids).get_indexer(self.frame["task_id"])
        Y = np.full((len(model_ids), len(task_ids)), np.nan)
        Y[mi, ti] = self.frame["score"].to_numpy()
        return Y, model_ids, task_ids

    def check_dense_size(self, n_models: int, n_tasks: int) -> None:
        """Refuse, before allocating, a model x task matrix above ``$FENNEC_MAX_MATRIX_GIB`` (default
        :data:`MAX_MATRIX_GIB`), saying what to do."""
        try:
            limit = float(os.environ.get("FENNEC_MAX_MATRIX_GIB", MAX_MATRIX_GIB))
        except ValueError:
            raise SchemaError("FENNEC_MAX_MATRIX_GIB must be a number of GiB; got "
                              f"{os.environ['FENNEC_MAX_MATRIX_GIB']!r}") from None
        need = n_models * n_tasks * 8 / 2**30
        if need > limit:
            cells = len(self.frame)
            raise SchemaError(
                f"{self.name}: {n_models} models x {n_tasks} tasks need a dense {need:.1f} GiB matrix for only "
                f"{cells} measured cells ({cells / max(n_models * n_tasks, 1):.2g} observed); the limit is "
                f"{limit:g} GiB: drop models and tasks with few results (or split the history), or raise "
                "FENNEC_MAX_MATRIX_GIB if the memory is there")

    def task_metric(self) -> dict[str, str]:
        return self.frame.groupby("task_id")["metric"].first().to_dict()

    def subset(self, *, models: Sequence[str] | None = None, tasks: Sequence[str] | None = None) -> History:
        """A history restricted to some models and/or tasks (unknown ids raise :class:`UnknownIdError`)."""
        df = self.frame
        for col, ids, known in (("model_id", models, self.model_ids), ("task_id", tasks, self.task_ids)):
            if ids is None:
                continue
            unknown = sorted(set(ids) - set(known))
            if unknown:
                raise UnknownIdError(f"{self.name}: unknown {col} {_names(unknown)}")
            df = df[df[col].isin(ids)]
        return History(frame=df.reset_index(drop=True), name=self.name, sha256=self.sha256)

    def summary(self) -> dict[str, object]:
        Y, m, t = self.to_matrix()
        return {
            "name": self.name,
            "n_models": len(m),
            "n_tasks": len(t),
            "n_cells": int(np.isfinite(Y).sum()),
            "observed_fraction": float(np.isfinite(Y).mean()),
            "metrics": sorted(set(self.frame["metric"])),
            "sha256": self.sha256,
        }
