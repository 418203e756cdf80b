"""Classify a long laboratory export: one row per result in, one row per patient visit out.

A long export has one row per result: a patient (or specimen) id, optionally a collection time,
the test as a LOINC code or a name, the value and optionally its unit. :func:`classify_long`
recognises the tests b12lab knows, groups each patient's results into visits, pivots every visit
to one row with one column per analyte, and classifies those rows with
:func:`b12lab.classify_frame`, so a visit gets the same answer as :func:`b12lab.classify`
given the same values.

Grouping rule
-------------
Rows are ordered by patient (in order of first appearance) and collection time. A patient's first
result opens a visit; each later result of that patient joins the open visit if its time is at
most ``window`` after the visit's *first* result, and otherwise opens the next visit. A visit
therefore never spans more than ``window``, and a chain of results a few hours apart is not merged
into one long visit. Without ``time`` each patient is one group; with ``time`` but no ``window``
results group by identical collection time. A row with no patient id, or (with ``time``) no
time, is a group of its own and is never combined with another row.

Every row, recognised or not, belongs to a group, so no group is lost; unrecognised tests are
counted in ``b12lab_ignored_results`` and otherwise ignored.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from b12lab._core.analytes import ANALYTES, get_analyte
from b12lab._core.cells import distinct_cells, read_column
from b12lab._core.columns import CONTEXT_COLUMNS, PREFIX
from b12lab._core.context import CONTEXT_FIELDS
from b12lab._core.frame import classify_frame
from b12lab._core.measurements import RESULT_PATTERN
from b12lab._core.numerals import Decimal
from b12lab.errors import B12LabError, ColumnError, ErrorCode, InvalidValueError
from b12lab.tables import Table

__all__ = ["classify_long", "known_tests"]

_SIGNS = {"": "", "<": "<", ">": ">", "<=": "<=", "=<": "<=", "≤": "<=", ">=": ">="}
_SIGNS |= {"=>": ">=", "≥": ">="}
_SIGNIFICANT = 9
"""Digits to which results in canonical units must agree to count as the same result."""
_CONFLICT = "different results in this group"


def _separate(time_column: str | None) -> str:
    """How to tell collections apart, naming the export's time column when it has one."""
    named = f" (here perhaps {time_column!r})" if time_column else ""
    return (
        " (if these are separate collections, give the collection time column"
        f"{named}: time=, on the command line --time)"
    )


