"""Long exports (one row per result): one row out per visit, and the same answer as classify()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import b12lab
from b12lab._core.analytes import ANALYTES
from b12lab._core.units import conversion_factor
from b12lab._io.cli import main
from b12lab._io.long_format import classify_long
from tests.strategies import patients, units_for

T0 = pd.Timestamp("2024-03-01 08:00")
VISIT_GAP = pd.Timedelta(days=10)
UNKNOWN_TESTS = ("2951-2", "Sodium", "Ferritin", "718-7")


def _export(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["patient_id", "collected", "test", "value", "unit"])


@pytest.fixture
def export() -> pd.DataFrame:
    """Two patients; P1 has two visits four days apart, P2 one visit with an unknown test."""
    return _export(
        [
            ("P1", "2024-03-01T08:10", "2132-9", "160", "pg/mL"),
            ("P1", "2024-03-01T08:10", "13964-2", "0.52", "umol/L"),
            ("P1", "2024-03-01T14:00", "Homocysteine", "18.2", "µmol/L"),
            ("P1", "2024-03-01T08:10", "2951-2", "139", "mmol/L"),
            ("P2", "2024-03-02T09:00", "Vitamin B12", "<50", "pg/mL"),
            ("P2", "2024-03-02T09:05", "13965-9", "9.1", "umol/L"),
            ("P2", "2024-03-02T09:05", "Ferritin", "35", "ug/L"),
            ("P1", "2024-03-05T07:30", " vitamin B12 ", "420 pmol/L", None),
            ("P1", "2024-03-05T07:30", "MMA", "210", "nmol/L"),
        ]
    )


def test_visits_are_classified_like_classify(export: pd.DataFrame) -> None:
    out = classify_long(export, time="collected", window="24h", unit="unit")
    assert list(out["patient_id"]) == ["P1", "P1", "P2"]
    assert list(out["b12lab_group_start"].astype(str)) == [
        "2024-03-01 08:10:00",
        "2024-03-05 07:30:00",
        "2024-03-02 09:00:00",
    ]
    assert str(out["b12lab_group_end"].iloc[0]) == "2024-03-01 14:00:00"
    assert list(out["b12"]) == ["160 pg/mL", "420 pmol/L", "<50 pg/mL"]
    assert list(out["b12lab_b12_censoring"]) == ["", "", "<"]
    assert list(out["b12lab_ignored_results"]) == [1, 0, 1]
    expected = [
        b12lab.classify(b12="160 pg/mL", mma="0.52 umol/L", hcy="18.2 µmol/L"),
        b12lab.classify(b12="420 pmol/L", mma="210 nmol/L"),
        b12lab.classify(b12="<50 pg/mL", hcy="9.1 umol/L"),
    ]
    assert list(out["b12lab_category"]) == [r.category.value for r in expected]
    assert list(out["b12lab_rule"]) == [r.rule or "" for r in expected]
    assert (out["b12lab_error"] == "").all()


def test_without_time_each_patient_is_one_group(export: pd.DataFrame) -> None:
    first_visit = export[~export["value"].isin(["420 pmol/L", "210"])]
    out = classify_long(first_visit, unit="unit")
    assert list(out["patient_id"]) == ["P1", "P2"]
    assert "b12lab_group_start" not in out
    assert list(out["b12lab_ignored_results"]) == [1, 1]
    assert out["b12lab_category"].iloc[0] == "deficiency_likely"


def test_without_time_two_visits_of_one_patient_conflict(export: pd.DataFrame) -> None:
    out = classify_long(export, unit="unit")
    assert out["b12lab_error"].iloc[0] == (
        "duplicate_result: b12: 2 different results in this group; "
        "duplicate_result: mma: 2 different results in this group (if these are separate "
        "collections, give the collection time column (here perhaps 'collected'): time=, on the "
        "command line --time)"
    )
    assert out["b12"].iloc[0] == "160 pg/mL | 420 pmol/L"


def test_window_is_counted_from_the_first_result_of_a_visit() -> None:
    df = _export(
        [
            ("P1", pd.Timestamp("2024-01-01 00:00"), "b12", "300", "pmol/L"),
            ("P1", pd.Timestamp("2024-01-01 20:00"), "mma", "0.2", "umol/L"),
            ("P1", pd.Timestamp("2024-01-02 00:00"), "hcy", "10", "umol/L"),  # exactly 24 h
            ("P1", pd.Timestamp("2024-01-02 16:00"), "b12", "310", "pmol/L"),  # 40 h: new visit
            ("P1", pd.Timestamp("2024-01-04 00:00"), "b12", "320", "pmol/L"),  # 32 h after that
        ]
    )
    out = classify_long(df, time="collected", window=pd.Timedelta(hours=24), unit="unit")
    assert list(out["b12"]) == ["300 pmol/L", "310 pmol/L", "320 pmol/L"]
    assert list(out["mma"]) == ["0.2 umol/L", None, None]
    assert list(out["hcy"]) == ["10 umol/L", None, None]


def test_a_mistyped_year_outside_nanosecond_range_is_still_grouped() -> None:
    # 1024 for 2024 and 2924 for 2024: outside the years a nanosecond timestamp holds
    df = _export(
        [
            ("P1", "1024-03-01T08:00", "b12", "300", "pmol/L"),
            ("P1", "1024-03-01T20:00", "mma", "0.2", "umol/L"),
            ("P1", "2924-03-01T08:00", "b12", "100", "pmol/L"),
        ]
    )
    out = classify_long(df, time="collected", window="24h", unit="unit")
    assert list(out["b12"]) == ["300 pmol/L", "100 pmol/L"]
    assert list(out["mma"]) == ["0.2 umol/L", None]
    assert str(out["b12lab_group_end"].iloc[0]) == "1024-03-01 20:00:00"


def test_without_window_results_group_by_identical_time(export: pd.DataFrame) -> None:
    out = classify_long(export, time="collected", unit="unit")
    assert len(out) == export["patient_id"].str.cat(export["collected"]).nunique()


def test_timezone_aware_times_keep_their_zone() -> None:
    times = pd.to_datetime(["2024-03-01T08:00+01:00", "2024-03-01T09:00+01:00"])
    df = _export([("P1", times[0], "b12", "300", "pmol/L"), ("P1", times[1], "mma", "0.2", "uM")])
    out = classify_long(df, time="collected", window="2h", unit="unit")
    assert len(out) == 1
    assert out["b12lab_group_start"].iloc[0] == times[0]
    assert out["b12lab_group_end"].iloc[0] == times[1]


def test_rows_without_patient_or_time_are_never_combined() -> None:
    df = _export(
        [
            (None, "2024-03-01T08:00", "b12", "300", "pmol/L"),
            (None, "2024-03-01T08:00", "b12", "100", "pmol/L"),
            ("P1", None, "b12", "300", "pmol/L"),
            ("P1", None, "mma", "0.2", "umol/L"),
            ("P1", "2024-03-01T08:00", "b12", "150", "pmol/L"),
        ]
    )
    out = classify_long(df, time="collected", window="24h", unit="unit")
    assert len(out) == 5
    assert (out["b12lab_error"] == "").all()


def test_conflicting_duplicates_are_an_error_for_their_group_only() -> None:
    df = _export(
        [
            ("P1", "2024-03-01T08:00", "2132-9", "160", "pg/mL"),
            ("P1", "2024-03-01T09:00", "Vitamin B12", "250", "pg/mL"),
            ("P1", "2024-03-01T09:00", "mma", "0.52", "umol/L"),
            ("P2", "2024-03-01T08:00", "2132-9", "160", "pg/mL"),
        ]
    )
    out = classify_long(df, time="collected", window="24h", unit="unit")
    assert list(out["b12lab_error"]) == [
        "duplicate_result: b12: 2 different results in this group",
        "",
    ]
    assert list(out["b12lab_category"]) == ["", "deficiency_likely"]
    assert list(out["b12lab_mma_band"]) == ["", ""]
    assert np.isnan(out["b12lab_b12"].iloc[0])
    assert out["b12"].iloc[0] == "160 pg/mL | 250 pg/mL"


def test_a_censored_and_an_exact_result_conflict() -> None:
    df = _export([("P1", None, "b12", "<50", "pg/mL"), ("P1", None, "b12", "50", "pg/mL")])
    out = classify_long(df, unit="unit")
    assert out["b12lab_error"].iloc[0].startswith("duplicate_result: b12: 2 different")


def test_identical_duplicates_count_once() -> None:
    df = _export(
        [
            ("P1", None, "2132-9", "160", "pg/mL"),
            ("P1", None, "vitamin b12", "160.0 pg/mL", None),
            ("P1", None, "B12", "0.16", "ng/mL"),
            ("P1", None, "13964-2", "=<0.05", "umol/L"),
            ("P1", None, "mma", "≤0.05", "umol/L"),
            ("P1", None, "MMA", "<=50 nmol/L", ""),
        ]
    )
    out = classify_long(df, unit="unit")
    assert out["b12lab_error"].iloc[0] == ""
    assert out["b12"].iloc[0] == "160 pg/mL"
    single = b12lab.classify(b12="160 pg/mL", mma="<=0.05 umol/L")
    assert out["b12lab_category"].iloc[0] == single.category.value


def test_values_without_a_unit_column_and_numeric_values() -> None:
    df = pd.DataFrame(
        {"patient_id": [1, 1, 2], "test": ["b12", "mma", "b12"], "value": [300.0, 0.2, 100.0]}
    )
    out = classify_long(df)
    assert list(out["patient_id"]) == [1, 2]
    assert out["b12lab_error"].str.startswith("unknown_unit").all()
    with_units = classify_long(df.assign(unit=["pmol/L", "umol/L", "pmol/L"]), unit="unit")
    assert list(with_units["b12"]) == ["300.0 pmol/L", "100.0 pmol/L"]
    assert (with_units["b12lab_error"] == "").all()


def test_a_group_of_unknown_tests_only_is_kept() -> None:
    df = _export(
        [
            ("P1", None, "2132-9", "300", "pmol/L"),
            ("P2", None, "Sodium", "140", "mmol/L"),
            ("P2", None, "Ferritin", "35", "ug/L"),
        ]
    )
    out = classify_long(df, unit="unit")
    assert list(out["patient_id"]) == ["P1", "P2"]
    assert list(out["b12lab_ignored_results"]) == [0, 2]
    assert list(out["b12lab_category"]) == ["deficiency_unlikely", ""]
    assert out["b12lab_error"].iloc[1].startswith("no_known_test:")


def test_context_columns_are_carried_per_group() -> None:
    df = _export(
        [
            ("P1", None, "b12", "300", "pmol/L"),
            ("P1", None, "hcy", "13", "umol/L"),
            ("P2", None, "hcy", "13", "umol/L"),
            ("P2", None, "b12", "300", "pmol/L"),
        ]
    ).assign(Sex=pd.Series(["female", "female", "male", None]), age=[40, 40.0, 50, 51])
    out = classify_long(df, unit="unit")
    assert list(out["sex"]) == ["female", "male"]
    expected = b12lab.classify(b12="300 pmol/L", hcy="13 umol/L", sex="female", age=40)
    assert out["b12lab_category"].iloc[0] == expected.category.value
    assert out["b12lab_error"].iloc[0] == ""
    assert out["b12lab_error"].iloc[1] == (
        "conflicting_context: age: 2 different values in this group"
    )


def test_common_long_export_names_are_found_without_options() -> None:
    df = pd.DataFrame({"MRN": ["P1"], "Test Name": ["b12"], "Result": ["300 pmol/L"]})
    assert classify_long(df)["b12lab_category"].iloc[0] == "deficiency_unlikely"
    assert classify_long(df)["MRN"].iloc[0] == "P1"


def test_two_candidates_for_one_role_are_refused() -> None:
    df = pd.DataFrame({"mrn": ["P1"], "patient_id": ["P1"], "test": ["b12"], "value": ["1"]})
    with pytest.raises(b12lab.ColumnError, match="could each be the patient column"):
        classify_long(df)


def test_missing_columns_are_named_with_what_was_found() -> None:
    df = pd.DataFrame({"MRN": ["P1"], "Test Name": ["b12"], "Result": ["300 pmol/L"]})
    with pytest.raises(b12lab.ColumnError, match=r"no test column found.*test="):
        classify_long(df.rename(columns={"Test Name": "Untersuchung"}))
    with pytest.raises(b12lab.ColumnError, match="'drawn'"):
        classify_long(df, patient="MRN", test="Test Name", value="Result", time="drawn")
    out = classify_long(df, patient="MRN", test="Test Name", value="Result")
    assert out["b12lab_category"].iloc[0] == "deficiency_unlikely"


def test_no_known_test_and_bad_arguments_are_clear_errors(export: pd.DataFrame) -> None:
    with pytest.raises(b12lab.ColumnError, match="LOINC"):
        classify_long(export[export["test"] == "Ferritin"], unit="unit")
    with pytest.raises(b12lab.InvalidValueError, match="needs time="):
        classify_long(export, window="24h")
    with pytest.raises(b12lab.InvalidValueError, match="not a duration"):
        classify_long(export, time="collected", window="one day")
    with pytest.raises(b12lab.InvalidValueError, match="zero or more"):
        classify_long(export, time="collected", window="-1h")
    with pytest.raises(b12lab.ColumnError, match="collection time"):
        classify_long(export.assign(collected="yesterday"), time="collected")


# --- property: every group equals classify() of that group's values ------------------------

_LABELS = {name: [*record.loinc, name, *record.aliases] for name, record in ANALYTES.items()}


def _spellings(label: str) -> st.SearchStrategy[str]:
    return st.sampled_from([label, label.upper(), label.title(), f"  {label} "])


@st.composite
def _results(draw: st.DrawFn, analyte: str, given: Any) -> tuple[str, str, str, Any]:
    """One row's test, value and unit columns, and the same result as classify() takes it."""
    test = draw(_spellings(draw(st.sampled_from(_LABELS[analyte]))))
    if isinstance(given, str):  # a censored text such as "<148 pmol/L"
        number, unit = given.rsplit(" ", 1)
        value, unit_column = draw(st.sampled_from([(given, ""), (given, unit), (number, unit)]))
        return test, value, unit_column, given
    unit = draw(st.sampled_from(units_for(analyte)))
    value = given[0] / conversion_factor(analyte, unit)
    return test, repr(value), unit, (value, unit)


