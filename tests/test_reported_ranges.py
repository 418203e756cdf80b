"""Banding MMA and homocysteine against the reference range reported with each result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import b12lab
from b12lab._core.build import reasons_text
from b12lab._core.reported_ranges import parse_range
from b12lab.errors import ColumnError, InvalidValueError

INF = float("inf")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-280", (0.0, 280.0, True, True, None, 0)),
        ("0 - 280", (0.0, 280.0, True, True, None, 0)),
        ("0.00–0.40", (0.0, 0.4, True, True, None, 2)),
        ("0.00—0.40", (0.0, 0.4, True, True, None, 2)),
        ("5.0 to 15.0", (5.0, 15.0, True, True, None, 1)),
        ("<0.40", (-INF, 0.4, True, False, None, 2)),
        ("< 0.40", (-INF, 0.4, True, False, None, 2)),
        ("<=0.40", (-INF, 0.4, True, True, None, 2)),
        ("≤ 0.40", (-INF, 0.4, True, True, None, 2)),
        ("0.0-0.4 umol/L", (0.0, 0.4, True, True, "umol/L", 1)),
        ("0.0 umol/L - 0.4 µmol/L", (0.0, 0.4, True, True, "umol/L", 1)),
        ("0-400 nmol/L", (0.0, 400.0, True, True, "nmol/L", 0)),
        ("0.00 - 0.40 μmol/L", (0.0, 0.4, True, True, "μmol/L", 2)),  # Greek mu
        ("0.0\xa0-\xa00.4 umol/l", (0.0, 0.4, True, True, "umol/l", 1)),
        ("0 TO 15", (0.0, 15.0, True, True, None, 0)),
        (">= 2.0", (2.0, INF, True, True, None, 1)),
        ("> 2.0", (2.0, INF, False, True, None, 1)),
        ("≥2", (2.0, INF, True, True, None, 0)),
    ],
)
def test_each_form_of_the_grammar_reads(text: str, expected: tuple[object, ...]) -> None:
    found = parse_range(text, "mma")
    low, high, low_closed, high_closed, unit, decimals = expected
    assert (found.low, found.high) == (low, high)
    assert (found.low_closed, found.high_closed, found.decimals) == (
        low_closed,
        high_closed,
        decimals,
    )
    assert (found.unit is None) == (unit is None)


def test_a_decimal_comma_is_read_when_the_export_uses_one() -> None:
    found = parse_range("0,00-0,40", "mma", ",")
    assert (found.low, found.high, found.decimals) == (0.0, 0.4, 2)
    with pytest.raises(InvalidValueError, match="decimal mark"):
        parse_range("0,00-0,40", "mma", ".")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("5-1", "lower limit is above its upper limit"),
        ("-1-5", "negative"),
        ("0--5", "negative"),
        ("< -0.4", "negative"),
        ("nan", "not a range"),
        ("NaN-inf", "not a range"),
        ("0-inf", "not a range"),
        ("0 umol/L - 0.4 nmol/L", "two different units"),
        ("see note", "not a range"),
        ("0-0.40 mmHg", "cannot be a unit"),
        ("0-0.40 blorbs", "not a unit"),
        ("0.1-0.4-0.5", "not a range"),
        ("<", "not a range"),
        ("normal", "not a range"),
    ],
)
def test_unreadable_ranges_are_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidValueError, match=problem) as caught:
        parse_range(text, "mma")
    assert str(caught.value).startswith("mma: the reported reference range")


def _mma(value: str, reported: str, **context: object) -> b12lab.MarkerResult:
    result = b12lab.classify(mma=value, reference_ranges={"mma": reported}, **context)  # type: ignore[arg-type]
    return result.markers["mma"]


@pytest.mark.parametrize(
    ("value", "reported", "band"),
    [
        ("0.45 umol/L", "0-0.50", "normal"),
        ("0.45 umol/L", "0-0.40", "high"),
        ("0.40 umol/L", "0-0.40", "normal"),  # a two-sided range holds both its limits
        ("0.40 umol/L", "<0.40", "high"),  # "<0.40" does not hold 0.40
        ("0.40 umol/L", "<=0.40", "normal"),
        ("0.05 umol/L", "0.10-0.40", "normal"),  # no band below normal: read as normal
        ("12 umol/L", "5.0 to 15.0", "normal"),
    ],
)
def test_a_result_takes_the_band_of_its_reported_range(
    value: str, reported: str, band: str
) -> None:
    marker = _mma(value, reported)
    assert marker.band == band
    assert marker.reference_range is not None
    assert "reported with the result" in str(marker.source)


def test_the_reasons_quote_the_reported_range() -> None:
    result = b12lab.classify(
        b12="300 pmol/L", mma="0.52 umol/L", reference_ranges={"mma": "0-0.40 umol/L"}
    )
    assert result.markers["mma"].band == "high"
    assert result.rule == "mma-raised"
    assert (
        "0.52 µmol/L (= 0.52 nmol/mL) is in the high band (above the reported reference range "
        "0.00-0.40 µmol/L)" in result.reasons[-1].text
    )
    assert result.reasons[-1].source.endswith("and the reference ranges reported with them")
    plain = b12lab.classify(b12="300 pmol/L", mma="0.52 umol/L")
    assert "reported" not in plain.reasons[-1].source
    below = _mma("0.05 umol/L", "0.10-0.40")
    assert below.reference_range == "0.10-0.40 µmol/L"
    low = b12lab.classify(mma="0.05 umol/L", reference_ranges={"mma": "0.10-0.40"})
    assert "has no band below its normal band" in low.reasons[-1].text


def test_censored_results_are_read_in_every_band_they_may_lie_in() -> None:
    within = _mma("<0.30 umol/L", "0.10-0.40 umol/L")
    assert within.band == "normal"  # below or within: normal either way
    spans = b12lab.classify(
        b12="300 pmol/L", mma=">0.35 umol/L", reference_ranges={"mma": "0-0.40"}
    )
    marker = spans.markers["mma"]
    assert marker.band is None
    assert marker.indeterminate_because_censored
    assert "may lie in the normal or high band (within or above the reported reference range" in (
        spans.reasons[-1].text
    )
    above = _mma(">0.45 umol/L", "0-0.40")
    assert above.band == "high"


def test_a_range_with_its_own_unit_is_compared_in_that_unit() -> None:
    assert _mma("0.52 umol/L", "0-400 nmol/L").band == "high"
    assert _mma("0.38 umol/L", "0-400 nmol/L").band == "normal"
    assert _mma("400 nmol/L", "0-0.40 umol/L").band == "normal"
    assert _mma("401 nmol/L", "0-0.40 umol/L").band == "high"
    # a mass unit through MMA's molar mass: 0.04 mg/L is about 0.34 µmol/L
    assert _mma("0.52 umol/L", "0-0.04 mg/L").band == "high"
    assert _mma("0.30 umol/L", "0-0.04 mg/L").band == "normal"
    marker = _mma("520 nmol/L", "0.0-0.6 umol/L")
    assert (marker.band, marker.compared_in) == ("normal", "µmol/L")


def test_a_range_without_a_unit_is_in_the_results_unit() -> None:
    assert _mma("300 nmol/L", "0-280").band == "high"
    assert _mma("0.30 umol/L", "0-0.28").band == "high"
    assert _mma("0.25 umol/L", "0-0.28").reference_range == "0.00-0.28 µmol/L"


def test_the_age_strata_of_the_table_give_way_to_a_reported_range() -> None:
    table = b12lab.classify(mma="0.44 umol/L", age=70)
    assert table.markers["mma"].band == "normal"  # the table's interval for 65 and over
    reported = b12lab.classify(mma="0.44 umol/L", age=70, reference_ranges={"mma": "0-0.40"})
    assert reported.markers["mma"].band == "high"
    assert "interval for age 65" not in reported.reasons[-1].text


def test_a_guidelines_own_bands_are_never_replaced() -> None:
    plain = b12lab.classify(b12="150 pmol/L")
    result = b12lab.classify(b12="150 pmol/L", reference_ranges={"b12": "100-914"})
    assert result.markers["b12"].band == plain.markers["b12"].band == "indeterminate"
    assert result.category == plain.category
    note = result.markers["b12"].note
    assert "not used: nice-ng239@2 sets the bands" in str(note)
    # not read, so not refused either
    unread = b12lab.classify(b12="150 pmol/L", reference_ranges={"b12": "see note"})
    assert unread.markers["b12"].band == "indeterminate"
    folate = b12lab.classify(folate="5 nmol/L", reference_ranges={"folate": "3-20"})
    assert folate.markers["folate"].note is not None


def test_a_laboratory_table_used_alone_takes_reported_ranges_too() -> None:
    result = b12lab.classify(
        mma="0.45 umol/L", table="generic-us-lab@2", reference_ranges={"mma": "0-0.50"}
    )
    assert result.markers["mma"].band == "normal"
    assert result.markers["mma"].reference_range == "0.00-0.50 µmol/L"


def test_an_unreadable_range_raises_for_one_patient() -> None:
    with pytest.raises(InvalidValueError, match="mma: the reported reference range 'see note'"):
        b12lab.classify(mma="0.45 umol/L", reference_ranges={"mma": "see note"})


ROWS = pd.DataFrame(
    {
        "b12": ["300 pmol/L", "150 pmol/L", "300 pmol/L", "150 pmol/L", None, "200 pmol/L", "1"],
        "mma": ["0.52 umol/L", "0.30", "<0.10", ">0.35", "0.44", "520 nmol/L", "0.3"],
        "hcy": ["12", "20", None, "16", "14", "14", "9"],
        "mma_range": ["0-0.40", "0.10-0.40", "0.20-0.40", "0-0.40", None, "0-0.6 umol/L", "<0.30"],
        "hcy_range": ["5-15", "<=15", "5-15", None, "0-13", "see note", "5-15"],
        "age": [40, 70, 70, 50, 80, 30, 60],
    }
)


def _frame() -> pd.DataFrame:
    return b12lab.classify_frame(
        ROWS,
        units={"mma": "umol/L", "hcy": "umol/L"},
        reference_ranges={"mma": "mma_range", "hcy": "hcy_range"},
        explain=True,
    )


def test_one_patient_and_a_frame_agree() -> None:
    out = _frame()
    assert len(out) == len(ROWS)
    for row in range(len(ROWS)):
        given = ROWS.iloc[row]
        cells = {n: _with_unit(n, given[n]) for n in ("b12", "mma", "hcy") if pd.notna(given[n])}
        ranges = {a: given[f"{a}_range"] for a in ("mma", "hcy")}  # None: none reported
        error = out["b12lab_error"].iloc[row]
        try:
            single = b12lab.classify(**cells, age=int(given["age"]), reference_ranges=ranges)
        except b12lab.B12LabError as exc:
            raised = f"{exc.code}: {exc}"
        else:
            raised = ""
        assert error == raised
        if raised:
            continue
        assert out["b12lab_category"].iloc[row] == single.category.value
        assert out["b12lab_reasons"].iloc[row] == reasons_text(single.reasons)
        for analyte, marker in single.markers.items():
            assert out[f"b12lab_{analyte}_band"].iloc[row] == (marker.band or "")
            assert out[f"b12lab_{analyte}_note"].iloc[row] == (marker.note or "")
            if analyte != "b12":
                source = "reported" if marker.reference_range else "table"
                assert out[f"b12lab_{analyte}_range_source"].iloc[row] == source


def _with_unit(analyte: str, cell: str) -> str:
    """A bare MMA or homocysteine number as the frame reads it, with its column's unit."""
    if analyte == "b12" or any(c.isalpha() for c in cell):
        return cell
    return f"{cell} umol/L"


