"""Classify a pandas DataFrame: one output row per input row, same order and index, none lost.

Each distinct cell is read once, units are converted with one cached factor per distinct unit,
and the rows go through the same pipeline as :func:`b12lab.classify`. A row that cannot be
classified keeps its place and says why in ``b12lab_error``; it is never dropped and never given
a category.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from b12lab._core import build
from b12lab._core.analytes import ANALYTES, get_analyte
from b12lab._core.columns import CONTEXT_COLUMNS, PREFIX, describe_headers, plan_columns
from b12lab._core.numerals import Decimal
from b12lab._core.pipeline import Inputs, ResultColumn, run
from b12lab._core.policy import resolve
from b12lab.errors import ColumnError, UnusedColumnWarning
from b12lab.tables import Table

__all__ = ["classify_frame"]


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

    ``columns`` maps analyte or context names (``b12``, ``mma``, ``age``, ``nitrous_oxide``,
    ``medicines``, ...) to column names; unmapped ones are recognised from common names
    (``gender``, ``n2o``, ``b12_treatment``, ``medications``), or from headers such as
    ``b12 (pg/mL)`` or ``b12_pmol_l``. ``units`` gives a unit for a whole column whose cells are
    bare numbers. ``explain`` adds ``b12lab_reasons``: the reasons in words, with their sources.
    ``decimal`` is the decimal mark of text cells (``"."``, ``","`` or ``"auto"``).
    ``row_errors`` marks rows already known to be unusable (a ragged line in a file, say): they
    keep their place, get that error, and no category. A column that looks like a result but is
    not read gives an :class:`~b12lab.errors.UnusedColumnWarning`.
    """
    policy = resolve(table, laboratory)
    found, unit_columns = _find_columns(df, columns or {})
    given_units = {get_analyte(name).name: unit for name, unit in (units or {}).items()}
    results = {
        analyte: ResultColumn(
            df[found[analyte][0]],
            given_units.get(analyte, found[analyte][1]),
            df[unit_columns[analyte]] if analyte in unit_columns else None,
        )
        for analyte in ANALYTES
        if analyte in found
    }
    if not results:
        raise ColumnError(
            "no analyte column found; expected columns such as b12, mma, hcy, holotc (or a "
            f"mapping in columns=); the data has {describe_headers(list(df.columns))}; if its "
            "first line is data rather than a header, add a header line",
            columns=tuple(map(str, df.columns)),
        )
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
        known_errors=row_errors,
        decimal=decimal,
    )
    outcome = run(inputs, policy)
    result = pd.DataFrame(build.columns(outcome, explain=explain), index=df.index)
    kept = [c for c in df.columns if not str(c).startswith(PREFIX)]  # earlier results are replaced
    return pd.concat([df[kept], result], axis=1)


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
