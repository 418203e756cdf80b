"""eGFR derived from serum creatinine, for tables that ask for it (``[derived.egfr]``).

The form of the equation is code; every constant comes from the table file, with its source. The
race-free CKD-EPI 2021 creatinine equation [1]_ [2]_ is::

    eGFR = numerator × min(Scr/κ, 1)^α × max(Scr/κ, 1)^exponent_above_kappa
           × age_base^age × female_factor [if female]

with eGFR [mL/min/1.73 m²], Scr [the table's ``creatinine_unit``, mg/dL in the source], age
[year]; κ and α by sex. It applies to adults (``min_age``) of known sex; elsewhere no eGFR is
derived.

For a fixed age and sex, eGFR decreases strictly as creatinine increases, so a censored
creatinine maps to a censored eGFR with its ends swapped (:func:`egfr_interval`):
``<44 µmol/L`` becomes ``>eGFR(44 µmol/L)``, and ``<=`` becomes ``>=``.

Like the engine, this module takes and returns numpy arrays and holds no clinical number;
:mod:`b12lab._core.derivation` puts its results into the pipeline.

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

from b12lab._core.engine import FloatArray, IntArray, Interval

__all__ = [
    "AGE_BELOW_MINIMUM",
    "AGE_MISSING",
    "EQUATIONS",
    "NO_CREATININE",
    "SEX_MISSING",
    "Equation",
    "egfr",
    "egfr_interval",
    "withheld",
]

EQUATIONS = {"ckd-epi-2021-creatinine": "CKD-EPI 2021 creatinine equation"}
"""The equation forms b12lab implements, by the name a table gives them, with their titles."""

AGE_MISSING, AGE_BELOW_MINIMUM, SEX_MISSING, NO_CREATININE = 1, 2, 4, 8
"""Why no eGFR is derived for a row (bits). NO_CREATININE: a creatinine of zero (or one that is at
most zero after a censoring sign), which no kidney filters."""
"""Why no eGFR was derived for a row, as bits (0: derived, or nothing to derive from)."""

_FEMALE = 0  # the context's sex code (engine.Context): 0 female, 1 male, -1 not known


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
