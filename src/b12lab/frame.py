"""Classify a pandas DataFrame: one output row per input row, same order and index, none lost.

Values are parsed per column with vectorized string operations, units are converted with one
cached factor per distinct unit string, and the rows go through the same core as
:func:`b12lab.classify`. A row that cannot be classified keeps its place and says why in
``b12lab_error``; it is never dropped and never given a category.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from b12lab import _engine as engine
from b12lab.analytes import ANALYTES, get_analyte
from b12lab.categories import Category
from b12lab.context import PREGNANT_CODES, SEX_CODES
from b12lab.errors import B12LabError, ColumnError
from b12lab.measurements import RESULT_PATTERN
from b12lab.observations import Observed, from_numbers
from b12lab.policy import Evaluation, Policy, resolve
from b12lab.table_schema import AGE_UNIT
from b12lab.tables import Table
from b12lab.units import conversion_factor

__all__ = ["classify_frame"]

PREFIX = "b12lab_"
CONTEXT_COLUMNS = {
    "age": ("age", "age_years", "age (years)"),
    "sex": ("sex", "gender"),
    "pregnant": ("pregnant", "pregnancy"),
}
_HEADER_UNIT = re.compile(r"^\s*(?P<name>.*?)\s*[\(\[]\s*(?P<unit>[^\)\]]+?)\s*[\)\]]\s*$")
_SIGN_CODES = {"": 0, "<": 1, "<=": 2, "=<": 2, "≤": 2, ">": 3, ">=": 4, "=>": 4, "≥": 4}
_SIGN_TEXT = np.array(["", "<", "<=", ">", ">="], dtype=object)


@dataclass(frozen=True)
class _Column:
    """One analyte's column parsed: values with censoring and units, and per-row errors."""

    observed: Observed
    signs: np.ndarray
    errors: np.ndarray


def classify_frame(
    df: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
) -> pd.DataFrame:
    """Classify every row of ``df``; returns ``df`` with ``b12lab_*`` result columns added.

    ``columns`` maps analyte or context names (``b12``, ``mma``, ``age``, ...) to column names;
    unmapped ones are recognised from common names, or from headers such as ``b12 (pg/mL)``.
    ``units`` gives a unit for a whole column whose cells are bare numbers.
    """
    policy = resolve(table, laboratory)
    found = _find_columns(df, columns or {})
    n = len(df)
    errors = np.full(n, "", dtype=object)
    parsed: dict[str, _Column] = {}
    for analyte, (column, header_unit) in found.items():
        if analyte in CONTEXT_COLUMNS:
            continue
        unit = (units or {}).get(analyte, header_unit)
        parsed[analyte] = _parse_column(df[column], analyte, unit, policy)
        errors = np.where(errors == "", parsed[analyte].errors, errors)
    if not parsed:
        raise ColumnError(
            "no analyte column found; expected columns such as b12, mma, hcy, holotc (or a "
            f"mapping in columns=); found: {', '.join(map(str, df.columns)) or '(none)'}",
            columns=tuple(map(str, df.columns)),
        )
    observed = {analyte: column.observed for analyte, column in parsed.items()}
    context, context_errors = _context(df, found)
    errors = np.where(errors == "", context_errors, errors)
    observed["age"] = from_numbers("age", context.age, AGE_UNIT)
    evaluation = policy.evaluate(observed, context)
    return _output(df, policy, parsed, evaluation, errors)


def _find_columns(
    df: pd.DataFrame, mapping: Mapping[str, str]
) -> dict[str, tuple[str, str | None]]:
    found: dict[str, tuple[str, str | None]] = {}
    for name, column in mapping.items():
        key = name if name in CONTEXT_COLUMNS else get_analyte(name).name
        if column not in df.columns:
            raise ColumnError(
                f"column {column!r} for {key} is not in the data; "
                f"found: {', '.join(map(str, df.columns))}",
                column=column,
            )
        found[key] = (column, _header_unit(str(column)))
    for column in df.columns:
        header = str(column)
        match = _HEADER_UNIT.match(header)
        bare = (match["name"] if match else header).strip().lower()
        recognised = _recognise(bare)
        if recognised is not None and recognised not in found:
            found[recognised] = (column, match["unit"] if match else None)
    return found


