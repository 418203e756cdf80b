"""A censored result is read in every band it may lie in: its category is the one every exact
value in its interval would get, or ``deficiency_possible`` where those differ. Checked
against the exact values themselves, one inside each band the interval touches."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import b12lab
from b12lab import Category
from b12lab._core.policy import resolve
from b12lab._core.units import conversion_factor

CURRENT = ["nice-ng239@2", "bsh-2014@2", "generic-us-lab@2"]
LOWEST = 26.0  # pmol/L, above the lowest plausible total B12


def _edges(spec: str) -> list[float]:
    """The table's total-B12 edges in pmol/L."""
    variable = resolve(spec).variables["b12"]
    unit = variable.units[0]
    factor = conversion_factor("b12", unit, "pmol/L")
    return [float(edge) * factor for edge in variable.edges[0, 0, :]]


def _inside_each_band(edges: list[float], low: float, high: float) -> list[float]:
    """One value strictly inside each band that (low, high) reaches, away from the edges."""
    bounds = [0.0, *edges, float("inf")]
    points = []
    for below, above in itertools.pairwise(bounds):
        start, end = max(below, low, LOWEST), min(above, high)
        if start < end:
            points.append((start + end) / 2 if end != float("inf") else start * 1.5 + 1)
    assert points
    return points


@pytest.mark.parametrize("spec", CURRENT)
@given(
    bound=st.floats(min_value=40, max_value=2000),
    below=st.booleans(),
    others=st.fixed_dictionaries(
        {},
        optional={
            "mma": st.sampled_from(["0.2 umol/L", "0.8 umol/L"]),
            "hcy": st.sampled_from(["9 umol/L", "30 umol/L"]),
            "folate": st.sampled_from(["3 nmol/L", "20 nmol/L"]),
            "nitrous_oxide": st.booleans(),
        },
    ),
)
def test_a_censored_result_takes_the_category_of_every_value_it_allows(
    spec: str, bound: float, below: bool, others: dict[str, Any]
) -> None:
    low, high = (0.0, bound) if below else (bound, float("inf"))
    points = _inside_each_band(_edges(spec), low, high)
    exact = {b12lab.classify(b12=(p, "pmol/L"), table=spec, **others).category for p in points}
    sign = "<" if below else ">"
    censored = b12lab.classify(b12=f"{sign}{bound!r} pmol/L", table=spec, **others)
    expected = exact.pop() if len(exact) == 1 else Category.DEFICIENCY_POSSIBLE
    assert censored.category is expected, (points, censored.rule)