@st.composite
def long_exports(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[tuple[str, int], dict[str, Any]]]:
    """A shuffled long export of a few patients and visits, and each visit's classify() input."""
    rows: list[dict[str, Any]] = []
    visits: dict[tuple[str, int], dict[str, Any]] = {}
    for p in range(draw(st.integers(1, 3))):
        for v in range(draw(st.integers(1, 3))):
            person = draw(patients(censored=True))
            start = T0 + v * VISIT_GAP
            yes_no = ("pregnant", "nitrous_oxide", "b12_replacement")
            context = {
                "age": person.get("age"),
                "sex": person["sex"],
                **{k: None if person[k] is None else str(person[k]) for k in yes_no},
            }
            kwargs = {k: person[k] for k in ("sex", *yes_no) if person[k] is not None}
            kwargs |= {"age": person["age"]} if "age" in person else {}
            new: list[dict[str, Any]] = []
            for analyte in ANALYTES:
                if analyte not in person:
                    continue
                test, value, unit, kwargs[analyte] = draw(_results(analyte, person[analyte]))
                copies = draw(st.integers(1, 2))  # a second copy is an identical duplicate
                new += [{"test": test, "value": value, "unit": unit}] * copies
            for _ in range(draw(st.integers(0, 2))):
                unknown = draw(st.sampled_from(UNKNOWN_TESTS))
                new.append({"test": unknown, "value": "1", "unit": "mmol/L"})
            if not new:
                continue
            for row in new:
                minutes = draw(st.integers(0, 24 * 60))
                row |= {"patient_id": f"P{p}", "collected": start + pd.Timedelta(minutes=minutes)}
                rows.append(row | context)
            visits[(f"P{p}", v)] = kwargs | {
                "_ignored": sum(r["test"] in UNKNOWN_TESTS for r in new)
            }
    assume(any(set(k) & set(ANALYTES) for k in visits.values()))
    order = draw(st.permutations(range(len(rows))))
    return pd.DataFrame([rows[i] for i in order]), visits


