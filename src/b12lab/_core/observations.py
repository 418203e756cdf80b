"""Results as arrays: the bridge between what a laboratory reported and the numpy core.

An :class:`Observed` holds one analyte's results for many patients, in the units they were given,
as intervals. Conversions run once per distinct unit (cached factors), then as one numpy
multiplication: one patient and ten million take the same path.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from b12lab._core.analytes import get_analyte
from b12lab._core.categories import Censoring
from b12lab._core.engine import BoolArray, FloatArray, IntArray, Interval, comparison_values
from b12lab._core.measurements import Measurement
from b12lab._core.units import conversion_factor, dimension_kind

__all__ = ["Observed", "comparison_basis", "from_measurements", "from_numbers"]


@dataclass(frozen=True)
class Observed:
    """One analyte's results: intervals in the given units; ``unit_codes`` index ``units``.

    With ``rows``, the intervals are those of the distinct cells of a column and ``rows`` maps
    each row to its cell: work that depends only on the result (conversion, banding) then runs
    once per distinct cell, and rows pick their answer by index.
    """

    analyte: str
    interval: Interval
    unit_codes: IntArray
    units: tuple[str, ...]
    rows: npt.NDArray[np.intp] | None = None

    def __len__(self) -> int:
        return len(self.interval) if self.rows is None else int(self.rows.shape[0])

    @functools.cached_property
    def present(self) -> BoolArray:
        """Per row: is there a usable result (gathered once)."""
        present = self.interval.present
        return present if self.rows is None else present[self.rows]

    def per_row(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Spread per-cell values to rows."""
        return values if self.rows is None else values[self.rows]

    def factors_to(self, target: str) -> FloatArray | float:
        """Factor to ``target`` per row (a scalar when all rows share one unit); computed once
        per distinct unit."""
        per_unit = np.array(
            [conversion_factor(self.analyte, unit, target) for unit in self.units] or [1.0],
            dtype=np.float64,
        )
        if per_unit.shape[0] == 1:
            return float(per_unit[0])
        return per_unit[np.maximum(self.unit_codes, 0)]

    @functools.cached_property
    def _canonical(self) -> Interval:
        factors = self.factors_to(get_analyte(self.analyte).canonical_unit)
        return _scaled(self.interval, factors)

    def canonical(self) -> Interval:
        """The intervals in the analyte's canonical unit (per cell when ``rows`` is set)."""
        return self._canonical

    def for_comparison(
        self, published: Sequence[str], decimals: Sequence[int]
    ) -> tuple[Interval, IntArray]:
        """The intervals in the published unit each row is compared in, and that unit's index.

        A row is compared in the published unit of its own kind (substance or mass), so pmol/L
        results meet the published pmol/L edges and ng/L results the published ng/L ones; a row
        whose kind the table did not publish is converted to the table's primary unit.

        Computed once per published units and decimals (a table and its laboratory table often
        compare an analyte alike); points (``lo`` the same array as ``hi``) are converted once.
        """
        key = (tuple(published), tuple(decimals))
        found = self._compared.get(key)
        if found is None:
            found = self._compared[key] = self._for_comparison(published, decimals)
        return found

    @functools.cached_property
    def _compared(self) -> dict[tuple[tuple[str, ...], tuple[int, ...]], tuple[Interval, IntArray]]:
        return {}

    def _for_comparison(
        self, published: Sequence[str], decimals: Sequence[int]
    ) -> tuple[Interval, IntArray]:
        point = self.interval.lo is self.interval.hi
        per_unit_basis = np.array(
            [comparison_basis(unit, published) for unit in self.units] or [0], dtype=np.int16
        )
        if np.all(per_unit_basis == per_unit_basis[0]):  # one comparison unit for every row
            index = int(per_unit_basis[0])
            factors = self.factors_to(published[index])
            lo = comparison_values(self.interval.lo, factors, decimals[index])
            interval = Interval(
                lo,
                lo if point else comparison_values(self.interval.hi, factors, decimals[index]),
                self.interval.lo_open,
                self.interval.hi_open,
                self.interval.present,
            )
            return interval, np.full(len(self.interval), index, dtype=np.int16)
        basis = per_unit_basis[np.maximum(self.unit_codes, 0)]
        lo = np.empty(len(self.interval), dtype=np.float64)
        hi = lo if point else np.empty(len(self.interval), dtype=np.float64)
        for index, unit in enumerate(published):
            rows = basis == index
            if not rows.any():
                continue
            factors = np.broadcast_to(self.factors_to(unit), (len(self.interval),))[rows]
            lo[rows] = comparison_values(self.interval.lo[rows], factors, decimals[index])
            if not point:
                hi[rows] = comparison_values(self.interval.hi[rows], factors, decimals[index])
        interval = Interval(
            lo, hi, self.interval.lo_open, self.interval.hi_open, self.interval.present
        )
        return interval, basis


def comparison_basis(unit: str, published: Sequence[str]) -> int:
    """Index of the published unit a result in ``unit`` is compared in: the first of its own
    kind (substance or mass), else the primary unit."""
    kinds = [dimension_kind(p) for p in published]
    kind = dimension_kind(unit)
    return kinds.index(kind) if kind in kinds else 0


def _scaled(interval: Interval, factors: FloatArray | float) -> Interval:
    with np.errstate(invalid="ignore", over="ignore"):  # an overflow is caught as implausible
        lo = interval.lo * factors
        return Interval(
            lo,
            lo if interval.lo is interval.hi else interval.hi * factors,
            interval.lo_open,
            interval.hi_open,
            interval.present,
        )


def from_measurements(analyte: str, results: Sequence[Measurement | None]) -> Observed:
    """Arrays from parsed results; ``None`` is a missing result."""
    units = tuple(dict.fromkeys(r.unit for r in results if r is not None))
    n = len(results)
    value = np.array([r.value if r is not None else np.nan for r in results], dtype=np.float64)
    censoring = [r.censoring if r is not None else Censoring.NONE for r in results]
    below = np.array([c in (Censoring.BELOW, Censoring.AT_OR_BELOW) for c in censoring], dtype=bool)
    above = np.array([c in (Censoring.ABOVE, Censoring.AT_OR_ABOVE) for c in censoring], dtype=bool)
    interval = Interval(
        lo=np.where(below, 0.0, value),
        hi=np.where(above, np.inf, value),
        lo_open=np.array([c is Censoring.ABOVE for c in censoring], dtype=bool),
        hi_open=np.array([c is Censoring.BELOW for c in censoring], dtype=bool),
        present=np.array([r is not None for r in results], dtype=bool),
    )
    codes = np.array(
        [units.index(r.unit) if r is not None else -1 for r in results], dtype=np.int16
    ).reshape(n)
    return Observed(get_analyte(analyte).name, interval, codes, units)


def from_numbers(name: str, values: FloatArray, unit: str) -> Observed:
    """Exact results in one unit; NaN is missing. Used for age (unit ``year``)."""
    present: BoolArray = np.isfinite(values)
    falses = np.zeros(values.shape[0], dtype=bool)
    interval = Interval(values, values, falses, falses, present)
    return Observed(name, interval, np.zeros(values.shape[0], dtype=np.int16), (unit,))