def test_a_frame_says_where_each_band_came_from() -> None:
    out = _frame()
    assert list(out["b12lab_mma_range_source"]) == ["reported"] * 4 + ["table"] + ["", ""]
    assert (
        "no reference range reported with the result; banded against generic-us-lab@2"
        in (out["b12lab_mma_note"].iloc[4])
    )
    assert out["b12lab_error"].iloc[5].startswith("invalid_value: hcy: the reported reference")
    assert out["b12lab_mma_band"].iloc[6] == ""  # its B12 has no unit: an error, no band
    assert list(out["b12lab_mma_band"].iloc[:4]) == ["high", "normal", "normal", ""]
    assert out["b12lab_mma_interpretation"].iloc[3] == "IND"


def test_a_range_without_a_result_is_not_read() -> None:
    rows = pd.DataFrame({"b12": ["300 pmol/L"], "hcy": [None], "hcy_range": ["see note"]})
    out = b12lab.classify_frame(rows, reference_ranges={"hcy": "hcy_range"})
    assert out["b12lab_error"].iloc[0] == ""
    assert out["b12lab_hcy_range_source"].iloc[0] == ""


def test_a_missing_range_column_is_named() -> None:
    with pytest.raises(ColumnError, match="'nope'"):
        b12lab.classify_frame(ROWS[["b12", "mma"]], reference_ranges={"mma": "nope"})


