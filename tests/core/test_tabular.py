"""fennec.tabular: a Table prints as pandas prints the same columns (text, CSV, JSON records), byte for
byte, and goes to and from a DataFrame unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fennec.tabular import Table, json_float, json_value, to_csv, to_json, to_text

TEXT = st.text(alphabet=st.sampled_from(list("ab Z09_-./,;\"'\\\t\n\r\x7f\x01éß€😀")), max_size=8)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-1e4, max_value=1e4),
    st.sampled_from([0.0, -0.0, 0.5, 1.5, 2.5, 1e-15, 9.99999999995e-6, 1e16, 1e16 - 2, 84.6, 0.1 + 0.2]),
)


def _pandas_text(df: pd.DataFrame, float_format: str) -> str:
    """What the command line printed before fennec.tabular (its emit() through pandas)."""
    shown = df.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else float_format.format(v))
    text = shown.to_string(index=False)
    return "\n".join(line.rstrip() for line in text.splitlines())


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 6))
    cols = {}
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["str", "str_missing", "int", "bool", "float"]))
        if kind == "str":
            cols[f"s{i}"] = draw(st.lists(TEXT, min_size=n, max_size=n))
        elif kind == "str_missing":
            cols[f"m{i}"] = draw(st.lists(st.one_of(TEXT, st.just(None)), min_size=n, max_size=n))
        elif kind == "int":
            cols[f"rank{i}"] = np.array(draw(st.lists(st.integers(-10**12, 10**12), min_size=n, max_size=n)))
        elif kind == "bool":
            cols[f"b{i}"] = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        else:
            cols[f"score{i}"] = np.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype=float)
    return pd.DataFrame(cols)


@settings(max_examples=300, deadline=None)
@given(frames(), st.sampled_from(["{:.4g}", "{:.2f}", "{:.3f}"]))
def test_writers_print_as_pandas(df, float_format):
    table = Table.of(df)
    assert to_text(table, float_format=float_format) == _pandas_text(df, float_format)
    assert to_csv(table) == df.to_csv(index=False)
    assert to_json(table) == df.to_json(orient="records")
    assert [{k: json_value(v) for k, v in row.items()} for row in table.records()] == json.loads(
        df.to_json(orient="records"))


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_json_float_is_pandas_encoder(value):
    assert json_float(value) == pd.Series([value]).to_json(orient="values")[1:-1]


def test_json_float_rounding_cases():
    values = [k / 2**s + w for k in range(0, 64) for s in (1, 3, 10, 20, 34, 40) for w in (0, 1, 7, 12345)]
    values += [float(f"0.{d}5") for d in range(1, 10**4, 37)] + [1 - 1e-11, 0.99999999995, 123456.12345678905]
    expected = json.loads(pd.Series(values + [-v for v in values]).to_json(orient="values"))
    got = [float(json_float(v)) for v in values + [-v for v in values]]
    assert got == expected
    assert pd.Series(values).to_json(orient="values") == "[" + ",".join(json_float(v) for v in values) + "]"


def test_frame_round_trip_keeps_dtypes_and_values():
    df = pd.DataFrame({"task_id": ["a", "b", "c"], "rank": np.array([1, 2, 0]), "score": [1.5, np.nan, 2.0],
                       "flag": [True, False, True], "note": ["", "x", None]})
    table = Table.of(df)
    back = table.to_frame()
    pd.testing.assert_frame_equal(back, df)
    assert table.names == list(df.columns) and len(table) == 3
    assert isinstance(table["score"], np.ndarray) and table["task_id"] == ["a", "b", "c"]
    assert table.take([2, 0])["task_id"] == ["c", "a"] and table.head(1)["rank"].tolist() == [1]
    assert table.take(np.array([True, False, True]))["rank"].tolist() == [1, 0]
    assert table.with_column("rank", [5, 6, 7]).names == table.names
    assert table.select(["score", "task_id"]).names == ["score", "task_id"]


def test_empty_table_and_errors():
    empty = Table({"a": [], "b": np.zeros(0)})
    df = pd.DataFrame({"a": pd.Series([], dtype=object), "b": np.zeros(0)})
    assert to_text(empty) == _pandas_text(df, "{:.4g}")
    assert to_csv(empty) == "a,b\n" and to_json(empty) == "[]"
    with pytest.raises(Exception, match="one length"):
        Table({"a": [1, 2], "b": [1]})


def test_read_csv_reads_what_pandas_reads(tmp_path):
    path = tmp_path / "t.csv"
    df = pd.DataFrame({"model_id": ["a,b", 'q"uote', "", "é"], "n": [1, 2, 3, 4], "x": [0.1, np.nan, 1e-20, 3.0]})
    df.to_csv(path, index=False)
    table = Table.read_csv(path, dtypes={"n": int, "x": float})
    assert table["model_id"] == pd.read_csv(path, dtype=str, keep_default_na=False)["model_id"].tolist()
    assert table["n"].tolist() == [1, 2, 3, 4] and table["n"].dtype == np.int64
    np.testing.assert_array_equal(table["x"], pd.read_csv(path)["x"].to_numpy())
    assert math.isnan(table["x"][1])
    (tmp_path / "bad.csv").write_text("a,b\n1\n")
    with pytest.raises(Exception, match="header"):
        Table.read_csv(tmp_path / "bad.csv")