def _header_unit(header: str) -> str | None:
    match = _HEADER_UNIT.match(header)
    return match["unit"] if match else None


def _recognise(name: str) -> str | None:
    for key, aliases in CONTEXT_COLUMNS.items():
        if name in aliases:
            return key
    for analyte in ANALYTES.values():
        if name == analyte.name or name in analyte.aliases:
            return analyte.name
    return None


def _parse_column(values: pd.Series, analyte: str, unit: str | None, policy: Policy) -> _Column:
    n = len(values)
    text = values.astype("string").str.strip()
    missing = values.isna().to_numpy() | (text.fillna("") == "").to_numpy()
    parts = text.str.extract(RESULT_PATTERN)
    number = pd.to_numeric(parts["number"], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    sign = parts["sign"].fillna("").map(_SIGN_CODES).to_numpy(dtype=np.int8)
    unit_text = parts["unit"].fillna("").to_numpy(dtype=object)
    if unit is not None:
        unit_text = np.where(unit_text == "", unit, unit_text)
    errors = np.full(n, "", dtype=object)
    unreadable = ~missing & np.isnan(number)
    errors[unreadable] = f"invalid_value: {analyte}: cannot read a number"
    negative = ~missing & (number < 0)
    errors[negative] = f"invalid_value: {analyte}: negative concentration"
    no_unit = ~missing & ~unreadable & (unit_text == "")
    errors[no_unit] = f"unknown_unit: {analyte}: no unit given"
    codes, distinct = _unit_codes(analyte, unit_text, ~missing & (errors == ""), errors)
    usable = ~missing & (errors == "")
    lo = np.where(np.isin(sign, (1, 2)), 0.0, number)
    hi = np.where(np.isin(sign, (3, 4)), np.inf, number)
    interval = engine.Interval(lo, hi, sign == 3, sign == 1, usable)
    observed = Observed(analyte, interval, codes, distinct)
    limits = policy.absolute(analyte)
    if limits is not None:
        errors[policy.implausible(observed)] = (
            f"implausible_value: {analyte}: outside plausible limits ({limits.source})"
        )
    kept = engine.Interval(lo, hi, sign == 3, sign == 1, usable & (errors == ""))
    signs = np.where(kept.present, _SIGN_TEXT[sign], "")
    return _Column(Observed(analyte, kept, observed.unit_codes, distinct), signs, errors)


def _unit_codes(
    analyte: str, unit_text: np.ndarray, candidates: np.ndarray, errors: np.ndarray
) -> tuple[engine.IntArray, tuple[str, ...]]:
    """Index each row's unit in the list of distinct usable units; unusable ones add an error."""
    codes = np.zeros(unit_text.shape[0], dtype=np.int16)
    usable: list[str] = []
    for spelling in pd.unique(unit_text[candidates]):
        rows = candidates & (unit_text == spelling)
        try:
            conversion_factor(analyte, str(spelling))
        except B12LabError as exc:
            errors[rows] = f"{exc.code}: {exc}"
            continue
        codes[rows] = len(usable)
        usable.append(str(spelling))
    return codes, tuple(usable)


def _context(
    df: pd.DataFrame, found: Mapping[str, tuple[str, str | None]]
) -> tuple[engine.Context, np.ndarray]:
    n = len(df)
    errors = np.full(n, "", dtype=object)
    age = np.full(n, np.nan)
    if "age" in found:
        raw = df[found["age"][0]]
        age = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = (raw.notna().to_numpy() & np.isnan(age)) | (age < 0)
        errors[bad] = "invalid_value: age: not an age in years"
        age = np.where(bad, np.nan, age)
    sex = _categorical(df, found.get("sex"), SEX_CODES, "sex: give female or male", errors)
    pregnant = _categorical(
        df, found.get("pregnant"), PREGNANT_CODES, "pregnant: give yes or no", errors
    )
    return engine.Context(sex=sex, pregnant=pregnant, age=age), errors


def _categorical(
    df: pd.DataFrame,
    found: tuple[str, str | None] | None,
    mapping: Mapping[str, int],
    problem: str,
    errors: np.ndarray,
) -> engine.IntArray:
    """Codes for a categorical context column; unreadable cells add an error (in place)."""
    if found is None:
        return np.full(len(df), engine.MISSING, dtype=np.int16)
    text = df[found[0]].astype("string").str.strip().str.lower().fillna("")
    codes = text.map(mapping)
    bad = (text != "").to_numpy() & codes.isna().to_numpy() & (errors == "")
    errors[bad] = f"invalid_value: {problem}"
    return np.asarray(codes.fillna(engine.MISSING).to_numpy(), dtype=np.int16)


def _output(
    df: pd.DataFrame,
    policy: Policy,
    parsed: Mapping[str, _Column],
    evaluation: Evaluation,
    errors: np.ndarray,
) -> pd.DataFrame:
    ok = errors == ""
    new: dict[str, object] = {}
    for analyte, column in parsed.items():
        interval = column.observed.interval
        canonical = column.observed.canonical()
        value = np.where(np.isinf(canonical.hi), canonical.lo, canonical.hi)
        new[f"{PREFIX}{analyte}"] = np.where(interval.present, value, np.nan)
        new[f"{PREFIX}{analyte}_censoring"] = column.signs
        if analyte in policy.variables:
            band, interpretation = _bands(policy, evaluation, analyte)
            new[f"{PREFIX}{analyte}_band"] = np.where(ok, band, "")
            new[f"{PREFIX}{analyte}_interpretation"] = np.where(ok, interpretation, "")
    categories = np.array([Category.from_rank(r).value for r in range(4)], dtype=object)
    new[f"{PREFIX}category"] = np.where(ok, categories[evaluation.rank], "")
    rule_ids = np.array([r.id for r in policy.rules] + [""], dtype=object)
    new[f"{PREFIX}rule"] = np.where(ok, rule_ids[evaluation.rule], "")
    new[f"{PREFIX}flags"] = _flag_text(evaluation, ok)
    new[f"{PREFIX}table"] = policy.table.key
    new[f"{PREFIX}table_sha256"] = policy.table.sha256
    new[f"{PREFIX}error"] = errors
    out = df.copy()
    for name, values in new.items():
        out[name] = values  # type: ignore[call-overload]  # pandas-stubs lacks object arrays
    return out


def _bands(policy: Policy, evaluation: Evaluation, analyte: str) -> tuple[np.ndarray, np.ndarray]:
    """Band labels and FHIR codes per row; a censored result spanning bands is IND."""
    variable = policy.variables[analyte]
    codes = evaluation.namespace.codes[analyte]
    size = len(variable.labels)
    # Special codes -1 (missing), -2 (censored), -3 (unbanded) index the padding after the labels.
    index = np.where(codes >= 0, codes, size - codes - 1)
    labels = np.array([*variable.labels, "", "indeterminate_censored", ""], dtype=object)
    interpretations = np.array([*variable.interpretations, "", "IND", ""], dtype=object)
    return labels[index], interpretations[index]


def _flag_text(evaluation: Evaluation, ok: np.ndarray) -> np.ndarray:
    flags = np.full(ok.shape[0], "", dtype=object)
    for outcome in evaluation.flags:
        hit = outcome.applies & ok
        flags[hit] = np.where(flags[hit] == "", outcome.flag.id, flags[hit] + ";" + outcome.flag.id)
    return flags
