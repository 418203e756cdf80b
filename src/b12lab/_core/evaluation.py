"""Evaluate a compiled policy on arrays: band codes, rules and flags, and plausibility.

Compiling a table (:mod:`b12lab._core.policy`) needs nothing of this; evaluating it needs the
observed arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from b12lab._core import engine
from b12lab._core.categories import Category
from b12lab._core.engine import BoolArray, CompiledVariable, Context, IntArray
from b12lab._core.observations import Observed
from b12lab._core.policy import Policy
from b12lab._core.reported_ranges import RangeColumn, ReportedBands, band_reported, merged
from b12lab._core.table_schema import Flag
from b12lab._core.units import conversion_factor
from b12lab.tables import Table

__all__ = [
    "NOT_INTERPRETED",
    "Evaluation",
    "FlagOutcome",
    "MadeFlag",
    "Namespace",
    "cross_checked",
    "evaluate",
    "implausible",
    "not_interpreted",
]


@dataclass(frozen=True)
class Namespace:
    """Band codes of one table's view of the variables (a laboratory names its own bands)."""

    codes: Mapping[str, IntArray]
    strata: Mapping[str, IntArray]
    variables: Mapping[str, CompiledVariable]
    spans: Mapping[str, tuple[IntArray, IntArray]]
    """Lowest and highest band per row, for variables with a censored result spanning bands."""
    reported: Mapping[str, ReportedBands] = field(default_factory=dict)
    """Variables some rows of which were banded against the reference range reported with the
    result, instead of the table's edges."""


@dataclass(frozen=True)
class MadeFlag:
    """A flag the core raises for every table of a schema, rather than one a table defines."""

    id: str
    message: str
    source: str


NOT_INTERPRETED = MadeFlag(
    id="marker_not_interpreted",
    message="A marker was given that this table does not interpret (see the markers): it is "
    "reported but no rule of the table reads it. Where the table names a table to check such a "
    "marker against and that table reads the result as outside its normal band, the category is "
    "at least deficiency_possible.",
    source="b12lab: every marker given is accounted for in the result",
)


@dataclass(frozen=True)
class FlagOutcome:
    """Where a flag applies, and for each analyte it names, where the flag rests on it.

    With ``combination``, ``holds`` and ``marker_holds`` are given per distinct combination of
    band codes and ``combination`` is each row's: packing flags per combination and gathering
    once per row is cheaper than gathering every flag's column per row. ``applies`` and
    ``markers`` are always per row.
    """

    flag: Flag | MadeFlag
    table: Table
    namespace: Namespace
    holds: BoolArray
    marker_holds: tuple[tuple[str, BoolArray], ...]
    combination: npt.NDArray[np.intp] | None = None

    @functools.cached_property
    def applies(self) -> BoolArray:
        """Per row: does the flag apply."""
        return self.per_row(self.holds)

    @functools.cached_property
    def markers(self) -> tuple[tuple[str, BoolArray], ...]:
        """Per analyte the flag names, per row: does the flag rest on it."""
        return tuple((name, self.per_row(holds)) for name, holds in self.marker_holds)

    def per_row(self, values: BoolArray) -> BoolArray:
        """Values given per combination (or per row), spread to rows."""
        return values if self.combination is None else values[self.combination]

    def markers_at(self, row: int) -> tuple[str, ...]:
        """The abnormal analytes the flag rests on in this row, in alphabetical order."""
        at = row if self.combination is None else int(self.combination[row])
        return tuple(name for name, holds in self.marker_holds if holds[at])


