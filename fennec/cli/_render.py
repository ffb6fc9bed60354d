"""Rendering for the verbs: tables, CSV or JSON to stdout; one-line messages to stderr.

Every table goes through :mod:`fennec.tabular` (a DataFrame is converted first), so printing a ranking
needs no pandas, and every verb prints its tables alike.
"""

from __future__ import annotations

import sys
from enum import Enum

import typer

from fennec.tabular import Table, to_csv, to_json, to_text


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def say(message: str) -> None:
    """A message for people (stderr; stdout stays machine-readable)."""
    typer.echo(message, err=True)


def emit(data, fmt: Format, *, float_format: str = "{:.4g}") -> None:
    """Write a table (a :class:`~fennec.tabular.Table` or a DataFrame) to stdout as an aligned table (floats
    through ``float_format``), CSV or JSON records."""
    table = Table.of(data)
    if fmt == Format.csv:
        sys.stdout.write(to_csv(table))
    elif fmt == Format.json:
        sys.stdout.write(to_json(table) + "\n")
    else:
        sys.stdout.write(to_text(table, float_format=float_format) + "\n")


RANKING_SHOWN = ["task_id", "rank", "model_id", "score", "source", "measured", "std"]


def emit_ranking(ranking, fmt: Format) -> None:
    """A :class:`~fennec.query.ranking.Ranking`: how the task was placed and the notes on stderr, the table on
    stdout (JSON: the ranking with every placement field); ``input`` and ``note`` columns only where they
    say something."""
    table = ranking.table
    if ranking.how:
        say(f"task {ranking.task_id}: {ranking.how}")
    for note in ranking.notes:
        say(f"note: {note}")
    if fmt == Format.json:
        sys.stdout.write(ranking.to_json())
        return
    cols = list(RANKING_SHOWN)
    if any(i != m and i != "" for i, m in zip(table["input"], table["model_id"], strict=True)):
        cols.insert(3, "input")
    if any(n != "" for n in table["note"]):
        cols.append("note")
    emit(table.select(cols), fmt)
