"""What a report shows, as aggregates: counts, distributions, band edges, flags.

Everything here is a count or a set of values to draw; nothing names a row. The report shows
no identifier and no row's values in a table, so a report can be shared where the rows cannot.

Values are drawn in each analyte's canonical unit (the unit of the ``b12lab_<analyte>``
columns); a table's band edges are taken in the published unit of the same kind (a pmol/L twin
for B12, nmol/mL for MMA) and converted to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core.analytes import ANALYTES
from b12lab._core.categories import Category
from b12lab._core.columns import PREFIX
from b12lab._core.policy import Policy
from b12lab._core.table_schema import Stratum, VariableBands
from b12lab._core.units import conversion_factor, dimension_kind, display_unit

__all__ = ["Distribution", "StratumEdges", "Summary", "error_code", "number", "summarize"]

_CITED = re.compile(r"^(?:(?:line|row) [0-9]+: )?(?P<code>[a-z_]+):")
"""An error cell: ``code: message``, after the line or row a file reader cites, if any."""


@dataclass(frozen=True)
class StratumEdges:
    """One stratum's band edges in the canonical unit, and the bands between them.

    ``labels`` has one more entry than ``edges``; ``closed_below[i]`` is true when a value equal
    to ``edges[i]`` belongs to the band below it.
    """

    name: str
    edges: tuple[float, ...]
    published: tuple[str, ...]
    """Each edge as published, where the table gave it in another unit (else "")."""
    labels: tuple[str, ...]
    closed_below: tuple[bool, ...]


@dataclass(frozen=True, eq=False)  # arrays have no single truth value to compare by
class Distribution:
    """One analyte's results: the exact values to draw, counts of the rest, the table's bands."""

    analyte: str
    title: str
    unit: str
    values: npt.NDArray[np.float64]
    """Exact (uncensored) results [canonical unit]; drawn, never listed."""
    censored: Mapping[str, int]
    """Censored results by their sign (``<``, ``>``...): only a limit is known."""
    bands: Mapping[str, int]
    """Rows per band label, in the table's order."""
    strata: tuple[StratumEdges, ...]
    supplier: str | None
    """The table (``id@version``) whose bands these are, or None: the table has none."""
    reported: int = 0
    """Rows banded against the reference range reported with the result, not these edges."""

    @property
    def results(self) -> int:
        return len(self.values) + sum(self.censored.values())


@dataclass(frozen=True)
class Summary:
    """Counts over all rows, and one distribution per analyte the output has a column for."""

    rows: int
    categories: Mapping[str, int]
    errors: Mapping[str, int]
    flags: Mapping[str, int]
    flag_messages: Mapping[str, str]
    distributions: tuple[Distribution, ...]
    caveats: Mapping[str, tuple[str, ...]]
    """Each table's key and the caveats it gives for every result it reads."""


def summarize(result: pd.DataFrame, policy: Policy) -> Summary:
    """Aggregate a classified frame (from ``classify_frame`` or ``classify_long``)."""
    return Summary(
        rows=len(result),
        categories=_categories(result),
        errors=_errors(result),
        flags=_flags(result),
        flag_messages=_flag_messages(policy),
        distributions=tuple(
            _distribution(result, name, policy)
            for name in ANALYTES
            if f"{PREFIX}{name}" in result.columns
        ),
        caveats={
            table.key: tuple(str(caveat) for caveat in table.model.caveats)
            for table in (policy.table, policy.laboratory)
            if table is not None and table.model.caveats
        },
    )


def error_code(cell: str) -> str:
    """The code of a ``b12lab_error`` cell (``""`` for none); the message is left behind, as it
    may quote a row's values.

    >>> error_code("line 12: unknown_unit: b12: '160' has no unit")
    'unknown_unit'
    """
    match = _CITED.match(cell)
    if match:
        return match["code"]
    return cell.partition(":")[0].strip() if cell else ""


def _counts(column: pd.Series) -> dict[str, int]:
    """Non-empty values and their counts, from each distinct value once."""
    counts = column.astype(str).value_counts(sort=False)
    return {str(k): int(v) for k, v in counts.items() if str(k) and int(v)}


def _categories(result: pd.DataFrame) -> dict[str, int]:
    """Rows per category, every category in rank order (most likely deficiency first)."""
    found = _counts(result[f"{PREFIX}category"])
    ordered = [str(Category.from_rank(rank)) for rank in reversed(range(len(Category)))]
    return {name: found.pop(name, 0) for name in ordered} | found


def _errors(result: pd.DataFrame) -> dict[str, int]:
    """Rows per error code, most frequent first."""
    codes: dict[str, int] = {}
    for cell, count in _counts(result[f"{PREFIX}error"]).items():
        code = error_code(cell)
        codes[code] = codes.get(code, 0) + count
    return dict(sorted(codes.items(), key=lambda item: (-item[1], item[0])))