@given(data=long_exports())
def test_every_group_equals_classify_of_its_values(
    data: tuple[pd.DataFrame, dict[tuple[str, int], dict[str, Any]]],
) -> None:
    df, visits = data
    out = classify_long(df, time="collected", window="24h", unit="unit")
    assert len(out) == len(visits)
    seen = set()
    for row in range(len(out)):
        key = (out["patient_id"].iloc[row], (out["b12lab_group_start"].iloc[row] - T0) // VISIT_GAP)
        seen.add(key)
        expected = dict(visits[key])
        ignored = expected.pop("_ignored")
        assert out["b12lab_ignored_results"].iloc[row] == ignored
        if ignored and not set(expected) & set(ANALYTES):
            assert out["b12lab_error"].iloc[row].startswith("no_known_test:")
            continue
        single = b12lab.classify(**expected)
        assert out["b12lab_error"].iloc[row] == ""
        assert out["b12lab_category"].iloc[row] == single.category.value
        assert out["b12lab_rule"].iloc[row] == (single.rule or "")
        assert set(filter(None, str(out["b12lab_flags"].iloc[row]).split(";"))) == {
            f.id for f in single.flags
        }
    assert seen == set(visits)


def test_row_errors_go_to_their_group_with_its_other_errors() -> None:
    df = _export(
        [
            ("P1", None, "b12", "160", "pg/mL"),
            ("P1", None, "b12", "250", "pg/mL"),
            ("P1", None, "mma", None, None),
            ("P2", None, "b12", "160", "pg/mL"),
        ]
    )
    failed = ["", "", "line 4: ragged_row: expected 5 fields, found 3", ""]
    out = classify_long(df, unit="unit", row_errors=failed)
    assert list(out["b12lab_error"]) == [
        "line 4: ragged_row: expected 5 fields, found 3; "
        "duplicate_result: b12: 2 different results in this group (if these are separate "
        "collections, give the collection time column (here perhaps 'collected'): time=, on the "
        "command line --time)",
        "",
    ]
    assert list(out["b12lab_category"]) == ["", "deficiency_likely"]
    with pytest.raises(b12lab.InvalidValueError, match="3 messages for 4 rows"):
        classify_long(df, unit="unit", row_errors=failed[:3])


def test_no_result_words_stay_no_result_beside_a_unit_column() -> None:
    df = _export([("P1", None, "b12", "n/a", "pmol/L"), ("P1", None, "mma", "pending", "umol/L")])
    df.loc[2] = ("P1", None, "hcy", "see comment", "umol/L")
    out = classify_long(df, unit="unit")
    assert out["b12lab_error"].iloc[0] == (
        "invalid_value: hcy: cannot read a number from 'see comment'; "
        "expected a result such as '160 pg/mL' or '<148 pmol/L'"
    )
    assert classify_long(df.iloc[:2], unit="unit")["b12lab_category"].iloc[0] == (
        "insufficient_data"
    )


def test_mapping_and_units_name_what_they_refer_to(export: pd.DataFrame) -> None:
    with pytest.raises(b12lab.ColumnError, match="'AGE' for age is not in the data"):
        classify_long(export, unit="unit", columns={"age": "AGE"})
    with pytest.raises(b12lab.UnknownAnalyteError):
        classify_long(export, unit="unit", columns={"vitamin q": "VQ"})
    with pytest.raises(b12lab.UnknownAnalyteError):
        classify_long(export, unit="unit", units={"vitamin q": "pmol/L"})


def test_an_unreadable_time_is_named_by_row_never_by_content() -> None:
    export = pd.DataFrame(
        {
            "patient_id": ["P1", "P1"],
            "collected": ["2024-03-01T08:30", "Smith 1961-04-02"],
            "test": ["b12", "mma"],
            "value": ["160 pg/mL", "0.5 umol/L"],
        }
    )
    with pytest.raises(b12lab.ColumnError, match="row 2") as caught:
        classify_long(export, time="collected")
    assert "Smith" not in str(caught.value)
    assert "1961" not in str(caught.value)


def test_duplicates_are_compared_by_the_pipeline_reader() -> None:
    export = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P2", "P3", "P3"],
            "test": ["mma", "mma", "b12", "b12", "mma", "mma"],
            "value": [
                "0,52 umol/L",
                "0.52 umol/L",
                "160 pg/mL",
                "118.048946 pmol/L",
                "0.52 umol/L",
                "0,61 umol/L",
            ],
        }
    )
    out = classify_long(export, decimal="auto")
    assert out["b12lab_error"].iloc[0] == ""  # one value, written with either decimal mark
    assert out["b12lab_error"].iloc[1] == ""  # 160 pg/mL and its pmol/L twin are one result
    assert out["b12lab_error"].iloc[2].startswith("duplicate_result: mma")


