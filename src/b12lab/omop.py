"""Classify OMOP CDM MEASUREMENT rows: one row per person and collection.

An OMOP MEASUREMENT table is a long export with fixed column names. :func:`classify_measurements`
turns its rows into the long form :func:`b12lab.classify_long` reads, and classifies them there,
so a MEASUREMENT table and a long CSV export with the same results cannot disagree:

* patient: ``person_id``;
* collection time: ``measurement_datetime``, else ``measurement_date`` (OMOP requires the date;
  the time of day is optional);
* test: ``measurement_concept_id`` looked up in the concept map, else
  ``measurement_source_value`` read as a LOINC code or a test name b12lab knows;
* value: ``value_as_number`` with the sign of ``operator_concept_id`` (``<``, ``<=``, ``>=``,
  ``>``; ``=``, ``0`` or empty for none), else ``value_source_value`` as written;
* unit: the unit ``unit_concept_map`` gives for ``unit_concept_id``, else ``unit_source_value``.

Context is not in MEASUREMENT. Give the PERSON table as ``person=`` for sex (from
``gender_concept_id``) and age at collection (from ``birth_datetime``, or ``year_of_birth``,
``month_of_birth`` and ``day_of_birth`` when all three are given), or join columns named
``age``, ``sex`` (or any context name b12lab reads) to the measurements yourself.

Concept identifiers used here, each from a citable OHDSI source
-----------------------------------------------------------------
[1] OHDSI/ETL-LambdaBuilder, docs/OPTUM_PANTHER/Optum_Panther_Labs_STEM.md (commit 2c028cd),
    operator_concept_id: ``<=`` 4171754, ``>=`` 4171755, ``<`` 4171756, ``=`` 4172703, ``>``
    4172704. The same ids are given in OHDSI/ETL-CDMBuilder issue #53, where the OHDSI
    maintainers confirm "4172704 is '>' and 4171756 is '<'" (an older document had them
    swapped). The OMOP data quality checks (OHDSI/DataQualityDashboard) state that 4172703
    ``=`` means the same as no operator.
[2] OHDSI/ETL-LambdaBuilder, docs/IBM_CCAE_MDCR/CCAE_MDCR_person.md (commit 2c028cd):
    gender_concept_id 8507 = Male, 8532 = Female.
[3] OHDSI/DataQualityDashboard, inst/csv/OMOP_CDMv5.4_Concept_Level.csv (commit 2f81ca9):
    3000593 "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma", 3016723 "Creatinine
    [Mass/volume] in Serum or Plasma", 1619025 "Glomerular filtration rate/1.73 sq
    M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula
    (CKD-EPI 2021)".

No other concept is guessed: measurements of MMA, homocysteine, holotranscobalamin and folate
are matched by their ``measurement_source_value`` (a LOINC code such as ``13964-2``, or a name
b12lab knows) or by the caller's ``concept_map={concept_id: "13964-2" or "mma"}``. A
collection none of whose rows is matched gets the error ``no_known_test``; rows that are not
matched are counted in ``b12lab_ignored_results``.
"""

from __future__ import annotations

import datetime
import decimal
import numbers
import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from b12lab._core.columns import CONTEXT_COLUMNS, PREFIX
from b12lab._core.interchange import arrow_input
from b12lab._core.numerals import Decimal
from b12lab._io.long_format import classify_long, failed_rows, known_tests
from b12lab.errors import (
    B12LabWarning,
    ColumnError,
    ErrorCode,
    InvalidValueError,
    UnknownAnalyteError,
)
from b12lab.tables import Table

__all__ = ["CONCEPTS", "GENDERS", "OPERATORS", "ConceptMap", "classify_measurements"]

ConceptMap = Mapping[int, str] | Mapping[str, str]
"""Concept ids (as numbers or their digits) → a test or unit."""

OPERATORS: Mapping[int, str] = {
    4171756: "<",
    4171754: "<=",
    4172703: "",
    4171755: ">=",
    4172704: ">",
}
"""``operator_concept_id`` → the sign written before the value (see [1] in the module
docstring); ``=`` is written as nothing, as is concept 0 (no matching concept)."""