@dataclass(frozen=True)
class Evaluation:
    """What the core decided, as arrays: band codes per variable, rule, rank and flags."""

    namespace: Namespace
    rule: IntArray
    rank: IntArray
    flags: tuple[FlagOutcome, ...]
    possible: IntArray
    """Bit ``r`` set where category rank ``r`` is possible (several for censored results)."""
    matched: IntArray
    """The table's own rule per row, before a cross-checked marker raised the category."""
    cross: tuple[tuple[str, BoolArray], ...] = ()
    """Per cross-checked analyte: where it is outside the normal band of its reference table."""
    cross_codes: Mapping[str, tuple[IntArray, IntArray, IntArray]] = field(default_factory=dict)
    """Per cross-checked analyte: its band codes in the reference table, lowest and highest."""


def implausible(policy: Policy, observed: Observed) -> BoolArray:
    """Results lying wholly outside the analyte's plausibility limits (per row, or per distinct
    cell when ``observed.rows`` is set)."""
    limits = policy.absolute(observed.analyte)
    given = observed.interval
    if not observed.units:
        return np.zeros(len(given), dtype=np.bool_)
    canonical = observed.canonical()
    # A finite number that overflows on conversion is no concentration, limits or not.
    points = given.lo is given.hi  # one array for both ends: look once
    outside = np.isfinite(given.lo) & ~np.isfinite(canonical.lo)
    if not points:
        outside |= np.isfinite(given.hi) & ~np.isfinite(canonical.hi)
    if limits is not None:
        to_canonical = conversion_factor(observed.analyte, limits.unit)
        high = np.inf if limits.upper is None else limits.upper * to_canonical
        low = -np.inf if limits.lower is None else limits.lower * to_canonical
        # A censored "<25" states an assay limit, never an implausibly low number.
        point = ~given.lo_open & ~given.hi_open
        if not points:
            point &= given.lo == given.hi
        with np.errstate(invalid="ignore"):
            outside |= (canonical.lo > high) | ((canonical.hi < low) & point)
    result: BoolArray = given.present & outside
    return result  # per cell when observed.rows is set


def evaluate(
    policy: Policy,
    observed: Mapping[str, Observed],
    context: Context,
    ranges: Mapping[str, RangeColumn] | None = None,
) -> Evaluation:
    """Band every variable, then apply the table's rules and flags (and the laboratory's flags).

    ``ranges`` holds the reference ranges reported with the results, where the user asked to
    band against them: they replace the laboratory table's edges in both the table's and the
    laboratory's view, so the laboratory's flags read the same bands.
    """
    n = context.age.shape[0]
    reported = _reported(policy, observed, ranges or {}, n)
    namespace = _namespace(
        policy.variables, observed, context, n, absent=policy.absent, reported=reported
    )
    decision = _decide(policy.table, policy.compiled, namespace, n)
    outcomes = _outcomes(
        policy.table.model.flags, policy.table, namespace, policy.compiled, decision
    )
    if policy.lab_compiled is not None and policy.laboratory is not None:
        lab_space = _namespace(
            policy.lab_compiled.variables, observed, context, n, reported=reported
        )
        lab_decision = _decide(policy.laboratory, policy.lab_compiled, lab_space, n)
        own = {flag.id for flag in policy.table.model.flags}
        lab_outcomes = _outcomes(
            policy.laboratory.model.flags,
            policy.laboratory,
            lab_space,
            policy.lab_compiled,
            lab_decision,
        )
        outcomes += [o for o in lab_outcomes if o.flag.id not in own]
    if policy.table.model.schema_version >= 2:
        outcomes.append(_not_interpreted(policy, observed, namespace, n))
    rule, rank = decision.rule, decision.rank
    cross_codes = _cross_codes(policy, observed, context, n)
    cross = cross_checked(policy, cross_codes)
    if cross:
        raised = np.logical_or.reduce([mask for _, mask in cross]) & (rank < _POSSIBLE)
        rule = np.where(raised, engine.CROSS_CHECKED, rule).astype(np.int16)
        rank = np.where(raised, _POSSIBLE, rank).astype(np.int16)
    return Evaluation(
        namespace, rule, rank, tuple(outcomes), decision.possible, decision.rule, cross, cross_codes
    )


_POSSIBLE = Category.DEFICIENCY_POSSIBLE.rank