def test_context_spellings_that_mean_the_same_do_not_conflict() -> None:
    export = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P2"],
            "test": ["b12", "mma", "b12", "mma"],
            "value": ["160 pg/mL", "0.5 umol/L", "160 pg/mL", "0.5 umol/L"],
            "sex": ["F", "female", "F", "M"],
            "age": ["72", 72.0, None, "U"],
        }
    )
    out = classify_long(export)
    assert out["b12lab_error"].iloc[0] == ""
    assert out["b12lab_error"].iloc[1].startswith("conflicting_context: sex")


def test_a_collection_of_unknown_tests_says_so() -> None:
    export = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2"],
            "test": ["HB", "MCV", "14685-2"],
            "value": ["130 g/L", "101 fL", "300 pmol/L"],
        }
    )
    out = classify_long(export)
    assert out["b12lab_error"].iloc[0].startswith("no_known_test: none of the 2 result(s)")
    assert out["b12lab_category"].iloc[0] == ""
    assert out["b12lab_error"].iloc[1] == ""  # LOINC 14685-2 is total B12 in moles per volume
    assert out["b12lab_category"].iloc[1] == "deficiency_unlikely"


# --- collection times written in each site's own format -----------------------------------------

US, EUROPEAN, ISO = "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M", "ISO8601"
THREE_SITES = Path(__file__).parent / "fixtures" / "long" / "three_sites_latin1.csv"