GENDERS: Mapping[int, str] = {8507: "male", 8532: "female"}
"""``gender_concept_id`` → sex (see [2]); any other concept is sex not given."""

CONCEPTS: Mapping[int, str] = {3000593: "b12", 3016723: "creatinine", 1619025: "egfr"}
"""Standard ``measurement_concept_id`` → analyte, for the concepts verified in [3] only."""

_TIME = f"{PREFIX}collected"
_TEST, _VALUE, _UNIT = f"{PREFIX}test", f"{PREFIX}value", f"{PREFIX}unit"
_RANGE = f"{PREFIX}range"
_SIGNS = "<>≤≥="
_OPTIONAL = (
    "measurement_datetime",
    "measurement_date",
    "measurement_concept_id",
    "measurement_source_value",
    "operator_concept_id",
    "value_source_value",
    "unit_source_value",
    "unit_concept_id",
    "value_as_number",
    "range_low",
    "range_high",
)
_PERSON = ("birth_datetime", "year_of_birth", "month_of_birth", "day_of_birth")
_CONTEXT = {alias for aliases in CONTEXT_COLUMNS.values() for alias in aliases}
"""Column names read as context (age, sex, ...) when the caller joins them to MEASUREMENT."""
_FROM_PERSON = {*CONTEXT_COLUMNS["age"], *CONTEXT_COLUMNS["sex"]}


def classify_measurements(
    data: object,
    *,
    concept_map: ConceptMap | None = None,
    unit_concept_map: ConceptMap | None = None,
    person: object | None = None,
    window: pd.Timedelta | str | None = None,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
    explain: bool = False,
    decimal: Decimal = ".",
    row_errors: Sequence[str] | np.ndarray | None = None,
    row_names: Sequence[str] | None = None,
    use_reported_ranges: bool = False,
) -> pd.DataFrame:
    """Classify OMOP MEASUREMENT rows; returns a pandas DataFrame, one row per collection.

    ``data`` is a pandas DataFrame or anything Arrow-readable (a pyarrow Table, a Polars
    DataFrame, a DuckDB relation); column names are matched in any case. The result is always
    a pandas DataFrame, since its rows are collections, not the input's rows: ``person_id``,
    ``b12lab_group_start`` and ``b12lab_group_end``, one column per analyte found, the context
    columns, the ``b12lab_*`` columns of :func:`b12lab.classify_frame` and
    ``b12lab_ignored_results``.

    ``concept_map`` adds ``{measurement_concept_id: LOINC code or analyte name}`` to
    :data:`CONCEPTS` (and wins over it); ``unit_concept_map`` gives ``{unit_concept_id: unit}``
    (the unit concept's UCUM code, such as ``"pg/mL"``), read before ``unit_source_value``.
    ``person`` is the PERSON table (see the module docstring). ``window`` joins a person's
    results taken at most this long after a collection's first (``"24h"``); without it, a
    collection is one person's results with the same time. ``columns``, ``units``, ``table``,
    ``laboratory``, ``explain``, ``decimal``, ``row_errors`` and ``row_names`` are as in
    :func:`b12lab.classify_long`.

    With ``use_reported_ranges``, MMA and homocysteine are banded against each row's
    ``range_low`` and ``range_high`` (the normal range, in the unit of the value, limits
    inclusive) as :func:`b12lab.classify_long` bands against a reported range; a row with
    neither keeps the laboratory table's bands, and its marker's note says so.

    A row whose ``operator_concept_id`` is not a comparison operator, whose
    ``value_source_value`` is censored the other way from its operator, or whose time cannot
    be read gets an ``invalid_value`` error, which its collection reports.
    """
    chosen = {k: v for k, v in (columns or {}).items() if k in CONTEXT_COLUMNS}
    frame = _frame(data, "MEASUREMENT", {"person_id", *_OPTIONAL, *_CONTEXT, *chosen.values()})
    named = _columns(frame, ("person_id",), _OPTIONAL)
    _require_one(named, ("measurement_datetime", "measurement_date"))
    _require_one(named, ("measurement_concept_id", "measurement_source_value"))
    _require_one(named, ("value_as_number", "value_source_value"))
    given = failed_rows(row_errors, len(frame))
    reasons = np.full(len(frame), "", dtype=object)
    times = _times(frame, named, reasons)
    values = _values(frame, named, reasons)
    long = pd.DataFrame(
        {
            "person_id": frame[named["person_id"]],
            _TIME: times,
            _TEST: _tests(frame, named, _concepts(concept_map)).to_numpy(dtype=object),
            _VALUE: values.to_numpy(dtype=object),
            _UNIT: _units(frame, named, _unit_codes(unit_concept_map)).to_numpy(dtype=object),
        }
    )
    _warn_unmapped(frame, named, long[_TEST], long[_UNIT].astype("string"))
    context = _context(frame, named, chosen, person, long["person_id"], times)
    long = pd.concat([long, context], axis=1)
    if use_reported_ranges:
        long[_RANGE] = _ranges(frame, named, long[_UNIT].astype("string")).to_numpy(dtype=object)
    _check_known(long[_TEST])
    cited = _cited(reasons, row_names)
    return classify_long(
        long,
        patient="person_id",
        time=_TIME,
        window=window,
        test=_TEST,
        value=_VALUE,
        unit=_UNIT,
        columns=columns,
        units=units,
        table=table,
        laboratory=laboratory,
        explain=explain,
        decimal=decimal,
        row_errors=np.where(given != "", given, cited),
        row_names=row_names,
        reference_range=_RANGE if use_reported_ranges else None,
        use_reported_ranges=use_reported_ranges,
    )


