"""Rendering for the verbs: tables, CSV or JSON to stdout; one-line messages to stderr."""

from __future__ import annotations

import sys
from enum import Enum

import typer


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def say(message: str) -> None:
    """A message for people (stderr; stdout stays machine-readable)."""
    typer.echo(message, err=True)


def emit(df, fmt: Format, *, float_format: str = "{:.4g}") -> None:
    """Write a DataFrame to stdout as an aligned table, CSV or JSON records."""
    import pandas as pd

    if fmt == Format.csv:
        df.to_csv(sys.stdout, index=False)
    elif fmt == Format.json:
        sys.stdout.write(df.to_json(orient="records", indent=None) + "\n")
    else:
        with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 250):
            shown = df.copy()
            for col in shown.columns:
                if pd.api.types.is_float_dtype(shown[col]):
                    shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else float_format.format(v))
            text = shown.to_string(index=False)
            sys.stdout.write("\n".join(line.rstrip() for line in text.splitlines()) + "\n")


RANKING_SHOWN = ["task_id", "rank", "model_id", "score", "source", "measured", "std"]


def emit_ranking(ranking, fmt: Format) -> None:
    """A :class:`~fennec.query.ranking.Ranking`: how the task was placed and the notes on stderr, the table on
    stdout (JSON: the ranking with every placement field); ``input`` and ``note`` columns only where they
    say something."""
    frame = ranking.frame
    if ranking.how:
        say(f"task {ranking.task_id}: {ranking.how}")
    for note in ranking.notes:
        say(f"note: {note}")
    if fmt == Format.json:
        sys.stdout.write(ranking.to_json())
        return
    cols = list(RANKING_SHOWN)
    if ((frame["input"] != frame["model_id"]) & (frame["input"] != "")).any():
        cols.insert(3, "input")
    if (frame["note"] != "").any():
        cols.append("note")
    emit(frame[cols], fmt)
