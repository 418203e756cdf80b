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
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from b12lab._core.analytes import get_analyte
from b12lab._core.categories import Censoring
from b12lab._core.engine import Interval
from b12lab._core.measurements import (
    RESULT_PATTERN,
    Measurement,
    measure,
    no_unit_error,
    read_text,
)
from b12lab._core.numerals import Decimal, decimal_of, is_no_result
from b12lab._core.observations import Observed
from b12lab._core.units import conversion_factor
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
    noted: bool = True
    """False when no cell states no result: the notes need no look."""
    signed: bool = True
    """False when no cell carries a censoring sign: the signs need no look."""

    @property
    def rows(self) -> npt.NDArray[np.intp]:
        rows = self.observed.rows
        assert rows is not None
        return rows.astype(np.intp, copy=False)


def distinct_cells(
    values: pd.Series | Sequence[object],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[Any]]:
    """Each row's index into the distinct cells, and the distinct cells; -1 for a missing cell.

    Numeric columns give numeric distinct cells; everything else an object array. Cells that
    cannot be hashed (lists, dicts) or compared (Quantities of other registries) are each their
    own distinct cell, so they reach the reader and get a clear error.
    """
    if not isinstance(values, pd.Series) and len(values) == 1:  # one patient: no hashing needed
        (cell,) = values
        if _is_empty(cell):
            return np.full(1, -1, dtype=np.intp), np.empty(0, dtype=object)
        single = np.empty(1, dtype=object)
        single[0] = cell
        return np.zeros(1, dtype=np.intp), single
    series = values if isinstance(values, pd.Series) else _object_series(values)
    try:
        keys, uniques = pd.factorize(series, use_na_sentinel=True)
    except (TypeError, ValueError):
        cells = series.to_numpy(dtype=object)
        return np.arange(len(cells), dtype=np.intp), cells
    distinct = np.asarray(uniques)
    if distinct.dtype.kind not in "fiu":
        distinct = np.asarray(uniques, dtype=object)
    return np.asarray(keys, dtype=np.intp), distinct


def _object_series(values: Sequence[object]) -> pd.Series:
    cells = np.empty(len(values), dtype=object)
    for position, cell in enumerate(values):  # element by element: pairs stay pairs
        cells[position] = cell
    return pd.Series(cells, dtype=object)


def read_column(
    values: pd.Series | Sequence[object],
    analyte: str,
    unit: str | None = None,
    unit_values: pd.Series | Sequence[object] | None = None,
    decimal: Decimal = ".",
    *,
    fast: bool | None = None,
    per_row: bool | None = None,
) -> ParsedColumn:
    """Read each distinct cell (or distinct value and unit pair) once; rows index the answers.

    Plain results (``160 pg/mL``, ``<50``, a number with its column's unit) are read with array
    operations; every other cell goes to :func:`read_cell`, cell by cell. The array reading
    accepts only what :func:`read_cell` reads the same way (a test holds them equal), so it is
    a shortcut, not a second parser; ``fast=False`` reads every cell with :func:`read_cell`,
    ``fast=None`` takes the shortcut from :data:`ARRAY_READING_FROM` distinct cells on (below
    that, setting up the arrays costs more than it saves).

    A text column whose cells are nearly all distinct gains nothing from finding its distinct
    cells: its plain results are read row by row (:func:`_read_rows`; ``per_row`` forces or
    forbids it, ``None`` decides from a sample), the rest as above. With ``decimal="auto"`` it
    is read so only where the column's mark is certain without its distinct cells
    (:func:`_certain_decimal`).
    """
    may = fast is not False and unit_values is None
    if may and (per_row or (per_row is None and _mostly_distinct(values))):
        read = _read_rows(values, analyte, unit, decimal)
        if read is not None:
            return read
    keys, cells = distinct_cells(values)
    units: npt.NDArray[np.object_] | None = None
    if unit_values is not None:
        keys, cells, units = _pairs(keys, cells, unit_values, unit)
    if decimal == "auto":
        decimal = _column_decimal(cells)
    table = _Table.empty(len(cells))
    slow = np.ones(len(cells), dtype=bool)
    if fast or (fast is None and len(cells) >= ARRAY_READING_FROM):
        slow = _read_plain(table, cells, units, unit, analyte, decimal)
    for position in np.flatnonzero(slow):
        cell_unit = unit if units is None else units[position]
        try:
            table.put(int(position), read_cell(cells[position], analyte, cell_unit, decimal))
        except B12LabError as exc:
            table.errors[position] = exc
    rows = np.where(keys < 0, len(cells), keys)
    return table.parsed(get_analyte(analyte).name, rows)