def _frame(data: object, what: str, wanted: set[str]) -> pd.DataFrame:
    """``data`` as pandas: a DataFrame as it is, and of Arrow data the ``wanted`` columns (named
    in any case), read as classify_frame reads them."""
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True)
    try:
        arrow = arrow_input(data)
    except ColumnError:
        raise ColumnError(
            f"the {what} table must be a pandas DataFrame, a pyarrow Table, a Polars DataFrame, "
            f"a DuckDB relation or another Arrow table; got {type(data).__name__}",
            columns=(),
        ) from None
    lowered = {name.lower() for name in wanted}
    return arrow.frame([str(n) for n in arrow.names if str(n).strip().lower() in lowered])


def _columns(
    frame: pd.DataFrame, required: Sequence[str], optional: Sequence[str]
) -> dict[str, str]:
    """OMOP column name → the frame's column, matched in any case; required ones must exist."""
    by_name: dict[str, list[str]] = {}
    for column in frame.columns:
        by_name.setdefault(str(column).strip().lower(), []).append(column)
    named: dict[str, str] = {}
    for name in (*required, *optional):
        found = by_name.get(name, [])
        if len(found) > 1:
            raise ColumnError(
                f"columns {', '.join(map(repr, found))} are all {name}; keep one",
                column=found[0],
            )
        if found:
            named[name] = found[0]
    missing = [name for name in required if name not in named]
    if missing:
        raise ColumnError(
            f"no {', '.join(missing)} column; an OMOP table has it (found: "
            f"{', '.join(map(str, frame.columns)) or '(none)'})",
            column=missing[0],
            columns=tuple(map(str, frame.columns)),
        )
    return named


def _require_one(named: Mapping[str, str], choices: Sequence[str]) -> None:
    """At least one of ``choices`` must be a column."""
    if not any(name in named for name in choices):
        raise ColumnError(
            f"no {' or '.join(choices)} column; a MEASUREMENT table has it", column=choices[0]
        )


def _cited(reasons: np.ndarray, row_names: Sequence[str] | None) -> np.ndarray:
    """``name: reason`` for each row with a reason (its name as given, else ``row N``)."""
    rows = len(reasons)
    if row_names is not None and len(row_names) != rows:
        raise InvalidValueError(
            f"row_names has {len(row_names)} names for {rows} rows; give one per row",
            argument="row_names",
        )
    cited = np.full(rows, "", dtype=object)
    for position in np.flatnonzero(reasons != ""):
        name = f"row {position + 1}" if row_names is None else row_names[int(position)]
        cited[position] = f"{name}: {reasons[position]}"
    return cited