def test_arrow_input_reads_the_range_columns() -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.Table.from_pandas(ROWS.astype(str).replace("None", None), preserve_index=False)
    out = b12lab.classify_frame(
        table,
        units={"mma": "umol/L", "hcy": "umol/L"},
        reference_ranges={"mma": "mma_range", "hcy": "hcy_range"},
    )
    assert out.column("b12lab_mma_range_source").to_pylist()[:5] == ["reported"] * 4 + ["table"]


LONG = pd.DataFrame(
    {
        "patient_id": ["A", "A", "A", "B", "B", "C", "C", "D", "E"],
        "test": ["b12", "13964-2", "hcy", "b12", "mma", "mma", "mma", "mma", "b12"],
        "value": [
            *("300 pmol/L", "0.52 umol/L", "12 umol/L", "300 pmol/L", "0.45 umol/L"),
            *("0.3 umol/L", "0.3 umol/L", "0.3 umol/L", "150 pmol/L"),
        ],
        "Reference Range": [
            *("180-914", "0-0.40", "5.0 to 15.0", "", "see note"),
            *("0-0.40", "0-0.50", None, None),
        ],
    }
)


def test_a_long_export_bands_against_each_results_range() -> None:
    out = b12lab.classify_long(LONG, use_reported_ranges=True, explain=True)
    assert list(out["patient_id"]) == ["A", "B", "C", "D", "E"]  # no group lost
    first = out.iloc[0]
    assert (first["b12lab_mma_band"], first["b12lab_mma_range_source"]) == ("high", "reported")
    assert first["b12lab_b12_range_source"] == "table"
    assert first["b12lab_mma_reported_range"] == "0-0.40"
    assert "above the reported reference range 0.00-0.40 µmol/L" in first["b12lab_reasons"]
    assert out["b12lab_error"].iloc[1].startswith("invalid_value: mma: the reported reference")
    assert "2 reported reference ranges for one result" in out["b12lab_error"].iloc[2]
    assert out["b12lab_mma_range_source"].iloc[3] == "table"
    named = b12lab.classify_long(
        LONG.rename(columns={"Reference Range": "lab_range"}),
        reference_range="lab_range",
        use_reported_ranges=True,
    )
    assert list(named["b12lab_mma_band"]) == list(out["b12lab_mma_band"])


