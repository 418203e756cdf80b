"""Derived results in the pipeline: eGFR from creatinine where a row gives none.

The equation is :mod:`b12lab._core.kidney`; here its results become the eGFR column the
pipeline bands. A row's eGFR depends on its creatinine cell, age and sex, so it is computed once
per distinct (cell, age, sex) and spread to rows by index, as the rest of the pipeline does. The
derived results are appended to the given eGFR column as further distinct cells, so banding,
rules, flags and both result builders treat them as they treat a given result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core.analytes import ANALYTES
from b12lab._core.categories import Censoring
from b12lab._core.cells import ParsedColumn
from b12lab._core.engine import BoolArray, Context, FloatArray, IntArray, Interval
from b12lab._core.kidney import NO_CREATININE, Equation, egfr_interval, withheld
from b12lab._core.observations import Observed

__all__ = ["Derivation", "derive"]

_SWAPPED = {  # eGFR falls as creatinine rises: the sign turns
    Censoring.BELOW.value: Censoring.ABOVE.value,
    Censoring.AT_OR_BELOW.value: Censoring.AT_OR_ABOVE.value,
    Censoring.ABOVE.value: Censoring.BELOW.value,
    Censoring.AT_OR_ABOVE.value: Censoring.AT_OR_BELOW.value,
}


@dataclass(frozen=True)
class Derivation:
    """The eGFR column with derived results where none was given, and what was derived.

    ``derived`` is True for rows whose eGFR was derived; ``withheld`` says, for rows with a
    creatinine result and no eGFR, why none was derived (bits; 0 elsewhere).
    """

    equation: Equation
    column: ParsedColumn
    derived: BoolArray
    withheld: IntArray


def derive(
    equation: Equation, creatinine: ParsedColumn, given: ParsedColumn | None, context: Context
) -> Derivation:
    """eGFR from creatinine for every row with a creatinine result and no eGFR result.

    A given eGFR always wins: rows whose eGFR cell holds a value, or could not be read, keep it.
    A cell that states no result (``"pending"``) counts as no eGFR.
    """
    n = context.age.shape[0]
    base = given if given is not None else _empty_column(n)
    cell_errors = np.array([error is not None for error in base.errors], dtype=bool)
    empty_cells = ~base.observed.interval.present & ~cell_errors
    wanted = creatinine.observed.present & empty_cells[base.rows]
    why = np.where(wanted, withheld(context.age, context.sex, equation), 0).astype(np.int16)
    nothing = creatinine.observed.interval.hi <= 0  # per cell: no value above zero allowed
    why |= np.where(wanted & nothing[creatinine.rows], NO_CREATININE, 0).astype(np.int16)
    rows = np.flatnonzero(wanted & (why == 0))
    cells, first, row_cell = _distinct(creatinine.rows[rows], context.age[rows], context.sex[rows])
    interval = egfr_interval(
        _in_unit(creatinine.observed, cells, equation.creatinine_unit),
        context.age[rows][first],
        context.sex[rows][first],
        equation,
    )
    signs = creatinine.signs[cells]
    swapped = np.full(len(signs), "", dtype=object)
    for sign, opposite in _SWAPPED.items():
        swapped[signs == sign] = opposite
    column = _appended(base, interval, swapped, rows, row_cell)
    derived = np.zeros(n, dtype=bool)
    derived[rows] = True
    return Derivation(equation, column, derived, why)


def _distinct(
    cells: npt.NDArray[np.intp], age: FloatArray, sex: IntArray
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The distinct (creatinine cell, age, sex) of some rows: for each, its creatinine cell and
    the position of a row that has it; and each row's index into them."""
    age_codes, age_values = pd.factorize(age)
    key = (cells.astype(np.int64) * max(len(age_values), 1) + age_codes) * 2 + (sex > 0)
    row_key, distinct = pd.factorize(key)
    first = np.zeros(len(distinct), dtype=np.intp)
    first[row_key[::-1]] = np.arange(len(key), dtype=np.intp)[::-1]  # the first row wins
    return cells[first], first, np.asarray(row_key, dtype=np.intp)


def _in_unit(observed: Observed, cells: npt.NDArray[np.intp], unit: str) -> Interval:
    """Some distinct cells' intervals, converted straight from their given unit to ``unit``."""
    interval = observed.interval
    factors = np.broadcast_to(observed.factors_to(unit), (len(interval),))[cells]
    with np.errstate(invalid="ignore", over="ignore"):
        lo, hi = interval.lo[cells] * factors, interval.hi[cells] * factors
    return Interval(
        lo,
        hi,
        interval.lo_open[cells],
        interval.hi_open[cells],
        interval.present[cells],
    )


def _empty_column(n: int) -> ParsedColumn:
    """An eGFR column in which no row has a cell."""
    nothing = np.full(1, np.nan)
    no = np.zeros(1, dtype=bool)
    interval = Interval(nothing, nothing, no, no, no)
    observed = Observed("egfr", interval, np.zeros(1, dtype=np.int16), (), np.zeros(n, np.intp))
    blank = np.array([""], dtype=object)
    return ParsedColumn(observed, blank, blank.copy(), [None], noted=False)


def _appended(
    base: ParsedColumn,
    derived: Interval,
    signs: npt.NDArray[np.object_],
    rows: npt.NDArray[np.intp],
    row_cell: npt.NDArray[np.intp],
) -> ParsedColumn:
    """``base`` with the derived results as further distinct cells, and ``rows`` pointed at
    them."""
    observed = base.observed
    unit = ANALYTES["egfr"].canonical_unit
    units = observed.units if unit in observed.units else (*observed.units, unit)
    old = observed.interval
    interval = Interval(
        np.concatenate([old.lo, derived.lo]),
        np.concatenate([old.hi, derived.hi]),
        np.concatenate([old.lo_open, derived.lo_open]),
        np.concatenate([old.hi_open, derived.hi_open]),
        np.concatenate([old.present, derived.present]),
    )
    derived_unit = np.full(len(derived), units.index(unit), dtype=np.int16)
    per_row = base.rows.copy()
    per_row[rows] = len(old) + row_cell
    merged = Observed(
        "egfr", interval, np.concatenate([observed.unit_codes, derived_unit]), units, per_row
    )
    return ParsedColumn(
        merged,
        np.concatenate([base.signs, signs]),
        np.concatenate([base.notes, np.full(len(derived), "", dtype=object)]),
        [*base.errors, *([None] * len(derived))],
        base.noted,
    )
