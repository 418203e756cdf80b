"""Classify a pandas DataFrame: one output row per input row, same order and index, none lost.

Values are parsed per column with vectorized string operations, units are converted with one
cached factor per distinct unit string, and the rows go through the same core as
:func:`b12lab.classify`. A row that cannot be classified keeps its place and says why in
``b12lab_error``; it is never dropped and never given a category.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from b12lab._core import engine
from b12lab._core.analytes import ANALYTES
from b12lab._core.categories import Category, Censoring
from b12lab._core.columns import PREFIX, plan_columns
from b12lab._core.context import PREGNANT_CODES, SEX_CODES, age_years
from b12lab._core.evaluation import Evaluation, evaluate, implausible
from b12lab._core.measurements import measure, read_text
from b12lab._core.numerals import Decimal, is_no_result
from b12lab._core.observations import Observed, from_numbers
from b12lab._core.policy import Policy, resolve
from b12lab._core.table_schema import AGE_UNIT
from b12lab.errors import B12LabError, ColumnError, UnusedColumnWarning
from b12lab.tables import Table

__all__ = ["classify_frame"]


class _RowErrors:
    """The first error of each row, as a code into a short list of messages.

    Messages are made per distinct cell, not per row, so a million rows with the same bad cell
    share one message.
    """

    def __init__(self, n: int) -> None:
        self.codes = np.zeros(n, dtype=np.int32)
        self.messages: list[str] = [""]

    def code_of(self, message: str) -> int:
        if message not in self.messages:
            self.messages.append(message)
        return self.messages.index(message)

    def add(self, rows: np.ndarray, message: str) -> None:
        """Record ``message`` for ``rows`` (a mask) that have no error yet."""
        self.codes[rows & (self.codes == 0)] = self.code_of(message)

    def add_codes(self, codes: np.ndarray) -> None:
        self.codes = np.where(self.codes == 0, codes, self.codes)

    @property
    def ok(self) -> np.ndarray:
        ok: np.ndarray = self.codes == 0
        return ok

    def column(self) -> pd.Categorical:
        return _from_codes(self.codes, self.messages)


@dataclass(frozen=True)
class _Column:
    """One analyte's column parsed: values with censoring and units."""

    observed: Observed
    signs: pd.Categorical


