"""Reference ranges reported with each result, read strictly and used in place of a laboratory
table's edges.

A guideline such as NICE NG239 gives no MMA or homocysteine numbers and defers to the
laboratory; b12lab's laboratory table stands in for the laboratory that measured the sample. Where
an export carries the range that laboratory reported with the result (``0-0.40``, ``< 15
umol/L``), the user may ask for each result to be banded against its own range instead.

Which variables may use a reported range (:func:`band_map`): those whose bands come from a
laboratory table (``kind = "laboratory"``, the guideline deferring to it) and are shaped like a
reference interval: an optional band below it, one normal band, one band above it ("normal" /
"high" for MMA and homocysteine). A guideline's own cut-offs (NICE's B12 bands) are not a
reference interval and are never replaced; a reported range for them is ignored with a note.

Grammar (one range per cell; anything else is an unreadable range, a row error)::

    0-280   0 - 280   0.00–0.40   5.0 to 15.0      low to high, both ends inside the range
    <0.40   < 0.40                                  below 0.40 (0.40 itself is above it)
    <=0.40  ≤ 0.40                                  up to and including 0.40
    >= 2.0  > 2.0                                   lower limit only
    0.0-0.4 umol/L                                  a unit for the whole range, else the
                                                    result's own unit

Numbers are read with the export's decimal mark (``0,00-0,40`` with ``decimal=","``). A range
with low above high, a negative limit, or two different units is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core import engine
from b12lab._core.analytes import ANALYTES
from b12lab._core.cells import distinct_cells
from b12lab._core.engine import BoolArray, IntArray, Interval
from b12lab._core.numerals import Decimal, read_number
from b12lab._core.observations import Observed
from b12lab._core.policy import Policy
from b12lab._core.units import conversion_factor, display_unit
from b12lab.errors import B12LabError, InvalidValueError

__all__ = [
    "RangeColumn",
    "ReportedBands",
    "ReportedRange",
    "band_map",
    "band_reported",
    "merged",
    "not_used_note",
    "parse_range",
    "read_ranges",
    "without_implausible",
]

_NUMBER = r"[+-]?[0-9][0-9.,]*"
_UNIT = r"[A-Za-zµμ%][^\s<>=≤≥–—-]*"
_TWO_SIDED = re.compile(
    rf"(?P<low>{_NUMBER})\s*(?P<low_unit>{_UNIT})?\s*(?:-|–|—|to)\s*"
    rf"(?P<high>{_NUMBER})\s*(?P<high_unit>{_UNIT})?",
    re.IGNORECASE,
)
_ONE_SIDED = re.compile(
    rf"(?P<sign><=|=<|≤|<|>=|=>|≥|>)\s*(?P<number>{_NUMBER})\s*(?P<unit>{_UNIT})?"
)
_FORMS = "write it like 0-0.40, 0.10 - 0.40 umol/L, <0.40, <=15 or >=2.0"


@dataclass(frozen=True)
class ReportedRange:
    """One reported range: limits (infinite where none), which ends are inside it, its unit
    (None: the result's own) and the decimals it was written with."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool
    unit: str | None
    decimals: int

    def text(self, unit: str) -> str:
        """The range as results quote it, in ``unit`` when it gives none: "0.00-0.40 µmol/L"."""
        shown = display_unit(self.unit or unit)
        low, high = (f"{v:.{self.decimals}f}" for v in (self.low, self.high))
        if np.isfinite(self.low) and np.isfinite(self.high):
            return f"{low}-{high} {shown}"
        if np.isfinite(self.high):
            return f"{'≤' if self.high_closed else '<'}{high} {shown}"
        return f"{'≥' if self.low_closed else '>'}{low} {shown}"


def parse_range(text: str, analyte: str, decimal: Decimal = ".") -> ReportedRange:
    """Read one range by the grammar of the module docstring; raise InvalidValueError naming
    the analyte and the problem otherwise."""
    cleaned = " ".join(text.split())
    two = _TWO_SIDED.fullmatch(cleaned)
    one = None if two else _ONE_SIDED.fullmatch(cleaned)
    try:
        if two is not None:
            units = {u for u in (two["low_unit"], two["high_unit"]) if u}
            if len({display_unit(u) for u in units}) > 1:
                raise ValueError(f"it gives two different units ({', '.join(sorted(units))})")
            numbers = [_number(two[k], decimal) for k in ("low", "high")]
            (low, low_places), (high, high_places) = numbers
            if low > high:
                raise ValueError("its lower limit is above its upper limit")
            found = ReportedRange(
                low, high, True, True, units.pop() if units else None, max(low_places, high_places)
            )
        elif one is not None:
            value, places = _number(one["number"], decimal)
            sign = one["sign"]
            below = sign in ("<", "<=", "=<", "≤")
            closed = sign not in ("<", ">")
            found = ReportedRange(
                -np.inf if below else value,
                value if below else np.inf,
                closed or below,
                closed or not below,
                one["unit"],
                places,
            )
        else:
            raise ValueError(f"it is not a range; {_FORMS}")
        if found.unit is not None:
            conversion_factor(analyte, found.unit)
    except (ValueError, B12LabError) as exc:
        reason = exc.message if isinstance(exc, B12LabError) else str(exc)
        raise InvalidValueError(
            f"{analyte}: the reported reference range {cleaned[:40]!r} cannot be used: {reason}",
            analyte=analyte,
            value=cleaned[:40],
            expected=_FORMS,
        ) from exc
    return found


def _number(token: str, decimal: Decimal) -> tuple[float, int]:
    """A limit and the decimals it was written with; refuses a negative one."""
    value = read_number(token, decimal)
    if not np.isfinite(value):
        raise ValueError(f"{token!r} is not a finite number")
    if value < 0 or token.startswith("-"):
        raise ValueError(f"it has a negative limit ({token})")
    digits = re.sub(r"[^0-9]", "", token)
    places = 0 if float(digits) == value else len(re.split(r"[.,]", token)[-1])
    return value, places


@dataclass(frozen=True)
class RangeColumn:
    """One analyte's reported ranges: each distinct text read once, rows pointing at them.

    ``rows`` is -1 where no range was reported. ``ranges[i]`` is None where text ``i`` cannot be
    read, and ``errors[i]`` then says why.
    """

    analyte: str
    ranges: list[ReportedRange | None]
    errors: list[B12LabError | None]
    rows: npt.NDArray[np.intp]

    @property
    def given(self) -> BoolArray:
        """Per row: was a range reported."""
        given: BoolArray = self.rows >= 0
        return given


def read_ranges(
    cells: pd.Series | Sequence[object], analyte: str, decimal: Decimal = "."
) -> RangeColumn:
    """Each distinct range text parsed once; an empty cell reports no range."""
    codes, distinct = distinct_cells(cells)
    ranges: list[ReportedRange | None] = []
    errors: list[B12LabError | None] = []
    for cell in distinct:
        text = str(cell).strip()
        try:
            ranges.append(parse_range(text, analyte, decimal) if text else None)
            errors.append(None)
        except InvalidValueError as exc:
            ranges.append(None)
            errors.append(exc)
    empty = np.array(
        [r is None and e is None for r, e in zip(ranges, errors, strict=True)], dtype=bool
    )
    rows = np.where((codes >= 0) & ~np.append(empty, True)[codes], codes, -1).astype(np.intp)
    return RangeColumn(analyte, ranges, errors, rows)


def without_implausible(column: RangeColumn, observed: Observed, policy: Policy) -> RangeColumn:
    """The ranges whose limits, read in their unit (one without a unit: each result's unit),
    lie past the analyte's plausibility limits made unreadable for those rows, with the reason.

    ``0-280`` given without its unit beside results in µmol/L is a range in nmol/L: read as
    written, it would call nearly every result normal. A limit above the highest plausible
    result, or an upper limit below the lowest, says the range is not in the unit it is read in.
    """
    limits = policy.absolute(column.analyte)
    given = column.rows >= 0
    if limits is None or not observed.units or not given.any():
        return column
    to_canonical = conversion_factor(column.analyte, limits.unit)
    highest = np.inf if limits.upper is None else limits.upper * to_canonical
    lowest = -np.inf if limits.lower is None else limits.lower * to_canonical
    cell = observed.rows if observed.rows is not None else np.arange(len(given), dtype=np.intp)
    width = len(observed.units)
    unit = np.maximum(observed.unit_codes[cell].astype(np.int64), 0)
    pair = np.where(given, column.rows.astype(np.int64) * width + unit, -1)
    ranges, errors, rows = list(column.ranges), list(column.errors), column.rows.copy()
    for value in np.unique(pair[given]).tolist():
        found = ranges[value // width]
        if found is None:
            continue
        spelled = found.unit or observed.units[value % width]
        factor = conversion_factor(column.analyte, spelled)
        ends = [limit * factor for limit in (found.low, found.high) if np.isfinite(limit)]
        if all(end <= highest for end in ends) and not found.high * factor < lowest:
            continue
        shown = found.text(spelled)
        errors.append(
            InvalidValueError(
                f"{column.analyte}: the reported reference range {shown!r} cannot be used: it "
                f"lies outside the plausible limits ({policy.plausibility_source(column.analyte)})"
                "; check the range's unit, or write it in the range",
                analyte=column.analyte,
                value=shown,
                expected=_FORMS,
            )
        )
        ranges.append(None)
        rows[pair == value] = len(ranges) - 1
    return RangeColumn(column.analyte, ranges, errors, rows)


def band_map(policy: Policy, analyte: str) -> tuple[int, int, int] | None:
    """The band codes for a result below, within and above a reported range, or None where
    the analyte's bands may not be replaced by a reported range (see the module docstring).

    Without a band below normal (MMA, homocysteine), a result below the reported range is in
    the normal band, as it is in the laboratory table, whose normal band has no lower limit.
    """
    supplier = policy.suppliers.get(analyte)
    if supplier is None or supplier.model.kind != "laboratory" or analyte == "age":
        return None
    variable = policy.variables[analyte]
    shape = "".join(variable.interpretations)
    if shape not in ("NH", "LNH"):
        return None
    normal = shape.index("N")
    return (normal - 1 if normal else normal, normal, normal + 1)


def record(column: str, policy: Policy) -> dict[str, Any]:
    """A run record's ``reported_ranges``: where the ranges were read, and the analytes that may
    be banded against them under ``policy``."""
    used = [name for name in ANALYTES if name in policy.variables and band_map(policy, name)]
    return {"column": column, "analytes": used}


def not_used_note(policy: Policy, analyte: str) -> str:
    """Why a reported range was not used for this analyte."""
    supplier = policy.suppliers.get(analyte)
    if supplier is not None and supplier.model.kind != "laboratory":
        return (
            f"reported reference range not used: {supplier.key} sets the bands for "
            f"{ANALYTES[analyte].title}, and a guideline's cut-offs are not replaced by a "
            "laboratory's reference range"
        )
    return (
        "reported reference range not used: b12lab uses reported ranges only for variables "
        "the laboratory table bands as normal and high (MMA, homocysteine)"
    )


@dataclass(frozen=True)
class ReportedBands:
    """Where rows were banded against their reported range, and the words for it.

    Per row: ``used``; ``key`` into ``texts`` (-1 where not used): the range as quoted, in the
    unit it was compared in; ``position_low`` and ``position_high``: 0 below the range, 1 within
    it, 2 above it (the two differ for a censored result that may lie on either side).
    """

    used: BoolArray
    key: npt.NDArray[np.intp]
    texts: list[str]
    units: list[str]
    """Per key: the unit the range is in, in which its rows were compared."""
    position_low: IntArray
    position_high: IntArray
    below_band: bool
    """Whether the table has a band below normal (else results below the range read as normal)."""


def band_reported(
    policy: Policy, observed: Observed, column: RangeColumn, n: int
) -> tuple[IntArray, IntArray, IntArray, ReportedBands] | None:
    """Band codes (lowest, highest) of the rows with a readable reported range, or None where
    there are none or the analyte may not use them.

    Each result is converted into its range's unit (a range without one is in the result's own
    unit) and rounded to the range's decimals plus guard digits, as results meet a table's
    published edges; then the range's two limits are counted as two edges.
    """
    bands = band_map(policy, observed.analyte)
    readable = np.array([r is not None for r in column.ranges] + [False])
    cell = observed.rows if observed.rows is not None else np.arange(n, dtype=np.intp)
    used = observed.interval.present[cell] & readable[column.rows]
    if bands is None or not used.any():
        return None
    ranges = list(column.ranges)
    at = np.flatnonzero(used)
    which, cells = column.rows[at], cell[at]
    unit = observed.unit_codes[cells].astype(np.intp)
    values = _in_range_units(observed, ranges, which, cells, unit)
    limit = np.array([[r.low, r.high] if r else [0.0, 0.0] for r in ranges]).reshape(-1, 2)
    closed = np.array([[r.low_closed, r.high_closed] if r else [True, True] for r in ranges])
    closed = closed.reshape(-1, 2)
    edges = [(limit[which, 0], closed[which, 0]), (limit[which, 1], ~closed[which, 1])]
    low, high = engine.edge_counts(values, edges)
    lookup = np.asarray(bands, dtype=np.int16)
    codes = np.where(lookup[low] == lookup[high], lookup[low], engine.CENSORED).astype(np.int16)
    key, texts, units = _range_texts(observed, ranges, which, unit)
    found = _spread(n, at, (codes, lookup[low], lookup[high], low, high), key)
    reported = ReportedBands(
        found[5], found[6], texts, units, found[3], found[4], bands[0] != bands[1]
    )
    return found[0], found[1], found[2], reported


def _in_range_units(
    observed: Observed,
    ranges: list[ReportedRange | None],
    which: npt.NDArray[np.intp],
    cells: npt.NDArray[np.intp],
    unit: npt.NDArray[np.intp],
) -> Interval:
    """The results of the used rows in the unit of their range, rounded to its decimals plus
    guard digits; one conversion factor per (result unit, range unit) pair."""
    range_units = sorted({r.unit for r in ranges if r is not None and r.unit is not None})
    unit_index = {u: k for k, u in enumerate(range_units)}
    own = len(range_units)  # the last column: the result's own unit, factor 1
    factors = np.ones((max(len(observed.units), 1), own + 1))
    for i, given in enumerate(observed.units):
        for u, k in unit_index.items():
            factors[i, k] = conversion_factor(observed.analyte, given, u)
    column = np.array([unit_index[r.unit] if r and r.unit else own for r in ranges], dtype=np.intp)
    places = np.array([r.decimals if r else 0 for r in ranges], dtype=np.intp)[which]
    factor = factors[np.maximum(unit, 0), column[which]]
    interval = observed.interval
    lo, hi = np.empty(len(which)), np.empty(len(which))
    for digits in np.unique(places):
        rows = places == digits
        lo[rows] = engine.comparison_values(interval.lo[cells[rows]], factor[rows], int(digits))
        hi[rows] = engine.comparison_values(interval.hi[cells[rows]], factor[rows], int(digits))
    return Interval(
        lo, hi, interval.lo_open[cells], interval.hi_open[cells], np.ones(len(which), dtype=bool)
    )


def _range_texts(
    observed: Observed,
    ranges: list[ReportedRange | None],
    which: npt.NDArray[np.intp],
    unit: npt.NDArray[np.intp],
) -> tuple[npt.NDArray[np.intp], list[str], list[str]]:
    """Per used row, an index into the ranges as quoted (and their units); a range without a
    unit is in the result's unit, so the key is (range, unit) for those, else the range."""
    unitless = np.array([r is not None and r.unit is None for r in ranges], dtype=bool)
    width = max(len(observed.units), 1)
    pair = which.astype(np.int64) * width + np.where(unitless[which], np.maximum(unit, 0), 0)
    distinct, key = np.unique(pair, return_inverse=True)
    texts, units = [], []
    for value in distinct:
        found = ranges[int(value) // width]
        assert found is not None
        own = found.unit or (observed.units[int(value) % width] if observed.units else "")
        texts.append(found.text(own))
        units.append(display_unit(own))
    return np.asarray(key, dtype=np.intp).reshape(-1), texts, units


def _spread(
    n: int,
    at: npt.NDArray[np.intp],
    values: tuple[npt.NDArray[np.int16], ...],
    key: npt.NDArray[np.intp],
) -> tuple[npt.NDArray[Any], ...]:
    """The used rows' arrays placed in arrays over all ``n`` rows: ``values`` (zero elsewhere),
    then where used, then ``key`` (-1 elsewhere)."""
    full: list[npt.NDArray[Any]] = []
    for value in values:
        spread = np.zeros(n, dtype=np.int16)
        spread[at] = value
        full.append(spread)
    used = np.zeros(n, dtype=bool)
    used[at] = True
    keys = np.full(n, -1, dtype=np.intp)
    keys[at] = key
    return (*full, used, keys)


def merged(
    table: tuple[IntArray, IntArray, IntArray],
    reported: tuple[IntArray, IntArray, IntArray],
    used: BoolArray,
) -> tuple[IntArray, IntArray, IntArray]:
    """The table's band codes, with the rows banded against a reported range replaced."""
    return (
        np.where(used, reported[0], table[0]).astype(np.int16),
        np.where(used, reported[1], table[1]).astype(np.int16),
        np.where(used, reported[2], table[2]).astype(np.int16),
    )