def _sites(times: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(len(times))],
            "collected": times,
            "test": "2132-9",
            "value": "300 pmol/L",
        }
    )


def test_each_time_is_read_by_the_format_that_matches_it() -> None:
    times = ["09/30/2024 13:46", "30.09.2024 13:46", "2024-09-30T13:46:00", None]
    out = classify_long(_sites(times), time="collected", time_format=[US, EUROPEAN, ISO])
    assert list(out["b12lab_error"]) == ["", "", "", ""]
    expected = [pd.Timestamp("2024-09-30 13:46")] * 3
    assert list(out["b12lab_group_start"].iloc[:3]) == expected
    assert pd.isna(out["b12lab_group_start"].iloc[3])  # no time: a group of its own


def test_a_time_no_format_reads_is_an_error_of_its_row_never_quoting_it() -> None:
    out = classify_long(
        _sites(["09/30/2024 13:46", "10/32/2024 09:00"]), time="collected", time_format=US
    )
    assert out["b12lab_error"].iloc[0] == ""
    error = out["b12lab_error"].iloc[1]
    assert error.startswith("row 2: invalid_value: the collection time matches none")
    assert "10/32" not in error
    assert out["b12lab_category"].iloc[1] == ""


def test_day_and_month_that_two_formats_read_differently_are_refused() -> None:
    out = classify_long(
        _sites(["01/02/2024 08:00", "30/09/2024 08:00", "09/30/2024 08:00"]),
        time="collected",
        time_format=[US, "%d/%m/%Y %H:%M"],
    )
    errors = out.set_index("patient_id")["b12lab_error"]
    assert "two different times" in errors["P0"]
    assert "day and month cannot be told apart" in errors["P0"]
    assert "01/02" not in errors["P0"]
    assert list(errors[["P1", "P2"]]) == ["", ""]  # each read by one format only