def classify_long(
    df: pd.DataFrame,
    *,
    patient: str | None = None,
    time: str | None = None,
    time_format: str | Sequence[str] | None = None,
    window: pd.Timedelta | str | None = None,
    test: str | None = None,
    value: str | None = None,
    unit: str | None = None,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
    explain: bool = False,
    decimal: Decimal = ".",
    row_errors: Sequence[str] | np.ndarray | None = None,
    row_names: Sequence[str] | None = None,
    reference_range: str | None = None,
    use_reported_ranges: bool = False,
) -> pd.DataFrame:
    """Classify a long export; returns one row per group (patient, or patient visit).

    ``test`` holds LOINC codes (``2132-9``) or names and aliases (``Vitamin B12``), matched
    case-insensitively. ``value`` holds results such as ``160``, ``"<50"`` or ``"160 pg/mL"``;
    ``unit``, if given, names a column of units joined to values that carry none. ``time`` and
    ``window`` (a duration such as ``"24h"``) split a patient's results into visits (see the
    module docstring). Times are read as ISO 8601 unless ``time_format`` gives the formats the
    export uses (``strptime`` codes such as ``"%d.%m.%Y %H:%M"``, or ``"ISO8601"``): each time
    must then be read by one of them, or by several that agree; a time read by none, or read as
    two different times (``01/02/2024`` under ``%m/%d/%Y`` and ``%d/%m/%Y``), makes its row an
    error in a group of its own. Context columns (named like ``age``, ``sex``, ``pregnant``,
    ``nitrous_oxide``, ``b12_replacement`` or ``medicines``) are carried to each group. The
    output has the group keys (``patient``, and ``b12lab_group_start`` and ``b12lab_group_end``
    with ``time``), one column per analyte found, the context columns, the ``b12lab_*`` columns
    of :func:`~b12lab.classify_frame` and ``b12lab_ignored_results``. Two different results for
    one analyte in one group make that group an error.

    ``columns`` maps an analyte to the name this export gives its test (``{"b12": "VITB12-S"}``)
    and a context name (``age``, ``sex``, ``pregnant``, ``nitrous_oxide``, ``b12_replacement``,
    ``medicines``) to a column. ``units`` gives an analyte's unit for values that carry none, in
    the value or the unit column. ``explain`` and ``decimal`` are as in
    :func:`~b12lab.classify_frame`. ``row_errors`` (one message per row, ``""`` for none) marks
    rows already known to be unusable: their group gets the error, and no category.
    ``row_names`` says how errors cite each row (default ``row 1``, ``row 2``, ...); errors never
    quote a cell, since a time or an id can identify a patient.

    With ``use_reported_ranges=True``, the column ``reference_range`` (default: the one column
    named ``reference_range``, ``ref_range``, ``reference_interval``, ``normal_range``, ...)
    holds the reference range the laboratory reported with each result (``0-0.40``, ``< 15
    umol/L``). MMA and homocysteine, whose bands the guideline takes from the laboratory, are
    then banded against each result's own range rather than the laboratory table:
    ``b12lab_<analyte>_range_source`` says which rows were (``reported``), the reasons quote the
    range, and ``b12lab_<analyte>_reported_range`` shows it. A range that cannot be read is an
    ``invalid_value`` error of its group; a result with no range is banded by the table, with a
    note saying so; a range reported for a guideline's own bands (NICE's B12) is not used, with
    a note. One result reported twice with different ranges is a ``duplicate_result`` error.
    """
    named = _long_columns(df, patient=patient, test=test, value=value, unit=unit, time=time)
    patient, test, value, unit = (named[k] or "" for k in ("patient", "test", "value", "unit"))
    range_column = _range_column(df, reference_range, use_reported_ranges)
    unit_column = unit or None
    tests, chosen = _mapping(df, columns or {})
    failed = failed_rows(row_errors, len(df))
    span = _window(time, window)
    formats = _time_formats(time_format, time)
    times = None
    if time is not None:
        times, unread_times = _times(df, time, failed != "", formats)
        cited = _cited(unread_times, _row_names(row_names, len(df)))
        failed = np.where(failed == "", cited, failed)
    ids, first, last = _groups(df[patient], times, span)
    analyte = _recognise(df[test], tests)
    if len(df) and analyte.isna().all():
        raise ColumnError(
            "no result in the test column is a test b12lab knows; give LOINC codes such as "
            "2132-9 or names such as 'vitamin b12', 'mma', 'homocysteine'",
            column="test",
        )
    cells = _cells(
        df[value], None if unit_column is None else df[unit_column], analyte, _units(units or {})
    )
    used = analyte.notna().to_numpy() & cells.notna().to_numpy()
    ranges = None if range_column is None else _range_texts(df[range_column])[used]
    wide, shown, duplicates, reported = _pivot(
        ids[used], analyte[used], cells[used], len(first), decimal, ranges
    )
    if time is None:
        duplicates = duplicates + _separate(named["time_hint"])
    taken = {patient, test, value, time, unit_column, range_column}
    context, conflicts = _context(df, ids, len(first), taken, chosen)
    ignored = np.bincount(ids[analyte.isna().to_numpy()], minlength=len(first))
    group_errors = np.full(len(first), "", dtype=object)
    unread = _all_ignored(ids, analyte.notna().to_numpy() | (failed != ""), ignored)
    joined = _join_errors(_errors_by_group(ids, failed), duplicates, conflicts, unread)
    group_errors[joined.index.to_numpy()] = joined.to_numpy(dtype=object)
    out = _classify(
        pd.concat([wide, reported], axis=1),
        context,
        group_errors,
        table=table,
        laboratory=laboratory,
        explain=explain,
        decimal=decimal,
        ranges={a: _reported_name(a) for a in wide.columns} if ranges is not None else {},
    )
    out[list(shown.columns)] = shown
    out[list(reported.columns)] = reported
    out[f"{PREFIX}ignored_results"] = ignored
    keys: dict[str, pd.Series | np.ndarray] = {
        patient: df[patient].iloc[first].reset_index(drop=True)  # nullable ids stay exact
    }
    if times is not None:
        keys[f"{PREFIX}group_start"] = times.iloc[first].to_numpy()
        keys[f"{PREFIX}group_end"] = times.iloc[last].to_numpy()
    return pd.concat([pd.DataFrame(keys), out], axis=1)


def _classify(
    wide: pd.DataFrame,
    context: pd.DataFrame,
    errors: np.ndarray,
    *,
    table: str | Table | None,
    laboratory: str | Table | None,
    explain: bool,
    decimal: Decimal,
    ranges: Mapping[str, str],
) -> pd.DataFrame:
    """Groups classified by :func:`classify_frame`; an export without rows still gets its
    ``b12lab_*`` columns (classified with a stand-in analyte column, dropped afterwards)."""
    stand_in = [] if len(wide.columns) else [next(iter(ANALYTES))]
    frame = pd.concat([wide, context], axis=1).assign(
        **{name: pd.Series(dtype=object) for name in stand_in}
    )
    out = classify_frame(
        frame,
        columns={c: c for c in frame.columns if c not in ranges.values()},
        reference_ranges=ranges,
        table=table,
        laboratory=laboratory,
        explain=explain,
        decimal=decimal,
        row_errors=errors,
    )
    dropped = [c for c in out.columns if any(_about(str(c), name) for name in stand_in)]
    return out.drop(columns=dropped)


_RANGE_ALIASES = (
    "reference_range",
    "ref_range",
    "reference_interval",
    "ref_interval",
    "normal_range",
    "reference_values",
    "refrange",
    "range",
)
"""Common names of the column of reference ranges reported with each result."""


