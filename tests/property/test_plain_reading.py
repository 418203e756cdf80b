"""The array reading of plain cells is a shortcut: it reads exactly what ``read_cell`` reads."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

import b12lab
from b12lab._core import cells as cells_module
from b12lab._core.cells import (
    _NUMBER,
    ROW_READING_FROM,
    ParsedColumn,
    _digit_numbers,
    _paired,
    _pairs,
    distinct_cells,
    read_column,
)
from tests.strategies import CONCENTRATION_UNITS, cells, result_texts, unit_texts, values

ANALYTES = ("b12", "holotc", "mma", "hcy", "folate", "creatinine", "egfr")
DECIMALS = st.sampled_from([".", ",", "auto"])


def _rows(column: ParsedColumn, n: int) -> list[tuple[Any, ...]]:
    """What each row reads as: interval, unit, sign, note and error (or its absence)."""
    observed, rows = column.observed, column.rows
    interval = observed.interval
    read = []
    for row in range(n):
        cell = int(rows[row])
        error = column.errors[cell]
        unit = observed.units[int(observed.unit_codes[cell])] if interval.present[cell] else None
        read.append(
            (
                bool(interval.present[cell]),
                _number(interval.lo[cell]),
                _number(interval.hi[cell]),
                bool(interval.lo_open[cell]),
                bool(interval.hi_open[cell]),
                unit,
                str(column.signs[cell]),
                str(column.notes[cell]),
                None if error is None else f"{error.code}: {error}",
            )
        )
    return read


def _number(value: float) -> float | str:
    return "nan" if math.isnan(value) else value


def _same(values: list[object], analyte: str, **options: Any) -> None:
    fast = read_column(pd.Series(values, dtype=object), analyte, fast=True, **options)
    slow = read_column(pd.Series(values, dtype=object), analyte, fast=False, **options)
    assert _rows(fast, len(values)) == _rows(slow, len(values))


@given(
    analyte=st.sampled_from(ANALYTES),
    data=st.data(),
    decimal=DECIMALS,
    unit=st.none() | st.sampled_from(CONCENTRATION_UNITS),
)
def test_text_cells_read_alike(analyte: str, data: st.DataObject, decimal: str, unit: str) -> None:
    texts = data.draw(st.lists(result_texts(analyte), min_size=1, max_size=12))
    _same(texts, analyte, unit=unit, decimal=decimal)


@given(
    analyte=st.sampled_from(["b12", "holotc", "mma", "hcy", "folate"]),
    data=st.data(),
    decimal=DECIMALS,
)
def test_mixed_cells_read_alike(analyte: str, data: st.DataObject, decimal: str) -> None:
    mixed = data.draw(st.lists(cells(analyte), min_size=1, max_size=12))
    _same(mixed, analyte, decimal=decimal)


@given(
    analyte=st.sampled_from(ANALYTES),
    numbers=st.lists(values() | st.none(), min_size=1, max_size=12),
    units=st.lists(unit_texts() | st.none(), min_size=12, max_size=12),
    default=st.none() | st.sampled_from(CONCENTRATION_UNITS),
)
def test_numbers_with_unit_columns_read_alike(
    analyte: str, numbers: list[object], units: list[object], default: str | None
) -> None:
    unit_column = pd.Series(units[: len(numbers)], dtype=object)
    fast = read_column(pd.Series(numbers), analyte, default, unit_column, fast=True)
    slow = read_column(pd.Series(numbers), analyte, default, unit_column, fast=False)
    assert _rows(fast, len(numbers)) == _rows(slow, len(numbers))


def test_numeric_columns_take_the_array_path() -> None:
    column = read_column(pd.Series(np.array([160.0, 0.0, 25.5])), "b12", "pg/mL")
    assert column.observed.units == ("pg/mL",)
    assert list(column.observed.interval.lo[:3]) == [160.0, 0.0, 25.5]


SIMPLE_CELLS = st.builds(
    lambda digits, fraction, unit: f"{digits}{fraction}{unit}",
    st.text(alphabet="0123456789", min_size=1, max_size=5),
    st.sampled_from(["", ".5", ".25", ".125", ".0"]),
    st.sampled_from(["", " pmol/L", " pg/mL", " umol/L", " nmol/L", " µmol/L", " ng/L", " mg/dL"]),
)


@given(
    analyte=st.sampled_from(["b12", "holotc", "mma", "hcy", "folate"]),
    texts=st.lists(SIMPLE_CELLS | st.none(), min_size=1, max_size=12),
    decimal=DECIMALS,
    unit=st.none() | st.sampled_from(CONCENTRATION_UNITS),
)
def test_simple_cells_read_alike(
    analyte: str, texts: list[str | None], decimal: str, unit: str | None
) -> None:
    """Columns of simple results only, which take the split at the space."""
    _same(texts, analyte, unit=unit, decimal=decimal)


@given(
    numbers=st.lists(values(), min_size=1, max_size=12),
    unit=unit_texts(),
    default=st.none() | st.sampled_from(CONCENTRATION_UNITS),
)
def test_one_unit_column_pairs_as_the_general_pairing(
    numbers: list[object], unit: str, default: str | None
) -> None:
    """A unit column with one unit and no gaps takes a shortcut past the pairing."""
    keys, distinct = distinct_cells(pd.Series(numbers))
    unit_column = pd.Series([unit] * len(numbers), dtype=object)
    short = _pairs(keys, distinct, unit_column, default)
    full = _paired(keys, distinct, *distinct_cells(unit_column), default)
    assert short[0].tolist() == full[0].tolist()
    assert list(short[1]) == list(full[1])
    assert list(short[2]) == list(full[2])


@given(
    analyte=st.sampled_from(ANALYTES),
    data=st.data(),
    decimal=st.sampled_from([".", ","]),
    unit=st.none() | st.sampled_from(CONCENTRATION_UNITS),
)
def test_rows_read_one_by_one_read_alike(
    analyte: str, data: st.DataObject, decimal: str, unit: str | None
) -> None:
    """A column read row by row (nearly all distinct cells) reads as its distinct cells do."""
    texts = data.draw(st.lists(SIMPLE_CELLS | result_texts(analyte) | st.none(), max_size=12))
    series = pd.Series(texts, dtype=object)
    by_row = read_column(series, analyte, unit, decimal=decimal, per_row=True)
    by_cell = read_column(series, analyte, unit, decimal=decimal, fast=False)
    assert _rows(by_row, len(texts)) == _rows(by_cell, len(texts))


MARKED_CELLS = st.builds(
    lambda sign, number, unit: f"{sign}{number}{unit}",
    st.sampled_from(["", "<", "> ", "<="]),
    st.sampled_from(["1.476", "1,476", "0,52", "12,5", "0.52", "12.5", "1.476,5", "1,476.5"])
    | st.sampled_from(["1.5e2", "1,5E2", "2e3", "160", ",5", "1.234.567"]),
    st.sampled_from(["", " pmol/L", " pg/mL", " umol/L", "pmol/L"]),
)
"""Cells whose decimal mark is plain, ambiguous (``1.476``, ``1,476``), a comma or grouped,
with censoring, exponents and units."""


@given(
    analyte=st.sampled_from(["b12", "mma", "hcy", "folate"]),
    texts=st.lists(
        st.one_of(
            MARKED_CELLS,
            MARKED_CELLS,  # twice as likely: the marks are what this reading decides on
            SIMPLE_CELLS,
            st.sampled_from(["hemolysed", "see comment", "", "  ", "n/a"]) | st.none(),
        ),
        max_size=12,
    ),
    sample=st.sampled_from([1, 2, 3, 1 << 14]),
    unit=st.none() | st.sampled_from(CONCENTRATION_UNITS),
)
def test_rows_read_one_by_one_with_the_decimal_mark_to_find_read_alike(
    analyte: str, texts: list[str | None], sample: int, unit: str | None
) -> None:
    """With ``decimal="auto"`` the row-by-row reading decides the mark from a sample and the
    whole column's bytes; it reads as the distinct cells do, whose mark comes from all of them.
    Small samples leave cells unseen, as in a long column."""
    series = pd.Series(texts, dtype=object)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cells_module, "_SAMPLE", sample)
        by_row = read_column(series, analyte, unit, decimal="auto", per_row=True)
    by_cell = read_column(series, analyte, unit, decimal="auto", per_row=False)
    assert _rows(by_row, len(texts)) == _rows(by_cell, len(texts))


def test_a_column_with_points_shown_is_read_row_by_row_only_without_commas() -> None:
    """A sample showing decimal points settles ``"auto"`` only where no cell holds a comma."""
    points = pd.Series(["12.5 pmol/L", "1.476 pmol/L", "<148 pmol/L", None] * 4, dtype=object)
    by_row = read_column(points, "b12", decimal="auto", per_row=True)
    assert len(by_row.observed.interval) > len(points)  # a cell per row
    assert _rows(by_row, 16) == _rows(read_column(points, "b12", decimal="auto"), 16)
    assert by_row.observed.interval.lo[by_row.rows[1]] == 1.476
    commas = points.copy()
    commas[15] = "0,52 pmol/L"  # unseen by a sample of 2: the column's mark is unknown
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cells_module, "_SAMPLE", 2)
        unsure = read_column(commas, "b12", decimal="auto", per_row=True)
    assert len(unsure.observed.interval) <= len(commas)  # read over its distinct cells
    assert unsure.errors[unsure.rows[1]] is not None  # 1.476: thousands or a decimal point?
    assert _rows(unsure, 16) == _rows(read_column(commas, "b12", decimal="auto"), 16)
    ambiguous = pd.Series(["1.476 pmol/L", "160 pmol/L"] * 8, dtype=object)  # no mark shown
    unshown = read_column(ambiguous, "b12", decimal="auto", per_row=True)
    assert len(unshown.observed.interval) <= len(ambiguous)
    assert unshown.errors[unshown.rows[0]] is not None


def test_chunked_arrow_text_and_bytes_are_read_row_by_row_as_their_cells() -> None:
    """Arrow-backed text in several chunks is read row by row; bytes are not text."""
    chunks = pa.chunked_array(
        [
            pa.array(["1.5 pmol/L", None], pa.large_string()),
            pa.array(["2.25 pmol/L", "3 pmol/L"], pa.large_string()),
        ]
    )
    arrow = pd.Series(pd.arrays.ArrowExtensionArray(chunks))
    for decimal in (".", "auto"):
        by_row = read_column(arrow, "b12", decimal=decimal, per_row=True)
        assert len(by_row.observed.interval) > 4
        assert by_row.observed.interval.lo[by_row.rows].tolist()[2:] == [2.25, 3.0]
    raw = pd.Series([b"12.5 pmol/L", "13.5 pmol/L"], dtype=object)
    by_row = read_column(raw, "b12", per_row=True)
    assert by_row.errors[by_row.rows[0]] is not None
    assert _rows(by_row, 2) == _rows(read_column(raw, "b12", per_row=False), 2)


def test_a_long_column_of_distinct_results_is_read_row_by_row() -> None:
    """The sample decides: distinct plain results get a cell per row, repeated ones share."""
    n = ROW_READING_FROM
    distinct = pd.Series([f"{100 + i / 1000:.3f} pmol/L" for i in range(n)], dtype=object)
    distinct[7] = "<150 pmol/L"
    distinct[9] = None
    repeated = pd.Series([f"{100 + i % 50} pmol/L" for i in range(n)], dtype=object)
    by_row = read_column(distinct, "b12")
    assert len(by_row.observed.interval) > n  # a cell per row, then the others' cells
    assert _rows(by_row, n) == _rows(read_column(distinct, "b12", per_row=False), n)
    assert len(read_column(repeated, "b12").observed.interval) == 51
    arrow_backed = read_column(distinct.astype("str"), "b12")
    assert len(arrow_backed.observed.interval) > n
    assert _rows(arrow_backed, n) == _rows(by_row, n)


def test_a_frame_read_row_by_row_classifies_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole output, words included, is the same whichever way the column was read."""
    rng = np.random.default_rng(3)
    units = rng.choice(UNITS, 400)
    b12 = [f"{v:.2f} {u}" for v, u in zip(rng.uniform(50, 900, 400), units, strict=True)]
    b12[::34] = ["<148 pmol/L", "hemolysed", "", "see comment", "200", "180.5 pmol/L"] * 2
    frame = pd.DataFrame(
        {
            "b12": b12,
            "mma": [f"{v:.3f} umol/L" for v in rng.uniform(0.1, 0.9, 400)],
            "age": rng.integers(18, 90, 400),
        }
    )
    monkeypatch.setattr(cells_module, "ROW_READING_FROM", 1)
    by_row = b12lab.classify_frame(frame, explain=True)
    monkeypatch.setattr(cells_module, "ROW_READING_FROM", 1 << 40)
    by_cell = b12lab.classify_frame(frame, explain=True)
    pd.testing.assert_frame_equal(by_row.astype(object), by_cell.astype(object))