def test_a_long_export_without_the_option_ignores_its_ranges() -> None:
    out = b12lab.classify_long(LONG)
    assert "b12lab_mma_range_source" not in out.columns
    assert out["b12lab_mma_band"].iloc[0] == "high"  # 0.52 is above the table's 0.40 too
    assert out["b12lab_error"].iloc[1] == ""


def test_a_named_range_column_needs_the_option_and_the_option_a_column() -> None:
    with pytest.raises(InvalidValueError, match="use_reported_ranges=True"):
        b12lab.classify_long(LONG, reference_range="Reference Range")
    with pytest.raises(ColumnError, match="reference_range="):
        b12lab.classify_long(LONG.drop(columns="Reference Range"), use_reported_ranges=True)


@given(
    st.lists(
        st.tuples(st.integers(1, 2000), st.integers(0, 3000), st.booleans()),
        min_size=1,
        max_size=30,
    )
)
def test_normal_exactly_up_to_the_upper_limit_in_any_unit(
    cases: list[tuple[int, int, bool]],
) -> None:
    """For a range [0, h] and a value v: normal iff v <= h, whether the range is given in
    µmol/L or nmol/L."""
    high = np.array([h for h, _, _ in cases]) / 1000  # µmol/L, three decimals
    value = np.array([v for _, v, _ in cases]) / 1000
    frame = pd.DataFrame(
        {
            "mma": [f"{v:.3f} umol/L" for v in value],
            "range": [
                f"0-{h * 1000:.0f} nmol/L" if in_nmol else f"0-{h:.3f} umol/L"
                for h, (_, _, in_nmol) in zip(high, cases, strict=True)
            ],
        }
    )
    out = b12lab.classify_frame(frame, reference_ranges={"mma": "range"})
    expected = np.where(value <= high, "normal", "high")
    assert list(out["b12lab_mma_band"]) == list(expected)
    assert set(out["b12lab_mma_range_source"]) == {"reported"}


