"""Named columns without pandas: the tables a query builds before anyone asks for a DataFrame.

A :class:`Table` holds equal-length columns in order: numbers as 1-D NumPy arrays (float, int, bool),
anything else as a list of Python objects (strings; ``None`` or NaN where missing). ``to_frame()`` builds
the pandas DataFrame (pandas is imported then, not before) and ``Table.of(frame)`` goes the other way, so
a result can hold a Table and show a DataFrame to whoever wants one.

The writers :func:`to_text`, :func:`to_csv` and :func:`to_json` print a Table as pandas prints the same
columns with ``to_string(index=False)`` (floats through a format string first), ``to_csv(index=False)``
and ``to_json(orient="records")``, byte for byte (``tests/core/test_tabular.py`` compares them): the
command line prints its tables through them, whatever it was given, and never needs pandas to do so.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fennec.errors import SchemaError

if TYPE_CHECKING:
    import pandas as pd

NUMERIC_KINDS = "biuf"
#: decimals of a float in :func:`to_json` (pandas' ``double_precision`` default)
JSON_DECIMALS = 10


def _as_column(values: Any) -> np.ndarray | list:
    """A 1-D numeric array, or a list of objects when any value is not a number."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        return values if values.dtype.kind in NUMERIC_KINDS else values.tolist()
    items = list(values)
    if any(isinstance(v, str) or v is None for v in items) or not items:
        return items
    arr = np.asarray(items)
    return arr if arr.ndim == 1 and arr.dtype.kind in NUMERIC_KINDS else items


class Table:
    """Columns of equal length, in order (see the module docstring). Treat it as immutable: every method
    returns a new Table."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self._cols = {str(k): _as_column(v) for k, v in columns.items()}
        lengths = {len(c) for c in self._cols.values()}
        if len(lengths) > 1:
            raise SchemaError(f"columns of a table must have one length; got {sorted(lengths)}")
        self._n = lengths.pop() if lengths else 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def of(cls, data: Table | pd.DataFrame | Mapping[str, Any]) -> Table:
        """A Table from a Table (itself), a pandas DataFrame (its columns; the index is dropped) or a
        mapping of columns."""
        if isinstance(data, Table):
            return data
        if hasattr(data, "dtypes") and hasattr(data, "columns"):
            return cls.from_frame(data)
        return cls(data)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Table:
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            raise SchemaError(f"a table's columns must have distinct names; got {names}")
        out = {}
        for name, (_, col) in zip(names, frame.items(), strict=True):
            kind = getattr(col.dtype, "kind", "O")
            if isinstance(col.dtype, np.dtype) and kind in NUMERIC_KINDS:
                out[name] = col.to_numpy(copy=True)
            elif kind == "f":  # a nullable float extension dtype
                out[name] = col.to_numpy(dtype=float, na_value=np.nan)
            else:
                out[name] = col.tolist()
        return cls(out)

    @classmethod
    def read_csv(cls, path: str | os.PathLike[str], *, dtypes: Mapping[str, type] | None = None) -> Table:
        """A CSV file with a header line as string columns (as ``pandas.read_csv(path, dtype=str,
        keep_default_na=False)`` reads it), the columns in ``dtypes`` converted (``int`` or ``float``; an
        empty cell is NaN for a float). Raises :class:`SchemaError` for a file that is not such a CSV."""
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r]
        if not rows:
            raise SchemaError(f"{path}: empty file (expected a header line)")
        header, body = rows[0], rows[1:]
        bad = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
        if bad:
            raise SchemaError(f"{path}: line(s) {bad[:5]} do not have the header's {len(header)} fields")
        cols: dict[str, Any] = {name: [r[j] for r in body] for j, name in enumerate(header)}
        for name, kind in (dtypes or {}).items():
            try:
                cols[name] = np.array([kind(v) if v != "" or kind is not float else math.nan
                                       for v in cols[name]], dtype=kind)
            except (KeyError, ValueError) as exc:
                raise SchemaError(f"{path}: column {name!r} is missing or not {kind.__name__} ({exc})") from None
        return cls(cols)

    # ------------------------------------------------------------------ views
    @property
    def names(self) -> list[str]:
        return list(self._cols)

    def __len__(self) -> int:
        return self._n

    def __contains__(self, name: object) -> bool:
        return name in self._cols

    def __getitem__(self, name: str) -> np.ndarray | list:
        """A column (do not modify it)."""
        return self._cols[name]

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self._cols)})"

    def select(self, names: Iterable[str]) -> Table:
        return Table({n: self._cols[n] for n in names})

    def take(self, rows: Sequence[int] | np.ndarray) -> Table:
        """The rows at these positions (or where a boolean mask is true), in that order."""
        idx = np.asarray(rows)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.intp)
        return Table({n: c[idx] if isinstance(c, np.ndarray) else [c[i] for i in idx] for n, c in self._cols.items()})

    def head(self, k: int) -> Table:
        return self.take(np.arange(min(int(k), len(self))))

    def with_column(self, name: str, values: Any) -> Table:
        """This table with ``name`` replaced (in place in the order) or added at the end."""
        return Table({**self._cols, name: values})

    def records(self) -> list[dict[str, Any]]:
        """One dict per row, with Python scalars."""
        cols = {n: c.tolist() if isinstance(c, np.ndarray) else c for n, c in self._cols.items()}
        return [{n: c[i] for n, c in cols.items()} for i in range(len(self))]

    def to_frame(self) -> pd.DataFrame:
        """The pandas DataFrame of these columns (a new one on every call)."""
        import pandas as pd

        return pd.DataFrame({n: (c.copy() if isinstance(c, np.ndarray) else list(c)) for n, c in self._cols.items()},
                            columns=self.names)


# ---------------------------------------------------------------------------- writers
def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _text_cell(v: Any) -> str:
    """pandas' text of one object value (missing as NaN or None, tabs and newlines escaped)."""
    if v is None:
        return "None"
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return str(v).replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


