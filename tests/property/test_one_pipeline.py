"""``classify_frame`` says, row by row, exactly what ``classify`` says: one pipeline."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import b12lab
from b12lab import tables
from b12lab._core.build import flag_markers_text, reasons_text
from b12lab._core.policy import resolve
from tests.strategies import CONTEXT_CELLS, context_flagged_table_data, rows

ANALYTES = ("b12", "holotc", "mma", "hcy", "folate", "creatinine", "egfr")
CONTEXT_FLAGGED = tables.Table(
    model=tables.validate(context_flagged_table_data()),
    sha256="0" * 64,
    origin="context-flags.toml",
)
EGFR_LAB = "egfr-lab"
"""Stands for the ``egfr_lab`` fixture: a laboratory table that derives eGFR from creatinine."""
TABLES = st.sampled_from(
    [
        None,
        "bsh-2014@1",
        "generic-us-lab@1",
        "bsh-2014@2",
        "generic-us-lab@2",
        "nice-ng239@1",
        CONTEXT_FLAGGED,
        EGFR_LAB,
    ]
)


def _column(values: list[object]) -> np.ndarray:
    """An object column holding each cell as it is (pairs and Quantities included)."""
    column = np.empty(len(values), dtype=object)
    for position, value in enumerate(values):
        column[position] = value
    return column


def _frame(people: list[dict[str, Any]]) -> pd.DataFrame:
    names = [*ANALYTES, *CONTEXT_CELLS]
    return pd.DataFrame({name: _column([p.get(name) for p in people]) for name in names})


@pytest.mark.filterwarnings("ignore::b12lab.errors.UnusedColumnWarning")
@given(people=st.lists(rows(), min_size=1, max_size=8), chosen=TABLES)
def test_every_row_of_a_frame_says_what_classify_says(
    people: list[dict[str, Any]], chosen: str | tables.Table | None, egfr_lab: tables.Table
) -> None:
    _same_as_classify(people, egfr_lab if chosen == EGFR_LAB else chosen)


@pytest.mark.filterwarnings("ignore::b12lab.errors.UnusedColumnWarning")
@given(
    people=st.lists(rows(), min_size=1, max_size=3),
    ages=st.lists(st.sampled_from([None, 15, 16, 40, 64.99, 65, 66, 90]), min_size=4, max_size=9),
    mma=st.sampled_from(
        ["0.39 umol/L", "0.43 umol/L", "460 nmol/L", "0.47 umol/L", "<0.45 umol/L"]
    ),
    chosen=TABLES,
)
def test_repeated_results_at_many_ages_say_what_classify_says(
    people: list[dict[str, Any]],
    ages: list[float | None],
    mma: str,
    chosen: str | tables.Table | None,
    egfr_lab: tables.Table,
) -> None:
    """Results repeat far more than rows hold strata: each result is banded once per stratum
    (age decides MMA's: 0.40 under 65, 0.46 from 65 in generic-us-lab@2), and every row must
    still get its own stratum's band."""
    repeated = [{**person, "mma": mma, "age": age} for person in people for age in ages]
    _same_as_classify(repeated, egfr_lab if chosen == EGFR_LAB else chosen)


def _same_as_classify(people: list[dict[str, Any]], table: str | tables.Table | None) -> None:
    out = b12lab.classify_frame(_frame(people), table=table, explain=True)
    derives = resolve(table).egfr_equation is not None
    assert ("b12lab_egfr_derived" in out) == derives
    assert len(out) == len(people)
    for row, person in enumerate(people):
        got = out.iloc[row]
        single = _classify(person, table)
        if isinstance(single, b12lab.B12LabError):
            assert got["b12lab_error"] == f"{single.code}: {single}"
            assert got["b12lab_category"] == ""
            assert got["b12lab_rule"] == ""
            assert got["b12lab_reasons"] == ""
            continue
        assert got["b12lab_error"] == ""
        assert got["b12lab_category"] == single.category.value
        assert got["b12lab_rule"] == (single.rule or "")
        assert got["b12lab_flags"] == ";".join(f.id for f in single.flags)
        assert got["b12lab_flag_markers"] == flag_markers_text(single.flags)
        assert got["b12lab_reasons"] == reasons_text(single.reasons)
        assert got["b12lab_notes"] == "; ".join(single.notes)
        assert got["b12lab_table"] == single.table.key
        lab = single.table.laboratory
        assert got["b12lab_laboratory"] == (lab.key if lab else "")
        for analyte in ANALYTES:
            _same_marker(got, analyte, single.markers.get(analyte))


def _classify(
    person: dict[str, Any], table: str | tables.Table | None
) -> b12lab.Result | b12lab.B12LabError:
    try:
        return b12lab.classify(**person, table=table)
    except b12lab.B12LabError as error:
        return error


def _same_marker(got: pd.Series, analyte: str, marker: b12lab.MarkerResult | None) -> None:
    note = got[f"b12lab_{analyte}_note"]
    if marker is None:
        assert math.isnan(got[f"b12lab_{analyte}"])
        assert note == ""
        return
    assert note == (marker.note or "")
    if marker.value is None:
        assert math.isnan(got[f"b12lab_{analyte}"])
    else:
        assert got[f"b12lab_{analyte}"] == pytest.approx(marker.value.magnitude, rel=1e-12)
    assert got[f"b12lab_{analyte}_censoring"] == marker.censoring.value
    if f"b12lab_{analyte}_derived" in got:
        assert got[f"b12lab_{analyte}_derived"] == (marker.derived_from is not None)
    if f"b12lab_{analyte}_band" in got:
        assert got[f"b12lab_{analyte}_band"] == (marker.band or "")
        assert got[f"b12lab_{analyte}_interpretation"] == (marker.interpretation or "")