def _range_column(df: pd.DataFrame, given: str | None, use: bool) -> str | None:
    """The column of reported ranges: as given, else found by a common name; None unless
    ``use``. Naming the column without ``use`` is refused rather than ignored."""
    if not use:
        if given is not None:
            raise InvalidValueError(
                f"reference_range={given!r} names the column of reported ranges; add "
                "use_reported_ranges=True to band MMA and homocysteine against them (on the "
                "command line --reference-range-column implies it)",
                argument="reference_range",
            )
        return None
    if given is not None:
        _require(df, [given])
        return given
    keys = {_role_key(alias) for alias in _RANGE_ALIASES}
    found = [str(c) for c in df.columns if _role_key(str(c)) in keys]
    if len(found) != 1:
        which = "no column" if not found else f"columns {', '.join(map(repr, found))}"
        raise ColumnError(
            f"use_reported_ranges=True, but {which} could be the column of reference ranges "
            f"({', '.join(_RANGE_ALIASES[:5])}, ...); name it with reference_range= (on the "
            "command line --reference-range-column)",
            column="reference_range",
            columns=tuple(map(str, df.columns)),
        )
    return found[0]


def _range_texts(ranges: pd.Series) -> pd.Series:
    """Reported ranges as single-spaced text, ``""`` where none; rows in positional order."""
    text = ranges.astype("string").str.strip().str.replace(r"\s+", " ", regex=True)
    return text.fillna("").reset_index(drop=True)


def _reported_name(analyte: str) -> str:
    return f"{PREFIX}{analyte}_reported_range"


def _about(column: str, analyte: str) -> bool:
    """Whether ``column`` is ``analyte``'s input or result column."""
    return column in (analyte, f"{PREFIX}{analyte}") or column.startswith(f"{PREFIX}{analyte}_")