def _text_column(name: str, col: np.ndarray | list, float_format: str) -> list[str]:
    """Header and cells of one column, right-justified to one width."""
    if isinstance(col, np.ndarray) and col.dtype.kind == "f":
        head, cells = name, ["" if math.isnan(v) else float_format.format(v) for v in col.tolist()]
    elif isinstance(col, np.ndarray):  # int or bool: pandas puts a space before a numeric column's name
        head, cells = " " + name, [f"{v:d}" if col.dtype.kind in "iu" else str(v) for v in col.tolist()]
    else:
        head, cells = name, [_text_cell(v) for v in col]
    width = max(len(head), *(len(c) for c in cells)) if cells else len(head)
    return [s.rjust(width) for s in (head, *cells)]


def to_text(table: Table, *, float_format: str = "{:.4g}") -> str:
    """An aligned table, lines right-stripped, no final newline: pandas' ``to_string(index=False)`` of the
    columns with every float column formatted by ``float_format`` first (NaN as an empty cell)."""
    if len(table) == 0:
        return f"Empty DataFrame\nColumns: [{', '.join(table.names)}]\nIndex: []"
    cols = [_text_column(n, table[n], float_format) for n in table.names]
    text = "\n".join(" ".join(cells) for cells in zip(*cols, strict=True))
    return "\n".join(line.rstrip() for line in text.splitlines())


def _csv_column(col: np.ndarray | list) -> list:
    if isinstance(col, np.ndarray) and col.dtype.kind == "f":
        text = col.astype(str)  # numpy's shortest repr, as pandas writes floats
        text[np.isnan(col)] = ""
        return text.tolist()
    if isinstance(col, np.ndarray):
        return col.tolist()
    return ["" if _missing(v) else v for v in col]


def to_csv(table: Table) -> str:
    """CSV text with a header line (pandas' ``to_csv(index=False)``: NaN as an empty field, ``\\n`` ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.names)
    writer.writerows(zip(*(_csv_column(table[n]) for n in table.names), strict=True))
    return buf.getvalue()


def json_float(value: float) -> str:
    """A finite float as pandas' JSON encoder writes it: rounded to :data:`JSON_DECIMALS` decimals, trailing
    zeros dropped, exponent notation beyond 1e16 and below 1e-15."""
    neg, v = value < 0, abs(value)
    if v > 1e16 - 1 or (v != 0.0 and v < 1e-15):
        return f"{value:.{JSON_DECIMALS}g}"
    whole = int(v)
    tmp = (v - whole) * 10.0**JSON_DECIMALS
    frac = int(tmp)
    diff = tmp - frac
    if diff > 0.5 or (diff == 0.5 and (frac == 0 or frac & 1)):
        frac += 1
    if frac >= 10**JSON_DECIMALS:
        frac, whole = 0, whole + 1
    digits = f"{frac:0{JSON_DECIMALS}d}".rstrip("0") or "0"
    return f"{'-' if neg else ''}{whole}.{digits}"


def json_value(v: Any) -> Any:
    """A cell as the JSON encoder of :func:`to_json` gives it back once parsed (floats rounded, NaN as None)."""
    if isinstance(v, (float, np.floating)):
        return float(json_float(float(v))) if math.isfinite(v) else None
    if isinstance(v, np.generic):
        return v.item()
    return None if _missing(v) else v


_JSON_ESCAPE = re.compile(r'[\x00-\x1f"\\/]|[^\x00-\x7f]')
_JSON_NAMED = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_escape(match: re.Match) -> str:
    """pandas' escape of one character: named escapes, else ``\\uXXXX`` (a surrogate pair above U+FFFF)."""
    ch = match.group()
    if ch in _JSON_NAMED:
        return _JSON_NAMED[ch]
    o = ord(ch)
    if o < 0x10000:
        return f"\\u{o:04x}"
    o -= 0x10000
    return f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04x}"


def _json_text(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        return json_float(float(v)) if math.isfinite(v) else "null"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if _missing(v):
        return "null"
    return '"' + _JSON_ESCAPE.sub(_json_escape, str(v)) + '"'


def to_json(table: Table) -> str:
    """JSON records, no whitespace, no final newline (pandas' ``to_json(orient="records")``: floats by
    :func:`json_float`, NaN and infinities as null, ``/`` escaped, non-ASCII as ``\\u`` escapes)."""
    names = [_json_text(n) for n in table.names]
    rows = (",".join(f"{k}:{_json_text(v)}" for k, v in zip(names, row.values(), strict=True))
            for row in table.records())
    return "[" + ",".join("{" + r + "}" for r in rows) + "]"
