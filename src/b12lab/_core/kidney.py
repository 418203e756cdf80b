"""eGFR derived from serum creatinine, for tables that ask for it (``[derived.egfr]``).

The form of the equation is code; every constant comes from the table file, with its source. The
race-free CKD-EPI 2021 creatinine equation [1]_ [2]_ is::

    eGFR = numerator × min(Scr/κ, 1)^α × max(Scr/κ, 1)^exponent_above_kappa
           × age_base^age × female_factor [if female]

with eGFR [mL/min/1.73 m²], Scr [the table's ``creatinine_unit``, mg/dL in the source], age
[year]; κ and α by sex. It applies to adults (``min_age``) of known sex; elsewhere no eGFR is
derived.

For a fixed age and sex, eGFR decreases strictly as creatinine increases, so a censored
creatinine maps to a censored eGFR with its ends swapped: ``<44 µmol/L`` becomes
``>eGFR(44 µmol/L)``, and ``<=`` becomes ``>=``. The derived interval is banded like any other
result: it has a band when it lies within one, and is indeterminate when it spans bands.

Each row's eGFR depends on its creatinine cell, age and sex, so it is computed once per distinct
(cell, age, sex) and spread to rows by index, as the rest of the pipeline does.

References
----------
.. [1] Inker LA et al. New creatinine- and cystatin C-based equations to estimate GFR without
   race. N Engl J Med 2021;385:1737-1749.
.. [2] National Kidney Foundation, CKD-EPI Creatinine Equation (2021),
   kidney.org/ckd-epi-creatinine-equation-2021.
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
from b12lab._core.observations import Observed

__all__ = [
    "AGE_BELOW_MINIMUM",
    "AGE_MISSING",
    "EQUATIONS",
    "SEX_MISSING",
    "Derivation",
    "Equation",
    "derive",
    "egfr",
    "egfr_interval",
    "withheld",
]

EQUATIONS = {"ckd-epi-2021-creatinine": "CKD-EPI 2021 creatinine equation"}
"""The equation forms b12lab implements, by the name a table gives them, with their titles."""

AGE_MISSING, AGE_BELOW_MINIMUM, SEX_MISSING = 1, 2, 4
"""Why no eGFR was derived for a row, as bits (0: derived, or nothing to derive from)."""

_FEMALE = 0  # the context's sex code (engine.Context): 0 female, 1 male, -1 not known
_SWAPPED = {
    Censoring.BELOW.value: Censoring.ABOVE.value,
    Censoring.AT_OR_BELOW.value: Censoring.AT_OR_ABOVE.value,
    Censoring.ABOVE.value: Censoring.BELOW.value,
    Censoring.AT_OR_ABOVE.value: Censoring.AT_OR_BELOW.value,
}


@dataclass(frozen=True)
class Equation:
    """An eGFR equation's constants as a table gives them, and where they came from.

    ``kappa`` and ``alpha`` are indexed by the context's sex code (female, male).
    """

    name: str
    creatinine_unit: str
    numerator: float
    kappa: tuple[float, float]
    alpha: tuple[float, float]
    exponent_above_kappa: float
    age_base: float
    female_factor: float
    min_age: float
    table: str
    source: str

    @property
    def title(self) -> str:
        return EQUATIONS[self.name]


def withheld(age: FloatArray, sex: IntArray, equation: Equation) -> IntArray:
    """Per row, why the equation does not apply (bits; 0 where it applies)."""
    with np.errstate(invalid="ignore"):
        below = age < equation.min_age
    why = np.where(np.isnan(age), AGE_MISSING, np.where(below, AGE_BELOW_MINIMUM, 0))
    why |= np.where(sex < 0, SEX_MISSING, 0)
    return why.astype(np.int16)


def egfr(creatinine: FloatArray, age: FloatArray, sex: IntArray, equation: Equation) -> FloatArray:
    """eGFR [mL/min/1.73 m²] from creatinine [``equation.creatinine_unit``], age [year] and sex.

    NaN where the equation does not apply (:func:`withheld`) or creatinine is NaN. A creatinine
    of 0 gives +inf and +inf gives 0, the limits an open interval end needs.
    """
    applies = withheld(age, sex, equation) == 0
    code = np.where(applies, sex, _FEMALE).astype(np.intp)
    kappa = np.asarray(equation.kappa, dtype=np.float64)[code]
    alpha = np.asarray(equation.alpha, dtype=np.float64)[code]
    female = np.where(code == _FEMALE, equation.female_factor, 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = creatinine / kappa
        value = (
            equation.numerator
            * np.minimum(ratio, 1.0) ** alpha
            * np.maximum(ratio, 1.0) ** equation.exponent_above_kappa
            * equation.age_base**age
            * female
        )
    result: FloatArray = np.where(applies, value, np.nan)
    return result


def egfr_interval(
    creatinine: Interval, age: FloatArray, sex: IntArray, equation: Equation
) -> Interval:
    """Creatinine intervals [``equation.creatinine_unit``] as eGFR intervals [mL/min/1.73 m²].

    eGFR decreases as creatinine increases: the upper creatinine end gives the lower eGFR end,
    and an open end stays open on the swapped side. An exact creatinine gives an exact eGFR.
    """
    lo = egfr(creatinine.hi, age, sex, equation)
    hi = egfr(creatinine.lo, age, sex, equation)
    present = creatinine.present & (withheld(age, sex, equation) == 0)
    return Interval(lo, hi, creatinine.hi_open.copy(), creatinine.lo_open.copy(), present)


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