def classify_frame(
    df: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
    explain: bool = False,
    decimal: Decimal = ".",
    row_errors: Sequence[str] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Classify every row of ``df``; returns ``df`` with ``b12lab_*`` result columns added.

    ``columns`` maps analyte or context names (``b12``, ``mma``, ``age``, ...) to column names;
    unmapped ones are recognised from common names, or from headers such as ``b12 (pg/mL)``.
    ``units`` gives a unit for a whole column whose cells are bare numbers. ``explain`` adds
    ``b12lab_reasons``: the deciding rule's reason and source, in words. ``decimal`` is the
    decimal mark of text cells (``"."``, ``","`` or ``"auto"``). ``row_errors`` marks rows
    already known to be unusable (a ragged line in a file, say): they keep their place, get
    that error, and no category.
    """
    policy = resolve(table, laboratory)
    found, unit_columns = _find_columns(df, columns or {})
    errors = _RowErrors(len(df))
    if row_errors is not None:
        known = np.asarray(row_errors, dtype=object)
        for message in pd.unique(known[known != ""]):
            errors.add(known == message, str(message))
    parsed: dict[str, _Column] = {}
    for analyte in (name for name in ANALYTES if name in found):  # the order classify() uses
        column, header_unit = found[analyte]
        unit = (units or {}).get(analyte, header_unit)
        unit_column = df[unit_columns[analyte]] if analyte in unit_columns else None
        parsed[analyte] = _parse_column(
            df[column], analyte, unit, policy, errors, unit_column, decimal
        )
    if not parsed:
        raise ColumnError(
            "no analyte column found; expected columns such as b12, mma, hcy, holotc (or a "
            f"mapping in columns=); found: {', '.join(map(str, df.columns)) or '(none)'}",
            columns=tuple(map(str, df.columns)),
        )
    observed = {analyte: column.observed for analyte, column in parsed.items()}
    context = _context(df, found, errors)
    observed["age"] = from_numbers("age", context.age, AGE_UNIT)
    evaluation = evaluate(policy, observed, context)
    return _output(df, policy, parsed, evaluation, errors, explain=explain)


def _find_columns(
    df: pd.DataFrame, mapping: Mapping[str, str]
) -> tuple[dict[str, tuple[str, str | None]], dict[str, str]]:
    """Analyte and context columns (with any unit in the header), and unit columns."""
    plan = plan_columns(list(df.columns), mapping)
    original = {str(c): c for c in df.columns}
    chosen = [*plan.found.values(), *plan.unit_columns.values()]
    twice = sorted({c for c in chosen if list(map(str, df.columns)).count(c) > 1})
    if twice:
        raise ColumnError(
            f"the data has more than one column named {', '.join(map(repr, twice))}; "
            "rename them so that each name is used once",
            columns=tuple(twice),
        )
    if plan.unused:
        warnings.warn(
            f"column(s) {', '.join(map(repr, plan.unused))} look like results but were not "
            "read; name the analyte with a mapping (columns={'b12': ...}; on the command line "
            "--map b12=COLUMN) if they should be",
            UnusedColumnWarning,
            stacklevel=3,
        )
    found = {key: (original[column], plan.header_units[key]) for key, column in plan.found.items()}
    units = {key: original[column] for key, column in plan.unit_columns.items()}
    return found, units


def _parse_column(
    values: pd.Series,
    analyte: str,
    unit: str | None,
    policy: Policy,
    errors: _RowErrors,
    unit_values: pd.Series | None = None,
    decimal: Decimal = ".",
) -> _Column:
    """Parse each distinct cell once, with the same reader as ``classify``, then spread by index.

    Laboratory results repeat heavily (they are reported at fixed precision), so the distinct
    cells are few and the per-row work is a factorization and a few numpy takes.
    """
    keys, distinct_values = pd.factorize(values, use_na_sentinel=True)
    texts: list[object] = list(distinct_values)
    cell_units: list[str | None] = [unit] * len(texts)
    if unit_values is not None:  # a unit column: each distinct (value, unit) pair is read once
        keys, texts, cell_units = _pairs(keys, distinct_values, unit_values, unit)
    parsed = _parse_distinct(texts, analyte, cell_units, decimal)
    rows = np.where(keys < 0, len(texts), keys)  # the extra slot is "no result"
    cells = engine.Interval(parsed.lo, parsed.hi, parsed.lo_open, parsed.hi_open, parsed.present)
    observed = Observed(analyte, cells, parsed.unit_codes, parsed.units, rows=rows)
    messages = list(parsed.errors)
    outside = implausible(policy, observed)
    if outside.any():
        source = policy.plausibility_source(analyte)
        message = f"implausible_value: {analyte}: outside plausible limits ({source})"
        messages = [message if bad else m for bad, m in zip(outside, messages, strict=True)]
        cells = engine.Interval(
            cells.lo, cells.hi, cells.lo_open, cells.hi_open, cells.present & ~outside
        )
        observed = Observed(analyte, cells, parsed.unit_codes, parsed.units, rows=rows)
    errors.add_codes(np.array([errors.code_of(m) for m in messages], dtype=np.int32)[rows])
    signs = _labelled(np.where(observed.present, rows, len(texts)), [*parsed.signs])
    return _Column(observed, signs)


def _pairs(
    keys: np.ndarray, uniques: Any, unit_values: pd.Series, default: str | None
) -> tuple[np.ndarray, list[object], list[str | None]]:
    """Distinct (value, unit) pairs from a value column's factorization and a unit column."""
    unit_keys, unit_uniques = pd.factorize(unit_values, use_na_sentinel=True)
    width = len(unit_uniques) + 1
    pair = np.where(keys < 0, -1, keys * width + (unit_keys + 1))
    pair_keys, pair_uniques = pd.factorize(pair, use_na_sentinel=False)
    pair_keys = np.where(pair_uniques[pair_keys] < 0, -1, pair_keys)
    cells: list[object] = []
    cell_units: list[str | None] = []
    for code in pair_uniques:
        value_code, unit_code = divmod(int(code), width) if code >= 0 else (-1, 0)
        cells.append(uniques[value_code] if value_code >= 0 else None)
        given = unit_uniques[unit_code - 1] if unit_code > 0 else None
        cell_units.append(
            str(given).strip() if given is not None and str(given).strip() else default
        )
    return pair_keys, cells, cell_units


@dataclass(frozen=True)
class _Distinct:
    """Parsed distinct cells, plus one last slot for an empty cell."""

    lo: np.ndarray
    hi: np.ndarray
    lo_open: np.ndarray
    hi_open: np.ndarray
    present: np.ndarray
    unit_codes: np.ndarray
    units: tuple[str, ...]
    signs: np.ndarray
    errors: np.ndarray


def _parse_distinct(
    cells: list[object], analyte: str, defaults: list[str | None], decimal: Decimal
) -> _Distinct:
    size = len(cells) + 1
    values = np.full(size, np.nan)
    signs = np.full(size, "", dtype=object)
    unit_names: list[str | None] = [None] * size
    errors = np.full(size, "", dtype=object)
    for position, (cell, unit) in enumerate(zip(cells, defaults, strict=True)):
        try:
            read = _read_cell(cell, analyte, unit, decimal)
        except B12LabError as exc:
            errors[position] = f"{exc.code}: {exc}"
            continue
        if read is not None:
            values[position], unit_names[position], censoring = read
            signs[position] = censoring.value
    units = tuple(dict.fromkeys(u for u in unit_names if u is not None))
    lookup = {u: i for i, u in enumerate(units)}
    unit_codes = np.array([lookup.get(u, 0) if u else 0 for u in unit_names], dtype=np.int16)
    present = np.array([u is not None for u in unit_names], dtype=bool)
    below = np.isin(signs, ("<", "<="))
    above = np.isin(signs, (">", ">="))
    return _Distinct(
        lo=np.where(below, 0.0, values),
        hi=np.where(above, np.inf, values),
        lo_open=signs == ">",
        hi_open=signs == "<",
        present=present,
        unit_codes=unit_codes,
        units=units,
        signs=signs,
        errors=errors,
    )


def _read_cell(
    cell: object, analyte: str, unit: str | None, decimal: Decimal
) -> tuple[float, str, Censoring] | None:
    """One cell as ``classify`` would read it; a bare number takes the column's unit."""
    if cell is None:
        return None
    if isinstance(cell, str):
        text = cell.strip()
        if not text or is_no_result(text):
            return None
        return read_text(text, analyte, unit, decimal)
    if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
        if unit is None:
            measure(cell, analyte=analyte)  # type: ignore[arg-type]  # raises: no unit
        measured = measure((cell, str(unit)), analyte=analyte)
        return measured.value, measured.unit, measured.censoring
    measure(cell, analyte=analyte)  # type: ignore[arg-type]  # raises a clear error
    return None


def _context(
    df: pd.DataFrame, found: Mapping[str, tuple[str, str | None]], errors: _RowErrors
) -> engine.Context:
    age = np.full(len(df), np.nan)
    if "age" in found:  # ages repeat: read each distinct cell once, as classify() does
        keys, uniques = pd.factorize(df[found["age"][0]], use_na_sentinel=True)
        values = np.full(len(uniques) + 1, np.nan)
        unreadable = np.zeros(len(uniques) + 1, dtype=bool)
        for position, cell in enumerate(uniques):
            try:
                values[position] = _age_of(cell)
            except B12LabError:
                unreadable[position] = True
        rows = np.where(keys < 0, len(uniques), keys)
        errors.add(unreadable[rows], "invalid_value: age: not an age in years")
        age = values[rows]
    sex = _categorical(df, found.get("sex"), SEX_CODES, "sex: give female or male", errors)
    pregnant = _categorical(
        df, found.get("pregnant"), PREGNANT_CODES, "pregnant: give yes or no", errors
    )
    return engine.Context(sex=sex, pregnant=pregnant, age=age)


def _age_of(cell: object) -> float:
    """An age cell read with the single-patient rules; text is read as a number first."""
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return np.nan
        try:
            number: object = float(text)
        except ValueError:
            number = text
        return age_years(number)  # type: ignore[arg-type]  # refuses what is not a number
    if isinstance(cell, np.integer | np.floating):
        return age_years(cell.item())
    return age_years(cell)  # type: ignore[arg-type]


def _categorical(
    df: pd.DataFrame,
    found: tuple[str, str | None] | None,
    mapping: Mapping[str, int],
    problem: str,
    errors: _RowErrors,
) -> engine.IntArray:
    """Codes for a categorical context column; unreadable cells add an error."""
    if found is None:
        return np.full(len(df), engine.MISSING, dtype=np.int16)
    keys, uniques = pd.factorize(df[found[0]], use_na_sentinel=True)
    texts = [str(u).strip().lower() for u in uniques]
    distinct = np.array([mapping.get(t, engine.MISSING) for t in texts] + [engine.MISSING])
    unreadable = np.array([t != "" and t not in mapping for t in texts] + [False])
    index = np.where(keys < 0, len(uniques), keys)
    errors.add(unreadable[index], f"invalid_value: {problem}")
    return np.asarray(distinct[index], dtype=np.int16)


def _output(
    df: pd.DataFrame,
    policy: Policy,
    parsed: Mapping[str, _Column],
    evaluation: Evaluation,
    errors: _RowErrors,
    *,
    explain: bool,
) -> pd.DataFrame:
    ok = errors.ok
    new: dict[str, object] = {}
    for analyte, column in parsed.items():
        observed = column.observed
        canonical = observed.canonical()
        value = np.where(np.isinf(canonical.hi), canonical.lo, canonical.hi)
        value = np.where(canonical.present, value, np.nan)
        new[f"{PREFIX}{analyte}"] = observed.per_row(value)
        new[f"{PREFIX}{analyte}_censoring"] = column.signs
        if analyte in policy.variables:
            band, interpretation = _bands(policy, evaluation, analyte, ok)
            new[f"{PREFIX}{analyte}_band"] = band
            new[f"{PREFIX}{analyte}_interpretation"] = interpretation
    categories = [Category.from_rank(r).value for r in range(4)]
    new[f"{PREFIX}category"] = _labelled(np.where(ok, evaluation.rank, 4), [*categories, ""])
    rule_ids = [r.id for r in policy.rules] + [""]  # NO_RULE (-1) is the last entry
    new[f"{PREFIX}rule"] = _labelled(np.where(ok, evaluation.rule, -1), rule_ids)
    if explain:
        reasons = [f"{r.reason} [{r.source}]" for r in policy.rules]
        reasons += ["No rule of the table applies: too few markers to decide.", ""]
        chosen = np.where(evaluation.rule < 0, len(policy.rules), evaluation.rule)
        new[f"{PREFIX}reasons"] = _labelled(np.where(ok, chosen, len(reasons) - 1), reasons)
    new[f"{PREFIX}flags"] = _flag_text(evaluation, ok)
    same = np.zeros(len(df), dtype=np.int8)
    new[f"{PREFIX}table"] = _from_codes(same, [policy.table.key])
    new[f"{PREFIX}table_sha256"] = _from_codes(same, [policy.table.sha256])
    new[f"{PREFIX}error"] = errors.column()
    result = pd.DataFrame(new, index=df.index)
    kept = [c for c in df.columns if not str(c).startswith(PREFIX)]  # earlier results are replaced
    return pd.concat([df[kept], result], axis=1)


def _labelled(index: np.ndarray, values: list[str]) -> pd.Categorical:
    """``values[index]`` as a categorical: repeated values share one category."""
    categories = list(dict.fromkeys(values))
    lookup = np.array([categories.index(v) for v in values], dtype=np.int32)
    return _from_codes(lookup[index], categories)


def _from_codes(codes: np.ndarray, categories: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object))