def _mapping(df: pd.DataFrame, columns: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Test names this export uses (lower case → analyte) and context columns chosen by name."""
    tests: dict[str, str] = {}
    chosen: dict[str, str] = {}
    for name, target in columns.items():
        if name not in CONTEXT_COLUMNS:
            tests[str(target).strip().lower()] = get_analyte(name).name
        elif target in df.columns:
            chosen[name] = target
        else:
            raise ColumnError(
                f"column {target!r} for {name} is not in the data; "
                f"found: {', '.join(map(str, df.columns)) or '(none)'}",
                column=target,
                columns=tuple(map(str, df.columns)),
            )
    return tests, chosen


def _units(units: Mapping[str, str]) -> dict[str, str]:
    """Default units by canonical analyte name; an unknown analyte is refused."""
    return {get_analyte(name).name: unit for name, unit in units.items()}


def failed_rows(row_errors: Sequence[str] | np.ndarray | None, rows: int) -> np.ndarray:
    """One message per row (``""`` for none), checked to match the rows."""
    if row_errors is None:
        return np.full(rows, "", dtype=object)
    failed = np.asarray(row_errors, dtype=object)
    if failed.shape != (rows,):
        raise InvalidValueError(
            f"row_errors has {failed.size} messages for {rows} rows; give one per row",
            argument="row_errors",
        )
    return np.where(pd.isna(failed), "", failed).astype(object)


def _errors_by_group(ids: np.ndarray, failed: np.ndarray) -> pd.Series:
    """Each group's row errors, in row order, each message once."""
    rows = np.flatnonzero(failed != "")
    found = pd.DataFrame({"group": ids[rows], "error": failed[rows]}).drop_duplicates()
    by_group: pd.Series = found.groupby("group", sort=True)["error"].agg("; ".join)
    return by_group


_LONG_ALIASES: Mapping[str, tuple[str, ...]] = {
    "patient": (
        "patient_id",
        "patient",
        "patient id",
        "mrn",
        "subject",
        "person_id",
        "specimen_id",
    ),
    "test": ("test", "loinc", "loinc_code", "test_code", "test code", "test_name", "analyte"),
    "value": ("value", "result", "result_value", "value_as_number", "result value"),
    "unit": ("unit", "units", "result_unit", "unit_of_measure"),
    "time": (
        "collection_datetime",
        "collection_time",
        "collected",
        "collection_date",
        "specimen_collected",
        "effective_datetime",
    ),
}
"""Common long-export column names, found when the argument is not given."""
_REQUIRED = ("patient", "test", "value")


def _long_columns(df: pd.DataFrame, **given: str | None) -> dict[str, str | None]:
    """Each role's column: as given, else the one column named by a common alias."""
    lowered: dict[str, list[str]] = {}
    for column in df.columns:
        lowered.setdefault(_role_key(str(column)), []).append(str(column))
    named: dict[str, str | None] = {}
    for role, aliases in _LONG_ALIASES.items():
        if given[role] is not None:
            named[role] = given[role]
            continue
        candidates = [
            c for alias in dict.fromkeys(map(_role_key, aliases)) for c in lowered.get(alias, [])
        ]
        if len(candidates) > 1:
            raise ColumnError(
                f"columns {', '.join(map(repr, candidates))} could each be the {role} column; "
                f"choose one ({role}=, on the command line --{role})",
                column=candidates[0],
            )
        named[role] = candidates[0] if candidates else None
    missing = [role for role in _REQUIRED if named[role] is None]
    if missing:
        raise ColumnError(
            f"no {' or '.join(missing)} column found; name it with "
            f"{', '.join(f'{r}=' for r in missing)} (on the command line "
            f"{', '.join(f'--{r}' for r in missing)}); common names are "
            + "; ".join(f"{r}: {', '.join(_LONG_ALIASES[r][:4])}" for r in missing),
            column=missing[0],
        )
    _require(df, [c for role, c in named.items() if c is not None and given[role] is not None])
    # A time column changes how results group into collections: it is used only when named,
    # and otherwise suggested where results of one patient conflict.
    named["time_hint"], named["time"] = named["time"], given["time"]
    return named


def _role_key(name: str) -> str:
    """``Test Name``, ``test_name`` and ``test-name`` are one name."""
    return re.sub(r"[\s_-]+", "_", name.strip().lower())


def _require(df: pd.DataFrame, needed: list[str]) -> None:
    missing = [name for name in needed if name not in df.columns]
    if missing:
        known = {_role_key(alias) for aliases in _LONG_ALIASES.values() for alias in aliases}
        named = [str(c) for c in df.columns if _role_key(str(c)) in known]
        raise ColumnError(
            f"column(s) {', '.join(map(repr, missing))} not in the data; pass the column names "
            f"as patient=, time=, test=, value=, unit=; the data has {len(df.columns)} "
            f"column(s){': ' + ', '.join(named) + ', ...' if named else ''}",
            column=missing[0],
            columns=tuple(map(str, df.columns)),
        )


def _window(time: str | None, window: pd.Timedelta | str | None) -> int:
    """The window in nanoseconds; 0 (identical times) when only ``time`` is given."""
    if window is None:
        return 0
    if time is None:
        raise InvalidValueError(
            "window= needs time=, the column of collection times", argument="window"
        )
    try:
        span = pd.Timedelta(window)
    except ValueError as exc:
        raise InvalidValueError(
            f"window: {window!r} is not a duration; give one such as '24h' or '3D'",
            argument="window",
            value=repr(window),
        ) from exc
    if pd.isna(span) or span < pd.Timedelta(0):
        raise InvalidValueError(
            f"window: {window!r} must be a duration of zero or more", argument="window"
        )
    return int(span.as_unit("ns").value)


def _times(
    df: pd.DataFrame, column: str, failed: np.ndarray, formats: tuple[str, ...]
) -> tuple[pd.Series, np.ndarray]:
    """Collection times, and why each unreadable one is (``""`` for none).

    A row already known to be unusable may hold no time: it stands alone, with its own error.
    """
    raw = df[column].reset_index(drop=True)
    unread = np.full(len(raw), "", dtype=object)
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw):
        return raw, unread
    if formats:
        times, unread = _formatted_times(raw, column, formats)
        return times, np.where(failed, "", unread)
    if not failed.any():
        return _parsed_times(raw, column), unread
    usable = _parsed_times(raw.where(~failed), column)
    times = usable.fillna(_datetimes(raw.where(failed), "ISO8601", column, coerce=True))
    return times, unread


def _parsed_times(raw: pd.Series, column: str) -> pd.Series:
    """Times as datetimes; an unreadable one is named by its row, never by its content (a
    collection time can identify a patient)."""
    try:
        parsed = _datetimes(raw, "ISO8601", column, coerce=False)
    except (ValueError, TypeError, OverflowError) as exc:
        coerced = _datetimes(raw, "ISO8601", column, coerce=True)
        unreadable = np.flatnonzero((coerced.isna() & raw.notna()).to_numpy())
        where = f" (row {int(unreadable[0]) + 1} of the export)" if unreadable.size else ""
        raise ColumnError(
            f"column {column!r} has a value that cannot be read as an ISO 8601 collection time"
            f"{where}; give ISO 8601 times such as 2024-03-01T08:30, or the formats the export "
            "uses: time_format= (on the command line --time-format, e.g. '%d.%m.%Y %H:%M')",
            column=column,
        ) from exc
    return parsed


_OFFSET_AT_END = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
"""A time of day followed by a UTC offset (``08:30Z``, ``08:30:00+01:00``, ``12:46 +0100``)."""


def _datetimes(raw: pd.Series, form: str, column: str, *, coerce: bool) -> pd.Series:
    """``raw`` read under ``form``; times with different UTC offsets (summer and winter time in
    one export) are read in UTC, and a column mixing times with and without an offset is
    refused, since a time without one has no place on the same line."""
    errors: Literal["coerce", "raise"] = "coerce" if coerce else "raise"
    try:
        read: pd.Series = pd.to_datetime(raw, format=form, errors=errors)
    except ValueError as exc:
        try:
            read = pd.to_datetime(raw, format=form, errors=errors, utc=True)
        except (ValueError, TypeError, OverflowError):
            raise exc from None
        offset = raw.astype("string").str.strip().str.contains(_OFFSET_AT_END, na=False)
        if (read.notna() & ~offset.to_numpy(dtype=bool)).any():
            raise _mixed_offsets(column, form) from None
    return read