def _times(frame: pd.DataFrame, named: Mapping[str, str], reasons: np.ndarray) -> pd.Series:
    """Collection times: the datetime where given, else the date (at midnight).

    Times with a UTC offset are compared in UTC, and a date then stands for midnight UTC. A time
    that cannot be read makes its row an error; the message names the column, never the time
    (a collection time can identify a patient).
    """
    read = []
    for name in ("measurement_date", "measurement_datetime"):
        if name in named:
            stamps, unread = _stamps(frame[named[name]], named[name])
            _fail(reasons, unread, f"{name} is not a date or time (ISO 8601, such as 2024-03-01)")
            read.append(stamps)
    if any(isinstance(stamps.dtype, pd.DatetimeTZDtype) for stamps in read):
        read = [_in_utc(stamps) for stamps in read]
    times = read[0]
    for later in read[1:]:  # the datetime wins over the date
        times = later.where(later.notna(), times)
    return times


def _in_utc(stamps: pd.Series) -> pd.Series:
    aware = isinstance(stamps.dtype, pd.DatetimeTZDtype)
    utc: pd.Series = stamps.dt.tz_convert("UTC") if aware else stamps.dt.tz_localize("UTC")
    return utc


def _stamps(column: pd.Series, name: str) -> tuple[pd.Series, np.ndarray]:
    """A column of dates or times as datetimes, and which given cells could not be read."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column, np.zeros(len(column), dtype=bool)
    codes, distinct = pd.factorize(column.astype(object).where(column.notna(), None))
    text = pd.Series([_time_text(cell) for cell in distinct], dtype=object)
    try:
        read = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except ValueError:  # offsets that differ (summer and winter time): compared in UTC
        read = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        offset = text.astype("string").str.contains(r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)$")
        if not offset[read.notna()].all():
            raise ColumnError(
                f"column {name!r} mixes times with and without a UTC offset; give times that "
                "all carry an offset, or none",
                column=name,
            ) from None
    missing = pd.Series([pd.NaT], dtype=read.dtype)
    stamps = pd.concat([read, missing], ignore_index=True).iloc[codes].reset_index(drop=True)
    return stamps, (codes >= 0) & stamps.isna().to_numpy()


def _time_text(cell: object) -> object:
    """A cell as ISO text: dates and datetimes as such, text as written."""
    if isinstance(cell, datetime.date):
        return cell.isoformat()
    return str(cell).strip()


def _fail(reasons: np.ndarray, rows: np.ndarray, reason: str) -> None:
    """Give ``rows`` without an error yet this one."""
    reasons[rows & (reasons == "")] = f"{ErrorCode.INVALID_VALUE}: {reason}"


def _concepts(concept_map: ConceptMap | None) -> dict[int, str]:
    """The verified concepts and the caller's, each checked to name a test b12lab reads."""
    concepts = dict(CONCEPTS)
    known = known_tests()
    for concept, test in (concept_map or {}).items():
        key = _concept_id(concept, "concept_map")
        if str(test).strip().lower() not in known:
            raise UnknownAnalyteError(
                f"concept_map: {test!r} (for concept {key}) is no test b12lab reads; give a "
                "LOINC code such as '2132-9' or an analyte: "
                + ", ".join(sorted(set(known.values()))),
                analyte=str(test),
            )
        concepts[key] = str(test).strip()
    return concepts


def _unit_codes(unit_concept_map: ConceptMap | None) -> dict[int, str]:
    codes = {}
    for concept, unit in (unit_concept_map or {}).items():
        if not isinstance(unit, str) or not unit.strip():
            raise InvalidValueError(
                f"unit_concept_map: concept {concept!r} needs a unit such as 'pg/mL', got {unit!r}",
                argument="unit_concept_map",
            )
        codes[_concept_id(concept, "unit_concept_map")] = unit.strip()
    return codes


