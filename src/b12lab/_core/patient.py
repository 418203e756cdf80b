"""Classify one patient through the same vectorized core as a batch of ten million."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from b12lab._core import engine
from b12lab._core.analytes import ANALYTES, get_analyte
from b12lab._core.categories import Category, Interpretation
from b12lab._core.context import age_years, pregnant_code, sex_code
from b12lab._core.evaluation import Evaluation, evaluate, implausible
from b12lab._core.measurements import Measurement, MeasurementInput, measure
from b12lab._core.numerals import is_no_result
from b12lab._core.observations import Observed, comparison_basis, from_measurements, from_numbers
from b12lab._core.policy import Policy, resolve
from b12lab._core.results import Flag, MarkerResult, Reason, Result, TableRef
from b12lab._core.table_schema import AGE_UNIT, Rule
from b12lab._core.units import Quantity, display_unit, parse_unit
from b12lab.errors import ImplausibleValueError
from b12lab.tables import Table

__all__ = ["classify"]


def classify(
    *,
    b12: MeasurementInput | None = None,
    mma: MeasurementInput | None = None,
    hcy: MeasurementInput | None = None,
    holotc: MeasurementInput | None = None,
    folate: MeasurementInput | None = None,
    creatinine: MeasurementInput | None = None,
    egfr: MeasurementInput | None = None,
    age: float | None = None,
    sex: str | None = None,
    pregnant: bool | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
) -> Result:
    """Interpret one patient's B12 results against a versioned reference table.

    Values are strings (``"160 pg/mL"``, ``"<148 pmol/L"``), ``(value, unit)`` pairs or pint
    Quantities. ``table`` is a table id, ``id@version`` or a loaded table (default: NICE NG239);
    ``laboratory`` replaces the guideline's default laboratory table for MMA and homocysteine.
    Bad input raises a :class:`~b12lab.errors.B12LabError` subclass naming the analyte and value.
    """
    policy = resolve(table, laboratory)
    given = {"b12": b12, "holotc": holotc, "mma": mma, "hcy": hcy, "folate": folate}
    given |= {"creatinine": creatinine, "egfr": egfr}
    measured: dict[str, Measurement] = {}
    observed: dict[str, Observed] = {}
    for name in ANALYTES:  # one fixed order, shared with the batch path: the first error wins
        value = given.get(name)
        if value is None or (isinstance(value, str) and is_no_result(value)):
            continue  # "pending", "n/a", "hemolysed": no result
        measured[name] = measure(value, analyte=name)
        observed[name] = from_measurements(name, [measured[name]])
        _check_plausible(measured[name], observed[name], policy)
    age_value = age_years(age)
    observed["age"] = from_numbers("age", np.array([age_value], dtype=np.float64), AGE_UNIT)
    context = engine.Context(
        sex=np.array([sex_code(sex)], dtype=np.int16),
        pregnant=np.array([pregnant_code(pregnant)], dtype=np.int16),
        age=np.array([age_value], dtype=np.float64),
    )
    evaluation = evaluate(policy, observed, context)
    return _result(policy, evaluation, measured)


def _check_plausible(item: Measurement, observed: Observed, policy: Policy) -> None:
    if implausible(policy, observed)[0]:
        source = policy.plausibility_source(item.analyte)
        raise ImplausibleValueError(
            f"{item.analyte}: {item} is outside the plausible limits ({source}); "
            "check the value and its unit",
            analyte=item.analyte,
            value=str(item),
            expected=source,
        )


def _result(policy: Policy, evaluation: Evaluation, measured: Mapping[str, Measurement]) -> Result:
    rule_index = int(evaluation.rule[0])
    rule = policy.rules[rule_index] if rule_index != engine.NO_RULE else None
    category = Category.from_rank(int(evaluation.rank[0]))
    markers = {name: _marker(policy, evaluation, item) for name, item in measured.items()}
    reasons = [_rule_reason(policy, rule)]
    reasons += [
        Reason(
            rule=None,
            text=f"{get_analyte(m.analyte).title}: the censored result {m.given} spans more than "
            "one band, so its band is indeterminate because censored.",
            table=m.table or policy.table.key,
            source="b12lab interval rule",
        )
        for m in markers.values()
        if m.indeterminate_because_censored
    ]
    flags = [
        Flag(
            id=outcome.flag.id,
            message=outcome.flag.message,
            markers=outcome.markers(0),
            table=outcome.table.key,
            source=outcome.flag.source,
        )
        for outcome in evaluation.flags
        if outcome.applies[0]
    ]
    return Result(
        category=category,
        rule=rule.id if rule else None,
        markers=markers,
        flags=tuple(flags),
        reasons=tuple(reasons),
        table=_table_ref(policy.table, policy.laboratory),
    )


def _rule_reason(policy: Policy, rule: Rule | None) -> Reason:
    table = policy.table
    if rule is None:
        return Reason(
            rule=None,
            text="No rule of the table applies to the results given: too few markers to decide.",
            table=table.key,
            source=f"{table.key}: no rule matched",
        )
    return Reason(rule=rule.id, text=rule.reason, table=table.key, source=rule.source)


def _marker(policy: Policy, evaluation: Evaluation, item: Measurement) -> MarkerResult:
    canonical = item.canonical()
    variable = policy.variables.get(item.analyte)
    band = interpretation = compared_in = table = source = None
    censored_spans = False
    if variable is not None:
        code = int(evaluation.namespace.codes[item.analyte][0])
        censored_spans = code == engine.CENSORED
        supplier = policy.suppliers[item.analyte]
        table = supplier.key
        compared_in = variable.units[comparison_basis(item.unit, variable.units)]
        if code >= 0:
            band = variable.labels[code]
            interpretation = Interpretation(variable.interpretations[code])
            stratum = int(evaluation.namespace.strata[item.analyte][0])
            source = policy.bands[item.analyte].all_strata()[stratum].bands[code].source
        elif censored_spans:
            interpretation = Interpretation.INDETERMINATE
    return MarkerResult(
        analyte=item.analyte,
        given=str(item),
        value=Quantity(canonical.value, parse_unit(ANALYTES[item.analyte].canonical_unit)),
        censoring=item.censoring,
        band=band,
        interpretation=interpretation,
        indeterminate_because_censored=censored_spans,
        compared_in=display_unit(compared_in) if compared_in else None,
        table=table,
        source=source,
    )


def _table_ref(table: Table, laboratory: Table | None) -> TableRef:
    citation = table.model.citation
    text = f"{citation.document} ({citation.year})"
    if citation.section:
        text += f", {citation.section}"
    return TableRef(
        id=table.id,
        version=table.version,
        sha256=table.sha256,
        status=table.model.status,
        citation=text,
        url=citation.url,
        caveats=tuple(table.model.caveats),
        laboratory=_table_ref(laboratory, None) if laboratory is not None else None,
    )
