"""b12lab's CSV rows are arrow's CSV writer's, byte for byte, on any table of the types it writes
itself; any other type is left to arrow."""

from __future__ import annotations

import datetime
import decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from hypothesis import given
from hypothesis import strategies as st

from b12lab._io import csv_rows as rows_module
from b12lab._io.csv_rows import csv_header, csv_rows
from b12lab._io.writing import _write_csv

# Characters CSV must quote or double, line ends, a space, digits and text past ASCII.
_CHARACTERS = st.sampled_from(['"', ",", "\n", "\r", " ", "a", "1", ".", "=", "é", "\U0001d11e"])
_TEXTS = st.text(_CHARACTERS, max_size=5)
_FEW_TEXTS = st.sampled_from(["", "low", 'say "no"', "a,b", "line\nend", "é"])


def _arrow_csv(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(quoting_style="needed"))
    return bytes(sink.getvalue().to_pybytes())


def _ours(table: pa.Table) -> bytes:
    rows = csv_rows(table)
    assert rows is not None
    return csv_header(table.column_names) + rows.to_pybytes()


@st.composite
def _columns(draw: st.DrawFn, n: int) -> pa.Array:
    kind = draw(
        st.sampled_from(["string", "large", "dictionary", "float64", "float32", "int", "bool"])
    )
    missing = st.none() if draw(st.booleans()) else st.nothing()
    if kind in ("string", "large"):
        values = draw(st.lists(_TEXTS | missing, min_size=n, max_size=n))
        return pa.array(values, pa.string() if kind == "string" else pa.large_string())
    if kind == "dictionary":
        values = draw(st.lists(_FEW_TEXTS | missing, min_size=n, max_size=n))
        return pa.array(values, pa.string()).dictionary_encode()
    if kind.startswith("float"):
        numbers = st.floats(width=32 if kind == "float32" else 64) | st.sampled_from(
            [0.0, -0.0, 0.1, 1e300, 5e-324, 123456789.0]
        )
        values = draw(st.lists(numbers | missing, min_size=n, max_size=n))
        return pa.array(values, pa.float32() if kind == "float32" else pa.float64())
    if kind == "int":
        values = draw(st.lists(st.integers(-(2**63), 2**63 - 1) | missing, min_size=n, max_size=n))
        return pa.array(values, pa.int64())
    return pa.array(draw(st.lists(st.booleans() | missing, min_size=n, max_size=n)), pa.bool_())


@st.composite
def _tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 30))
    width = draw(st.integers(1, 7))
    columns = [draw(_columns(n)) for _ in range(width)]
    names = draw(st.lists(_TEXTS, min_size=width, max_size=width))
    return pa.Table.from_arrays(columns, names=[f"{i}{name}" for i, name in enumerate(names)])


@given(_tables())
def test_rows_are_arrows_bytes(table: pa.Table) -> None:
    assert _ours(table) == _arrow_csv(table)


@given(_tables())
def test_rows_are_arrows_bytes_when_columns_are_not_joined(table: pa.Table) -> None:
    """With no room for combinations, every column is assembled on its own."""
    joined = rows_module._COMBINATIONS
    rows_module._COMBINATIONS = 1
    try:
        assert _ours(table) == _arrow_csv(table)
    finally:
        rows_module._COMBINATIONS = joined


def test_many_rows_with_repeated_and_distinct_values() -> None:
    """Runs of categories are joined until their combinations outgrow the bound, then split."""
    rng = np.random.default_rng(5)
    n = 20_000
    categories = ["normal", "high", "low", 'quoted "x"', ""]
    table = pa.table(
        {
            "id": pa.array([f"S{i}" for i in range(n)]),
            "value": pa.array(np.round(rng.lognormal(5, 1, n), 3)),
            **{f"c{k}": pa.array(rng.choice(categories, n)).dictionary_encode() for k in range(12)},
            "distinct": pa.array(rng.random(n)),
            "flag": pa.array(np.where(rng.random(n) < 0.1, None, "yes")).dictionary_encode(),
        }
    )
    assert _ours(table) == _arrow_csv(table)


def test_a_dictionary_with_an_empty_entry_is_written_as_arrow_writes_it() -> None:
    dictionary = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, None, 1]), pa.array(["x", None], pa.string())
    )
    table = pa.table({"d": dictionary, "e": pa.array(["a", "b", "c", None])})
    assert _ours(table) == _arrow_csv(table)


@pytest.mark.parametrize(
    "column",
    [
        pa.array([datetime.datetime(2026, 1, 2, 3, 4, 5)]),
        pa.array([decimal.Decimal("1.50")]),
        pa.array([b"\x00\xff"]),
        pa.array([1.5], pa.float16()),
        pa.array([datetime.date(2026, 1, 2)]),
    ],
)
def test_other_types_are_left_to_arrow(column: pa.Array) -> None:
    assert csv_rows(pa.table({"x": column, "y": pa.array(["a"])})) is None


def test_a_chunk_with_a_type_left_to_arrow_is_written_as_arrow_writes_it() -> None:
    """The writer falls back to arrow for such a chunk, with the same header and quoting."""
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2026-01-02 03:04:05", None]),
            "note": ['say "hi"', None],
            "value": [1.25, np.nan],
        }
    )
    sink = pa.BufferOutputStream()
    _write_csv(frame, sink, {}, safe=False)  # type: ignore[arg-type]
    expected = _arrow_csv(pa.Table.from_pandas(frame, preserve_index=False))
    assert sink.getvalue().to_pybytes() == expected