ARRAY_READING_FROM = 32
"""Distinct cells from which plain cells are read with array operations."""

ROW_READING_FROM = 1 << 16
"""Rows from which a text column is sampled to decide whether to read it row by row."""
_SAMPLE = 1 << 14
_DISTINCT_SHARE = 0.9
"""The share of distinct cells in the sample above which the column is read row by row: at
100,000 distinct values in a million rows a sample is about 92 % distinct, at 10,000 about 50 %."""
_NUMBER = r"^[0-9]+(?:\.[0-9]+)?$"


def _mostly_distinct(values: pd.Series | Sequence[object]) -> bool:
    """Whether a strided sample of a long text column is nearly all distinct cells."""
    if not isinstance(values, pd.Series) or len(values) < ROW_READING_FROM:
        return False
    if values.dtype.kind in "fiub" or isinstance(values.dtype, pd.CategoricalDtype):
        return False  # numbers hash quickly; categories are distinct cells already
    sample = values.iloc[:: max(1, len(values) // _SAMPLE)]
    present = int(sample.notna().sum())
    return present > 0 and len(pd.unique(sample.dropna())) >= _DISTINCT_SHARE * present


def _read_rows(
    values: pd.Series | Sequence[object], analyte: str, unit: str | None, decimal: Decimal
) -> ParsedColumn | None:
    """Read the column's plain rows one by one, and the others over their distinct cells.

    A row is plain when it is digits with an optional decimal point, either alone (read in the
    column's unit) or followed by one space and a unit spelling seen in a sample of the column:
    exactly the cells :func:`_read_plain` reads as a number and a written unit, read with the
    same cast, so the two readings agree (a test holds this). None when no row can be plain.
    """
    series = values if isinstance(values, pd.Series) else _object_series(values)
    strings = _column_text(series)
    if strings is None:
        return None
    sample = strings.take(pa.array(np.arange(0, len(strings), max(1, len(strings) // _SAMPLE))))
    if decimal == "auto":
        decimal = _certain_decimal(strings, sample)
        if decimal == "auto":
            return None
    spellings = _sample_units(sample, analyte, unit)
    if not spellings:
        return None
    n = len(series)
    numbers = np.full(n, np.nan)
    unit_codes = np.full(n, -1, dtype=np.int16)
    for code, spelling in enumerate(spellings):
        rows, text = _unread(strings, unit_codes == -1, spelling)
        read = _plain_numbers(text, decimal)
        finite = np.isfinite(read)
        if len(rows) == n and finite.all():  # every row a plain number in this unit
            numbers = read + 0.0
            unit_codes[:] = code
            break
        kept = rows[finite]
        numbers[kept] = read[finite] + 0.0
        unit_codes[kept] = code
    units = [unit if spelling is None else spelling for spelling in spellings]
    return _merged(numbers, unit_codes, units, series, analyte, unit, decimal)


def _unread(
    strings: pa.Array, free: npt.NDArray[np.bool_], spelling: str | None
) -> tuple[npt.NDArray[np.intp], pa.Array]:
    """The rows not read yet that end in `` spelling`` (all of them for None, a bare number),
    and their text without it."""
    suffix = "" if spelling is None else f" {spelling}"
    if suffix:
        free = free & np.asarray(pc.ends_with(strings, suffix).fill_null(False), dtype=bool)
    rows = np.flatnonzero(free)
    text = strings if len(rows) == len(strings) else strings.take(pa.array(rows))
    if not suffix:
        return rows, text
    # Every text kept ends with the suffix's bytes: cutting them as bytes is cutting the suffix,
    # and quicker than counting code points.
    cut = pc.binary_slice(text.view(_BYTES[text.type]), 0, -len(suffix.encode()))
    return rows, cut.view(text.type)


_BYTES = {pa.string(): pa.binary(), pa.large_string(): pa.large_binary()}


def _column_text(series: pd.Series) -> pa.Array | None:
    """The column's text cells as one arrow array, other cells null (as :func:`_strings` sees
    them: arrow would take bytes for text), or None when none is text. Arrow-backed text is
    taken as it is, its chunks joined."""
    try:
        strings = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _strings(series.to_numpy(dtype=object))
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if strings.type == pa.null():
        return strings.cast(pa.string())
    if strings.type not in _OFFSETS:
        return _strings(series.to_numpy(dtype=object))
    return strings


def _certain_decimal(strings: pa.Array, sample: pa.Array) -> Decimal:
    """The decimal mark :func:`_column_decimal` finds in the column's distinct cells, where a
    sample of them and a look at the whole column's bytes prove it; else ``"auto"``.

    :func:`_column_decimal` gives :func:`decimal_of` every distinct number token, and
    ``decimal_of`` answers ``"."`` exactly when some token shows an unambiguous point and none
    an unambiguous comma. Where no cell holds a comma byte (in UTF-8 only the comma itself is
    that byte), no token holds a comma: ``decimal_of`` then answers ``"."`` for any set of the
    column's tokens exactly when one of them shows an unambiguous point. A sampled cell is one
    of the column's cells, so one group of the sample's tokens that ``decimal_of`` reads as
    ``"."`` proves the column's answer; the first such group ends the look. The same holds
    with the marks swapped. A column with neither mark reads alike with either (its answer would
    be ``"auto"``, which reads such cells as ``"."`` does), so ``"."`` is returned for it. A
    column with both marks, or a sample that shows no unambiguous mark, proves nothing: the
    column is then left to its distinct cells.
    """
    point, comma = _holds_byte(strings, "."), _holds_byte(strings, ",")
    if not (point or comma):  # no mark anywhere: every mark reads these cells alike
        return "."
    if point and comma:
        return "auto"
    mark: Decimal = "." if point else ","
    tokens = _number_tokens(sample)
    for start in range(0, len(tokens), _TOKENS_AT_ONCE):
        if decimal_of(tokens[start : start + _TOKENS_AT_ONCE]) == mark:
            return mark
    return "auto"


_TOKENS_AT_ONCE = 64
"""Sampled number tokens given to :func:`decimal_of` at a time: the usual column shows its
mark in the first few, and reading all of a large sample's tokens in Python takes a while."""


def _holds_byte(strings: pa.Array, mark: str) -> bool:
    """Whether any text holds the ASCII ``mark``, looked for in the array's data bytes (the
    bytes of null or sliced-off texts count too, which can only say yes where no text does)."""
    if strings.type in _OFFSETS:
        data_buffer = strings.buffers()[2]
        data = b"" if data_buffer is None else data_buffer
        return bool((np.frombuffer(data, dtype=np.uint8) == ord(mark)).any())
    return bool(pc.any(pc.match_substring(strings, mark)).as_py())


def _sample_units(sample: pa.Array, analyte: str, unit: str | None) -> list[str | None]:
    """The unit spellings of the plain cells in a sample that convert for the analyte (None for
    the column's own unit, taken by bare numbers)."""
    parts = _plain_parts(sample)
    written = pc.filter(parts.written, pa.array(parts.valid))
    seen = [str(u) for u in pc.unique(written).to_pylist() if u]
    convertible = _convertible(np.array(seen, dtype=object), analyte)
    spellings: list[str | None] = [u for u, ok in zip(seen, convertible, strict=True) if ok]
    if unit and _convertible(np.array([unit], dtype=object), analyte)[0]:
        spellings.append(None)
    return spellings


def _plain_numbers(text: pa.Array, decimal: Decimal) -> npt.NDArray[np.float64]:
    """Each text as a number where it is plain digits (NaN elsewhere), as :func:`_read_plain`
    reads the number of a plain cell."""
    numbers = _digit_numbers(text)
    if numbers is not None:
        ambiguous = _ambiguous(text, decimal)
        return np.where(ambiguous, np.nan, numbers) if ambiguous.any() else numbers
    plain = np.asarray(pc.match_substring_regex(text, _NUMBER).fill_null(False), dtype=bool)
    plain &= ~_ambiguous(text, decimal)
    if plain.all():
        return np.asarray(pc.cast(text, pa.float64()), dtype=np.float64)
    numbers = np.asarray(
        pc.cast(pc.if_else(pa.array(plain), text, "nan"), pa.float64()), dtype=np.float64
    )
    return np.where(plain, numbers, np.nan)


def _digit_numbers(text: pa.Array) -> npt.NDArray[np.float64] | None:
    """Each text's number when every text matches ``_NUMBER`` (digits, at most one point
    between digits), else None: quicker than the pattern when, as usual, all do.

    The array's bytes show that every text is digits and points, neither empty nor starting or
    ending with a point; the cast then refuses exactly the texts with two points (it must read
    a text to its end, and stops at a second point), so a cast that succeeds read only texts
    the pattern matches, and read them as the cast of :func:`_plain_numbers` does.
    """
    if not _digit_bytes(text):
        return None
    try:
        return np.asarray(pc.cast(text, pa.float64()), dtype=np.float64)
    except pa.ArrowInvalid:
        return None


def _digit_bytes(text: pa.Array) -> bool:
    """Whether every text is digits and points, not empty, with no point first or last."""
    if not len(text) or text.null_count or text.type not in _OFFSETS:
        return False
    _, offsets_buffer, data_buffer = text.buffers()
    if data_buffer is None:
        return False
    first = text.offset
    offsets = np.frombuffer(offsets_buffer, dtype=_OFFSETS[text.type])[
        first : first + len(text) + 1
    ]
    if (np.diff(offsets) <= 0).any():  # an empty text
        return False
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    if data.min() < ord(".") or data.max() > ord("9") or (data == ord("/")).any():
        return False
    starts = offsets[:-1] - offsets[0]
    ends = offsets[1:] - offsets[0] - 1
    return not ((data[starts] == ord(".")).any() or (data[ends] == ord(".")).any())


_OFFSETS = {pa.string(): np.int32, pa.large_string(): np.int64}


def _merged(
    numbers: npt.NDArray[np.float64],
    unit_codes: npt.NDArray[np.int16],
    units: list[str | None],
    series: pd.Series,
    analyte: str,
    unit: str | None,
    decimal: Decimal,
) -> ParsedColumn:
    """One column of the rows read one by one (a cell each) and the others' distinct cells."""
    n = len(series)
    taken = unit_codes >= 0
    others = np.flatnonzero(~taken)
    rest = read_column(series.iloc[others], analyte, unit, None, decimal, per_row=False)
    names = [str(u) for u in units]
    for spelled in rest.observed.units:
        if spelled not in names:
            names.append(spelled)
    remap = np.array([names.index(u) for u in rest.observed.units] or [0], dtype=np.int16)
    given = rest.observed.interval
    lo = np.concatenate([numbers, given.lo])
    interval = Interval(
        lo=lo,
        hi=lo if given.lo is given.hi else np.concatenate([numbers, given.hi]),
        lo_open=np.concatenate([np.zeros(n, dtype=bool), given.lo_open]),
        hi_open=np.concatenate([np.zeros(n, dtype=bool), given.hi_open]),
        present=np.concatenate([taken, given.present]),
    )
    codes = np.concatenate([np.maximum(unit_codes, 0), remap[rest.observed.unit_codes]])
    rows = np.arange(n, dtype=np.intp)
    rows[others] = n + rest.rows
    observed = Observed(get_analyte(analyte).name, interval, codes, tuple(names), rows=rows)
    errors: list[B12LabError | None] = [None] * (n + len(rest.errors))
    errors[n:] = rest.errors
    signs = _after_blanks(rest.signs, n)
    blank = not rest.noted and not any(rest.signs)  # then signs and notes are all empty
    notes = signs if blank else _after_blanks(rest.notes, n)
    return ParsedColumn(observed, signs, notes, errors, rest.noted, rest.signed)


def _after_blanks(texts: npt.NDArray[np.object_], n: int) -> npt.NDArray[np.object_]:
    """``n`` empty texts, then ``texts``."""
    padded = np.empty(n + len(texts), dtype=object)
    padded.fill("")  # several times quicker than np.full for an object array
    padded[n:] = texts
    return padded


@dataclass
class _Table:
    """Readings of the distinct cells, as arrays; the last slot is the empty cell."""

    values: npt.NDArray[np.float64]
    units: npt.NDArray[np.object_]
    signs: npt.NDArray[np.object_]
    notes: npt.NDArray[np.object_]
    errors: list[B12LabError | None]
    noted: bool = False

    @classmethod
    def empty(cls, size: int) -> _Table:
        return cls(
            values=np.full(size + 1, np.nan),
            units=np.full(size + 1, None, dtype=object),
            signs=np.full(size + 1, "", dtype=object),
            notes=np.full(size + 1, "", dtype=object),
            errors=[None] * (size + 1),
        )

    def put(self, position: int, reading: Reading) -> None:
        if isinstance(reading, Measurement):
            self.values[position] = reading.value
            self.units[position] = reading.unit
            self.signs[position] = reading.censoring.value
        elif isinstance(reading, NoResult):
            self.notes[position] = reading.note
            self.noted = True

    def parsed(self, analyte: str, rows: npt.NDArray[np.intp]) -> ParsedColumn:
        present = np.asarray(pd.notna(self.units), dtype=bool)
        unit_codes, unit_names = pd.factorize(self.units)
        signs = self.signs
        below = (signs == Censoring.BELOW.value) | (signs == Censoring.AT_OR_BELOW.value)
        above = (signs == Censoring.ABOVE.value) | (signs == Censoring.AT_OR_ABOVE.value)
        points = not (below.any() or above.any())  # one array for both ends: read once
        interval = Interval(
            lo=self.values if points else np.where(below, 0.0, self.values),
            hi=self.values if points else np.where(above, np.inf, self.values),
            lo_open=np.asarray(signs == Censoring.ABOVE.value, dtype=bool),
            hi_open=np.asarray(signs == Censoring.BELOW.value, dtype=bool),
            present=present,
        )
        codes = np.maximum(np.asarray(unit_codes), 0).astype(np.int16)
        units = tuple(str(u) for u in unit_names)
        observed = Observed(analyte, interval, codes, units, rows=rows)
        return ParsedColumn(observed, signs, self.notes, self.errors, self.noted, not points)


PLAIN_RESULT = (
    r"^\s*(?P<sign><=|>=|<|>)?\s*(?P<number>[0-9]+(?:\.[0-9]+)?)"
    r"(?:\s+(?P<spaced>[!-~µμ²³]+(?: [!-~µμ²³]+)*)"
    r"|(?P<joined>[A-DF-Za-df-zµμ/%][!-~µμ²³]*(?: [!-~µμ²³]+)*))?\s*$"
)
"""A plain result: a sign, digits with an optional decimal point, a unit in printable ASCII.

Deliberately narrower than the reader's own pattern: whatever it does not take (decimal
commas, exponents, other signs, unusual spaces, no-result words) goes to :func:`read_cell`.
A unit joined to the number may not start with ``e`` (``160e5`` is an exponent).
"""
_AMBIGUOUS_POINT = r"^[1-9][0-9]{0,2}\.[0-9]{3}$"


def _repeated(unit: str | None, size: int) -> npt.NDArray[np.object_]:
    """``unit`` for each cell; np.full would drop a trailing NUL, as numpy text does."""
    given = np.empty(size, dtype=object)
    given.fill(unit)
    return given


def _read_plain(
    table: _Table,
    cells: npt.NDArray[Any],
    units: npt.NDArray[np.object_] | None,
    unit: str | None,
    analyte: str,
    decimal: Decimal,
) -> npt.NDArray[np.bool_]:
    """Fill ``table`` for the plain cells; return the mask of cells left for :func:`read_cell`."""
    size = len(cells)
    given = units if units is not None else _repeated(unit, size)
    if cells.dtype.kind in "fiu":
        values = cells.astype(np.float64)
        signs = np.full(size, "", dtype=object)
        chosen = given
        plain = np.isfinite(values) & (values >= 0)
    else:
        strings = _strings(cells)
        if strings is None:
            return np.ones(size, dtype=bool)
        parts = _simple_parts(strings) or _plain_parts(strings)
        plain = parts.valid.copy()
        plain &= ~_ambiguous(parts.number, decimal)
        values = np.asarray(
            pc.cast(pc.if_else(pa.array(parts.valid), parts.number, "nan"), pa.float64()),
            dtype=np.float64,
        )
        plain &= np.isfinite(values)
        written_units = _shared_strings(parts.written)
        chosen = np.where(written_units == "", given, written_units)
        signs = parts.signs
    plain &= _convertible(chosen, analyte)
    done = np.flatnonzero(plain)
    table.values[done] = values[done] + 0.0
    table.units[done] = chosen[done]
    table.signs[done] = signs[done]
    return ~plain


SIMPLE_RESULT = r"^[0-9]+(?:\.[0-9]+)?(?: [!-~µμ²³]+)?$"
"""The commonest plain result: digits, and at most one unit after a single space. Every such
cell is a :data:`PLAIN_RESULT` (with no sign, the unit as ``spaced``); matching it and
splitting at the space is several times quicker than extracting the groups of the full pattern."""


@dataclass(frozen=True)
class _Parts:
    """Per cell: whether it is a plain result, its number, its unit as written ("" for none)
    and its sign; the last three mean something only where ``valid``."""

    valid: npt.NDArray[np.bool_]
    number: pa.Array
    written: pa.Array
    signs: npt.NDArray[np.object_]


def _plain_parts(strings: pa.Array) -> _Parts:
    parts = pc.extract_regex(strings, PLAIN_RESULT)
    written = pc.if_else(
        pc.equal(parts.field("spaced"), ""), parts.field("joined"), parts.field("spaced")
    )
    return _Parts(
        np.asarray(parts.is_valid().to_numpy(zero_copy_only=False), dtype=bool),
        parts.field("number"),
        written,
        np.asarray(parts.field("sign").to_numpy(zero_copy_only=False), dtype=object),
    )


def _simple_parts(strings: pa.Array) -> _Parts | None:
    """The parts when every cell is a :data:`SIMPLE_RESULT` or missing, else None."""
    simple = pc.match_substring_regex(strings, SIMPLE_RESULT)
    valid = np.asarray(simple.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    if not valid.any() or int(valid.sum()) != len(strings) - strings.null_count:
        return None
    split = pc.split_pattern(strings, " ", max_splits=1)
    offsets = np.asarray(split.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    words = split.values
    last = len(words) - 1
    first = np.minimum(offsets[:-1], last)  # a missing cell has no words: any index will do
    second = np.minimum(offsets[:-1] + 1, last)
    has_unit = pa.array(np.diff(offsets) == 2)
    return _Parts(
        valid,
        pc.take(words, first),
        pc.if_else(has_unit, pc.take(words, second), pa.scalar("", words.type)),
        np.full(len(strings), "", dtype=object),
    )


def _shared_strings(text: pa.Array) -> npt.NDArray[np.object_]:
    """The cells as Python strings, one object per distinct text (None for null): a few unit
    spellings then hash and compare at once, however many cells hold them."""
    encoded = text.dictionary_encode()
    words = np.empty(len(encoded.dictionary) + 1, dtype=object)  # the last one stays None
    words[:-1] = encoded.dictionary.to_numpy(zero_copy_only=False)
    indices = encoded.indices.fill_null(len(words) - 1).to_numpy(zero_copy_only=False)
    shared: npt.NDArray[np.object_] = words[indices]
    return shared


def _strings(cells: npt.NDArray[np.object_]) -> pa.Array | None:
    """The cells as an arrow string array (non-strings as null), or None when none is a string."""
    if pd.api.types.infer_dtype(cells, skipna=False) == "string":
        return pa.array(cells, type=pa.string())
    is_text = np.fromiter((type(c) is str for c in cells), dtype=bool, count=len(cells))
    if not is_text.any():
        return None
    text = cells.copy()
    text[~is_text] = None
    return pa.array(text, type=pa.string(), from_pandas=True)


def _ambiguous(number: pa.Array, decimal: Decimal) -> npt.NDArray[np.bool_]:
    """Numbers whose point could be a thousands separator in this column's convention."""
    if decimal == ".":
        return np.zeros(len(number), dtype=bool)
    pattern = _AMBIGUOUS_POINT if decimal == "auto" else r"\."
    flagged = pc.match_substring_regex(number, pattern).fill_null(False)
    return np.asarray(flagged.to_numpy(zero_copy_only=False), dtype=bool)


def _convertible(units: npt.NDArray[np.object_], analyte: str) -> npt.NDArray[np.bool_]:
    """Whether each unit converts for this analyte; each distinct spelling is tried once."""
    codes, distinct = pd.factorize(units)
    valid = np.zeros(len(distinct) + 1, dtype=bool)
    for position, spelled in enumerate(distinct):
        try:
            conversion_factor(analyte, str(spelled))
        except B12LabError:
            continue
        valid[position] = True
    return np.asarray(valid[np.where(codes < 0, len(distinct), codes)], dtype=bool)


def _column_decimal(cells: npt.NDArray[Any]) -> Decimal:
    """The decimal mark the column's text cells show, read from their number tokens."""
    if cells.dtype.kind != "O" or not len(cells):
        return "auto"
    strings = _strings(cells)
    return "auto" if strings is None else decimal_of(_number_tokens(strings))


def _number_tokens(strings: pa.Array) -> list[str]:
    """The distinct number tokens of these texts that hold a point or a comma."""
    tokens = pc.extract_regex(strings, RESULT_PATTERN).field("number").drop_null()
    separated = pc.filter(tokens, pc.match_substring_regex(tokens, "[.,]"))
    distinct: list[str] = pc.unique(separated).to_pylist()
    return distinct


def _pairs(
    keys: npt.NDArray[np.intp],
    cells: npt.NDArray[Any],
    unit_values: pd.Series | Sequence[object],
    default: str | None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[Any], npt.NDArray[np.object_]]:
    """Distinct (value, unit) pairs from a value column's distinct cells and a unit column."""
    unit_keys, unit_cells = distinct_cells(unit_values)
    if len(unit_cells) == 1 and unit_keys.min(initial=0) >= 0 and keys.min(initial=0) >= 0:
        # One unit in every row and no missing value: the pairs are the values, in their order.
        spelled = "" if _is_empty(unit_cells[0]) else str(unit_cells[0]).strip()
        units = np.empty(len(cells), dtype=object)
        units.fill(spelled or default)  # np.full would drop a trailing NUL, as numpy text does
        return keys, cells, units
    return _paired(keys, cells, unit_keys, unit_cells, default)


def _paired(
    keys: npt.NDArray[np.intp],
    cells: npt.NDArray[Any],
    unit_keys: npt.NDArray[np.intp],
    unit_cells: npt.NDArray[Any],
    default: str | None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[Any], npt.NDArray[np.object_]]:
    """:func:`_pairs` for any unit column: value and unit codes packed into one key per row."""
    width = len(unit_cells) + 1
    pair = np.where(keys < 0, -1, keys * width + (unit_keys + 1))
    pair_keys, pair_uniques = pd.factorize(pair, use_na_sentinel=False)
    missing = pair_uniques < 0
    pair_keys = np.where(missing[pair_keys], -1, pair_keys)
    value_code, unit_code = np.divmod(np.maximum(pair_uniques, 0), width)
    spelled = np.array(
        ["", *(str(u).strip() if not _is_empty(u) else "" for u in unit_cells)], dtype=object
    )
    units = spelled[unit_code]
    units[units == ""] = default
    distinct = cells[value_code] if len(cells) else np.full(len(pair_uniques), None, object)
    if missing.any():
        distinct = distinct.astype(object)
        distinct[missing] = None
    return np.asarray(pair_keys, dtype=np.intp), distinct, units.astype(object)