def _decide(
    table: Table, compiled: engine.CompiledTable, namespace: Namespace, n: int
) -> engine.Decision:
    """Tables from schema 2 on evaluate a censored result in every band it may lie in."""
    if table.model.schema_version < 2:
        return engine.decide_and_flag(compiled, namespace.codes, n)
    return engine.decide_and_flag(
        compiled, namespace.codes, n, namespace.spans, uncertain_rank=_POSSIBLE
    )


def not_interpreted(policy: Policy, analyte: str) -> bool:
    """A marker neither the table nor its laboratory table's flags read."""
    if analyte == "age" or analyte in policy.variables:
        return False
    if analyte == "creatinine" and policy.egfr_equation is not None:
        return False  # read by the eGFR equation (rows where it cannot be, say why in a note)
    return policy.lab_compiled is None or analyte not in policy.lab_compiled.variables


def _not_interpreted(
    policy: Policy, observed: Mapping[str, Observed], namespace: Namespace, n: int
) -> FlagOutcome:
    markers = tuple(
        (analyte, values.present)
        for analyte, values in sorted(observed.items())
        if not_interpreted(policy, analyte)
    )
    applies = np.zeros(n, dtype=np.bool_)
    for _, present in markers:
        applies |= present
    return FlagOutcome(NOT_INTERPRETED, policy.table, namespace, applies, markers)


def _cross_codes(
    policy: Policy, observed: Mapping[str, Observed], context: Context, n: int
) -> dict[str, tuple[IntArray, IntArray, IntArray]]:
    """Band codes of each marker the table does not read, in the table it is checked against."""
    found = {}
    for analyte, (_, variable) in policy.cross_checks.items():
        if analyte in observed:
            stratum = engine.stratum_index(variable, context)
            found[analyte] = _variable_codes(variable, observed[analyte], stratum, n)
    return found


def cross_checked(
    policy: Policy, cross_codes: Mapping[str, tuple[IntArray, IntArray, IntArray]]
) -> tuple[tuple[str, BoolArray], ...]:
    """Per marker the table does not read: rows where the table it is checked against reads it
    as outside its normal band (or, for a censored result, as possibly outside it)."""
    found = []
    for analyte, (codes, low, high) in cross_codes.items():
        variable = policy.cross_checks[analyte][1]
        normal = np.array([i == "N" for i in variable.interpretations] + [True], dtype=np.bool_)
        size = len(variable.interpretations)
        banded = codes >= 0
        abnormal = banded & ~normal[np.where(banded, codes, size)]
        censored = codes == engine.CENSORED
        if censored.any():
            for index in np.flatnonzero(~normal[:size]):
                abnormal |= censored & (low <= index) & (index <= high)
        found.append((analyte, abnormal))
    return tuple(found)


def _outcomes(
    flags: Sequence[Flag],
    table: Table,
    namespace: Namespace,
    compiled: engine.CompiledTable,
    decision: engine.Decision,
) -> list[FlagOutcome]:
    outcomes = []
    column = 0
    for index, flag in enumerate(flags):
        markers = []
        for name, _ in compiled.markers[index]:
            markers.append((name, decision.markers[:, column]))
            column += 1
        outcomes.append(
            FlagOutcome(
                flag,
                table,
                namespace,
                decision.flags[:, index],
                tuple(markers),
                decision.combination,
            )
        )
    return outcomes


