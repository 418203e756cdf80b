"""A decision policy: a table, the laboratory table it takes ranges from, compiled for the core.

A guideline such as NICE NG239 gives no MMA or homocysteine numbers and defers to the
laboratory's own ranges. A :class:`Policy` joins the guideline with a laboratory table (the
guideline's default, or the user's own) and records which table supplied each variable's bands.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from b12lab import _engine as engine
from b12lab._engine import BoolArray, CompiledTable, CompiledVariable, Context, IntArray
from b12lab.analytes import ANALYTES
from b12lab.errors import TableValidationError
from b12lab.observations import Observed
from b12lab.table_schema import (
    CONTEXT_LABELS,
    Absolute,
    Flag,
    Rule,
    VariableBands,
    check_references,
)
from b12lab.tables import DEFAULT_TABLE, Table, load
from b12lab.units import conversion_factor

__all__ = ["Evaluation", "FlagOutcome", "Namespace", "Policy", "resolve"]


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


@dataclass(frozen=True)
class Policy:
    table: Table
    laboratory: Table | None
    suppliers: Mapping[str, Table]
    variables: Mapping[str, CompiledVariable]
    bands: Mapping[str, VariableBands]
    compiled: CompiledTable
    lab_compiled: CompiledTable | None

    @property
    def rules(self) -> list[Rule]:
        return self.table.model.rules

    def implausible(self, observed: Observed) -> BoolArray:
        """Results lying wholly outside the analyte's plausibility limits (per row, or per distinct
        cell when ``observed.rows`` is set)."""
        limits = self.absolute(observed.analyte)
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

    def plausibility_source(self, analyte: str) -> str:
        limits = self.absolute(analyte)
        return limits.source if limits is not None else "too large to convert to a concentration"

    def absolute(self, analyte: str) -> Absolute | None:
        """Plausibility limits: the table's own, else its laboratory table's."""
        for table in (self.table, self.laboratory):
            variable = table.model.variables.get(analyte) if table is not None else None
            if variable is not None and variable.absolute is not None:
                return variable.absolute
        return None

    def evaluate(self, observed: Mapping[str, Observed], context: Context) -> Evaluation:
        n = context.age.shape[0]
        namespace = self._namespace(self.variables, observed, context, n)
        rule, rank, matrix = engine.decide_and_flag(self.compiled, namespace.codes, n)
        outcomes = [
            FlagOutcome(flag, self.table, namespace, matrix[:, i])
            for i, flag in enumerate(self.table.model.flags)
        ]
        if self.lab_compiled is not None and self.laboratory is not None:
            lab_space = self._namespace(self.lab_compiled.variables, observed, context, n)
            lab_matrix = engine.decide_and_flag(self.lab_compiled, lab_space.codes, n)[2]
            own = {flag.id for flag in self.table.model.flags}
            outcomes += [
                FlagOutcome(flag, self.laboratory, lab_space, lab_matrix[:, i])
                for i, flag in enumerate(self.laboratory.model.flags)
                if flag.id not in own
            ]
        return Evaluation(namespace, rule, rank, tuple(outcomes))

    @staticmethod
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


def resolve(table: str | Table | None = None, laboratory: str | Table | None = None) -> Policy:
    """The policy for a table (id, ``id@version`` or loaded) and an optional laboratory table."""
    chosen = table if isinstance(table, Table) else load(table or DEFAULT_TABLE)
    lab = laboratory if isinstance(laboratory, Table) or laboratory is None else load(laboratory)
    return _build(chosen, lab)


@functools.lru_cache(maxsize=64)
def _build(table: Table, laboratory: Table | None) -> Policy:
    spec = table.model.laboratory
    if spec is None:
        if laboratory is not None:
            raise TableValidationError(
                f"table {table.key} is a {table.model.kind} table that takes no laboratory table; "
                "pass laboratory= only with a guideline table",
                table=table.key,
            )
        lab = None
    else:
        lab = laboratory if laboratory is not None else load(spec.default)
        if lab.model.kind != "laboratory":
            raise TableValidationError(
                f"{lab.key} is a {lab.model.kind} table; laboratory= needs a laboratory table",
                table=lab.key,
            )
    bands: dict[str, VariableBands] = {}
    suppliers: dict[str, Table] = {}
    if lab is not None and spec is not None:
        for name in spec.provides:
            if name in lab.model.variables:
                bands[name], suppliers[name] = lab.model.variables[name], lab
    for name, variable in table.model.variables.items():
        bands[name], suppliers[name] = variable, table
    labels = {
        **CONTEXT_LABELS,
        **{name: tuple(b.label for b in v.all_strata()[0].bands) for name, v in bands.items()},
    }
    try:
        check_references(table.model, labels)
    except ValueError as exc:
        lab_note = f" with laboratory table {lab.key}" if lab is not None else ""
        raise TableValidationError(f"{table.key}{lab_note}: {exc}", table=table.key) from exc
    variables = {name: compile_variable(name, v) for name, v in bands.items()}
    compiled = _compile_table(variables, table.model.rules, table.model.flags, labels)
    lab_compiled = None
    if lab is not None:
        lab_vars = {name: compile_variable(name, v) for name, v in lab.model.variables.items()}
        lab_labels = {**CONTEXT_LABELS, **lab.model.labels()}
        lab_compiled = _compile_table(lab_vars, [], lab.model.flags, lab_labels)
    return Policy(table, lab, suppliers, variables, bands, compiled, lab_compiled)


def compile_variable(name: str, variable: VariableBands) -> CompiledVariable:
    """Edges as arrays [stratum, unit, edge], ready for the core."""
    strata = variable.all_strata()
    units = tuple(variable.units)
    edges = np.array(
        [
            [[band.upper[unit] for band in s.bands[:-1] if band.upper] for unit in units]
            for s in strata
        ],
        dtype=np.float64,
    ).reshape(len(strata), len(units), len(strata[0].bands) - 1)
    to_upper = np.array(
        [[not band.upper_inclusive for band in s.bands[:-1]] for s in strata], dtype=np.bool_
    ).reshape(len(strata), len(strata[0].bands) - 1)
    filters = tuple(
        engine.Stratum(
            sex=-1 if s.sex is None else CONTEXT_LABELS["sex"].index(s.sex),
            pregnant=-1
            if s.pregnant is None
            else CONTEXT_LABELS["pregnant"].index(str(s.pregnant).lower()),
            age_min=-np.inf if s.age_min is None else s.age_min,
            age_max=np.inf if s.age_max is None else s.age_max,
        )
        for s in strata
    )
    first = strata[0].bands
    return CompiledVariable(
        name=name,
        labels=tuple(b.label for b in first),
        interpretations=tuple(b.interpretation.value for b in first),
        units=units,
        decimals=tuple(variable.units.values()),
        edges=edges,
        edge_to_upper=to_upper,
        strata=filters,
    )


def _compile_table(
    variables: Mapping[str, CompiledVariable],
    rules: list[Rule],
    flags: list[Flag],
    labels: Mapping[str, tuple[str, ...]],
) -> CompiledTable:
    def condition(when: list[dict[str, list[str | bool]]]) -> engine.CompiledCondition:
        return engine.CompiledCondition(
            tuple(
                tuple(
                    (name, tuple(_code(labels[name], w) for w in wanted))
                    for name, wanted in alternative.items()
                )
                for alternative in when
            )
        )

    return CompiledTable(
        variables=variables,
        rules=tuple(condition(rule.when) for rule in rules),
        rule_ranks=tuple(rule.category.rank for rule in rules),
        flags=tuple(condition(flag.when) for flag in flags),
    )


def _code(labels: tuple[str, ...], wanted: str | bool) -> int:
    text = str(wanted).lower()
    if text in engine.SPECIAL_CODES:
        return engine.SPECIAL_CODES[text]
    return labels.index(text)