def _concept_id(concept: object, argument: str) -> int:
    """A concept id given as a whole number (``3000593`` or ``"3000593"``)."""
    try:
        return int(str(concept).strip())
    except ValueError:
        raise InvalidValueError(
            f"{argument}: {concept!r} is not a concept id; give whole numbers such as 3000593",
            argument=argument,
        ) from None


def _ids(column: pd.Series) -> pd.Series:
    """Concept ids as whole numbers (``<NA>`` where none is given or readable)."""
    numbers = pd.to_numeric(column.astype(object).where(column.notna(), None), errors="coerce")
    whole = numbers.where(numbers == np.floor(numbers))
    return whole.astype("Int64")


def _tests(frame: pd.DataFrame, named: Mapping[str, str], concepts: Mapping[int, str]) -> pd.Series:
    """Each row's test: its concept's LOINC code or analyte, else its source value."""
    tests = pd.Series(pd.NA, index=frame.index, dtype="string")
    if "measurement_concept_id" in named:
        tests = _ids(frame[named["measurement_concept_id"]]).map(concepts).astype("string")
    if "measurement_source_value" in named:
        source = frame[named["measurement_source_value"]].astype("string").str.strip()
        tests = tests.fillna(_loinc_or_text(source))
    return tests


_LOINC_FIRST = r"^(?:LOINC\s*[:|]\s*)?(\d{1,7}-\d)(?:\s|$)"
"""A source value that starts with a LOINC code, as ETLs write it: ``LOINC:2132-9``,
``2132-9 Vitamin B12``."""


def _loinc_or_text(source: pd.Series) -> pd.Series:
    """The LOINC code a source value starts with, where one does and the whole value is no test
    b12lab knows; else the value as it is."""
    known = source.str.lower().isin(list(known_tests())).fillna(False)
    code = source.str.extract(_LOINC_FIRST, flags=re.IGNORECASE, expand=False)
    return source.where(known | code.isna(), code)


def _check_known(tests: pd.Series) -> None:
    """An export with no test b12lab reads is refused with what to do about it."""
    key = tests.str.lower()
    if len(tests) and not key.isin(list(known_tests())).any():
        raise ColumnError(
            "no MEASUREMENT row is a test b12lab reads: its measurement_concept_id is not in "
            "the concept map and its measurement_source_value is no LOINC code or test name "
            "b12lab knows; give concept_map={concept_id: '13964-2' or 'mma', ...} (on the "
            "command line --concept CONCEPT_ID=TEST)",
            column="measurement_concept_id",
        )


def _values(frame: pd.DataFrame, named: Mapping[str, str], reasons: np.ndarray) -> pd.Series:
    """Each result as text: the operator's sign and the number, else the source value."""
    signs = _signs(frame, named, reasons)
    number = pd.Series(pd.NA, index=frame.index, dtype="string")
    if "value_as_number" in named:
        number = _number_text(frame[named["value_as_number"]])
    source = pd.Series(pd.NA, index=frame.index, dtype="string")
    if "value_source_value" in named:
        source = frame[named["value_source_value"]].astype("string").str.strip()
        source = source.mask(source == "")
    stated = source.str.extract(r"^([<>≤≥])", expand=False).replace({"≤": "<", "≥": ">"})
    against = stated.notna() & number.notna() & (stated != signs.str[:1]).fillna(True)
    _fail(
        reasons,
        against.to_numpy(dtype=bool),
        "value_source_value is censored but operator_concept_id says otherwise; correct the "
        "operator (4171756 <, 4171754 <=, 4171755 >=, 4172704 >)",
    )
    unsigned = source.notna() & ~source.str[:1].isin(list(_SIGNS)).fillna(False)
    fallback = source.where(~unsigned, signs + source)
    return (signs + number).fillna(fallback)


def _signs(frame: pd.DataFrame, named: Mapping[str, str], reasons: np.ndarray) -> pd.Series:
    """The sign each row's operator stands for (``""`` for none); an unknown operator fails."""
    if "operator_concept_id" not in named:
        return pd.Series("", index=frame.index, dtype="string")
    column = frame[named["operator_concept_id"]]
    ids = _ids(column)
    signs = ids.map({0: "", **OPERATORS}).astype("string")
    unknown = column.notna().to_numpy() & signs.isna().to_numpy()
    _fail(
        reasons,
        unknown,
        "operator_concept_id is not a comparison operator; use 4171756 (<), 4171754 (<=), "
        "4172703 (=), 4171755 (>=), 4172704 (>), or leave it empty",
    )
    return signs.fillna("")


