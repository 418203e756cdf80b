"""The one pipeline: read cells → normalize units → derive → band → evaluate rules and flags.

Every entry point builds :class:`Inputs` (columns of cells, one element per patient) and calls
:func:`run`; ``classify`` is the one-row case. The :class:`Outcome` it returns holds arrays only;
:mod:`b12lab._core.build` turns them into a typed result or into output columns, with the same
words for both.

Where the policy's table asks for it, a row with creatinine and no eGFR gets an eGFR derived
from creatinine, age and sex (:mod:`b12lab._core.kidney`); it is then banded like a given one.

Each row keeps its first error, in one fixed order: an error already known for the row (a
ragged line in a file), then the analytes in :data:`~b12lab._core.analytes.ANALYTES` order
(unreadable, then implausible, then an unreadable reference range reported with the result),
then age, sex, pregnancy, nitrous oxide use, B12 replacement, medicines, then contradictions
between them.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core.analytes import ANALYTES
from b12lab._core.cells import ParsedColumn, read_column
from b12lab._core.context import ContextColumns, read_context
from b12lab._core.derivation import Derivation, derive
from b12lab._core.engine import Interval
from b12lab._core.evaluation import Evaluation, evaluate, implausible
from b12lab._core.measurements import Measurement
from b12lab._core.numerals import Decimal
from b12lab._core.observations import Observed, from_numbers
from b12lab._core.policy import Policy
from b12lab._core.reported_ranges import (
    RangeColumn,
    band_map,
    read_ranges,
    without_implausible,
)
from b12lab._core.table_schema import AGE_UNIT
from b12lab.errors import B12LabError, ImplausibleValueError

__all__ = ["Inputs", "Outcome", "ResultColumn", "run"]

Cells = pd.Series | Sequence[object]


@dataclass(frozen=True)
class ResultColumn:
    """One analyte's cells, the unit for cells without one, and an optional column of units."""

    values: Cells
    unit: str | None = None
    units: Cells | None = None


@dataclass(frozen=True)
class Inputs:
    """What one call classifies: ``n`` patients' result columns, context and known row errors."""

    n: int
    results: Mapping[str, ResultColumn]
    age: Cells | None = None
    sex: Cells | None = None
    pregnant: Cells | None = None
    nitrous_oxide: Cells | None = None
    b12_replacement: Cells | None = None
    medicines: Cells | None = None
    known_errors: Sequence[str] | npt.NDArray[np.object_] | None = None
    decimal: Decimal = "."
    reference_ranges: Mapping[str, Cells] = field(default_factory=dict)
    """Per analyte: the reference range reported with each result, to band against in place of
    the laboratory table's edges (:mod:`b12lab._core.reported_ranges`)."""

    @property
    def context(self) -> dict[str, Cells | None]:
        """The context columns by field name (None: not given)."""
        return {
            "age": self.age,
            "sex": self.sex,
            "pregnant": self.pregnant,
            "nitrous_oxide": self.nitrous_oxide,
            "b12_replacement": self.b12_replacement,
            "medicines": self.medicines,
        }


@dataclass(frozen=True)
class RowErrors:
    """Each row's first error as an index into ``errors`` (-1: none).

    An entry is an exception (raised again by ``classify``) or a message already known for the
    row (written as it is in batch output).
    """

    codes: npt.NDArray[np.intp]
    errors: list[B12LabError | str] = field(default_factory=list)

    def add(self, codes: npt.NDArray[np.intp], errors: Sequence[B12LabError | str | None]) -> None:
        """Rows without an error yet take ``errors[codes]``; a code of -1 is no error."""
        rows = np.flatnonzero(codes >= 0)
        self._add_at(rows, codes[rows], errors, _codes(errors))

    def add_cells(
        self, cells: npt.NDArray[np.intp], errors: Sequence[B12LabError | str | None]
    ) -> None:
        """Rows without an error yet take the error of their cell, ``errors[cells]``, where it
        has one (errors are rare: only the rows of such cells are looked at twice)."""
        if errors.count(None) == len(errors):
            return
        own = _codes(errors)
        has = own >= 0
        rows = np.flatnonzero(has[cells])
        self._add_at(rows, own[cells[rows]], errors, own)

    def _add_at(
        self,
        rows: npt.NDArray[np.intp],
        codes: npt.NDArray[np.intp],
        errors: Sequence[B12LabError | str | None],
        own: npt.NDArray[np.intp],
    ) -> None:
        kept = np.flatnonzero(own >= 0)
        if not kept.size:
            return
        position = np.full(len(errors), -1, dtype=np.intp)
        position[kept] = np.arange(len(self.errors), len(self.errors) + kept.size)
        found = [errors[k] for k in kept.tolist()]
        self.errors.extend(e for e in found if e is not None)
        free = self.codes[rows] < 0
        self.codes[rows[free]] = position[codes[free]]

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        ok: npt.NDArray[np.bool_] = self.codes < 0
        return ok

    @property
    def from_reader(self) -> npt.NDArray[np.bool_]:
        """Rows whose error came with the row (a ragged line): their cells may be misplaced."""
        known = np.array([isinstance(e, str) for e in self.errors] + [False], dtype=bool)
        from_reader: npt.NDArray[np.bool_] = known[self.codes]  # code -1 picks the last, False
        return from_reader

    def message(self, index: int) -> str:
        """The row error as batch output writes it: ``code: message``."""
        error = self.errors[index] if index >= 0 else ""
        return error if isinstance(error, str) else f"{error.code}: {error}"


