"""Several laboratory tables in one frame: a column names each row's site, a mapping its table.

Rows are grouped by site; each group goes through the one pipeline with its own policy (one call
per distinct site, never one per row), and the groups are put back in the original row order. A
row whose site is missing or not in the mapping keeps its place with an ``unknown_laboratory``
error and no category.

The output columns do not depend on which sites a frame (or a block of a file) holds: they are
the union of the columns every mapped table gives, so blocks of one file share one schema. A
column a site's table does not give (a band it has no bands for) is empty for its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core.build import from_codes, labelled
from b12lab._core.columns import PREFIX
from b12lab._core.policy import Policy, resolve
from b12lab.errors import ColumnError, ErrorCode, TableValidationError
from b12lab.tables import Table

__all__ = ["Sites", "classify_sites", "sites"]

Classifier = Callable[[pd.DataFrame, Policy, "npt.NDArray[np.object_] | None"], pd.DataFrame]
"""Classifies the rows of a frame (with their known errors) under one policy."""

_LABORATORY = f"{PREFIX}laboratory"
_ERROR = f"{PREFIX}error"


@dataclass(frozen=True)
class Sites:
    """The column naming each row's site, and the policy of each site."""

    column: Hashable
    policies: Mapping[str, Policy]


def sites(
    table: str | Table | None,
    laboratory: Mapping[str, str | Table],
    column: Hashable | None,
) -> Sites:
    """Resolve every site's table now, so an unusable one fails before any row is read."""
    if column is None:
        raise ColumnError(
            "laboratory= is a mapping of sites to laboratory tables, but no laboratory_column= "
            "names the column that holds each row's site; give laboratory_column='...' (on the "
            "command line --laboratory-column COLUMN), or a single table as laboratory=",
            columns=(),
        )
    if not laboratory:
        raise TableValidationError(
            "laboratory= maps no site to a table; give at least one SITE: table",
            table="",
        )
    wrong = [repr(site) for site in laboratory if not isinstance(site, str) or not site.strip()]
    if wrong:
        raise TableValidationError(
            f"laboratory= sites must be non-empty text, got {', '.join(wrong)}; a row whose site "
            "is missing or not mapped gets an unknown_laboratory error",
            table="",
        )
    policies = {site.strip(): resolve(table, lab) for site, lab in laboratory.items()}
    return Sites(column, policies)


def classify_sites(
    df: pd.DataFrame,
    chosen: Sites,
    row_errors: Sequence[str] | np.ndarray | None,
    classify: Classifier,
) -> pd.DataFrame:
    """The ``b12lab_*`` columns for the rows of ``df``, each under its site's policy."""
    if chosen.column not in df.columns:
        raise ColumnError(
            f"laboratory_column {chosen.column!r} is not a column of the data; its columns are "
            f"{', '.join(map(repr, map(str, df.columns)))}",
            columns=(str(chosen.column),),
        )
    known = None if row_errors is None else np.asarray(row_errors, dtype=object)
    codes, names = _site_codes(df[chosen.column], list(chosen.policies))
    template = _template(df, chosen, classify)
    pieces: list[tuple[npt.NDArray[np.intp], dict[str, object]]] = []
    for code, site in enumerate(chosen.policies):
        rows = np.flatnonzero(codes == code)
        if rows.size:
            part = classify(df.iloc[rows], chosen.policies[site], _at(known, rows))
            pieces.append((rows, {name: part[name] for name in part.columns}))
    unknown = np.flatnonzero(codes < 0)
    if unknown.size:
        pieces.append((unknown, _unknown(template, names[unknown], _at(known, unknown), chosen)))
    return _joined(template, pieces, df.index)


def _site_codes(
    values: pd.Series, known: list[str]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.object_]]:
    """Per row: the position of its site in ``known`` (-1: missing or unknown), and its text."""
    missing = values.isna().to_numpy()
    text = np.where(missing, "", values.astype(str).str.strip().to_numpy(dtype=object))
    codes = pd.Index(known, dtype=object).get_indexer(pd.Index(text, dtype=object))
    return np.asarray(codes, dtype=np.intp), np.asarray(text, dtype=object)


def _at(
    known: npt.NDArray[np.object_] | None, rows: npt.NDArray[np.intp]
) -> npt.NDArray[np.object_] | None:
    return None if known is None else known[rows]