def _bands(
    policy: Policy, evaluation: Evaluation, analyte: str, ok: np.ndarray
) -> tuple[pd.Categorical, pd.Categorical]:
    """Band labels and FHIR codes per row; a censored result spanning bands is IND."""
    variable = policy.variables[analyte]
    codes = evaluation.namespace.codes[analyte]
    size = len(variable.labels)
    # Special codes -1 (missing), -2 (censored), -3 (unbanded) index the padding after the labels.
    index = np.where(ok, np.where(codes >= 0, codes, size - codes - 1), size)
    labels = [*variable.labels, "", "indeterminate_censored", ""]
    interpretations = [*variable.interpretations, "", "IND", ""]
    return _labelled(index, labels), _labelled(index, interpretations)


def _flag_text(evaluation: Evaluation, ok: np.ndarray) -> pd.Categorical:
    """Applying flags as ``id;id``, built once per distinct combination."""
    bits = np.zeros(ok.shape[0], dtype=np.int64)
    for position, outcome in enumerate(evaluation.flags):
        bits |= outcome.applies.astype(np.int64) << position
    bits[~ok] = 0
    combinations = np.flatnonzero(np.bincount(bits, minlength=1)) if bits.size else bits
    position_of = np.zeros(int(combinations.max(initial=0)) + 1, dtype=np.int32)
    position_of[combinations] = np.arange(combinations.shape[0], dtype=np.int32)
    names = [
        ";".join(o.flag.id for i, o in enumerate(evaluation.flags) if int(mask) >> i & 1)
        for mask in combinations
    ]
    return _from_codes(position_of[bits], names)
