"""Data frames and the command line: one row out per row in, and the same answer as classify()."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import b12lab
from b12lab._core.frame import classify_frame
from tests.strategies import patients


def test_rows_keep_order_index_and_input_columns() -> None:
    df = pd.DataFrame(
        {"id": ["a", "b", "c"], "b12": ["160 pg/mL", "bad", "400 pmol/L"]},
        index=[10, 5, 7],
    )
    out = classify_frame(df)
    assert list(out.index) == [10, 5, 7]
    assert list(out["id"]) == ["a", "b", "c"]
    assert list(out["b12lab_category"]) == ["deficiency_likely", "", "deficiency_unlikely"]
    assert out["b12lab_error"].iloc[1].startswith("invalid_value: b12")


def test_units_from_header_argument_and_cells() -> None:
    df = pd.DataFrame(
        {"B12 (pg/mL)": [160.0, 400.0], "mma": [0.5, 0.2], "hcy": ["10 umol/L", "<5 umol/L"]}
    )
    out = classify_frame(df, units={"mma": "umol/L"})
    assert np.allclose(out["b12lab_b12"], [160 * 1000 / 1355.37, 400 * 1000 / 1355.37])
    assert list(out["b12lab_mma_band"]) == ["high", "normal"]
    assert list(out["b12lab_hcy_censoring"]) == ["", "<"]


def test_value_and_unit_columns() -> None:
    df = pd.DataFrame(
        {
            "B12": [160, 400, None, 133, 0.2],
            "B12_unit": ["pg/mL", "pmol/L", "pmol/L", None, "nmol/L"],
            "Methylmalonic acid": ["0.5", "0.3 umol/L", None, None, None],
            "Methylmalonic acid units": ["umol/L", "umol/L", None, None, None],
        }
    )
    out = classify_frame(df)
    assert np.allclose(out["b12lab_b12"].iloc[[0, 1, 4]], [160 * 1000 / 1355.37, 400, 200])
    assert list(out["b12lab_mma_band"].iloc[:2]) == ["high", "normal"]
    assert out["b12lab_error"].iloc[3].startswith("unknown_unit: b12")
    mapped = classify_frame(
        df.rename(columns={"B12_unit": "u"}), columns={"b12": "B12", "b12_unit": "u"}
    )
    assert list(mapped["b12lab_b12"].fillna(-1)) == list(out["b12lab_b12"].fillna(-1))


def test_explicit_column_mapping_and_missing_column() -> None:
    df = pd.DataFrame({"Cobalamin_result": ["100 ng/L"]})
    out = classify_frame(df, columns={"b12": "Cobalamin_result"})
    assert out["b12lab_b12_band"].iloc[0] == "deficient"
    with pytest.raises(b12lab.ColumnError, match=r"'nope' for b12 .*1 column"):
        classify_frame(df, columns={"b12": "nope"})


def test_unrecognised_layout_says_what_was_found_without_repeating_data() -> None:
    # A file without a header line: the "column names" are a patient's identifier and name.
    headerless = pd.DataFrame(columns=["P1234567", "Smith John", "160 pg/mL", "mma"])
    with pytest.raises(b12lab.ColumnError) as caught:
        classify_frame(headerless, columns={"b12": "b12 result"})
    with pytest.raises(b12lab.ColumnError) as unrecognised:
        classify_frame(pd.DataFrame({"P1234567": [1], "Smith John": [2]}))
    for error in (caught.value, unrecognised.value):
        assert "P1234567" not in str(error)
        assert "Smith" not in str(error)
    assert "4 column(s), 1 named like an analyte or context: mma" in str(caught.value)
    assert "header line" in str(unrecognised.value)


def test_errors_never_get_a_category() -> None:
    df = pd.DataFrame({"b12": ["160", "300 nmol/L", "-3 pmol/L", "160 kg", "", None]})
    out = classify_frame(df)
    codes = out["b12lab_error"].str.split(":").str[0].tolist()
    assert codes == [
        "unknown_unit",
        "implausible_value",
        "invalid_value",
        "wrong_dimension",
        "",
        "",
    ]
    assert list(out["b12lab_category"]) == [
        "",
        "",
        "",
        "",
        "insufficient_data",
        "insufficient_data",
    ]


def _cell(value: Any) -> str | None:
    if isinstance(value, tuple):
        return f"{value[0]!r} {value[1]}"
    return value  # type: ignore[no-any-return]


@given(people=st.lists(patients(censored=True), min_size=1, max_size=20))
def test_frame_equals_classify_row_by_row(people: list[dict[str, Any]]) -> None:
    analytes = ["b12", "holotc", "mma", "hcy", "folate", "egfr"]
    df = pd.DataFrame(
        {
            **{a: [_cell(p.get(a)) for p in people] for a in analytes},
            "age": [p.get("age") for p in people],
            "sex": [p["sex"] for p in people],
            **{
                key: [None if p[key] is None else str(p[key]) for p in people]
                for key in ("pregnant", "nitrous_oxide", "b12_replacement")
            },
        }
    )
    out = classify_frame(df)
    assert len(out) == len(people)
    for row, person in enumerate(people):
        single = b12lab.classify(**person)
        assert out["b12lab_error"].iloc[row] == ""
        assert out["b12lab_category"].iloc[row] == single.category.value
        assert out["b12lab_rule"].iloc[row] == (single.rule or "")
        assert set(filter(None, out["b12lab_flags"].iloc[row].split(";"))) == {
            f.id for f in single.flags
        }
        for analyte, marker in single.markers.items():
            assert out[f"b12lab_{analyte}_censoring"].iloc[row] == marker.censoring.value
            assert np.isclose(
                out[f"b12lab_{analyte}"].iloc[row], marker.value.magnitude, rtol=1e-12
            )
            if f"b12lab_{analyte}_band" in out:
                assert out[f"b12lab_{analyte}_band"].iloc[row] == (marker.band or "")


BAD_CELLS = st.sampled_from(
    ["see comment", "160", "-3 pmol/L", "160 kg", "9e9 pmol/L", "n/a", "<", "50 pg/mL pg/mL"]
)


@given(
    people=st.lists(patients(censored=True), min_size=1, max_size=10),
    bad=st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["b12", "mma"]), BAD_CELLS)),
)
def test_bad_cells_give_the_error_classify_raises(
    people: list[dict[str, Any]], bad: list[tuple[int, str, str]]
) -> None:
    """A row with a bad cell carries the code of the error classify() raises for that patient."""
    for row, analyte, cell in bad:
        if row < len(people):
            people[row][analyte] = cell
    analytes = ["b12", "holotc", "mma", "hcy", "folate", "egfr"]
    df = pd.DataFrame({a: [_cell(p.get(a)) for p in people] for a in analytes})
    out = classify_frame(df)
    for row, person in enumerate(people):
        kwargs = {a: person[a] for a in analytes if a in person}
        try:
            single = b12lab.classify(**kwargs)
        except b12lab.B12LabError as exc:
            assert out["b12lab_error"].iloc[row].startswith(f"{exc.code}:")  # noqa: PT017
            assert out["b12lab_category"].iloc[row] == ""
        else:
            assert out["b12lab_error"].iloc[row] == ""
            assert out["b12lab_category"].iloc[row] == single.category.value


@given(values=st.lists(st.text(max_size=12) | st.none(), min_size=1, max_size=30))
def test_no_row_is_ever_lost(values: list[str | None]) -> None:
    out = classify_frame(pd.DataFrame({"b12": values, "mma": values}))
    assert len(out) == len(values)
    classified = out["b12lab_category"] != ""
    assert (classified ^ (out["b12lab_error"] != "")).all()