def _mixed_offsets(column: str, form: str) -> ColumnError:
    return ColumnError(
        f"column {column!r} mixes times with and without a UTC offset under the format "
        f"{form!r}; give times that all carry an offset, or none",
        column=column,
    )


def _time_formats(time_format: str | Sequence[str] | None, time: str | None) -> tuple[str, ...]:
    """The formats given, checked: each is ``ISO8601`` or holds a ``strptime`` code."""
    if time_format is None:
        return ()
    formats = (time_format,) if isinstance(time_format, str) else tuple(time_format)
    if time is None:
        raise InvalidValueError(
            "time_format= (on the command line --time-format) needs time= (--time), the column "
            "of collection times",
            argument="time_format",
        )
    if not formats:
        raise InvalidValueError(
            "time_format= is empty; give one format or more", argument="time_format"
        )
    for form in formats:
        _check_time_format(form)
    return formats


def _check_time_format(form: object) -> None:
    """A format that a written time reads back through; else an error naming it."""
    if form == "ISO8601":
        return
    example = datetime.datetime(2024, 9, 30, 13, 46, 5, tzinfo=datetime.UTC)
    try:
        if not isinstance(form, str) or "%" not in form:
            raise ValueError(form)
        datetime.datetime.strptime(example.strftime(form), form)
    except ValueError:
        raise InvalidValueError(
            f"time format {form!r} is not a date format; give strptime codes such as "
            "'%d.%m.%Y %H:%M' or '%m/%d/%Y %H:%M', or ISO8601",
            argument="time_format",
            value=repr(form),
        ) from None


def _formatted_times(
    raw: pd.Series, column: str, formats: tuple[str, ...]
) -> tuple[pd.Series, np.ndarray]:
    """Each distinct time read under every format; it must be read, and read as one time."""
    text = raw.astype("string").str.strip()
    codes, distinct = pd.factorize(text)
    readings = [_read_under(distinct, column, form) for form in formats]
    stacked = np.stack([reading.to_numpy(dtype="datetime64[ns]") for reading in readings])
    read = ~np.isnat(stacked)
    chosen = read.argmax(axis=0)
    first = stacked[chosen, np.arange(len(distinct))]
    disagree = (read & (stacked != first)).any(axis=0)
    reasons = np.full(len(distinct), "", dtype=object)
    reasons[~read.any(axis=0)] = _unread_message(formats)
    for index in np.flatnonzero(disagree):
        other = int(np.flatnonzero(read[:, index] & (stacked[:, index] != first[index]))[0])
        reasons[index] = _ambiguous_message(formats[chosen[index]], formats[other])
    kept = np.where(disagree | ~read.any(axis=0), np.datetime64("NaT", "ns"), first)
    missing = codes < 0
    stamps = np.where(missing, np.datetime64("NaT", "ns"), kept[codes])
    unread = np.where(missing, "", reasons[codes]).astype(object)
    zone = "UTC" if _offsets(readings, read, column) else None
    times: pd.Series = pd.Series(pd.DatetimeIndex(stamps).tz_localize(zone))
    return times, unread


def _offsets(readings: list[pd.Series], read: np.ndarray, column: str) -> bool:
    """Whether the times read carry a UTC offset (they are then compared in UTC); all or none
    must, as a time without one has no place on the same line."""
    aware = np.array([_aware(reading) for reading in readings])
    used = read.any(axis=1)
    if aware[used].any() and not aware[used].all():
        raise ColumnError(
            f"column {column!r} mixes times with and without a UTC offset; give times that all "
            "carry an offset, or none",
            column=column,
        )
    return bool(aware[used].any())


