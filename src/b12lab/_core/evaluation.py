"""Evaluate a compiled policy on arrays: band codes, rules and flags, and plausibility.

Compiling a table (:mod:`b12lab._core.policy`) needs nothing of this; evaluating it needs the
observed arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from b12lab._core import engine
from b12lab._core.engine import BoolArray, CompiledVariable, Context, IntArray
from b12lab._core.observations import Observed
from b12lab._core.policy import Policy
from b12lab._core.table_schema import Flag
from b12lab._core.units import conversion_factor
from b12lab.tables import Table

__all__ = ["Evaluation", "FlagOutcome", "Namespace", "evaluate", "implausible"]


@dataclass(frozen=True)
class Namespace:
    """Band codes of one table's view of the variables (a laboratory names its own bands)."""

    codes: Mapping[str, IntArray]
    strata: Mapping[str, IntArray]
    variables: Mapping[str, CompiledVariable]


@dataclass(frozen=True)
class FlagOutcome:
    """Where a flag applies, and for each analyte it names, where the flag rests on it."""

    flag: Flag
    table: Table
    namespace: Namespace
    applies: BoolArray
    markers: tuple[tuple[str, BoolArray], ...]

    def markers_at(self, row: int) -> tuple[str, ...]:
        """The abnormal analytes the flag rests on in this row, in alphabetical order."""
        return tuple(name for name, holds in self.markers if holds[row])


@dataclass(frozen=True)
class Evaluation:
    """What the core decided, as arrays: band codes per variable, rule, rank and flags."""

    namespace: Namespace
    rule: IntArray
    rank: IntArray
    flags: tuple[FlagOutcome, ...]


def implausible(policy: Policy, observed: Observed) -> BoolArray:
    """Results lying wholly outside the analyte's plausibility limits (per row, or per distinct
    cell when ``observed.rows`` is set)."""
    limits = policy.absolute(observed.analyte)
    given = observed.interval
    if not observed.units:
        return np.zeros(len(given), dtype=np.bool_)
    canonical = observed.canonical()
    # A finite number that overflows on conversion is no concentration, limits or not.
    outside = (np.isfinite(given.lo) & ~np.isfinite(canonical.lo)) | (
        np.isfinite(given.hi) & ~np.isfinite(canonical.hi)
    )
    if limits is not None:
        to_canonical = conversion_factor(observed.analyte, limits.unit)
        high = np.inf if limits.upper is None else limits.upper * to_canonical
        low = -np.inf if limits.lower is None else limits.lower * to_canonical
        with np.errstate(invalid="ignore"):
            outside |= (canonical.lo > high) | (canonical.hi < low)
    result: BoolArray = given.present & outside
    return result  # per cell when observed.rows is set


def evaluate(policy: Policy, observed: Mapping[str, Observed], context: Context) -> Evaluation:
    """Band every variable, then apply the table's rules and flags (and the laboratory's flags)."""
    n = context.age.shape[0]
    namespace = _namespace(policy.variables, observed, context, n)
    decision = engine.decide_and_flag(policy.compiled, namespace.codes, n)
    outcomes = _outcomes(
        policy.table.model.flags, policy.table, namespace, policy.compiled, decision
    )
    if policy.lab_compiled is not None and policy.laboratory is not None:
        lab_space = _namespace(policy.lab_compiled.variables, observed, context, n)
        lab_decision = engine.decide_and_flag(policy.lab_compiled, lab_space.codes, n)
        own = {flag.id for flag in policy.table.model.flags}
        lab_outcomes = _outcomes(
            policy.laboratory.model.flags,
            policy.laboratory,
            lab_space,
            policy.lab_compiled,
            lab_decision,
        )
        outcomes += [o for o in lab_outcomes if o.flag.id not in own]
    return Evaluation(namespace, decision.rule, decision.rank, tuple(outcomes))


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
            FlagOutcome(flag, table, namespace, decision.flags[:, index], tuple(markers))
        )
    return outcomes


def _namespace(
    variables: Mapping[str, CompiledVariable],
    observed: Mapping[str, Observed],
    context: Context,
    n: int,
) -> Namespace:
    codes = _context_codes(context)
    strata = {}
    for name, variable in variables.items():
        strata[name] = engine.stratum_index(variable, context)
        codes[name] = _variable_codes(variable, observed.get(name), strata[name], n)
    return Namespace(codes, strata, variables)


def _context_codes(context: Context) -> dict[str, IntArray]:
    return {
        "sex": context.sex,
        "pregnant": context.pregnant,
        "nitrous_oxide": context.nitrous_oxide,
        "b12_replacement": context.b12_replacement,
    }


def _variable_codes(
    variable: CompiledVariable, observed: Observed | None, stratum: IntArray, n: int
) -> IntArray:
    if observed is None:
        return np.full(n, engine.MISSING, dtype=np.int16)
    if variable.name == "age":
        interval, basis = observed.interval, np.zeros(len(observed.interval), dtype=np.int16)
    else:
        interval, basis = observed.for_comparison(variable.units, variable.decimals)
    if observed.rows is None:
        return engine.band_codes(variable, interval, basis, stratum)
    if len(variable.strata) == 1:  # the band depends on the result alone: band each cell once
        every = np.zeros(len(interval), dtype=np.int16)
        codes = engine.band_codes(variable, interval, basis, every)[observed.rows]
        codes[(stratum < 0) & (codes != engine.MISSING)] = engine.UNBANDED
        return codes
    rows = observed.rows
    expanded = engine.Interval(
        interval.lo[rows],
        interval.hi[rows],
        interval.lo_open[rows],
        interval.hi_open[rows],
        interval.present[rows],
    )
    return engine.band_codes(variable, expanded, basis[rows], stratum)
