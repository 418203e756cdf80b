"""Numbers as laboratories write them: decimal points or commas, thousands separators.

``"1,476"`` is 1476 in a file with decimal points and 1.476 in one with decimal commas, so the
separator convention is a setting (``"."``, ``","`` or ``"auto"``) and an ambiguous number is an
error, never a guess.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["NO_RESULT", "Decimal", "is_no_result", "read_number"]

Decimal = Literal[".", ",", "auto"]

NO_RESULT = frozenset(
    {"n/a", "na", "nr", "-", "--", "---", "pending", "not done", "cancelled", "canceled"}
    | {"hemolysed", "haemolysed", "hemolyzed", "haemolyzed", "insufficient sample"}
    | {"qns", "q.n.s.", "quantity not sufficient", "insufficient", "clotted", "no sample"}
    | {"not received", "sample not received", "unsuitable sample", "test not performed"}
)
"""Words laboratories write where there is no result: read as a missing result."""

_GROUPED = {
    ",": re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?"),
    ".": re.compile(r"[+-]?[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]*)?"),
}


def is_no_result(text: str) -> bool:
    return " ".join(text.lower().split()) in NO_RESULT


def read_number(token: str, decimal: Decimal = ".") -> float:
    """The value of a number token; raises ValueError saying why it cannot be read."""
    mantissa, marker, exponent = token.partition("e") if "e" in token else token.partition("E")
    has_comma, has_point = "," in mantissa, "." in mantissa
    if has_comma and has_point:
        decimal_mark = "," if mantissa.rfind(",") > mantissa.rfind(".") else "."
        if decimal not in ("auto", decimal_mark):
            raise ValueError(
                f"{token!r} uses {decimal_mark!r} as its decimal mark, not {decimal!r}"
            )
        mantissa = _ungroup(mantissa, "." if decimal_mark == "," else ",")
    elif has_comma:
        if decimal == "." or (decimal == "auto" and _GROUPED[","].fullmatch(mantissa)):
            if decimal == "auto":
                raise ValueError(
                    f"{token!r} could be thousands or a decimal comma; say which decimal mark "
                    "the file uses"
                )
            mantissa = _ungroup(mantissa, ",")
    elif has_point and decimal == ",":
        mantissa = _ungroup(mantissa, ".")
    number = mantissa.replace(",", ".") + marker + exponent
    try:
        return float(number)
    except ValueError:
        raise ValueError(f"{token!r} is not a number") from None


def _ungroup(mantissa: str, separator: str) -> str:
    """Remove thousands separators, which must group digits by three."""
    if not _GROUPED[separator].fullmatch(mantissa):
        raise ValueError(
            f"{mantissa!r} has {separator!r} where neither a decimal mark nor a thousands "
            f"separator fits (if {separator!r} is the decimal mark, say so)"
        )
    return mantissa.replace(separator, "")