def _read_under(distinct: pd.Index, column: str, form: str) -> pd.Series:
    """``distinct`` times read under one format; NaT where it does not read."""
    try:
        read = _datetimes(pd.Series(distinct), form, column, coerce=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _mixed_offsets(column, form) from exc
    if _aware(read):
        read = read.dt.tz_convert("UTC")
    return read


def _unread_message(formats: tuple[str, ...]) -> str:
    shown = ", ".join(repr(form) for form in formats)
    return (
        f"{ErrorCode.INVALID_VALUE}: the collection time matches none of the time formats "
        f"given ({shown}); add the format it is written in"
    )


def _ambiguous_message(one: str, other: str) -> str:
    return (
        f"{ErrorCode.INVALID_VALUE}: the collection time reads as two different times under "
        f"{one!r} and {other!r} (day and month cannot be told apart); classify the rows "
        "written in each of these formats separately, giving only that format"
    )


def _row_names(row_names: Sequence[str] | None, rows: int) -> np.ndarray:
    """How errors cite each row: as given (one per row), else ``row 1``, ``row 2``, ..."""
    if row_names is None:
        return np.array([f"row {number}" for number in range(1, rows + 1)], dtype=object)
    names = np.asarray(row_names, dtype=object)
    if names.shape != (rows,):
        raise InvalidValueError(
            f"row_names has {names.size} names for {rows} rows; give one per row",
            argument="row_names",
        )
    return names


def _cited(reasons: np.ndarray, names: np.ndarray) -> np.ndarray:
    """``name: reason`` where there is a reason, else ``""``."""
    cited = np.full(len(reasons), "", dtype=object)
    failed = reasons != ""
    cited[failed] = [
        f"{name}: {reason}" for name, reason in zip(names[failed], reasons[failed], strict=True)
    ]
    return cited


def _groups(
    patients: pd.Series, times: pd.Series | None, span: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group id per row, and the positions of each group's first and last row (by time)."""
    codes, _ = pd.factorize(patients)
    solo = codes < 0
    stamps = np.zeros(len(codes), dtype=np.int64)
    if times is not None:
        solo |= times.isna().to_numpy()
        naive = times.dt.tz_convert(None) if _aware(times) else times
        stamps, span = _ticks(naive, span)
        stamps = np.where(solo, 0, stamps)
    codes = codes.astype(np.int64)
    codes[solo] = codes.max(initial=-1) + 1 + np.arange(int(solo.sum()))
    order = np.lexsort((stamps, codes))
    starts = _visit_starts(codes[order], stamps[order], span)
    ids = np.empty(len(codes), dtype=np.int64)
    ids[order] = np.cumsum(starts) - 1
    ends = np.append(starts[1:], True)[: len(starts)]
    return ids, order[starts], order[ends]


def _ticks(times: pd.Series, span: int) -> tuple[np.ndarray, int]:
    """Times as integers in their own resolution, and ``span`` [ns] in the same; never through
    nanoseconds, which hold only the years 1677 to 2262 (a mistyped year is a time, not a
    crash)."""
    per_tick = _NS_PER_TICK[times.dt.unit]
    ticks = np.asarray(times.to_numpy()).view(np.int64)
    return ticks, span // per_tick


_NS_PER_TICK = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
"""Nanoseconds in one step of each resolution pandas stores datetimes in."""


def _aware(times: pd.Series) -> bool:
    return isinstance(times.dtype, pd.DatetimeTZDtype)


def _visit_starts(codes: np.ndarray, stamps: np.ndarray, span: int) -> np.ndarray:
    """Which rows (sorted by patient, time) open a visit, by the rule in the module docstring.

    ``step[i]`` is the first row after ``i`` that is a later patient or more than ``span`` after
    row ``i``: the row that opens the next visit if ``i`` opens one. Visit openers are the rows
    reached from each patient's first row by following ``step``; pointer doubling finds them all
    in log2(number of visits) vectorized passes instead of a Python loop over visits.
    """
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=bool)
    distinct = np.unique(stamps)
    rank = np.searchsorted(distinct, stamps)
    reach = np.searchsorted(distinct, stamps + span, side="right") - 1
    width = len(distinct)
    step = np.append(np.searchsorted(codes * width + rank, codes * width + reach, "right"), n)
    opens = np.append(np.r_[True, codes[1:] != codes[:-1]], False)
    while True:
        landed = step[np.flatnonzero(opens)]
        landed = landed[landed < n]
        if landed.size == 0:
            return opens[:n]
        opens[landed] = True
        step = step[step]


@functools.cache
def known_tests() -> Mapping[str, str]:
    """Every LOINC code, name and alias b12lab knows (lower case) → analyte name."""
    names = {code: analyte.name for analyte in ANALYTES.values() for code in analyte.loinc}
    for analyte in ANALYTES.values():
        for alias in (analyte.name, *analyte.aliases):
            names[alias.strip().lower()] = get_analyte(alias).name
    return names


def _recognise(tests: pd.Series, extra: Mapping[str, str]) -> pd.Series:
    """Analyte name per row, or NA for a test b12lab does not know; ``extra`` names win."""
    key = tests.astype("string").str.strip().str.lower()
    return key.map({**known_tests(), **extra}).astype("string").reset_index(drop=True)


def _cells(
    values: pd.Series, units: pd.Series | None, analytes: pd.Series, defaults: Mapping[str, str]
) -> pd.Series:
    """Each result as text (``"<50 pg/mL"``); NA where there is no value.

    A number without a unit takes the row's unit column, else the analyte's default unit; text
    that is not a number (``n/a``, ``see comment``) is left as it is.
    """
    text = values.astype("string").str.strip().reset_index(drop=True)
    text = text.mask(text == "")
    parts = _extract(text)
    bare = (parts["number"].notna() & (parts["unit"].fillna("") == "")).to_numpy()
    for unit in _unit_sources(units, analytes, defaults):
        joined = bare & (unit != "").to_numpy()
        text = text.where(~joined, text + " " + unit)
        bare &= ~joined
    return text


def _unit_sources(
    units: pd.Series | None, analytes: pd.Series, defaults: Mapping[str, str]
) -> list[pd.Series]:
    """Where a bare number's unit comes from, in order: the unit column, the default unit."""
    sources = []
    if units is not None:
        sources.append(units.astype("string").str.strip().fillna("").reset_index(drop=True))
    if defaults:
        sources.append(analytes.map(defaults).astype("string").fillna(""))
    return sources


def _extract(text: pd.Series) -> pd.DataFrame:
    """Sign, number and unit of each result, read once per distinct text (results repeat)."""
    codes, uniques = pd.factorize(text)
    parts = pd.Series(uniques, dtype="string").str.extract(RESULT_PATTERN)
    parts = parts.reindex(np.where(codes < 0, len(uniques), codes))
    return parts.set_axis(text.index)


def _result_keys(analytes: pd.Series, cells: pd.Series, decimal: Decimal) -> pd.DataFrame:
    """Comparable forms of results: sign and value in canonical units, else the text itself.

    Each analyte's cells are read by the pipeline's own reader (so the decimal mark, censoring
    and units mean here what they mean when the visit is classified); values are rounded to
    nine significant digits, so ``160 pg/mL``, ``160.0 pg/mL`` and ``0.16 ng/mL`` are one
    result. A cell that gives no value (``n/a``, ``see comment``) compares by its text.
    """
    signs = np.full(len(cells), "", dtype=object)
    canonical = np.full(len(cells), np.nan)
    names = analytes.to_numpy(dtype=object)
    for analyte in pd.unique(analytes.dropna()):
        rows = np.flatnonzero(names == analyte)
        column = read_column(cells.iloc[rows], str(analyte), decimal=decimal)
        interval = column.observed.canonical()
        value = np.where(np.isinf(interval.hi), interval.lo, interval.hi)
        value = np.where(interval.present, value, np.nan)
        canonical[rows] = _significant(value[column.rows])
        signs[rows] = column.signs[column.rows]
    usable = ~np.isnan(canonical)
    text = cells.astype("string").str.lower().str.replace(r"\s+", " ", regex=True)
    return pd.DataFrame(
        {
            "sign": np.where(usable, signs, ""),
            "canonical": canonical,
            "text": text.where(~usable, "").to_numpy(dtype=object),
        },
        index=cells.index,
    )


def _significant(values: np.ndarray) -> np.ndarray:
    """``values`` to nine significant digits; the same digits always give the same float."""
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(values)))
    shift = np.where(np.isfinite(exponent), _SIGNIFICANT - 1 - exponent, 0.0)
    scale = 10.0 ** np.abs(shift)  # a power of ten up to 1e22 is exact
    rounded: np.ndarray = np.where(
        shift >= 0, np.rint(values * scale) / scale, np.rint(values / scale) * scale
    )
    return rounded