def test_formats_that_agree_are_not_ambiguous() -> None:
    out = classify_long(
        _sites(["2024-09-30 13:46"]), time="collected", time_format=["%Y-%m-%d %H:%M", ISO]
    )
    assert list(out["b12lab_error"]) == [""]


def test_times_with_offsets_are_compared_in_utc() -> None:
    out = classify_long(
        _sites(["2024-09-30T13:46+02:00", "30.09.2024 12:46 +0100"]),
        time="collected",
        time_format=[ISO, "%d.%m.%Y %H:%M %z"],
    )
    starts = out["b12lab_group_start"]
    assert list(starts) == [pd.Timestamp("2024-09-30 11:46", tz="UTC")] * 2


@pytest.mark.parametrize("time_format", [None, ISO])
def test_summer_and_winter_offsets_in_one_column_are_read_in_utc(time_format: str | None) -> None:
    one_patient = _sites(["2024-03-30T23:30+00:00", "2024-03-31T09:30+01:00", "2024-04-02T08:00Z"])
    one_patient["patient_id"] = "P0"
    out = classify_long(one_patient, time="collected", time_format=time_format, window="12h")
    assert list(out["b12lab_error"]) == ["", ""]
    assert list(out["b12lab_group_start"]) == [
        pd.Timestamp("2024-03-30 23:30", tz="UTC"),
        pd.Timestamp("2024-04-02 08:00", tz="UTC"),
    ]


