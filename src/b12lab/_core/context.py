"""Patient context as the core reads it: codes for sex and pregnancy, and checked ages.

One vocabulary serves single patients and data frames, so ``"F"`` means the same in both.
"""

from __future__ import annotations

import math

from b12lab._core.engine import MISSING
from b12lab._core.table_schema import CONTEXT_LABELS
from b12lab.errors import InvalidValueError

__all__ = ["PREGNANT_CODES", "SEX_CODES", "age_years", "pregnant_code", "sex_code"]

_FEMALE, _MALE = (CONTEXT_LABELS["sex"].index(s) for s in ("female", "male"))
_TRUE, _FALSE = (CONTEXT_LABELS["pregnant"].index(s) for s in ("true", "false"))

SEX_CODES = {
    "female": _FEMALE,
    "f": _FEMALE,
    "woman": _FEMALE,
    "male": _MALE,
    "m": _MALE,
    "man": _MALE,
}
"""Accepted spellings of sex (lower case) and their codes."""
PREGNANT_CODES = {
    **dict.fromkeys(("true", "yes", "y", "1"), _TRUE),
    **dict.fromkeys(("false", "no", "n", "0"), _FALSE),
}
"""Accepted spellings of pregnancy status (lower case) and their codes."""


def sex_code(sex: str | None) -> int:
    if sex is None:
        return MISSING
    code = SEX_CODES.get(str(sex).strip().lower())
    if code is None:
        raise InvalidValueError(
            f"sex: {sex!r} is not understood; give 'female' or 'male' (or leave it out)",
            analyte="sex",
            value=repr(sex),
        )
    return code


def pregnant_code(pregnant: bool | None) -> int:
    if pregnant is None:
        return MISSING
    if not isinstance(pregnant, bool):
        raise InvalidValueError(
            f"pregnant: {pregnant!r} must be True, False or None",
            analyte="pregnant",
            value=repr(pregnant),
        )
    return _TRUE if pregnant else _FALSE


def age_years(age: float | None) -> float:
    """The age as a float (NaN when unknown); refuse anything that is not an age."""
    if age is None:
        return math.nan
    number = age if isinstance(age, int | float) and not isinstance(age, bool) else None
    if number is None or not -1 < number < 1e6 or not math.isfinite(number) or number < 0:
        shown = repr(age) if len(repr(age)) <= 40 else repr(age)[:37] + "..."
        raise InvalidValueError(
            f"age: {shown} is not an age in years; give a number zero or more",
            analyte="age",
            value=shown,
        )
    return float(number)
