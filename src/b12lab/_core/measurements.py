"""Read one result as a laboratory gives it: ``"160 pg/mL"``, ``"<148 pmol/L"``, ``(0.52, "µM")``.

Censored results (``<50``, ``≥1476``) are real laboratory output. They keep their censoring
through normalization and become intervals for classification.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from b12lab._core.analytes import get_analyte
from b12lab._core.categories import Censoring
from b12lab._core.numerals import Decimal, read_number
from b12lab._core.units import conversion_factor, display_unit, quantity
from b12lab.errors import InvalidValueError, MeasurementError, UnknownUnitError

if TYPE_CHECKING:
    import pint

__all__ = ["Measurement", "MeasurementInput", "measure", "no_unit_error", "normalize", "read_text"]

MeasurementInput: TypeAlias = "str | tuple[object, str] | pint.Quantity[float] | Measurement"

_CENSOR_SIGNS = {
    "<": Censoring.BELOW,
    "<=": Censoring.AT_OR_BELOW,
    "≤": Censoring.AT_OR_BELOW,
    "=<": Censoring.AT_OR_BELOW,
    ">": Censoring.ABOVE,
    ">=": Censoring.AT_OR_ABOVE,
    "≥": Censoring.AT_OR_ABOVE,
    "=>": Censoring.AT_OR_ABOVE,
}
RESULT_PATTERN = (
    r"^\s*(?P<sign><=|>=|=<|=>|≤|≥|<|>)?\s*"
    r"(?P<number>[-+]?(?:[0-9][0-9.,]*|[.,][0-9]+)(?:[eE][-+]?[0-9]+)?)"
    r"\s*(?P<unit>.*?)\s*$"
)
"""A result as text: optional censoring sign, a number, an optional unit."""
RESULT_REGEX = re.compile(RESULT_PATTERN)


@dataclass(frozen=True)
class Measurement:
    """One result of one analyte, in the unit it was given, with its censoring.

    ``value`` is the number as reported; for a censored result it is the bound
    (``<148`` has value 148 and censoring ``BELOW``).
    """

    analyte: str
    value: float
    unit: str
    censoring: Censoring = Censoring.NONE

    @property
    def censored(self) -> bool:
        return self.censoring is not Censoring.NONE

    def to(self, unit: str) -> Measurement:
        """The same result in another unit; censoring is kept, because factors are positive."""
        factor = conversion_factor(self.analyte, self.unit, unit)
        return Measurement(self.analyte, self.value * factor, unit, self.censoring)

    def canonical(self) -> Measurement:
        """The result in its analyte's canonical unit."""
        return self.to(get_analyte(self.analyte).canonical_unit)

    def quantity(self) -> pint.Quantity[float]:
        return quantity(self.value, self.unit)

    def __str__(self) -> str:
        return f"{self.censoring.value}{self.value:g} {display_unit(self.unit)}"


def measure(value: MeasurementInput, *, analyte: str) -> Measurement:
    """Read a result for ``analyte``; check its unit converts, its number is usable.

    >>> measure("<148 pmol/L", analyte="b12")
    Measurement(analyte='b12', value=148.0, unit='pmol/L', censoring=<Censoring.BELOW: '<'>)
    """
    name = get_analyte(analyte).name
    if isinstance(value, Measurement):
        result = Measurement(name, value.value, value.unit, value.censoring)
    elif isinstance(value, str):
        result = _from_text(value, name)
    elif isinstance(value, tuple):
        result = _from_pair(value, name)
    elif _is_quantity(value):
        result = _from_quantity(value, name)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        raise no_unit_error(value, name)
    else:
        raise InvalidValueError(
            f"{name}: cannot read {value!r}; give a string such as '160 pg/mL', "
            "a (value, unit) pair or a pint Quantity",
            analyte=name,
            value=repr(value),
        )
    conversion_factor(name, result.unit)
    return result


def normalize(value: MeasurementInput, *, analyte: str) -> pint.Quantity[float]:
    """The result as a Quantity in its analyte's canonical unit.

    A Quantity cannot say "less than", so a censored result is refused here: use
    :func:`measure` and :meth:`Measurement.canonical`, which keep the censoring.

    >>> round(normalize("160 pg/mL", analyte="b12").magnitude, 4)
    118.0489
    """
    measured = measure(value, analyte=analyte)
    if measured.censored:
        raise MeasurementError(
            f"{measured.analyte}: {measured} is censored and a plain Quantity would drop "
            f"the {measured.censoring.value!r}; use b12lab.measure(...).canonical() instead",
            analyte=measured.analyte,
            value=str(measured),
        )
    canonical = measured.canonical()
    return quantity(canonical.value, canonical.unit)