def test_the_command_line_bands_against_a_range_column_and_records_it(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "patient_id,test,value,ref\nP1,2132-9,300 pmol/L,180-914\n"
        "P1,13964-2,0.52 umol/L,0-0.60\nP2,13964-2,0.30 umol/L,see note\n"
    )
    out = tmp_path / "visits.csv"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "b12lab", "classify", str(path), "--long"),
            *("--reference-range-column", "ref", "-o", str(out)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    visits = pd.read_csv(out, keep_default_na=False)
    assert list(visits["b12lab_mma_band"]) == ["normal", ""]
    assert list(visits["b12lab_mma_range_source"]) == ["reported", ""]
    assert visits["b12lab_error"].iloc[1].startswith("invalid_value: mma:")
    record = json.loads(Path(f"{out}.b12lab.json").read_text())
    assert record["reported_ranges"] == {"column": "ref", "analytes": ["mma", "hcy"]}
    assert record["options"]["long"]["reference_range_column"] == "ref"


def test_dask_partitions_band_against_their_rows_ranges() -> None:
    dd = pytest.importorskip("dask.dataframe")
    from b12lab.dask import classify

    options = {
        "units": {"mma": "umol/L", "hcy": "umol/L"},
        "reference_ranges": {"mma": "mma_range", "hcy": "hcy_range"},
    }
    lazy = classify(dd.from_pandas(ROWS, npartitions=2), **options)  # type: ignore[arg-type]
    got = lazy.compute()
    expected = b12lab.classify_frame(ROWS, **options)  # type: ignore[arg-type]
    assert list(got["b12lab_mma_range_source"]) == list(expected["b12lab_mma_range_source"])
    assert list(got["b12lab_error"]) == list(expected["b12lab_error"])


def test_a_range_past_the_plausible_limits_in_its_unit_is_refused() -> None:
    """ "0-280" beside a result in µmol/L is a range in nmol/L given without its unit: read as
    written it would call nearly every result normal."""
    with pytest.raises(InvalidValueError, match=r"'0-280 µmol/L' cannot be used: it lies outside"):
        b12lab.classify(mma="0.21 umol/L", reference_ranges={"mma": "0-280"})
    with pytest.raises(InvalidValueError, match="outside the plausible limits"):
        b12lab.classify(hcy="12 umol/L", reference_ranges={"hcy": "<=1500"})
    assert _mma("210 nmol/L", "0-280").band == "normal"  # the result's own unit: plausible
    assert _mma("0.21 umol/L", "0-280 nmol/L").band == "normal"  # the range's own unit


def test_a_frame_refuses_an_implausible_range_only_where_it_is_read_so() -> None:
    rows = pd.DataFrame(
        {
            "mma": ["0.21 umol/L", "210 nmol/L", "0.21 umol/L", "0.52 umol/L", None],
            "mma_range": ["0-280", "0-280", "0-280 nmol/L", "0-0.40", "0-280"],
        }
    )
    out = b12lab.classify_frame(rows, reference_ranges={"mma": "mma_range"})
    errors = out["b12lab_error"].astype(str).tolist()
    assert errors[0].startswith("invalid_value: mma: the reported reference range '0-280 µmol/L'")
    assert errors[1:] == ["", "", "", ""]
    assert out["b12lab_category"].astype(str).tolist()[0] == ""
    assert out["b12lab_mma_band"].astype(str).tolist()[1:4] == ["normal", "normal", "high"]
    with pytest.raises(InvalidValueError) as refused:
        b12lab.classify(mma="0.21 umol/L", reference_ranges={"mma": "0-280"})
    assert errors[0] == f"{refused.value.code}: {refused.value}"
    for position in range(1, 4):
        cells = rows.iloc[position]
        single = b12lab.classify(mma=cells["mma"], reference_ranges={"mma": cells["mma_range"]})
        assert out["b12lab_category"].iloc[position] == single.category.value