def _flags(result: pd.DataFrame) -> dict[str, int]:
    """Rows per flag (a row may carry several), most frequent first."""
    flags: dict[str, int] = {}
    for cell, count in _counts(result[f"{PREFIX}flags"]).items():
        for flag in filter(None, (part.strip() for part in cell.split(";"))):
            flags[flag] = flags.get(flag, 0) + count
    return dict(sorted(flags.items(), key=lambda item: (-item[1], item[0])))


def _flag_messages(policy: Policy) -> dict[str, str]:
    """Each flag's message: the table's own, else its laboratory table's."""
    messages: dict[str, str] = {}
    for table in (policy.laboratory, policy.table):
        if table is not None:
            messages |= {flag.id: flag.message for flag in table.model.flags}
    return messages


def _distribution(result: pd.DataFrame, analyte: str, policy: Policy) -> Distribution:
    record = ANALYTES[analyte]
    column = f"{PREFIX}{analyte}"
    values = pd.to_numeric(result[column], errors="coerce").to_numpy(dtype=np.float64)
    censoring = (
        result[f"{column}_censoring"].astype(str).to_numpy()
        if f"{column}_censoring" in result.columns
        else np.full(len(values), "", dtype=object)
    )
    present = np.isfinite(values)
    exact = present & (censoring == "")
    censored = _counts(pd.Series(censoring[present & ~exact], dtype=object))
    bands = policy.bands.get(analyte)
    supplier = policy.suppliers.get(analyte)
    band_counts = _counts(result[f"{column}_band"]) if f"{column}_band" in result.columns else {}
    return Distribution(
        analyte=analyte,
        title=record.title,
        unit=display_unit(record.canonical_unit),
        values=values[exact],
        censored=censored,
        bands=_in_table_order(band_counts, bands),
        strata=() if bands is None else _strata(analyte, bands),
        supplier=None if supplier is None else supplier.key,
        reported=_reported(result, analyte),
    )


def _reported(result: pd.DataFrame, analyte: str) -> int:
    """Rows whose band came from a reported reference range (``classify_long`` says which)."""
    source = f"{PREFIX}{analyte}_range_source"
    return int((result[source] == "reported").sum()) if source in result.columns else 0


def _in_table_order(counts: dict[str, int], bands: VariableBands | None) -> dict[str, int]:
    """Every band of the table (zero where no row is in it), then any other label found."""
    if bands is None:
        return counts
    labels = [band.label for band in bands.all_strata()[0].bands]
    return {label: counts.pop(label, 0) for label in labels} | counts


def _strata(analyte: str, bands: VariableBands) -> tuple[StratumEdges, ...]:
    unit = _edge_unit(analyte, list(bands.units))
    factor = conversion_factor(analyte, unit)
    factor = 1.0 if np.isclose(factor, 1.0) else factor  # nmol/mL is µmol/L: keep its digits
    strata = bands.all_strata()
    return tuple(
        _stratum(stratum, unit, factor, _stratum_name(stratum, number, len(strata)))
        for number, stratum in enumerate(strata, start=1)
    )


def _edge_unit(analyte: str, units: Sequence[str]) -> str:
    """The published unit of the same kind as the canonical one, else the first published."""
    kind = dimension_kind(ANALYTES[analyte].canonical_unit)
    return next((unit for unit in units if dimension_kind(unit) == kind), units[0])


def _stratum(stratum: Stratum, unit: str, factor: float, name: str) -> StratumEdges:
    inner = [band for band in stratum.bands[:-1] if band.upper is not None]
    edges = [band.upper[unit] * factor for band in inner if band.upper is not None]
    same = factor == 1.0
    published = [
        "" if same else f"{_number(band.upper[unit])} {display_unit(unit)}"
        for band in inner
        if band.upper is not None
    ]
    return StratumEdges(
        name=name,
        edges=tuple(edges),
        published=tuple(published),
        labels=tuple(band.label for band in stratum.bands),
        closed_below=tuple(bool(band.upper_inclusive) for band in inner),
    )


def _stratum_name(stratum: Stratum, number: int, strata: int) -> str:
    """As results cite it (the table's name for it), else its position."""
    if strata == 1:
        return "everyone"
    return stratum.name or f"stratum {number} of {strata}"


def _number(value: float) -> str:
    """An edge as it reads: whole numbers without a point, others to 4 significant digits."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def number(value: float) -> str:
    """An edge or count in the canonical unit, as the report prints it.

    >>> number(132.8), number(0.46), number(25279.45)
    ('133', '0.46', '25279')
    """
    if abs(value) >= 100:
        return f"{round(value):d}"
    return f"{value:.3g}"