def no_unit_error(number: object, analyte: str) -> UnknownUnitError:
    units = _units_of(analyte)
    return UnknownUnitError(
        f"{analyte}: the number {number!r} has no unit; write it with its unit, such as "
        f"'{number} {units[0]}' or ({number!r}, '{units[0]}'); for a column of numbers give its "
        f"unit (units={{'{analyte}': '{units[0]}'}}); {analyte} is reported in {', '.join(units)}",
        analyte=analyte,
        value=repr(number),
        unit="",
        expected=tuple(units),
    )


def _units_of(analyte: str) -> list[str]:
    """The units laboratories report an analyte in, canonical first."""
    record = get_analyte(analyte)
    common = {
        "b12": ["pmol/L", "pg/mL", "ng/L"],
        "holotc": ["pmol/L"],
        "mma": ["µmol/L", "nmol/mL", "nmol/L"],
        "hcy": ["µmol/L", "mg/L"],
        "folate": ["nmol/L", "ng/mL", "µg/L"],
        "creatinine": ["µmol/L", "mg/dL"],
        "egfr": ["mL/min/1.73m²"],
    }
    return common.get(record.name, [record.canonical_unit])


def _from_text(text: str, analyte: str) -> Measurement:
    return Measurement(analyte, *read_text(text, analyte))


def read_text(
    text: str, analyte: str, default_unit: str | None = None, decimal: Decimal = "."
) -> tuple[float, str, Censoring]:
    """(number, unit, censoring) of one result written as text, checked like :func:`measure`.

    ``analyte`` is a canonical name; ``default_unit`` stands in when the text has no unit;
    ``decimal`` is the decimal mark (see :mod:`b12lab._core.numerals`). The batch path reads each
    distinct cell with this very function, so single and batch agree.
    """
    match = RESULT_REGEX.match(text)
    if match is None:
        raise InvalidValueError(
            f"{analyte}: cannot read a number from {text!r}; expected a result such as "
            "'160 pg/mL' or '<148 pmol/L'",
            analyte=analyte,
            value=text,
        )
    unit = match["unit"] or default_unit
    if not unit:
        raise UnknownUnitError(
            f"{analyte}: {text!r} has no unit; add one, such as pmol/L or pg/mL",
            analyte=analyte,
            value=text,
            unit="",
        )
    try:
        value = read_number(match["number"], decimal)
    except ValueError as exc:
        raise InvalidValueError(f"{analyte}: {exc}", analyte=analyte, value=text) from None
    number = _checked_number(value, analyte, text)
    conversion_factor(analyte, unit)
    return number, unit, _CENSOR_SIGNS.get(match["sign"] or "", Censoring.NONE)


def _from_pair(pair: tuple[object, ...], analyte: str) -> Measurement:
    if len(pair) != 2 or not isinstance(pair[1], str):
        raise InvalidValueError(
            f"{analyte}: expected a (value, unit) pair such as (0.52, 'umol/L'), got {pair!r}",
            analyte=analyte,
            value=repr(pair),
        )
    number, unit = pair[0], str(pair[1])
    if isinstance(number, str):
        return _from_text(f"{number} {unit}", analyte)
    return Measurement(analyte, _coerce(number, analyte), unit)


def _is_quantity(value: object) -> bool:
    """A pint Quantity of any registry (an application's own registry included)."""
    return all(hasattr(value, name) for name in ("magnitude", "units", "dimensionality"))


def _from_quantity(quantity: object, analyte: str) -> Measurement:
    """Read the magnitude and the unit's spelling, so a Quantity of another registry works."""
    units = getattr(quantity, "units")  # noqa: B009  (duck-typed across registries)
    try:
        spelled = format(units, "~C")
    except (ValueError, TypeError, KeyError):  # pragma: no cover - a registry without "~C"
        spelled = str(units)
    magnitude = getattr(quantity, "magnitude")  # noqa: B009
    if spelled in ("", "dimensionless"):
        raise UnknownUnitError(
            f"{analyte}: the Quantity {magnitude!r} has no unit; give it a concentration unit",
            analyte=analyte,
            value=repr(magnitude)[:40],
            unit="",
        )
    return Measurement(analyte, _coerce(magnitude, analyte), spelled)


def _coerce(number: object, analyte: str) -> float:
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise InvalidValueError(
            f"{analyte}: {number!r} is not a number",
            analyte=analyte,
            value=repr(number),
        )
    try:
        value = float(number)
    except OverflowError:
        raise InvalidValueError(
            f"{analyte}: a number of {len(str(number))} digits is too large to be a concentration",
            analyte=analyte,
            value=repr(number)[:40],
        ) from None
    return _checked_number(value, analyte, repr(number))


def _checked_number(number: float, analyte: str, given: str) -> float:
    if math.isnan(number) or math.isinf(number):
        raise InvalidValueError(
            f"{analyte}: {given} is not a finite number",
            analyte=analyte,
            value=given,
        )
    if number < 0:
        raise InvalidValueError(
            f"{analyte}: {given} is negative; a concentration is zero or more",
            analyte=analyte,
            value=given,
        )
    return number + 0.0  # turns -0.0 into 0.0
