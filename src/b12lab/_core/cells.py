"""Stage one: read cells. One reader for every way a result reaches b12lab.

A cell is what a laboratory or a caller hands over for one analyte of one patient: text
(``"160 pg/mL"``, ``"<148"``, ``"hemolysed"``), a number with the column's unit, a
``(value, unit)`` pair, a pint Quantity from any registry, or nothing. :func:`read_cell` reads
one; :func:`read_column` reads each distinct cell of a column once and spreads the answer to its
rows, so ``classify`` (one row) and ``classify_frame`` (ten million) read cells identically.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core.analytes import get_analyte
from b12lab._core.categories import Censoring
from b12lab._core.engine import Interval
from b12lab._core.measurements import (
    RESULT_REGEX,
    Measurement,
    measure,
    no_unit_error,
    read_text,
)
from b12lab._core.numerals import Decimal, decimal_of, is_no_result
from b12lab._core.observations import Observed
from b12lab.errors import B12LabError

__all__ = ["NoResult", "ParsedColumn", "distinct_cells", "read_cell", "read_column"]


@dataclass(frozen=True)
class NoResult:
    """A cell that says there is no result, and the words it says it with."""

    word: str

    @property
    def note(self) -> str:
        return f"no result: {self.word}"


Reading = Measurement | NoResult | None


def read_cell(
    cell: object, analyte: str, unit: str | None = None, decimal: Decimal = "."
) -> Reading:
    """One cell as a measurement, a stated absence of result, or ``None`` for an empty cell.

    ``unit`` is the column's unit, used when the cell carries none. Raises a
    :class:`~b12lab.errors.MeasurementError` saying what is wrong with the cell.
    """
    if _is_empty(cell):
        return None
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return None
        if is_no_result(text):
            return NoResult(" ".join(text.lower().split()))
        return Measurement(analyte, *read_text(text, analyte, unit, decimal))
    if isinstance(cell, np.generic):
        cell = cell.item()
    if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
        if not unit:
            raise no_unit_error(cell, analyte)
        return measure((cell, unit), analyte=analyte)
    return measure(cell, analyte=analyte)  # type: ignore[arg-type]  # refuses what it cannot read


def _is_empty(cell: object) -> bool:
    if cell is None or cell is pd.NA or cell is pd.NaT:
        return True
    return isinstance(cell, float) and math.isnan(cell)


@dataclass(frozen=True)
class ParsedColumn:
    """One analyte's column, read: intervals per distinct cell, and per-row indices into them.

    ``errors`` holds the exception of each distinct cell that could not be read (``None`` for
    the others); ``notes`` the words of each cell that states no result. The last distinct slot
    is the empty cell.
    """

    observed: Observed
    signs: npt.NDArray[np.object_]
    notes: npt.NDArray[np.object_]
    errors: list[B12LabError | None]

    @property
    def rows(self) -> npt.NDArray[np.intp]:
        rows = self.observed.rows
        assert rows is not None
        return rows.astype(np.intp, copy=False)


def distinct_cells(
    values: pd.Series | Sequence[object],
) -> tuple[npt.NDArray[np.intp], list[object]]:
    """Each row's index into the distinct cells, and the distinct cells; -1 for a missing cell.

    Cells that cannot be hashed (lists, dicts) or compared (Quantities of other registries) are
    each their own distinct cell, so they reach the reader and get a clear error.
    """
    if not isinstance(values, pd.Series) and len(values) == 1:  # one patient: no hashing needed
        (cell,) = values
        if _is_empty(cell):
            return np.full(1, -1, dtype=np.intp), []
        return np.zeros(1, dtype=np.intp), [cell]
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    try:
        keys, uniques = pd.factorize(series, use_na_sentinel=True)
        return np.asarray(keys, dtype=np.intp), list(uniques)
    except (TypeError, ValueError):
        cells = series.to_numpy(dtype=object)
        return np.arange(len(cells), dtype=np.intp), list(cells)


def read_column(
    values: pd.Series | Sequence[object],
    analyte: str,
    unit: str | None = None,
    unit_values: pd.Series | Sequence[object] | None = None,
    decimal: Decimal = ".",
) -> ParsedColumn:
    """Read each distinct cell (or distinct value and unit pair) once; rows index the answers."""
    keys, cells = distinct_cells(values)
    if decimal == "auto":
        decimal = _column_decimal(cells)
    units: list[str | None] = [unit] * len(cells)
    if unit_values is not None:
        keys, cells, units = _pairs(keys, cells, unit_values, unit)
    readings: list[Reading] = []
    errors: list[B12LabError | None] = []
    for cell, cell_unit in zip(cells, units, strict=True):
        try:
            readings.append(read_cell(cell, analyte, cell_unit, decimal))
            errors.append(None)
        except B12LabError as exc:
            readings.append(None)
            errors.append(exc)
    readings.append(None)  # the slot of an empty cell
    errors.append(None)
    rows = np.where(keys < 0, len(cells), keys)
    return _parsed(analyte, readings, errors, rows)


def _column_decimal(cells: Sequence[object]) -> Decimal:
    """The decimal mark the column's text cells show, read from their number tokens."""
    tokens = (
        match["number"]
        for cell in cells
        if isinstance(cell, str) and (match := RESULT_REGEX.match(cell)) is not None
    )
    return decimal_of(tokens)