def _pivot(
    ids: np.ndarray,
    analytes: pd.Series,
    cells: pd.Series,
    groups: int,
    decimal: Decimal,
    ranges: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.DataFrame]:
    """Wide results to classify, the same as shown (conflicts listed), per-group errors, and
    the reported range of each result (no columns without ``ranges``)."""
    rows = pd.DataFrame(
        {
            "group": ids,
            "analyte": analytes.to_numpy(dtype=object),
            "cell": cells.to_numpy(dtype=object),
            "range": "" if ranges is None else ranges.to_numpy(dtype=object),
        }
    )
    found = set(rows["analyte"].unique())
    present = [a for a in ANALYTES if a in found]
    rows = pd.concat([rows, _result_keys(rows["analyte"], rows["cell"], decimal)], axis=1)
    result = ["group", "analyte", "sign", "canonical", "text"]
    distinct = rows.drop_duplicates([*result, "range"])
    by_pair = distinct.groupby(["group", "analyte"], sort=False)["cell"]
    sizes = by_pair.size()
    results = distinct.drop_duplicates(result).groupby(["group", "analyte"], sort=False).size()
    single = by_pair.first().where(sizes == 1)
    repeated = distinct[by_pair.transform("size").to_numpy() > 1]
    listed = repeated.groupby(["group", "analyte"], sort=False)["cell"].agg(" | ".join)
    wide = _spread(single, present, groups)
    shown = _spread(single.fillna(listed), present, groups)
    reported = pd.DataFrame(index=pd.RangeIndex(groups))
    if ranges is not None:
        given = distinct.groupby(["group", "analyte"], sort=False)["range"].first()
        spread = _spread(given.where((sizes == 1) & (given != "")), present, groups)
        reported = spread.rename(columns=_reported_name)
    messages = _conflicts(sizes, results.reindex(sizes.index))
    return wide, shown, messages, reported