@dataclass(frozen=True)
class Outcome:
    """The pipeline's arrays for ``n`` rows: parsed results, context, evaluation, errors."""

    policy: Policy
    parsed: Mapping[str, ParsedColumn]
    context: ContextColumns
    evaluation: Evaluation
    errors: RowErrors
    derivation: Derivation | None = None
    """Where eGFR was derived from creatinine (when the policy derives it)."""
    ranges: Mapping[str, RangeColumn] = field(default_factory=dict)
    """The reference ranges reported with the results, per analyte given them."""

    @property
    def n(self) -> int:
        return int(self.errors.codes.shape[0])


def run(inputs: Inputs, policy: Policy) -> Outcome:
    """Classify every row of ``inputs`` against ``policy``."""
    errors = RowErrors(np.full(inputs.n, -1, dtype=np.intp))
    if inputs.known_errors is not None:
        _add_known(errors, inputs.known_errors)
    parsed: dict[str, ParsedColumn] = {}
    ranges: dict[str, RangeColumn] = {}
    for analyte in (name for name in ANALYTES if name in inputs.results):
        column = inputs.results[analyte]
        read = read_column(column.values, analyte, column.unit, column.units, inputs.decimal)
        read = _without_implausible(read, policy)
        errors.add_cells(read.rows, read.errors)
        parsed[analyte] = read
        if analyte in inputs.reference_ranges:
            ranges[analyte] = _ranges(inputs, read, policy, errors)
    context = read_context(inputs.context, inputs.n, risk=policy.medicines)
    errors.add(context.error_codes - 1, context.errors[1:])
    derivation = None
    if policy.egfr_equation is not None and "creatinine" in parsed:
        derivation = derive(
            policy.egfr_equation, parsed["creatinine"], parsed.get("egfr"), context.context
        )
        parsed["egfr"] = derivation.column  # egfr is the last analyte: the order holds
    observed: dict[str, Observed] = {name: column.observed for name, column in parsed.items()}
    observed["age"] = from_numbers("age", context.context.age, AGE_UNIT)
    evaluation = evaluate(policy, observed, context.context, ranges)
    return Outcome(policy, parsed, context, evaluation, errors, derivation, ranges)


def _ranges(
    inputs: Inputs, results: ParsedColumn, policy: Policy, errors: RowErrors
) -> RangeColumn:
    """The analyte's reported ranges; an unreadable one is a row error where it would band a
    result (a range for bands it may not replace is not used, only noted)."""
    analyte = results.observed.analyte
    column = read_ranges(inputs.reference_ranges[analyte], analyte, inputs.decimal)
    if band_map(policy, analyte) is None:
        return column
    column = without_implausible(column, results.observed, policy)
    if column.errors:
        own = _codes(column.errors)
        used = (column.rows >= 0) & results.observed.present
        errors.add(np.where(used, own[column.rows], -1), column.errors)
    return column


def _add_known(errors: RowErrors, known: Sequence[str] | npt.NDArray[np.object_]) -> None:
    messages = np.asarray(known, dtype=object)
    codes, uniques = pd.factorize(messages)
    listed: list[B12LabError | str | None] = [str(m) or None for m in uniques]
    own = _codes(listed) if listed else np.zeros(1, dtype=np.intp)
    errors.add(np.where(codes < 0, -1, own[np.maximum(codes, 0)]).astype(np.intp), listed)


def _codes(errors: Sequence[B12LabError | str | None]) -> npt.NDArray[np.intp]:
    """Per entry: its own position where it is an error, -1 where it is none.

    There is one entry per distinct cell, and errors are rare: the loop over entries runs in C.
    """
    codes = np.full(len(errors), -1, dtype=np.intp)
    if errors.count(None) < len(errors):
        has = np.fromiter(map(operator.is_not, errors, repeat(None)), dtype=bool, count=len(errors))
        codes[has] = np.flatnonzero(has)
    return codes


def _without_implausible(column: ParsedColumn, policy: Policy) -> ParsedColumn:
    """Cells outside the plausibility limits become errors and lose their value."""
    outside = implausible(policy, column.observed)
    if not outside.any():
        return column
    source = policy.plausibility_source(column.observed.analyte)
    errors = list(column.errors)
    observed = column.observed
    for position in np.flatnonzero(outside):
        given = Measurement(
            observed.analyte,
            float(observed.interval.lo[position] or observed.interval.hi[position]),
            observed.units[int(observed.unit_codes[position])],
        )
        shown = f"{column.signs[position]}{given}" if column.signs[position] else str(given)
        errors[position] = ImplausibleValueError(
            f"{observed.analyte}: {shown} is outside the plausible limits ({source}); "
            "check the value and its unit",
            analyte=observed.analyte,
            value=shown,
            expected=source,
        )
    cells = observed.interval
    kept = Interval(cells.lo, cells.hi, cells.lo_open, cells.hi_open, cells.present & ~outside)
    trimmed = Observed(observed.analyte, kept, observed.unit_codes, observed.units, observed.rows)
    return ParsedColumn(trimmed, column.signs, column.notes, errors, column.noted, column.signed)
