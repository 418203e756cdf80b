"""Numbers as laboratories write them: decimal points or commas, thousands separators.

``"1,476"`` is 1476 in a file with decimal points and 1.476 in one with decimal commas, so the
separator convention is a setting (``"."``, ``","`` or ``"auto"``) and an ambiguous number is an
error, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

__all__ = ["NO_RESULT", "Decimal", "decimal_of", "is_no_result", "read_number"]

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
_AMBIGUOUS = {
    # one separator, a nonzero lead and groups of three: thousands, or a decimal mark?
    ",": re.compile(r"[+-]?[1-9][0-9]{0,2}(?:,[0-9]{3})+"),
    ".": re.compile(r"[+-]?[1-9][0-9]{0,2}(?:\.[0-9]{3})+"),
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
    elif decimal == "auto" and _AMBIGUOUS["," if has_comma else "."].fullmatch(mantissa):
        mark = "comma" if has_comma else "point"
        raise ValueError(
            f"{token!r} could be thousands or a decimal {mark}; say which decimal mark the "
            "file uses"
        )
    elif has_comma and decimal == ".":
        mantissa = _ungroup(mantissa, ",")
    elif has_point and decimal == ",":
        mantissa = _ungroup(mantissa, ".")
    number = mantissa.replace(",", ".") + marker + exponent
    try:
        return float(number)
    except ValueError:
        raise ValueError(f"{token!r} is not a number") from None


def decimal_of(tokens: Iterable[str]) -> Decimal:
    """The decimal mark a column of number tokens shows unambiguously, else ``"auto"``.

    ``0,52`` or ``12,5`` can only have a decimal comma, ``0.52`` or ``12.5`` only a decimal point;
    ``1,476`` and ``1.476`` could be either. A column with evidence for one mark and none for the
    other is read with that mark, so its ``1.476`` is not left to a guess.
    """
    seen: set[str] = set()
    for token in tokens:
        mantissa = re.split(r"[eE]", token, maxsplit=1)[0]
        has_comma, has_point = "," in mantissa, "." in mantissa
        if has_comma and has_point:
            seen.add("," if mantissa.rfind(",") > mantissa.rfind(".") else ".")
        elif has_comma or has_point:
            mark = "," if has_comma else "."
            if not _AMBIGUOUS[mark].fullmatch(mantissa) and not _GROUPED[mark].fullmatch(mantissa):
                seen.add(mark)
    return seen.pop() if len(seen) == 1 else "auto"  # type: ignore[return-value]


def _ungroup(mantissa: str, separator: str) -> str:
    """Remove thousands separators, which must group digits by three."""
    if not _GROUPED[separator].fullmatch(mantissa):
        raise ValueError(
            f"{mantissa!r} has {separator!r} where neither a decimal mark nor a thousands "
            f"separator fits (if {separator!r} is the decimal mark, say so)"
        )
    return mantissa.replace(separator, "")