def _ranges(frame: pd.DataFrame, named: Mapping[str, str], units: pd.Series) -> pd.Series:
    """Each row's normal range as text (``0.0-0.4 umol/L``, ``<=0.4 umol/L``), in the unit of
    its value as OMOP defines it; missing where the row gives neither limit."""
    if "range_low" not in named and "range_high" not in named:
        raise ColumnError(
            "use_reported_ranges needs a range_low or range_high column; a MEASUREMENT table "
            "has them",
            column="range_low",
        )
    missing = pd.Series(pd.NA, index=frame.index, dtype="string")
    low, high = (
        _number_text(frame[named[name]]) if name in named else missing
        for name in ("range_low", "range_high")
    )
    text = (low + "-" + high).fillna(">=" + low).fillna("<=" + high)
    unit = units.fillna("")
    return text.where(unit == "", text + " " + unit)


def _number_text(column: pd.Series) -> pd.Series:
    """Numbers as the shortest text that reads back as the same number (``0.1``, not
    ``0.1000000000000000055``; ``160``, not ``160.0``), each distinct value once."""
    codes, distinct = pd.factorize(column.astype(object).where(column.notna(), None))
    texts = np.array([*(_text(value) for value in distinct), None], dtype=object)
    return pd.Series(texts[codes], index=column.index, dtype="string")


def _text(value: object) -> str | None:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return np.format_float_positional(value, trim="-") if np.isfinite(value) else str(value)
    text = str(value).strip()
    return text or None


def _units(frame: pd.DataFrame, named: Mapping[str, str], codes: Mapping[int, str]) -> pd.Series:
    """Each row's unit: the one the unit concept map gives its unit concept, else its source
    unit."""
    units = pd.Series(pd.NA, index=frame.index, dtype="string")
    if codes and "unit_concept_id" in named:
        units = _ids(frame[named["unit_concept_id"]]).map(codes).astype("string")
    if "unit_source_value" in named:
        source = frame[named["unit_source_value"]].astype("string").str.strip()
        units = units.fillna(source.mask(source == ""))
    return units


def _warn_unmapped(
    frame: pd.DataFrame, named: Mapping[str, str], tests: pd.Series, units: pd.Series
) -> None:
    """Unit concepts that left a result of a test b12lab reads without a unit: say which,
    since the row's error ("has no unit") cannot tell that the unit was there as a concept."""
    if "unit_concept_id" not in named:
        return
    ids = _ids(frame[named["unit_concept_id"]])
    known = tests.str.lower().isin(list(known_tests())).to_numpy(dtype=bool)
    unmapped = (units.isna() & ids.notna() & (ids != 0)).to_numpy(dtype=bool)
    concepts = ids[known & unmapped]
    if concepts.empty:
        return
    listed = ", ".join(str(concept) for concept in sorted(concepts.unique())[:10])
    warnings.warn(
        f"unit_concept_id {listed} {'is' if concepts.nunique() == 1 else 'are'} not in "
        "unit_concept_map; their rows without unit_source_value have a unit only if the value "
        "carries one; give "
        "unit_concept_map={8845: 'pg/mL', ...} (on the command line --unit-concept 8845=pg/mL)",
        B12LabWarning,
        stacklevel=3,  # the caller of classify_measurements
    )


