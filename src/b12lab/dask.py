"""Classify a Dask DataFrame partition by partition, with the same answer as ``classify_frame``.

Each partition goes through :func:`b12lab.classify_frame` unchanged, so a row gets the same
result in Dask as in pandas. The tables are resolved once, on the client, and the loaded
:class:`~b12lab.tables.Table` objects travel with the task graph: every partition, on every
worker, uses the same table version, whatever the workers have installed.

Dask is optional: ``pip install 'b12lab[dask]'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from b12lab._core.columns import PREFIX
from b12lab._core.frame import classify_frame
from b12lab._core.numerals import Decimal
from b12lab._core.policy import resolve
from b12lab._core.sites import sites
from b12lab.errors import ColumnError
from b12lab.tables import Table

if TYPE_CHECKING:
    from types import ModuleType

    import dask.dataframe as dd

__all__ = ["classify"]

INSTALL_HINT = "pip install 'b12lab[dask]'"


def classify(
    ddf: dd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | Mapping[str, str | Table] | None = None,
    laboratory_column: str | None = None,
    explain: bool = False,
    decimal: Decimal = ".",
    reference_ranges: Mapping[str, str] | None = None,
) -> dd.DataFrame:
    """Classify every row of a Dask DataFrame; lazily returns it with ``b12lab_*`` columns added.

    The arguments are those of :func:`b12lab.classify_frame`. Tables and column names are checked
    here, before anything is computed; per-row problems land in ``b12lab_error`` as in pandas.
    A mapping of sites to laboratory tables (with ``laboratory_column``) is resolved here too,
    and its loaded tables travel with the graph; each partition is grouped by site on its own.
    """
    dask_dataframe = _import_dask()
    if not isinstance(ddf, dask_dataframe.DataFrame):
        raise TypeError(
            f"b12lab.dask.classify expects a dask.dataframe.DataFrame, got {type(ddf).__name__}; "
            "for a pandas DataFrame use b12lab.classify_frame"
        )
    if isinstance(laboratory, Mapping):
        chosen = sites(table, laboratory, laboratory_column)
        if chosen.column not in ddf.columns:
            raise ColumnError(
                f"laboratory_column {chosen.column!r} is not a column of the data",
                columns=(str(chosen.column),),
            )
        policy = next(iter(chosen.policies.values()))
        lab: Table | dict[str, Table] | None = {
            site: site_policy.laboratory
            for site, site_policy in chosen.policies.items()
            if site_policy.laboratory is not None
        }
    else:
        policy = resolve(table, laboratory)
        lab = policy.laboratory
    options: dict[str, Any] = {
        "columns": dict(columns) if columns is not None else None,
        "units": dict(units) if units is not None else None,
        "table": policy.table,
        "laboratory": lab,
        "laboratory_column": laboratory_column,
        "explain": explain,
        "decimal": decimal,
        "reference_ranges": dict(reference_ranges) if reference_ranges is not None else None,
    }
    meta = _meta(ddf, options)
    dtypes = {name: meta[name].dtype for name in meta.columns if str(name).startswith(PREFIX)}
    result: dd.DataFrame = ddf.map_partitions(
        _classify_partition, **options, dtypes=dtypes, meta=meta
    )
    return result


def _import_dask() -> ModuleType:
    try:
        import dask.dataframe
    except ImportError as exc:
        raise ImportError(
            f"b12lab.dask needs Dask with its DataFrame extras; install them with: {INSTALL_HINT}",
            name="dask",
        ) from exc
    return dask.dataframe


def _meta(ddf: dd.DataFrame, options: Mapping[str, Any]) -> pd.DataFrame:
    """The empty frame a partition's result looks like.

    Computed on a one-row stand-in for the data, not on an empty frame: pandas gives an empty
    column of strings another dtype (``object``) than a filled one (``str``). A categorical result
    column is declared with unknown categories (Dask's convention): which categories a partition
    holds, such as its error messages, depends on its rows.
    """
    from dask.dataframe.dispatch import meta_nonempty
    from dask.dataframe.utils import clear_known_categories

    sample = meta_nonempty(ddf._meta)
    meta = classify_frame(sample, **options).iloc[:0]
    categorical = [
        name
        for name in meta.columns
        if str(name).startswith(PREFIX) and isinstance(meta[name].dtype, pd.CategoricalDtype)
    ]
    # dask leaves this helper unannotated.
    cleared: pd.DataFrame = clear_known_categories(  # type: ignore[no-untyped-call]
        meta, cols=categorical, index=False
    )
    return cleared


def _classify_partition(
    part: pd.DataFrame,
    *,
    columns: Mapping[str, str] | None,
    units: Mapping[str, str] | None,
    table: Table,
    laboratory: Table | Mapping[str, Table] | None,
    laboratory_column: str | None,
    explain: bool,
    decimal: Decimal,
    reference_ranges: Mapping[str, str] | None,
    dtypes: Mapping[str, Any],
) -> pd.DataFrame:
    """``classify_frame`` on one partition, its result columns given the dtypes of the meta.

    Only an empty partition's string columns drift (to ``object``); the casts lose nothing. A
    categorical keeps its own categories: Dask unions them when it joins the partitions.
    """
    out = classify_frame(
        part,
        columns=columns,
        units=units,
        table=table,
        laboratory=laboratory,
        laboratory_column=laboratory_column,
        explain=explain,
        decimal=decimal,
        reference_ranges=reference_ranges,
    )
    drifted = {
        name: "category" if isinstance(dtype, pd.CategoricalDtype) else dtype
        for name, dtype in dtypes.items()
        if not _same_kind(out[name].dtype, dtype)
    }
    return out.astype(drifted) if drifted else out


def _same_kind(dtype: Any, declared: Any) -> bool:
    """Equal dtypes; for categoricals, both categorical (each partition has its own categories)."""
    if isinstance(declared, pd.CategoricalDtype):
        return isinstance(dtype, pd.CategoricalDtype)
    return bool(dtype == declared)