def _conflicts(sizes: pd.Series, results: pd.Series) -> pd.Series:
    """Per group: its results that conflict, or that agree but were reported with different
    reference ranges."""
    counted = pd.DataFrame({"count": sizes, "results": results})
    counted = counted[counted["count"] > 1].reset_index()
    differ = counted["results"] > 1
    what = np.where(differ, _CONFLICT, "reported reference ranges for one result in this group")
    count = np.where(differ, counted["results"], counted["count"]).astype(str)
    messages = "duplicate_result: " + counted["analyte"] + ": " + count + " " + what
    by_group: pd.Series = messages.groupby(counted["group"]).agg("; ".join)
    return by_group


def _context(
    df: pd.DataFrame,
    ids: np.ndarray,
    groups: int,
    taken: set[str | None],
    chosen: Mapping[str, str],
) -> tuple[pd.DataFrame, pd.Series]:
    """Context per group (the one value given), and per-group conflicts."""
    found = _context_columns(df, taken | set(chosen.values()), chosen)
    values: dict[str, pd.Series] = {}
    problems = [pd.Series(dtype=object)]
    for key, column in found.items():
        raw = pd.Series(df[column].to_numpy(dtype=object))
        keys = _context_keys(raw, key)
        rows = pd.concat([pd.DataFrame({"group": ids, "value": raw}), keys], axis=1)
        distinct = rows[rows["given"]].drop_duplicates(["group", "number", "text"])
        by_group = distinct.groupby("group")["value"]
        sizes = by_group.size()
        values[key] = by_group.first().where(sizes == 1).reindex(pd.RangeIndex(groups))
        bad = sizes[sizes > 1]
        problems.append(
            f"conflicting_context: {key}: " + bad.astype(str) + " different values in this group"
        )
    context = pd.DataFrame(values, index=pd.RangeIndex(groups)).astype(object)
    return context.where(context.notna(), None), pd.concat(problems)


def _context_columns(
    df: pd.DataFrame, taken: set[str | None], chosen: Mapping[str, str]
) -> dict[str, str]:
    """Context columns: those chosen by name, then the first recognised for each other key."""
    found = dict(chosen)
    for column in df.columns:
        name = str(column).strip().lower()
        for key, aliases in CONTEXT_COLUMNS.items():
            if column not in taken and name in aliases and key not in found:
                found[key] = column
    return found


def _context_keys(raw: pd.Series, key: str) -> pd.DataFrame:
    """Comparable context values, read by the pipeline's own readers, each distinct cell once:
    ``72`` is ``"72.0"``, ``"F"`` is ``"female"``, ``"PPI; metformin"`` is the names
    ``metformin`` and ``ppi``. A cell the reader refuses compares by its text (and is refused
    again when the group is classified)."""
    codes, cells = distinct_cells(raw)
    reader = CONTEXT_FIELDS[key]
    numbers = np.full(len(cells) + 1, np.nan)
    texts = np.full(len(cells) + 1, "", dtype=object)
    for position, cell in enumerate(cells):
        try:
            value = reader(cell).value
        except B12LabError:
            texts[position] = " ".join(str(cell).lower().split())
            continue
        if isinstance(value, tuple):  # medicines: the same names in any order
            texts[position] = "names: " + "; ".join(sorted(value))
        elif value is not None:
            numbers[position] = float(value)
    rows = np.where(codes < 0, len(cells), codes)
    number = _significant(numbers[rows])
    return pd.DataFrame(
        {
            "number": np.where(np.isfinite(number) & (number >= 0), number, np.nan),
            "text": texts[rows],
            "given": ~np.isnan(number) & (number >= 0) | (texts[rows] != ""),
        }
    )


def _all_ignored(ids: np.ndarray, known: np.ndarray, ignored: np.ndarray) -> pd.Series:
    """Collections none of whose results is a test b12lab reads: an error, not "insufficient
    data", since their results were there and were not read. ``known`` marks rows read (or
    already failed, which say why themselves)."""
    read = np.bincount(ids[known], minlength=ignored.shape[0])
    groups = np.flatnonzero((read == 0) & (ignored > 0))
    return pd.Series(
        [
            f"{ErrorCode.NO_KNOWN_TEST}: none of the {ignored[g]} result(s) of this collection "
            "is a test b12lab reads; name the export's test codes with columns= (on the command "
            "line --map ANALYTE=CODE)"
            for g in groups
        ],
        index=groups,
        dtype=object,
    )


def _join_errors(*errors: pd.Series) -> pd.Series:
    """Per-group messages from several sources, joined with ``; `` in a fixed order."""
    joined: pd.Series = pd.concat(errors).groupby(level=0, sort=True).agg("; ".join)
    return joined


def _spread(cells: pd.Series, analytes: list[str], groups: int) -> pd.DataFrame:
    """One row per group, one column per analyte, from cells indexed by (group, analyte)."""
    wide = cells.unstack("analyte") if len(cells) else pd.DataFrame(index=pd.RangeIndex(0))
    wide = wide.reindex(index=pd.RangeIndex(groups), columns=analytes)
    return wide.astype(object).where(wide.notna(), None).rename_axis(index=None, columns=None)