def _pairs(
    keys: npt.NDArray[np.intp],
    cells: list[object],
    unit_values: pd.Series | Sequence[object],
    default: str | None,
) -> tuple[npt.NDArray[np.intp], list[object], list[str | None]]:
    """Distinct (value, unit) pairs from a value column's distinct cells and a unit column."""
    unit_keys, unit_cells = distinct_cells(unit_values)
    width = len(unit_cells) + 1
    pair = np.where(keys < 0, -1, keys * width + (unit_keys + 1))
    pair_keys, pair_uniques = pd.factorize(pair, use_na_sentinel=False)
    pair_keys = np.where(pair_uniques[pair_keys] < 0, -1, pair_keys)
    value_code, unit_code = np.divmod(np.maximum(pair_uniques, 0), width)
    spelled = [str(u).strip() if not _is_empty(u) else "" for u in unit_cells]
    distinct: list[object] = []
    distinct_units: list[str | None] = []
    for code, value, unit in zip(pair_uniques, value_code, unit_code, strict=True):
        distinct.append(cells[value] if code >= 0 else None)
        given = spelled[unit - 1] if unit > 0 else ""
        distinct_units.append(given or default)
    return np.asarray(pair_keys, dtype=np.intp), distinct, distinct_units


def _parsed(
    analyte: str,
    readings: list[Reading],
    errors: list[B12LabError | None],
    rows: npt.NDArray[np.intp],
) -> ParsedColumn:
    measured = [r if isinstance(r, Measurement) else None for r in readings]
    units = tuple(dict.fromkeys(m.unit for m in measured if m is not None))
    lookup = {u: i for i, u in enumerate(units)}
    values = np.array([m.value if m else np.nan for m in measured], dtype=np.float64)
    signs = np.array([m.censoring.value if m else "" for m in measured], dtype=object)
    below = np.isin(signs, (Censoring.BELOW.value, Censoring.AT_OR_BELOW.value))
    above = np.isin(signs, (Censoring.ABOVE.value, Censoring.AT_OR_ABOVE.value))
    interval = Interval(
        lo=np.where(below, 0.0, values),
        hi=np.where(above, np.inf, values),
        lo_open=signs == Censoring.ABOVE.value,
        hi_open=signs == Censoring.BELOW.value,
        present=np.array([m is not None for m in measured], dtype=bool),
    )
    unit_codes = np.array([lookup[m.unit] if m else 0 for m in measured], dtype=np.int16)
    notes = np.array([r.note if isinstance(r, NoResult) else "" for r in readings], dtype=object)
    observed = Observed(get_analyte(analyte).name, interval, unit_codes, units, rows=rows)
    return ParsedColumn(observed, signs, notes, errors)