def _namespace(
    variables: Mapping[str, CompiledVariable],
    observed: Mapping[str, Observed],
    context: Context,
    n: int,
    *,
    absent: frozenset[str] = frozenset(),
    reported: Mapping[str, _Reported] | None = None,
) -> Namespace:
    """Band codes of each variable; ``absent`` variables (a laboratory table without their
    bands) read as no result; rows with a ``reported`` range take its bands."""
    codes = _context_codes(context)
    for name in absent:
        codes[name] = np.full(n, engine.MISSING, dtype=np.int16)
    strata = {}
    spans = {}
    chosen: dict[tuple[engine.Stratum, ...], IntArray] = {}  # variables often share strata
    for name, variable in variables.items():
        if variable.strata not in chosen:
            chosen[variable.strata] = engine.stratum_index(variable, context)
        strata[name] = chosen[variable.strata]
        codes[name], low, high = _variable_codes(variable, observed.get(name), strata[name], n)
        if reported and name in reported:
            own, bands = reported[name]
            codes[name], low, high = merged((codes[name], low, high), own, bands.used)
        if (codes[name] == engine.CENSORED).any():
            spans[name] = (low, high)
    used = {name: r[1] for name, r in (reported or {}).items() if name in variables}
    return Namespace(codes, strata, variables, spans, used)


_Reported = tuple[tuple[IntArray, IntArray, IntArray], ReportedBands]


def _reported(
    policy: Policy, observed: Mapping[str, Observed], ranges: Mapping[str, RangeColumn], n: int
) -> dict[str, _Reported]:
    """Band codes (and the words' keys) of the rows banded against a reported range."""
    found = {}
    for name, column in ranges.items():
        if name not in observed:
            continue
        banded = band_reported(policy, observed[name], column, n)
        if banded is not None:
            found[name] = (banded[:3], banded[3])
    return found


def _context_codes(context: Context) -> dict[str, IntArray]:
    return {
        "sex": context.sex,
        "pregnant": context.pregnant,
        "nitrous_oxide": context.nitrous_oxide,
        "b12_replacement": context.b12_replacement,
        "risk_medicine": context.risk_medicine,
    }


def _per_cell(
    variable: CompiledVariable,
    interval: engine.Interval,
    basis: IntArray,
    rows: npt.NDArray[np.intp],
    stratum: IntArray,
) -> tuple[IntArray, IntArray, IntArray]:
    """Band codes per row from each distinct cell banded once in each stratum: a band depends
    only on the result, its unit and the stratum, and results repeat far more than rows."""
    strata, cells = len(variable.strata), len(interval)
    tiled = engine.Interval(
        np.tile(interval.lo, strata),
        np.tile(interval.hi, strata),
        np.tile(interval.lo_open, strata),
        np.tile(interval.hi_open, strata),
        np.tile(interval.present, strata),
    )
    every = np.repeat(np.arange(strata, dtype=np.int16), cells)
    codes, low, high = engine.band_range(variable, tiled, np.tile(basis, strata), every)
    outside = stratum < 0
    where = rows if strata == 1 else np.where(outside, 0, stratum).astype(np.intp) * cells + rows
    codes = codes[where]
    if outside.any():
        codes[outside & (codes != engine.MISSING)] = engine.UNBANDED
    censored = (codes == engine.CENSORED).any()
    return codes, (low[where] if censored else codes), (high[where] if censored else codes)


def _variable_codes(
    variable: CompiledVariable, observed: Observed | None, stratum: IntArray, n: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Band codes per row, with the lowest and highest band each row's result may lie in."""
    if observed is None:
        missing = np.full(n, engine.MISSING, dtype=np.int16)
        return missing, missing, missing
    if variable.name == "age":
        interval, basis = observed.interval, np.zeros(len(observed.interval), dtype=np.int16)
    else:
        interval, basis = observed.for_comparison(variable.units, variable.decimals)
    if observed.rows is None:
        return engine.band_range(variable, interval, basis, stratum)
    rows = observed.rows
    strata = len(variable.strata)
    if strata == 1 or (strata > 1 and len(interval) * strata < len(rows)):
        return _per_cell(variable, interval, basis, rows, stratum)
    expanded = engine.Interval(
        interval.lo[rows],
        interval.hi[rows],
        interval.lo_open[rows],
        interval.hi_open[rows],
        interval.present[rows],
    )
    return engine.band_range(variable, expanded, basis[rows], stratum)
