"""Clinical and unit invariants, checked on generated patients for every shipped table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import b12lab
from b12lab import Category, tables
from b12lab._core.engine import Context
from b12lab._core.evaluation import evaluate
from b12lab._core.measurements import measure
from b12lab._core.observations import from_measurements, from_numbers
from b12lab._core.policy import resolve
from b12lab._core.units import conversion_factor
from tests.strategies import (
    broken_tables,
    canonical_values,
    censored_texts,
    patients,
    shipped_table_data,
    units,
)

GUIDELINE_AND_LAB = list(tables.available())
CANONICAL = {name: record.canonical_unit for name, record in b12lab.ANALYTES.items()}


def _edges_in_canonical(spec: str, analyte: str) -> list[float]:
    policy = resolve(spec)
    variable = policy.variables.get(analyte)
    if variable is None:
        return []
    edges = []
    for u_index, unit in enumerate(variable.units):
        factor = conversion_factor(analyte, unit)
        edges += [float(e) * factor for e in variable.edges[:, u_index, :].ravel()]
    return edges


def _near_an_edge(spec: str, analyte: str, value: float) -> bool:
    """Within the gap between an edge and its published twin, or float-close to an edge."""
    edges = _edges_in_canonical(spec, analyte)
    if not edges:
        return False
    policy = resolve(spec)
    variable = policy.variables[analyte]
    if len(variable.units) > 1:
        low = [min(pair) for pair in _twin_pairs(spec, analyte)]
        high = [max(pair) for pair in _twin_pairs(spec, analyte)]
        if any(lo - 1e-6 <= value <= hi + 1e-6 for lo, hi in zip(low, high, strict=True)):
            return True
    return any(math.isclose(value, edge, rel_tol=1e-6) for edge in edges)


def _twin_pairs(spec: str, analyte: str) -> list[tuple[float, float]]:
    variable = resolve(spec).variables[analyte]
    first, second = (conversion_factor(analyte, unit) for unit in variable.units[:2])
    return [
        (float(a) * first, float(b) * second)
        for a, b in zip(variable.edges[0, 0], variable.edges[0, 1], strict=True)
    ]


@pytest.mark.parametrize("spec", GUIDELINE_AND_LAB)
@given(analyte=st.sampled_from(["b12", "holotc", "mma", "hcy"]), data=st.data())
def test_classification_is_invariant_to_the_unit_given(
    spec: str, analyte: str, data: st.DataObject
) -> None:
    value = data.draw(canonical_values(analyte))
    assume(not _near_an_edge(spec, analyte, value))
    unit = data.draw(units(analyte))
    converted = value * conversion_factor(analyte, CANONICAL[analyte], unit)
    reference = b12lab.classify(table=spec, **{analyte: (value, CANONICAL[analyte])})
    other = b12lab.classify(table=spec, **{analyte: (converted, unit)})
    assert other.category is reference.category
    assert other.markers[analyte].band == reference.markers[analyte].band
    assert math.isclose(other.markers[analyte].value.magnitude, value, rel_tol=1e-9)


@pytest.mark.parametrize("spec", GUIDELINE_AND_LAB)
@given(analyte=st.sampled_from(["b12", "mma", "hcy"]), data=st.data())
def test_same_kind_units_agree_even_on_edges(spec: str, analyte: str, data: st.DataObject) -> None:
    """pg/mL, ng/L and ng/mL (or pmol/L and nmol/L) never disagree, edges included."""
    edges = _edges_in_canonical(spec, analyte) or [data.draw(canonical_values(analyte))]
    value = data.draw(st.sampled_from(edges) | canonical_values(analyte))
    kind = data.draw(st.sampled_from(["substance", "mass"]))
    first, second = data.draw(units(analyte, kind)), data.draw(units(analyte, kind))
    to_first = conversion_factor(analyte, CANONICAL[analyte], first)
    to_second = conversion_factor(analyte, CANONICAL[analyte], second)
    a = b12lab.classify(table=spec, **{analyte: (value * to_first, first)})
    b = b12lab.classify(table=spec, **{analyte: (value * to_second, second)})
    assert a.markers[analyte].band == b.markers[analyte].band


def _rank(result: b12lab.Result) -> int:
    return result.category.rank


@pytest.mark.parametrize("spec", GUIDELINE_AND_LAB)
@given(patient=patients(), factor=st.floats(min_value=1.01, max_value=20), data=st.data())
def test_worse_markers_never_move_toward_unlikely(
    spec: str, patient: dict[str, Any], factor: float, data: st.DataObject
) -> None:
    """Lower B12 or holoTC, or higher MMA or homocysteine, never lowers the category."""
    base = b12lab.classify(table=spec, **patient)
    worse = dict(patient)
    marker = data.draw(st.sampled_from(["b12", "holotc", "mma", "hcy"]))
    if marker not in patient:
        return
    value, unit = patient[marker]
    worse[marker] = (value / factor if marker in ("b12", "holotc") else value * factor, unit)
    try:
        changed = b12lab.classify(table=spec, **worse)
    except b12lab.ImplausibleValueError:
        return  # pushed past the plausibility limit: not a patient any more
    assert _concern(changed.category) >= _concern(base.category), (patient, worse)


def _concern(category: Category) -> float:
    """Insufficient data sits between unlikely and possible: gaining evidence may go either way
    from it, but never from possible or likely down to it, nor from it down to unlikely."""
    return {
        Category.DEFICIENCY_UNLIKELY: 1.0,
        Category.INSUFFICIENT_DATA: 1.5,
        Category.DEFICIENCY_POSSIBLE: 2.0,
        Category.DEFICIENCY_LIKELY: 3.0,
    }[category]


@given(analyte=st.sampled_from(["b12", "mma"]), data=st.data())
def test_censored_values_are_sound(analyte: str, data: st.DataObject) -> None:
    """A censored result gets a band only if every value it allows is in that band."""
    text = data.draw(censored_texts(analyte))
    result = b12lab.classify(**{analyte: text})
    marker = result.markers[analyte]
    censored = measure(text, analyte=analyte)
    bound = censored.value
    sign = censored.censoring.value
    if sign.startswith("<"):
        candidate = data.draw(st.floats(min_value=0, max_value=bound, exclude_max=sign == "<"))
    else:
        candidate = data.draw(
            st.floats(min_value=bound, max_value=bound * 20 + 1, exclude_min=sign == ">")
        )
    try:
        exact = b12lab.classify(**{analyte: (candidate, CANONICAL[analyte])}).markers[analyte]
    except b12lab.ImplausibleValueError:
        return  # a value the censored result allows, but no patient has
    if marker.band is not None:
        assert exact.band == marker.band, (text, candidate)
    else:
        assert marker.indeterminate_because_censored


@pytest.mark.parametrize("spec", GUIDELINE_AND_LAB)
@given(people=st.lists(patients(censored=True), min_size=1, max_size=25))
def test_many_patients_at_once_equal_one_at_a_time(spec: str, people: list[dict[str, Any]]) -> None:
    """The core evaluated on n rows gives each row what classify() gives that patient alone."""
    policy = resolve(spec)
    len(people)
    observed = {}
    for analyte in ("b12", "holotc", "mma", "hcy", "folate", "egfr"):
        values = [measure(p[analyte], analyte=analyte) if analyte in p else None for p in people]
        observed[analyte] = from_measurements(analyte, values)
    ages = np.array([p.get("age", np.nan) for p in people], dtype=np.float64)
    observed["age"] = from_numbers("age", ages, "year")
    context = Context(
        sex=np.array(
            [{"female": 0, "male": 1, None: -1}[p["sex"]] for p in people], dtype=np.int16
        ),
        pregnant=np.array(
            [{True: 0, False: 1, None: -1}[p["pregnant"]] for p in people], dtype=np.int16
        ),
        nitrous_oxide=np.array(
            [{True: 0, False: 1, None: -1}[p["nitrous_oxide"]] for p in people], dtype=np.int16
        ),
        b12_replacement=np.array(
            [{True: 0, False: 1, None: -1}[p["b12_replacement"]] for p in people], dtype=np.int16
        ),
        risk_medicine=np.full(len(people), -1, dtype=np.int16),
        age=ages,
    )
    evaluation = evaluate(policy, observed, context)
    for row, person in enumerate(people):
        single = b12lab.classify(table=spec, **person)
        assert Category.from_rank(int(evaluation.rank[row])) is single.category
        batch_flags = {o.flag.id for o in evaluation.flags if o.applies[row]}
        assert batch_flags == {f.id for f in single.flags}


@given(case=broken_tables())
def test_broken_tables_fail_at_load_with_a_table_error(case: tuple[str, dict[str, Any]]) -> None:
    mutation, data = case
    with pytest.raises(b12lab.TableValidationError):
        tables.validate(data, origin=f"{mutation}.toml")


@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_random_data_is_never_a_table(data: object) -> None:
    with pytest.raises(b12lab.TableValidationError):
        tables.validate(data)


def test_the_unmutated_table_is_valid() -> None:
    tables.validate(shipped_table_data())


@given(text=st.text(max_size=20), analyte=st.sampled_from(sorted(CANONICAL)))
def test_any_text_gives_a_result_or_a_b12lab_error(text: str, analyte: str) -> None:
    try:
        b12lab.measure(text, analyte=analyte)
    except b12lab.B12LabError:
        return