UNITS = ["pmol/L", "pg/mL", "ng/L", "nmol/L"]


@given(
    st.lists(st.text(alphabet="0123456789.e+- ", max_size=6), min_size=1, max_size=8),
    st.sampled_from([pa.string(), pa.large_string()]),
)
def test_digit_texts_are_found_as_the_pattern_finds_them(
    texts: list[str], kind: pa.DataType
) -> None:
    """The look at the bytes and the cast read numbers exactly when the pattern matches all,
    and read them as the cast does."""
    array = pa.array(texts, type=kind)
    for text in (array, array.slice(1)):
        matched = pc.match_substring_regex(text, _NUMBER).to_pylist()
        numbers = _digit_numbers(text)
        assert (numbers is not None) == (len(text) > 0 and all(matched))
        if numbers is not None:
            assert numbers.tolist() == pc.cast(text, pa.float64()).to_pylist()


@pytest.mark.parametrize("fast", [True, False])
def test_a_unit_ending_in_nul_is_refused_by_both_readings(fast: bool) -> None:
    """numpy text drops a trailing NUL; the unit must reach the unit reader as it was given."""
    read = read_column(pd.Series([float(i) for i in range(40)]), "b12", "pmol/L\x00", fast=fast)
    assert all(isinstance(error, b12lab.UnknownUnitError) for error in read.errors[:40])


def test_a_column_with_no_decimal_mark_at_all_is_read_row_by_row_under_auto() -> None:
    """Whole numbers (with words, censoring, exponents and gaps) read alike with any mark."""
    whole = pd.Series([f"{100 + i} pmol/L" for i in range(ROW_READING_FROM)], dtype=object)
    whole[[3, 5, 7, 9]] = ["<148 pmol/L", "hemolysed", None, "2e3 pmol/L"]
    by_row = read_column(whole, "b12", decimal="auto")
    assert len(by_row.observed.interval) > len(whole)  # a cell per row
    by_cell = read_column(whole, "b12", decimal="auto", per_row=False)
    assert _rows(by_row, len(whole)) == _rows(by_cell, len(whole))
