"""Every edge of every shipped table: just below, at and just above, in at least two units.

The expected band comes from the table's own closure (``upper_inclusive``), so a value exactly on
a published edge must land in the band the source's wording gives it, whatever unit it arrives in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from b12lab import tables
from b12lab._core import engine
from b12lab._core.measurements import Measurement
from b12lab._core.observations import from_measurements, from_numbers
from b12lab._core.policy import compile_variable
from b12lab._core.units import conversion_factor, dimension_kind

SAME_KIND = {
    "substance": ["pmol/L", "nmol/L", "umol/L", "nmol/mL", "mmol/L"],
    "mass": ["ng/L", "pg/mL", "ng/mL", "ug/L", "mg/L"],
}


@dataclass(frozen=True)
class EdgeCase:
    table: str
    variable: str
    stratum: int
    edge: int
    unit: str
    value: float
    decimals: int
    below: str
    above: str
    at: str

    @property
    def id(self) -> str:
        return f"{self.table}:{self.variable}[{self.stratum}]@{self.value:g}{self.unit}"


def _cases() -> list[EdgeCase]:
    cases = []
    for spec in tables.available():
        for name, variable in tables.load(spec).model.variables.items():
            for s_index, stratum in enumerate(variable.all_strata()):
                bands = stratum.bands
                for e_index, band in enumerate(bands[:-1]):
                    assert band.upper is not None
                    owner = band if band.upper_inclusive else bands[e_index + 1]
                    for unit, decimals in variable.units.items():
                        cases.append(
                            EdgeCase(
                                spec,
                                name,
                                s_index,
                                e_index,
                                unit,
                                band.upper[unit],
                                decimals,
                                band.label,
                                bands[e_index + 1].label,
                                owner.label,
                            )
                        )
    return cases


CASES = _cases()


def _alternative_units(case: EdgeCase) -> list[str]:
    if case.variable in ("age", "egfr"):
        return [case.unit]
    kind = dimension_kind(case.unit)
    others = [u for u in SAME_KIND[kind] if conversion_factor(case.variable, u, case.unit) != 1.0]
    return [case.unit, others[0]]


def _band(case: EdgeCase, value: float, unit: str) -> str:
    model = tables.load(case.table).model
    variable = compile_variable(case.variable, model.variables[case.variable])
    stratum = model.variables[case.variable].all_strata()[case.stratum]
    sex = {"female": 0, "male": 1, None: -1}[stratum.sex]
    age = stratum.age_min if stratum.age_min is not None else 40.0
    context = engine.Context(
        sex=np.array([sex], dtype=np.int16),
        pregnant=np.array(
            [-1 if stratum.pregnant is None else int(not stratum.pregnant)], dtype=np.int16
        ),
        nitrous_oxide=np.array([-1], dtype=np.int16),
        b12_replacement=np.array([-1], dtype=np.int16),
        risk_medicine=np.array([-1], dtype=np.int16),
        age=np.array([age]),
    )
    if case.variable == "age":
        observed = from_numbers("age", np.array([value]), "year")
        interval, basis = observed.interval, np.zeros(1, dtype=np.int16)
    else:
        observed = from_measurements(case.variable, [Measurement(case.variable, value, unit)])
        interval, basis = observed.for_comparison(variable.units, variable.decimals)
    strata = engine.stratum_index(variable, context)
    code = int(engine.band_codes(variable, interval, basis, strata)[0])
    assert code >= 0
    return variable.labels[code]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_edge_lands_in_the_band_its_wording_gives(case: EdgeCase) -> None:
    step = 10.0 ** -(case.decimals + 1)
    for unit in _alternative_units(case):
        factor = (
            1.0 if case.variable == "age" else conversion_factor(case.variable, case.unit, unit)
        )
        assert _band(case, case.value * factor, unit) == case.at, unit
        assert _band(case, (case.value - step) * factor, unit) == case.below, unit
        assert _band(case, (case.value + step) * factor, unit) == case.above, unit


def test_there_are_edge_cases_for_every_shipped_table() -> None:
    assert {case.table for case in CASES} == set(tables.available())
