"""Classify a data frame: one output row per input row, same order and index, none lost.

Each distinct cell is read once, units are converted with one cached factor per distinct unit,
and the rows go through the same pipeline as :func:`b12lab.classify`. A row that cannot be
classified keeps its place and says why in ``b12lab_error``; it is never dropped and never given
a category. Arrow data (pyarrow, Polars, DuckDB) goes through the same pipeline by way of
:mod:`b12lab._core.interchange` and comes back as the kind it came in.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core import build
from b12lab._core.analytes import ANALYTES, get_analyte
from b12lab._core.columns import CONTEXT_COLUMNS, PREFIX, describe_headers, plan_columns
from b12lab._core.interchange import arrow_input
from b12lab._core.numerals import Decimal
from b12lab._core.pipeline import Inputs, ResultColumn, run
from b12lab._core.policy import Policy, resolve
from b12lab._core.sites import Sites, classify_sites, sites
from b12lab.errors import ColumnError, UnusedColumnWarning
from b12lab.tables import Table

__all__ = ["classify_frame"]


@overload
def classify_frame(
    df: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | Mapping[str, str | Table] | None = None,
    laboratory_column: str | None = None,
    explain: bool = False,
    decimal: Decimal = ".",
    row_errors: Sequence[str] | np.ndarray | None = None,
    reference_ranges: Mapping[str, str] | None = None,
) -> pd.DataFrame: ...


@overload
def classify_frame(
    df: object,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | Mapping[str, str | Table] | None = None,
    laboratory_column: str | None = None,
    explain: bool = False,
    decimal: Decimal = ".",
    row_errors: Sequence[str] | np.ndarray | None = None,
    reference_ranges: Mapping[str, str] | None = None,
) -> Any: ...


def classify_frame(
    df: object,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | Mapping[str, str | Table] | None = None,
    laboratory_column: str | None = None,
    explain: bool = False,
    decimal: Decimal = ".",
    row_errors: Sequence[str] | np.ndarray | None = None,
    reference_ranges: Mapping[str, str] | None = None,
) -> Any:
    """Classify every row of ``df``; returns ``df`` with ``b12lab_*`` result columns added.

    ``df`` is a pandas DataFrame (a DataFrame comes back), or Arrow data: a pyarrow Table or
    RecordBatch, a Polars DataFrame, a DuckDB relation, or any object with
    ``__arrow_c_stream__`` or ``to_arrow()``. A Polars DataFrame comes back for Polars, a pyarrow
    Table for the others: the input columns as given, then the result columns (text results
    dictionary-encoded). Arrow cells are read as pandas reads the same values: nulls are
    missing, decimals are read as their exact text.

    ``columns`` maps analyte or context names (``b12``, ``mma``, ``age``, ``nitrous_oxide``,
    ``medicines``, ...) to column names; unmapped ones are recognised from common names
    (``gender``, ``n2o``, ``b12_treatment``, ``medications``), or from headers such as
    ``b12 (pg/mL)`` or ``b12_pmol_l``. ``units`` gives a unit for a whole column whose cells are
    bare numbers. ``explain`` adds ``b12lab_reasons``: the reasons in words, with their sources.
    ``decimal`` is the decimal mark of text cells (``"."``, ``","`` or ``"auto"``).
    ``row_errors`` marks rows already known to be unusable (a ragged line in a file, say): they
    keep their place, get that error, and no category. A column that looks like a result but is
    not read gives an :class:`~b12lab.errors.UnusedColumnWarning`.

    ``laboratory`` may map sites to laboratory tables (``{"SITE-A": table_a, "SITE-B":
    "generic-us-lab@2"}``) when ``laboratory_column`` names the column holding each row's site:
    each row is then classified with its site's table, and ``b12lab_laboratory`` says which. A
    row whose site is missing or not in the mapping gets an ``unknown_laboratory`` error.

    ``reference_ranges`` maps an analyte to the column holding the reference range the
    laboratory reported with each result (``{"mma": "mma_range", "hcy": "hcy_range"}``): MMA and
    homocysteine, whose bands come from the laboratory table, are then banded against each row's
    own range (see :func:`~b12lab.classify_long`); ``b12lab_<analyte>_range_source`` says which
    rows were (``reported``) and which were banded by the table (``table``).
    """
    policy: Policy | Sites
    if isinstance(laboratory, Mapping):
        policy = sites(table, laboratory, laboratory_column)
    elif laboratory_column is not None:
        raise ColumnError(
            f"laboratory_column={laboratory_column!r} names a column of sites, but laboratory= "
            "is not a mapping of sites to laboratory tables; give laboratory={'SITE': table, "
            "...}, or leave laboratory_column= out",
            columns=(laboratory_column,),
        )
    else:
        policy = resolve(table, laboratory)
    ranges = _range_columns(reference_ranges or {})
    options = _Options(units or {}, explain, decimal, row_errors, ranges)
    if isinstance(df, pd.DataFrame):
        named: list[Hashable] = [c for c in df.columns if c not in ranges.values()]
        found, unit_columns = _find_columns(named, columns or {})
        result = _results(df, found, unit_columns, policy, options)
        kept = [c for c in df.columns if not str(c).startswith(PREFIX)]  # earlier ones replaced
        return pd.concat([df[kept], result], axis=1)
    arrow = arrow_input(df)
    named = [c for c in arrow.names if c not in ranges.values()]  # not read as results
    found, unit_columns = _find_columns(named, columns or {})
    read = [str(column) for column, _ in found.values()] + list(map(str, unit_columns.values()))
    read += [column for column in ranges.values() if column in arrow.names]
    if isinstance(policy, Sites) and str(policy.column) in arrow.names:
        read.append(str(policy.column))
    return arrow.returned(_results(arrow.frame(read), found, unit_columns, policy, options))


@dataclass(frozen=True)
class _Options:
    units: Mapping[str, str]
    explain: bool
    decimal: Decimal
    row_errors: Sequence[str] | np.ndarray | None
    ranges: Mapping[str, str]
    """Analyte → the column of reference ranges reported with its results."""


def _range_columns(reference_ranges: Mapping[str, str]) -> dict[str, str]:
    return {get_analyte(name).name: column for name, column in reference_ranges.items()}


def _range_cells(df: pd.DataFrame, ranges: Mapping[str, str]) -> dict[str, pd.Series]:
    """The reported-range columns, each of which must be in the data."""
    missing = [column for column in ranges.values() if column not in df.columns]
    if missing:
        raise ColumnError(
            f"reference range column(s) {', '.join(map(repr, missing))} not in the data; "
            f"found: {describe_headers(list(df.columns))}",
            columns=tuple(missing),
        )
    return {analyte: df[column] for analyte, column in ranges.items()}


def _results(
    df: pd.DataFrame,
    found: Mapping[str, tuple[Hashable, str | None]],
    unit_columns: Mapping[str, Hashable],
    policy: Policy | Sites,
    options: _Options,
) -> pd.DataFrame:
    """The ``b12lab_*`` columns for the rows of ``df``, on its index."""
    if isinstance(policy, Sites):

        def one_site(
            rows: pd.DataFrame, site: Policy, known: npt.NDArray[np.object_] | None
        ) -> pd.DataFrame:
            return _results(rows, found, unit_columns, site, replace(options, row_errors=known))

        return classify_sites(df, policy, options.row_errors, one_site)
    given_units = {get_analyte(name).name: unit for name, unit in options.units.items()}
    results = {
        analyte: ResultColumn(
            df[found[analyte][0]],
            given_units.get(analyte, found[analyte][1]),
            df[unit_columns[analyte]] if analyte in unit_columns else None,
        )
        for analyte in ANALYTES
        if analyte in found
    }
    context = {key: df[found[key][0]] if key in found else None for key in CONTEXT_COLUMNS}
    inputs = Inputs(
        n=len(df),
        results=results,
        age=context["age"],
        sex=context["sex"],
        pregnant=context["pregnant"],
        nitrous_oxide=context["nitrous_oxide"],
        b12_replacement=context["b12_replacement"],
        medicines=context["medicines"],
        known_errors=options.row_errors,
        decimal=options.decimal,
        reference_ranges=_range_cells(df, options.ranges),
    )
    outcome = run(inputs, policy)
    # The columns are new arrays: copy=False keeps them as they are, where consolidating the
    # numeric ones into one block would copy them all.
    return pd.DataFrame(build.columns(outcome, explain=options.explain), index=df.index, copy=False)


def _find_columns(
    names: list[Hashable], mapping: Mapping[str, str]
) -> tuple[dict[str, tuple[Hashable, str | None]], dict[str, Hashable]]:
    """Analyte and context columns (with any unit in the header), and unit columns."""
    plan = plan_columns(names, mapping)
    original = {str(c): c for c in names}
    chosen = [*plan.found.values(), *plan.unit_columns.values()]
    twice = sorted({c for c in chosen if list(map(str, names)).count(c) > 1})
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
    if not any(analyte in plan.found for analyte in ANALYTES):
        raise ColumnError(
            "no analyte column found; expected columns such as b12, mma, hcy, holotc (or a "
            f"mapping in columns=); the data has {describe_headers(names)}; if its "
            "first line is data rather than a header, add a header line",
            columns=tuple(map(str, names)),
        )
    found = {key: (original[column], plan.header_units[key]) for key, column in plan.found.items()}
    units = {key: original[column] for key, column in plan.unit_columns.items()}
    return found, units
