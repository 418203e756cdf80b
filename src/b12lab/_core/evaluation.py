"""Evaluate a compiled policy on arrays: band codes, rules and flags, and plausibility.

Compiling a table (:mod:`b12lab._core.policy`) needs nothing of this; evaluating it needs the
observed arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from b12lab._core import engine
from b12lab._core.analytes import ANALYTES
from b12lab._core.engine import BoolArray, CompiledVariable, Context, IntArray
from b12lab._core.observations import Observed
from b12lab._core.policy import Policy
from b12lab._core.table_schema import CONTEXT_LABELS, Flag
from b12lab._core.units import conversion_factor
from b12lab.tables import Table

__all__ = ["Evaluation", "FlagOutcome", "Namespace", "evaluate", "implausible"]


@dataclass(frozen=True)
class Namespace:
    """Band codes of one table's view of the variables (a laboratory names its own bands)."""

    codes: Mapping[str, IntArray]
    strata: Mapping[str, IntArray]
    variables: Mapping[str, CompiledVariable]

    def label(self, name: str, row: int) -> str:
        code = int(self.codes[name][row]) if name in self.codes else engine.MISSING
        if code < 0:
            return _SPECIAL_LABELS[code]
        if name in CONTEXT_LABELS:
            return CONTEXT_LABELS[name][code]
        return self.variables[name].labels[code]

    def abnormal(self, name: str, row: int) -> bool:
        code = int(self.codes[name][row]) if name in self.codes else engine.MISSING
        if code < 0 or name not in self.variables:
            return False
        return self.variables[name].interpretations[code] not in ("N", "IND")


@dataclass(frozen=True)
class FlagOutcome:
    flag: Flag
    table: Table
    namespace: Namespace
    applies: BoolArray

    def markers(self, row: int) -> tuple[str, ...]:
        """The abnormal analytes named by the alternatives that hold for this row."""
        names: set[str] = set()
        for alternative in self.flag.when:
            holds = all(
                self.namespace.label(name, row) in {str(w).lower() for w in wanted}
                for name, wanted in alternative.items()
            )
            if holds:
                names |= {
                    n for n in alternative if n in ANALYTES and self.namespace.abnormal(n, row)
                }
        return tuple(sorted(names))


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
    n = context.age.shape[0]
    namespace = _namespace(policy.variables, observed, context, n)
    rule, rank, matrix = engine.decide_and_flag(policy.compiled, namespace.codes, n)
    outcomes = [
        FlagOutcome(flag, policy.table, namespace, matrix[:, i])
        for i, flag in enumerate(policy.table.model.flags)
    ]
    if policy.lab_compiled is not None and policy.laboratory is not None:
        lab_space = _namespace(policy.lab_compiled.variables, observed, context, n)
        lab_matrix = engine.decide_and_flag(policy.lab_compiled, lab_space.codes, n)[2]
        own = {flag.id for flag in policy.table.model.flags}
        outcomes += [
            FlagOutcome(flag, policy.laboratory, lab_space, lab_matrix[:, i])
            for i, flag in enumerate(policy.laboratory.model.flags)
            if flag.id not in own
        ]
    return Evaluation(namespace, rule, rank, tuple(outcomes))


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


_SPECIAL_LABELS = {code: label for label, code in engine.SPECIAL_CODES.items()}


def _context_codes(context: Context) -> dict[str, IntArray]:
    return {"sex": context.sex, "pregnant": context.pregnant}


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
