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

from b12lab._core import engine
from b12lab._core.analytes import ANALYTES
from b12lab._core.engine import CompiledTable, CompiledVariable
from b12lab._core.kidney import Equation
from b12lab._core.medicines import RiskList
from b12lab._core.table_schema import (
    CONTEXT_LABELS,
    Absolute,
    Flag,
    Rule,
    VariableBands,
    check_references,
)
from b12lab.errors import TableValidationError
from b12lab.tables import DEFAULT_TABLE, Table, load

__all__ = ["Policy", "compile_variable", "resolve"]


@dataclass(frozen=True)
class Policy:
    table: Table
    laboratory: Table | None
    suppliers: Mapping[str, Table]
    variables: Mapping[str, CompiledVariable]
    bands: Mapping[str, VariableBands]
    compiled: CompiledTable
    lab_compiled: CompiledTable | None
    cross_checks: Mapping[str, tuple[Table, CompiledVariable]]
    """Markers the table does not read, with the table and bands they are checked against."""
    medicines: RiskList
    """The risk medicines of the table that decides: the table's own, else its laboratory
    table's."""
    egfr_equation: Equation | None = None
    """How eGFR is derived from creatinine where a row gives none, or None: not derived."""
    absent: frozenset[str] = frozenset()
    """Variables the guideline takes from its laboratory table, which has no bands for them:
    conditions on them see no result."""

    @property
    def rules(self) -> list[Rule]:
        return self.table.model.rules

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
    absent = frozenset(spec.optional) - set(bands) if spec is not None else frozenset()
    labels = {
        **CONTEXT_LABELS,
        **{name: tuple(b.label for b in v.all_strata()[0].bands) for name, v in bands.items()},
    }
    try:
        check_references(table.model, labels, deferred=set(absent))
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
    cross_checks = {
        analyte: _cross_check(table, analyte, spec)
        for analyte, spec in table.model.cross_check.items()
        if analyte not in variables
    }

    equation = _egfr_equation(suppliers.get("egfr"), table, lab)
    return Policy(
        table,
        lab,
        suppliers,
        variables,
        bands,
        compiled,
        lab_compiled,
        cross_checks,
        RiskList.of(table, lab),
        equation,
        absent,
    )


def _cross_check(table: Table, analyte: str, spec: str) -> tuple[Table, CompiledVariable]:
    reference = load(spec)
    variable = reference.model.variables.get(analyte)
    if variable is None:
        raise TableValidationError(
            f"{table.key}: cross_check names {spec} for {analyte}, but {spec} has no bands for it",
            table=table.key,
        )
    return reference, compile_variable(analyte, variable)


def _egfr_equation(*candidates: Table | None) -> Equation | None:
    """The eGFR equation of the first table that has one: the table that supplies the eGFR
    bands, then the table itself, then its laboratory table (which may band eGFR for its own
    flags only)."""
    for table in candidates:
        derived = table.model.derived if table is not None else None
        if derived is not None and derived.egfr is not None:
            assert table is not None
            return derived.egfr.compiled(table.key)
    return None


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
                    (name, tuple(_code(labels.get(name, ()), w) for w in wanted))
                    for name, wanted in alternative.items()
                )
                for alternative in when
            )
        )

    compiled_flags = tuple(condition(flag.when) for flag in flags)
    return CompiledTable(
        variables=variables,
        rules=tuple(condition(rule.when) for rule in rules),
        rule_ranks=tuple(rule.category.rank for rule in rules),
        flags=compiled_flags,
        markers=tuple(_flag_markers(flag, variables) for flag in compiled_flags),
    )


def _flag_markers(
    flag: engine.CompiledCondition, variables: Mapping[str, CompiledVariable]
) -> tuple[tuple[str, engine.CompiledCondition], ...]:
    """For each analyte a flag names: the flag's alternatives that name it, with the analyte
    restricted to its abnormal bands (neither normal nor indeterminate)."""
    named = sorted({name for alt in flag.alternatives for name, _ in alt if name in ANALYTES})
    markers = []
    for analyte in named:
        if analyte not in variables:
            continue
        abnormal = {
            code
            for code, interpretation in enumerate(variables[analyte].interpretations)
            if interpretation not in ("N", "IND")
        }
        alternatives = tuple(
            tuple(
                (name, tuple(sorted(abnormal & set(allowed))) if name == analyte else allowed)
                for name, allowed in alt
            )
            for alt in flag.alternatives
            if any(name == analyte and abnormal & set(allowed) for name, allowed in alt)
        )
        if alternatives:
            markers.append((analyte, engine.CompiledCondition(alternatives)))
    return tuple(markers)


_NEVER = 60
"""The code of a band the laboratory table does not have: no result ever carries it."""


def _code(labels: tuple[str, ...], wanted: str | bool) -> int:
    text = str(wanted).lower()
    if text in engine.SPECIAL_CODES:
        return engine.SPECIAL_CODES[text]
    return labels.index(text) if text in labels else _NEVER
