"""Arrow data in classify_frame: pyarrow, Polars and DuckDB in, the same kind out, the same
results as pandas."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import b12lab
from b12lab.errors import ColumnError

LABS: dict[str, list[Any]] = {
    "id": ["p1", "p2", "p3", "p4", "p5"],
    "b12": ["160 pg/mL", "hemolysed", None, "<148 pmol/L", "see comment"],
    "mma": ["0.5 umol/L", "0.2 umol/L", "0.3 umol/L", None, "0.25 umol/L"],
    "sex": ["F", "m", None, "female", "X"],
    "age": [72, 45, None, 30, 61],
}
EXPECTED_CATEGORIES = [
    "deficiency_likely",
    "deficiency_unlikely",
    "deficiency_unlikely",
    "deficiency_possible",
    "",
]


def _results(out: Any) -> dict[str, list[Any]]:
    """The b12lab columns of any output, as Python lists (missing numbers as None)."""
    if isinstance(out, pd.DataFrame):
        columns = {name: out[name].tolist() for name in out.columns}
    else:
        columns = {name: out.column(name).to_pylist() for name in out.column_names}
    return {
        name: [None if isinstance(v, float) and np.isnan(v) else v for v in values]
        for name, values in columns.items()
        if name.startswith("b12lab_")
    }


def test_a_table_comes_back_as_a_table_with_the_input_columns_first() -> None:
    table = pa.table(LABS)
    out = b12lab.classify_frame(table)
    assert isinstance(out, pa.Table)
    assert out.num_rows == 5
    assert out.select(list(LABS)).equals(table)
    assert out.column_names[len(LABS)] == "b12lab_b12"
    assert out.column("b12lab_category").to_pylist() == EXPECTED_CATEGORIES
    assert pa.types.is_dictionary(out.schema.field("b12lab_category").type)
    assert pa.types.is_float64(out.schema.field("b12lab_b12").type)


def test_a_table_gives_what_pandas_gives() -> None:
    out = b12lab.classify_frame(pa.table(LABS), explain=True)
    assert _results(out) == _results(b12lab.classify_frame(pd.DataFrame(LABS), explain=True))


def test_errors_stay_on_their_rows() -> None:
    out = b12lab.classify_frame(pa.table(LABS))
    errors = out.column("b12lab_error").to_pylist()
    assert [bool(e) for e in errors] == [False, False, False, False, True]
    assert errors[4].startswith("invalid_value: b12")
    assert out.column("b12lab_b12_note").to_pylist()[1] == "no result: hemolysed"
    assert out.column("id").to_pylist() == LABS["id"]


def test_a_record_batch_comes_back_as_a_table() -> None:
    batch = pa.RecordBatch.from_pydict(LABS)
    out = b12lab.classify_frame(batch)
    assert isinstance(out, pa.Table)
    assert out.column("b12lab_category").to_pylist() == EXPECTED_CATEGORIES


def test_dictionary_encoded_text_reads_as_text() -> None:
    table = pa.table(
        {
            name: pa.array(values).dictionary_encode()
            for name, values in LABS.items()
            if name != "age"
        }
    )
    out = b12lab.classify_frame(table)
    assert out.column("b12lab_category").to_pylist() == EXPECTED_CATEGORIES
    assert out.schema.field("b12").type == table.schema.field("b12").type


def test_a_table_of_several_chunks_with_their_own_dictionaries() -> None:
    first = pa.table({"b12": pa.array(["160 pg/mL", "400 pmol/L"]).dictionary_encode()})
    second = pa.table({"b12": pa.array(["bad", None, "160 pg/mL"]).dictionary_encode()})
    out = b12lab.classify_frame(pa.concat_tables([first, second]))
    assert out.column("b12lab_b12_band").to_pylist() == [
        "deficient",
        "unlikely",
        "",
        "",
        "deficient",
    ]
    assert out.column("b12lab_error").to_pylist()[2].startswith("invalid_value")


def test_numeric_columns_with_units_and_nulls() -> None:
    table = pa.table(
        {
            "b12 (pg/mL)": pa.array([160.0, None, 400.0], pa.float64()),
            "mma": pa.array([1, 0, None], pa.int64()),
            "age": pa.array([70, None, 40], pa.int32()),
        }
    )
    out = b12lab.classify_frame(table, units={"mma": "umol/L"})
    b12 = out.column("b12lab_b12").to_pylist()
    assert b12[0] == pytest.approx(160 * 1000 / 1355.37)
    assert b12[1] is None  # a null is a missing result
    assert out.column("b12lab_mma").to_pylist() == [1.0, 0.0, None]
    assert out.column("b12lab_mma_band").to_pylist() == ["high", "normal", ""]
    expected = b12lab.classify_frame(
        pd.DataFrame(
            {"b12 (pg/mL)": [160.0, None, 400.0], "mma": [1, 0, None], "age": [70, None, 40]}
        ),
        units={"mma": "umol/L"},
    )
    assert _results(out) == _results(expected)


def test_a_number_without_a_unit_is_an_error_on_its_row() -> None:
    out = b12lab.classify_frame(pa.table({"b12": [160.0, None]}))
    assert (
        out.column("b12lab_error")
        .to_pylist()[0]
        .startswith("unknown_unit: b12: the number 160.0 has no unit")
    )
    assert out.column("b12lab_category").to_pylist() == ["", "insufficient_data"]


def test_decimals_are_read_as_their_exact_text() -> None:
    table = pa.table({"b12": pa.array([Decimal("160.50"), None], pa.decimal128(6, 2))})
    out = b12lab.classify_frame(table, units={"b12": "pg/mL"})
    assert out.column("b12lab_b12").to_pylist()[0] == pytest.approx(160.5 * 1000 / 1355.37)
    assert out.column("b12").type == pa.decimal128(6, 2)


def test_pandas_metadata_in_a_table_is_not_read_back() -> None:
    frame = pd.DataFrame(
        {"b12": pd.array(["160 pg/mL", None], dtype=pd.ArrowDtype(pa.string()))}, index=[7, 3]
    )
    table = pa.Table.from_pandas(frame)
    out = b12lab.classify_frame(table)
    assert out.column("b12lab_b12_band").to_pylist() == ["deficient", ""]
    assert out.column("__index_level_0__").to_pylist() == [7, 3]
    assert list(out.to_pandas().index) == [7, 3]


def test_earlier_results_are_replaced() -> None:
    once = b12lab.classify_frame(pa.table(LABS))
    twice = b12lab.classify_frame(once, table="bsh-2014@2")
    assert twice.column_names == once.column_names
    assert twice.column("b12lab_table").to_pylist()[0] == "bsh-2014@2"


def test_row_errors_and_no_rows() -> None:
    out = b12lab.classify_frame(pa.table(LABS), row_errors=["", "ragged_row: x", "", "", ""])
    assert out.column("b12lab_error").to_pylist()[1] == "ragged_row: x"
    empty = b12lab.classify_frame(pa.table(LABS).slice(0, 0))
    assert isinstance(empty, pa.Table)
    assert empty.num_rows == 0
    assert "b12lab_category" in empty.column_names


def test_a_table_without_an_analyte_column_is_refused() -> None:
    with pytest.raises(ColumnError, match="no analyte column found"):
        b12lab.classify_frame(pa.table({"id": ["a"]}))


def test_what_is_not_a_table_is_refused_with_the_fix() -> None:
    with pytest.raises(ColumnError, match=r"given dict.*pandas\.DataFrame\(data\)"):
        b12lab.classify_frame({"b12": ["160 pg/mL"]})


def test_an_object_with_to_arrow() -> None:
    class Result:
        def to_arrow(self) -> pa.Table:
            return pa.table(LABS)

    out = b12lab.classify_frame(Result())
    assert out.column("b12lab_category").to_pylist() == EXPECTED_CATEGORIES


def test_polars_in_polars_out() -> None:
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame(LABS).with_columns(pl.col("sex").cast(pl.Categorical))
    out = b12lab.classify_frame(frame, explain=True)
    assert isinstance(out, pl.DataFrame)
    assert out.columns[: len(LABS)] == list(LABS)
    assert out["id"].to_list() == LABS["id"]
    assert out["b12lab_category"].to_list() == EXPECTED_CATEGORIES
    expected = b12lab.classify_frame(pd.DataFrame(LABS), explain=True)
    assert _results(out.to_arrow()) == _results(expected)


def test_duckdb_relation_in_table_out() -> None:
    duckdb = pytest.importorskip("duckdb")
    connection = duckdb.connect()
    relation = connection.sql(
        "SELECT * FROM (VALUES ('p1', 160.5, 'F'), ('p2', NULL, 'M'), ('p3', 400.0, NULL))"
        " AS labs(id, b12, sex) ORDER BY id"
    )
    out = b12lab.classify_frame(relation, units={"b12": "pg/mL"})
    assert isinstance(out, pa.Table)
    assert out.column("id").to_pylist() == ["p1", "p2", "p3"]
    assert out.column("b12lab_b12_band").to_pylist() == ["deficient", "", "unlikely"]


def test_polars_is_imported_only_for_polars_input() -> None:
    code = (
        "import sys, pyarrow as pa, b12lab\n"
        "b12lab.classify_frame(pa.table({'b12': ['160 pg/mL']}))\n"
        "assert 'polars' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