@pytest.mark.parametrize("time_format", [None, ISO])
def test_times_with_and_without_offsets_are_refused(time_format: str | None) -> None:
    times = ["2024-03-31T09:30+01:00", "2024-03-30T23:30+00:00", "2024-04-02T08:00"]
    with pytest.raises(b12lab.ColumnError, match="mixes times with and without a UTC offset"):
        classify_long(_sites(times), time="collected", time_format=time_format)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"time_format": US}, "needs time="),
        ({"time": "collected", "time_format": []}, "is empty"),
        ({"time": "collected", "time_format": "day.month"}, "is not a date format"),
        ({"time": "collected", "time_format": "%Q"}, "is not a date format"),
        ({"time": "collected", "row_names": ["line 2"]}, "one per row"),
    ],
)
def test_bad_time_formats_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(b12lab.InvalidValueError, match=message):
        classify_long(_sites(["2024-09-30T13:46", "2024-09-30T13:46"]), **options)


def test_without_time_formats_only_iso_8601_is_read_and_the_advice_is_an_option() -> None:
    with pytest.raises(b12lab.ColumnError) as caught:
        classify_long(_sites(["30.09.2024 13:46"]), time="collected")
    message = str(caught.value)
    assert "--time-format" in message
    assert "30.09" not in message
    assert "dayfirst" not in message
    assert "datetime column" not in message


def test_a_three_site_export_keeps_every_collection(tmp_path: Path) -> None:
    """Latin-1, `;`, CRLF; US, German and UK sites, each with its own date format, decimal mark,
    unit and censoring; repeat draws; LOINC 2132-9, 14685-2, 13964-2 and 13965-9."""
    raw = THREE_SITES.read_bytes()
    assert b"\r\n" in raw
    assert "µ".encode("latin-1") in raw
    out = tmp_path / "visits.csv"
    status = main(
        [
            "classify", str(THREE_SITES), "--long", "--encoding", "latin-1", "--test", "LOINC",
            "--time", "Collected", "--time-format", US, "--time-format", EUROPEAN,
            "--time-format", ISO, "--window", "24h", "-o", str(out),
        ]
    )  # fmt: skip
    assert status == 0
    visits = pd.read_csv(out, dtype=str, keep_default_na=False)
    export = pd.read_csv(THREE_SITES, sep=";", encoding="latin-1", dtype=str)
    assert set(visits["Patient ID"]) == set(export["Patient ID"])  # no patient lost
    assert len(visits) == 15  # every collection, repeat draws apart, identical rows once
    assert ((visits["b12lab_category"] != "") ^ (visits["b12lab_error"] != "")).all()
    failed = visits.set_index("Patient ID").query("b12lab_error != ''")["b12lab_error"]
    assert sorted(failed.index) == ["A-1004", "A-1005", "C-3001"]
    assert failed["A-1005"].startswith("line 9: invalid_value: the collection time matches none")
    assert "10/32" not in failed["A-1005"]
    assert failed["A-1004"].startswith("duplicate_result: b12")
    by_patient = visits.groupby("Patient ID")["b12lab_b12"].agg(list)
    assert by_patient["B-2001"] == ["118", "156.3"]  # decimal commas, two draws a week apart
    assert by_patient["A-1002"] == ["110.67088691648776"]  # <150 pg/mL, censored
    assert by_patient["B-2002"] == ["37"]  # "< 37" pmol/L
    assert visits.set_index("Patient ID").loc["C-3002", "b12lab_b12_censoring"] == "<"


def test_known_tests_without_values_are_kept_not_refused() -> None:
    empty = pd.DataFrame({"patient_id": ["P1", "P2"], "test": ["2132-9"] * 2, "value": [None, ""]})
    out = classify_long(empty)
    assert out["patient_id"].tolist() == ["P1", "P2"]
    assert out["b12lab_category"].tolist() == ["insufficient_data"] * 2


def test_large_nullable_patient_ids_keep_their_digits() -> None:
    big = 2**60 + 1
    ids = pd.array([big, None], dtype="Int64")
    out = classify_long(
        pd.DataFrame({"patient_id": ids, "test": ["2132-9"] * 2, "value": ["160 pg/mL"] * 2})
    )
    assert out["patient_id"].tolist() == [big, pd.NA]