def _template(df: pd.DataFrame, chosen: Sites, classify: Classifier) -> dict[str, object]:
    """Every column any site's table gives, with its dtype, in the order the tables give them."""
    empty = df.iloc[:0]
    parts = [classify(empty, policy, None) for policy in chosen.policies.values()]
    order: list[str] = []
    dtypes: dict[str, object] = {}
    for part in parts:
        names = list(map(str, part.columns))
        for position, name in enumerate(names):
            if name in dtypes:
                continue
            dtypes[name] = part[name].dtype
            before = [c for c in names[:position] if c in order]
            order.insert(order.index(before[-1]) + 1 if before else 0, name)
    return {name: dtypes[name] for name in order}


def _empty(dtype: object, n: int) -> object:
    """``n`` cells of a column's dtype that say nothing: no text, no number, not derived."""
    if isinstance(dtype, pd.CategoricalDtype):
        return from_codes(np.zeros(n, dtype=np.int8), [""])
    if dtype == np.bool_:
        return np.zeros(n, dtype=bool)
    if pd.api.types.is_float_dtype(dtype):  # type: ignore[arg-type]
        return np.full(n, np.nan)
    return np.full(n, "", dtype=object)


def _unknown(
    template: Mapping[str, object],
    given: npt.NDArray[np.object_],
    known: npt.NDArray[np.object_] | None,
    chosen: Sites,
) -> dict[str, object]:
    """Rows whose site has no table: empty results, the table, and why."""
    n = given.shape[0]
    cells = {name: _empty(dtype, n) for name, dtype in template.items()}
    table = next(iter(chosen.policies.values())).table.key
    cells[f"{PREFIX}table"] = from_codes(np.zeros(n, dtype=np.int8), [table])
    listed = ", ".join(chosen.policies)
    messages = np.array(
        [
            f"{ErrorCode.UNKNOWN_LABORATORY}: site {site!r} in column {chosen.column!r} has no "
            f"laboratory table; the mapped sites are {listed}; add it to laboratory="
            if site
            else f"{ErrorCode.UNKNOWN_LABORATORY}: no site in column {chosen.column!r}; the "
            f"mapped sites are {listed}"
            for site in given
        ],
        dtype=object,
    )
    if known is not None:
        messages = np.where(known != "", known, messages)
    cells[_ERROR] = labelled(np.arange(n), [str(m) for m in messages])
    return cells


def _joined(
    template: Mapping[str, object],
    pieces: list[tuple[npt.NDArray[np.intp], dict[str, object]]],
    index: pd.Index,
) -> pd.DataFrame:
    """The pieces' columns put back in row order, categories unioned, on ``index``."""
    order = np.concatenate([rows for rows, _ in pieces]) if pieces else np.zeros(0, np.intp)
    back = np.empty_like(order)
    back[order] = np.arange(order.shape[0])
    joined: dict[str, object] = {}
    for name, dtype in template.items():
        parts = [cells.get(name, None) for _, cells in pieces]
        filled = [
            _empty(dtype, rows.shape[0]) if part is None else part
            for (rows, _), part in zip(pieces, parts, strict=True)
        ]
        joined[name] = _taken(_stacked(filled, dtype), back) if pieces else _empty(dtype, 0)
    return pd.DataFrame(joined, index=index)


def _stacked(parts: list[object], dtype: object) -> object:
    """One column from the groups' columns: categoricals unioned, other kinds concatenated."""
    arrays = [part.array if isinstance(part, pd.Series) else part for part in parts]
    categoricals = [a for a in arrays if isinstance(a, pd.Categorical)]
    if len(categoricals) == len(arrays):
        union = pd.api.types.union_categoricals([_as_text(c) for c in categoricals])
        return _as_text(union)  # pandas infers str categories: back to object, as build gives
    plain = [np.asarray(a) for a in arrays]
    if any(a.dtype == object for a in plain) or isinstance(dtype, pd.CategoricalDtype):
        plain = [a.astype(object) for a in plain]
    return np.concatenate(plain)


def _taken(column: object, rows: npt.NDArray[np.intp]) -> object:
    if isinstance(column, pd.Categorical):
        return column.take(rows)
    return np.asarray(column)[rows]


def _as_text(column: pd.Categorical) -> pd.Categorical:
    """The categorical with object categories (the dtype every result column has)."""
    return from_codes(column.codes, [str(t) for t in column.categories])
