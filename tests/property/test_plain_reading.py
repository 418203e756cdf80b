"""The array reading of plain cells is a shortcut: it reads exactly what ``read_cell`` reads."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from b12lab._core.cells import ParsedColumn, _paired, _pairs, distinct_cells, read_column
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