def _context(
    frame: pd.DataFrame,
    named: Mapping[str, str],
    chosen: Mapping[str, str],
    person: object | None,
    persons: pd.Series,
    times: pd.Series,
) -> pd.DataFrame:
    """Context columns the caller joined (by a context name, or chosen with ``columns=``), and
    sex and age from the PERSON table if given."""
    taken = set(named.values())
    picked = set(chosen.values())
    joined = [
        c
        for c in frame.columns
        if c not in taken and (c in picked or str(c).strip().lower() in _CONTEXT)
    ]
    context = frame[joined].reset_index(drop=True)
    if person is None:
        return context
    derived = _from_person(person, persons, times)
    by_person = {chosen[k] for k in ("age", "sex") if k in chosen}
    clash = [c for c in joined if c in by_person or str(c).strip().lower() in _FROM_PERSON]
    if clash:
        raise ColumnError(
            f"the measurements already have {', '.join(map(repr, clash))}; give person= or "
            "join these columns yourself, not both",
            column=clash[0],
        )
    return pd.concat([context, derived], axis=1)


def _from_person(person: object, persons: pd.Series, times: pd.Series) -> pd.DataFrame:
    """Each measurement row's sex and age at collection, from its person's PERSON row."""
    table = _frame(person, "PERSON", {"person_id", "gender_concept_id", *_PERSON})
    named = _columns(table, ("person_id",), ("gender_concept_id", *_PERSON))
    ids = table[named["person_id"]]
    if ids.duplicated().any():
        raise ColumnError(
            "the PERSON table lists a person_id twice; give one row per person",
            column=named["person_id"],
        )
    index = pd.Index(ids.to_numpy(dtype=object))
    rows = index.get_indexer(pd.Index(persons.to_numpy(dtype=object)))  # -1: not listed
    _warn_unlisted(int(((rows < 0) & persons.notna().to_numpy()).sum()))
    sex = np.full(len(table) + 1, None, dtype=object)
    if "gender_concept_id" in named:
        genders = _ids(table[named["gender_concept_id"]]).map(GENDERS)
        sex[:-1] = genders.astype(object).where(genders.notna(), None).to_numpy()
    births = np.append(_births(table, named).to_numpy(), np.datetime64("NaT", "ns"))
    born = pd.Series(births[rows])
    return pd.DataFrame({"sex": sex[rows], "age": _completed_years(born, times)})


def _warn_unlisted(rows: int) -> None:
    """MEASUREMENT rows whose person the PERSON table does not list get no sex or age; in OMOP
    every person is listed, so this is most often ids of two types (``1`` and ``"1"``)."""
    if rows:
        warnings.warn(
            f"{rows} MEASUREMENT row(s) have a person_id the PERSON table does not list, so no "
            "sex or age; check that both tables hold the ids as the same type (1 is not '1')",
            B12LabWarning,
            stacklevel=5,  # the caller of classify_measurements
        )


def _births(table: pd.DataFrame, named: Mapping[str, str]) -> pd.Series:
    """Birth dates: ``birth_datetime``, else year, month and day of birth when all are given;
    a year alone does not tell the age at a collection, so it gives none."""
    births = pd.Series(pd.NaT, index=table.index, dtype="datetime64[ns]")
    parts = ("year_of_birth", "month_of_birth", "day_of_birth")
    if all(part in named for part in parts):
        y, m, d = (pd.to_numeric(table[named[p]], errors="coerce") for p in parts)
        births = pd.to_datetime(
            pd.DataFrame({"year": y, "month": m, "day": d}), errors="coerce"
        ).astype("datetime64[ns]")
    if "birth_datetime" in named:
        stamps, _ = _stamps(table[named["birth_datetime"]], named["birth_datetime"])
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):  # the date in the zone it was read in
            stamps = stamps.dt.tz_localize(None)
        births = stamps.where(stamps.notna(), births).astype("datetime64[ns]")
    return births


def _completed_years(born: pd.Series, times: pd.Series) -> np.ndarray:
    """Age in completed years at each collection (None where either date is unknown)."""
    born = pd.to_datetime(born)
    at = pd.to_datetime(pd.Series(times.to_numpy()))
    before = (at.dt.month < born.dt.month) | (
        (at.dt.month == born.dt.month) & (at.dt.day < born.dt.day)
    )
    years = at.dt.year - born.dt.year - before.astype(int)
    known = (born.notna() & at.notna()).to_numpy()
    age = np.full(len(born), None, dtype=object)
    age[known] = years.to_numpy()[known].astype(int)
    return age
