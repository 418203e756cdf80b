"""Adding a marker that some shipped table reads as deficient never moves a row towards
``deficiency_unlikely``, under any current table: more evidence of deficiency never reassures."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import b12lab
from b12lab import Category, tables
from b12lab._core.analytes import ANALYTES
from b12lab._core.policy import resolve
from b12lab._core.units import conversion_factor
from tests.strategies import patients

CURRENT = [spec for spec in tables.available() if not spec.endswith("@1")]
ABNORMAL = {"b12": "L", "holotc": "L", "mma": "H", "hcy": "H"}


def _deficient_ranges() -> dict[str, list[tuple[float, float]]]:
    """Per marker, in its canonical unit: the ranges some current table reads as deficient (a
    low band of B12 or holoTC, a high band of MMA or homocysteine) in every one of its strata,
    within the plausibility limits."""
    ranges: dict[str, list[tuple[float, float]]] = {name: [] for name in ABNORMAL}
    for spec in CURRENT:
        table = tables.load(spec)
        for analyte, wanted in ABNORMAL.items():
            variable = table.model.variables.get(analyte)
            if variable is None:
                continue
            primary = next(iter(variable.units))
            factor = conversion_factor(analyte, primary, ANALYTES[analyte].canonical_unit)
            strata = variable.all_strata()
            for index, band in enumerate(strata[0].bands):
                if band.interpretation != wanted:
                    continue
                lows = [s.bands[index].lower for s in strata]
                highs = [s.bands[index].upper for s in strata]
                low = max((edge[primary] for edge in lows if edge), default=0.0) * factor
                high = min((edge[primary] for edge in highs if edge), default=None)
                top = high * factor if high is not None else max(low * 4, 1.0)
                floor = 30.0 if analyte == "b12" else low  # above the lowest plausible B12
                ranges[analyte].append((max(low, floor) * 1.001, top * 0.999))
    return {name: found for name, found in ranges.items() if found}


RANGES = _deficient_ranges()


@st.composite
def deficient_markers(draw: st.DrawFn) -> tuple[str, tuple[float, str]]:
    analyte = draw(st.sampled_from(sorted(RANGES)))
    low, high = draw(st.sampled_from(RANGES[analyte]))
    value = draw(st.floats(min_value=low, max_value=high))
    return analyte, (value, ANALYTES[analyte].canonical_unit)


def _concern(category: Category) -> float:
    """Insufficient data sits between unlikely and possible (as in the other invariants)."""
    return {
        Category.DEFICIENCY_UNLIKELY: 1.0,
        Category.INSUFFICIENT_DATA: 1.5,
        Category.DEFICIENCY_POSSIBLE: 2.0,
        Category.DEFICIENCY_LIKELY: 3.0,
    }[category]


def test_every_marker_has_a_deficient_range() -> None:
    assert sorted(RANGES) == sorted(ABNORMAL)


@pytest.mark.parametrize("spec", CURRENT)
@given(patient=patients(censored=True), added=deficient_markers())
def test_adding_a_deficient_marker_never_reassures(
    spec: str, patient: dict[str, Any], added: tuple[str, tuple[float, str]]
) -> None:
    analyte, value = added
    without = {key: cell for key, cell in patient.items() if key != analyte}
    base = b12lab.classify(table=spec, **without)
    more = b12lab.classify(table=spec, **without, **{analyte: value})
    if analyte not in resolve(spec).variables:  # a marker the table cannot read never reassures
        assert more.category is not Category.DEFICIENCY_UNLIKELY, (without, added, more.rule)
        assert "marker_not_interpreted" in {flag.id for flag in more.flags}
    assert _concern(more.category) >= _concern(base.category), (
        without,
        added,
        base.rule,
        more.rule,
    )
