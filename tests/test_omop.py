"""OMOP CDM MEASUREMENT rows: one row per person and collection, as classify_long answers."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import b12lab
from b12lab._io.cli import main
from b12lab.errors import B12LabWarning, ColumnError, InvalidValueError, UnknownAnalyteError
from b12lab.omop import classify_measurements

B12 = 3000593  # Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma, verified in omop.py
LT, LE, EQ, GE, GT = 4171756, 4171754, 4172703, 4171755, 4172704
MALE, FEMALE = 8507, 8532
COLUMNS = (
    "person_id",
    "measurement_date",
    "measurement_datetime",
    "measurement_concept_id",
    "measurement_source_value",
    "operator_concept_id",
    "value_as_number",
    "unit_concept_id",
    "unit_source_value",
    "value_source_value",
)


def _rows(*rows: dict[str, Any]) -> pd.DataFrame:
    """MEASUREMENT rows; a column left out of a row is null."""
    return pd.DataFrame([{name: row.get(name) for name in COLUMNS} for row in rows])


def _b12(value: Any, *, person: Any = 1, day: str = "2024-03-01", **more: Any) -> dict[str, Any]:
    return {
        "person_id": person,
        "measurement_date": day,
        "measurement_concept_id": B12,
        "value_as_number": value,
        "unit_source_value": "pg/mL",
        **more,
    }


@pytest.mark.parametrize(
    ("operator", "shown"),
    [
        (LT, "<150 pg/mL"),
        (LE, "<=150 pg/mL"),
        (EQ, "150 pg/mL"),
        (GE, ">=150 pg/mL"),
        (GT, ">150 pg/mL"),
        (0, "150 pg/mL"),
        (None, "150 pg/mL"),
    ],
)
def test_operators_become_censoring_as_classify_reads_it(operator: int | None, shown: str) -> None:
    out = classify_measurements(_rows(_b12(150.0, operator_concept_id=operator)))
    assert out["b12"].tolist() == [shown]
    assert out["b12lab_category"].iloc[0] == b12lab.classify(b12=shown).category
    assert out["b12lab_error"].iloc[0] == ""


def test_less_than_a_low_bound_is_deficient_but_more_than_it_is_not_decided() -> None:
    out = classify_measurements(
        _rows(
            _b12(150.0, person=1, operator_concept_id=LT),
            _b12(150.0, person=2, operator_concept_id=GT),
        )
    )
    assert out["b12lab_category"].iloc[0] == "deficiency_likely"
    assert out["b12lab_category"].iloc[1] != "deficiency_likely"


@pytest.mark.parametrize("operator", [4171757, 8507, "<", 4171756.5])
def test_an_unknown_operator_is_a_clear_error_of_its_collection(operator: object) -> None:
    frame = _rows(_b12(150.0, person=1, operator_concept_id=operator), _b12(400.0, person=2))
    frame["operator_concept_id"] = frame["operator_concept_id"].astype(object)
    out = classify_measurements(frame)
    assert len(out) == 2
    assert out["b12lab_error"].iloc[0].startswith("row 1: invalid_value: operator_concept_id")
    assert "4172704 (>)" in out["b12lab_error"].iloc[0]
    assert out["b12lab_category"].iloc[0] == ""
    assert out["b12lab_error"].iloc[1] == ""


def test_operator_ids_written_as_text_are_read() -> None:
    frame = _rows(_b12("150", operator_concept_id="4171756"))
    assert classify_measurements(frame)["b12"].iloc[0] == "<150 pg/mL"


def test_numbers_are_written_without_spurious_digits() -> None:
    frame = _rows(
        _b12(160.0, person=1),
        _b12(0.1, person=2, unit_source_value="ng/mL"),
        _b12(np.float32(0.5), person=3, unit_source_value="ng/mL"),
        _b12(148, person=4),
    )
    frame["value_as_number"] = frame["value_as_number"].astype(object)
    shown = classify_measurements(frame)["b12"].tolist()
    assert shown == ["160 pg/mL", "0.1 ng/mL", "0.5 ng/mL", "148 pg/mL"]


def test_datetime_wins_over_the_date_and_a_date_alone_is_midnight() -> None:
    frame = _rows(
        _b12(160.0, measurement_datetime="2024-03-01T08:10"),
        _mma(0.52, 1, measurement_concept_id=0, measurement_datetime="2024-03-01T08:10"),
        _b12(420.0, day="2024-03-20"),
    )
    out = classify_measurements(frame)
    assert out["b12lab_group_start"].tolist() == [
        pd.Timestamp("2024-03-01 08:10"),
        pd.Timestamp("2024-03-20"),
    ]
    assert out["mma"].tolist() == ["0.52 umol/L", None]


def test_dates_and_times_as_python_and_numpy_values() -> None:
    frame = _rows(_b12(160.0), _b12(420.0, person=2))
    frame["measurement_date"] = [datetime.date(2024, 3, 1), datetime.date(2024, 3, 2)]
    frame["measurement_datetime"] = pd.to_datetime([None, "2024-03-02 07:30"])
    out = classify_measurements(frame)
    assert out["b12lab_group_start"].tolist() == [
        pd.Timestamp("2024-03-01"),
        pd.Timestamp("2024-03-02 07:30"),
    ]


def test_an_unreadable_date_is_an_error_that_does_not_quote_it() -> None:
    out = classify_measurements(_rows(_b12(160.0, day="31/02/2024 secret"), _b12(400.0, person=2)))
    assert len(out) == 2
    error = out["b12lab_error"].iloc[1]
    assert "measurement_date is not a date" in error
    assert "secret" not in " ".join(out["b12lab_error"])


def test_unit_from_unit_source_value_and_from_a_unit_concept_map() -> None:
    frame = _rows(
        _b12(160.0, person=1, unit_concept_id=1001, unit_source_value="pmol/L"),
        _b12(160.0, person=2, unit_concept_id=1002, unit_source_value="pg/mL"),
        _b12(160.0, person=3, unit_concept_id=1001, unit_source_value=None),
    )
    with pytest.warns(B12LabWarning, match=r"unit_concept_id 1001 is not in unit_concept_map"):
        out = classify_measurements(frame)  # row 3's unit is only a concept nobody mapped
    assert out["b12"].tolist() == ["160 pmol/L", "160 pg/mL", "160"]
    assert out["b12lab_error"].iloc[2].startswith("unknown_unit:")
    mapped = classify_measurements(frame, unit_concept_map={1001: "pg/mL", "1003": "pmol/L"})
    assert mapped["b12"].tolist() == ["160 pg/mL", "160 pg/mL", "160 pg/mL"]


def test_unit_concepts_of_tests_b12lab_does_not_read_are_not_warned_about() -> None:
    sodium = _b12(140.0, person=2, measurement_concept_id=2000000001, unit_concept_id=9003)
    sodium |= {"measurement_source_value": "2951-2", "unit_source_value": None}
    out = classify_measurements(_rows(_b12(160.0), sodium))  # filterwarnings: error
    assert out["b12lab_error"].iloc[0] == ""


def test_a_number_without_any_unit_is_an_error_not_a_guess() -> None:
    out = classify_measurements(_rows(_b12(160.0, unit_source_value=None)))
    assert out["b12lab_category"].iloc[0] == ""
    assert out["b12lab_error"].iloc[0] != ""


def test_bad_unit_concept_map_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="unit_concept_map"):
        classify_measurements(_rows(_b12(160.0)), unit_concept_map={1001: ""})
    with pytest.raises(InvalidValueError, match="not a concept id"):
        classify_measurements(_rows(_b12(160.0)), unit_concept_map={"pg": "pg/mL"})


def test_concepts_outside_the_default_map_come_from_the_source_value_or_the_callers_map() -> None:
    frame = _rows(
        _b12(160.0),
        {
            "person_id": 1,
            "measurement_date": "2024-03-01",
            "measurement_concept_id": 42,
            "measurement_source_value": "local-mma",
            "value_as_number": 0.52,
            "unit_source_value": "umol/L",
        },
    )
    unmapped = classify_measurements(frame)
    assert unmapped["b12lab_ignored_results"].tolist() == [1]
    assert "mma" not in unmapped.columns
    for test in ("mma", "13964-2", "Methylmalonic acid"):
        mapped = classify_measurements(frame, concept_map={42: test})
        assert mapped["mma"].tolist() == ["0.52 umol/L"]
        assert mapped["b12lab_ignored_results"].tolist() == [0]


def test_a_collection_with_only_unknown_concepts_gets_no_known_test() -> None:
    unknown = {**_b12(5.0, person=2), "measurement_concept_id": 42, "unit_source_value": "mmol/L"}
    out = classify_measurements(_rows(_b12(160.0), unknown))
    assert len(out) == 2
    assert out["b12lab_error"].iloc[1].startswith("no_known_test:")


def test_a_table_without_any_known_test_says_how_to_map_concepts() -> None:
    unknown = {**_b12(5.0), "measurement_concept_id": 42, "unit_source_value": "mmol/L"}
    with pytest.raises(ColumnError, match="concept_map="):
        classify_measurements(_rows(unknown))


@pytest.mark.parametrize(
    ("mapping", "error"), [({42: "sodium"}, UnknownAnalyteError), ({"x": "b12"}, InvalidValueError)]
)
def test_a_concept_map_naming_no_test_is_refused(
    mapping: dict[Any, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        classify_measurements(_rows(_b12(160.0)), concept_map=mapping)


def test_a_null_value_leaves_its_collection_without_that_result() -> None:
    out = classify_measurements(_rows(_b12(None), _b12(400.0, person=2)))
    assert out["b12"].tolist() == [None, "400 pg/mL"]
    assert out["b12lab_category"].iloc[0] == "insufficient_data"


def test_value_source_value_stands_in_for_a_null_number() -> None:
    frame = _rows(
        _b12(None, person=1, value_source_value="<50"),
        _b12(None, person=2, value_source_value="50", operator_concept_id=LT),
        _b12(None, person=3, value_source_value="160 pmol/L"),
        _b12(None, person=4, value_source_value="hemolysed"),
    )
    out = classify_measurements(frame)
    assert out["b12"].tolist() == ["<50 pg/mL", "<50 pg/mL", "160 pmol/L", "hemolysed"]


def test_a_censored_source_value_against_the_operator_is_an_error() -> None:
    frame = _rows(
        _b12(50.0, person=1, value_source_value="<50"),
        _b12(50.0, person=2, value_source_value="<50", operator_concept_id=GT),
        _b12(50.0, person=3, value_source_value="<50", operator_concept_id=LT),
    )
    out = classify_measurements(frame)
    assert out["b12lab_error"].str.contains("value_source_value is censored").tolist() == [
        True,
        True,
        False,
    ]
    assert out["b12"].iloc[2] == "<50 pg/mL"


def test_a_person_with_several_collections_gets_a_row_for_each() -> None:
    frame = _rows(
        _b12(160.0, measurement_datetime="2024-03-01T08:10"),
        _b12(170.0, measurement_datetime="2024-03-01T20:00"),
        _b12(420.0, day="2024-06-01"),
    )
    assert len(classify_measurements(frame)) == 3
    within_a_day = classify_measurements(frame.drop(index=1), window="24h")
    assert within_a_day["b12"].tolist() == ["160 pg/mL", "420 pg/mL"]
    conflicting = classify_measurements(frame, window="24h")
    assert conflicting["b12lab_error"].iloc[0].startswith("duplicate_result: b12")


@settings(max_examples=30)  # each example is a whole classification
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 2, 3, None]),
            st.sampled_from(["2024-03-01", "2024-03-02", "not a date"]),
            st.sampled_from([B12, 0, 42]),
            st.sampled_from([None, LT, GT, 99]),
            st.sampled_from([None, 160.0, 0.1]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_no_group_is_lost(rows: list[tuple[Any, ...]]) -> None:
    frame = pd.DataFrame(
        rows,
        columns=[
            "person_id",
            "measurement_date",
            "measurement_concept_id",
            "operator_concept_id",
            "value_as_number",
        ],
    ).assign(measurement_source_value="2132-9", unit_source_value="pg/mL")
    frame.loc[frame["measurement_concept_id"] == 42, "measurement_source_value"] = "sodium"
    if not (frame["measurement_concept_id"] != 42).any():
        with pytest.raises(ColumnError):
            classify_measurements(frame)
        return
    out = classify_measurements(frame)
    solo = frame["person_id"].isna() | (frame["measurement_date"] == "not a date")
    keys = frame[~solo][["person_id", "measurement_date"]].drop_duplicates()
    assert len(out) == len(keys) + solo.sum()
    assert out["b12lab_ignored_results"].sum() == (frame["measurement_concept_id"] == 42).sum()


def test_the_same_answer_as_classify_long_on_the_same_results() -> None:
    frame = _rows(
        _b12(148.0, operator_concept_id=LT, measurement_datetime="2024-03-01T08:10"),
        {
            "person_id": 1,
            "measurement_date": "2024-03-01",
            "measurement_datetime": "2024-03-01T08:10",
            "measurement_source_value": "13965-9",
            "value_as_number": 18.2,
            "unit_source_value": "umol/L",
        },
    )
    long = pd.DataFrame(
        {
            "patient_id": [1, 1],
            "collected": ["2024-03-01T08:10"] * 2,
            "test": ["2132-9", "13965-9"],
            "value": ["<148", "18.2"],
            "unit": ["pg/mL", "umol/L"],
        }
    )
    ours = classify_measurements(frame)
    theirs = b12lab.classify_long(long, time="collected", unit="unit")
    results = [c for c in theirs.columns if c.startswith("b12lab_") and c != "b12lab_table_sha256"]
    pd.testing.assert_frame_equal(ours[results], theirs[results])


def test_column_names_in_any_case() -> None:
    frame = _rows(_b12(160.0)).rename(columns=str.upper)
    out = classify_measurements(frame)
    assert out["b12"].tolist() == ["160 pg/mL"]
    assert "person_id" in out.columns


def test_missing_and_ambiguous_columns_are_named() -> None:
    with pytest.raises(ColumnError, match="person_id"):
        classify_measurements(_rows(_b12(160.0)).drop(columns="person_id"))
    with pytest.raises(ColumnError, match="measurement_datetime or measurement_date"):
        classify_measurements(
            _rows(_b12(160.0)).drop(columns=["measurement_date", "measurement_datetime"])
        )
    twice = _rows(_b12(160.0)).assign(PERSON_ID=2)
    with pytest.raises(ColumnError, match="keep one"):
        classify_measurements(twice)
    with pytest.raises(ColumnError, match="got dict"):
        classify_measurements({"person_id": [1]})


def _person(**columns: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"person_id": [1, 2, 3], **columns})


def test_sex_and_age_at_collection_from_the_person_table() -> None:
    frame = _rows(
        _b12(160.0, person=1), _b12(160.0, person=2), _b12(160.0, person=3), _b12(160.0, person=4)
    )
    person = _person(
        gender_concept_id=[FEMALE, MALE, 0],
        year_of_birth=[1952, 1952, 1952],
        month_of_birth=[3, 3, None],
        day_of_birth=[1, 2, None],
    )
    with pytest.warns(B12LabWarning, match="1 MEASUREMENT row"):  # person 4 is not listed
        out = classify_measurements(frame, person=person)
    assert out["sex"].tolist() == ["female", "male", None, None]
    assert out["age"].tolist() == [72, 71, None, None]  # the day before the 72nd birthday: 71


def test_ids_of_another_type_than_the_person_tables_are_warned_about() -> None:
    # PERSON read from CSV as text, MEASUREMENT from Parquet as integers: nothing matches
    person = pd.DataFrame({"person_id": ["1", "2"], "gender_concept_id": [FEMALE, MALE]})
    frame = _rows(_b12(160.0, person=1), _b12(160.0, person=2))
    with pytest.warns(B12LabWarning, match="2 MEASUREMENT row.*1 is not '1'"):
        out = classify_measurements(frame, person=person)
    assert out["sex"].tolist() == [None, None]


def test_birth_datetime_gives_the_age() -> None:
    person = _person(birth_datetime=["1950-06-01T00:00", None, None], year_of_birth=[1950] * 3)
    out = classify_measurements(_rows(_b12(160.0)), person=person)
    assert out["age"].tolist() == [73]


def test_birth_datetime_with_a_time_zone_gives_the_age() -> None:
    # ETLs write birth_datetime as a timestamp with a zone (text or a tz-aware column)
    text = _person(birth_datetime=["1950-06-01T00:00:00Z", "1950-06-01T00:00:00+02:00", None])
    aware = _person(birth_datetime=pd.to_datetime(["1950-06-01", None, None]).tz_localize("UTC"))
    frame = _rows(_b12(160.0, person=1), _b12(160.0, person=2))
    assert classify_measurements(frame, person=text)["age"].tolist() == [73, 73]
    assert classify_measurements(frame, person=aware)["age"].tolist() == [73, None]


def test_the_person_table_may_be_arrow() -> None:
    pa = pytest.importorskip("pyarrow")
    person = pa.table({"PERSON_ID": [1], "GENDER_CONCEPT_ID": [FEMALE]})
    assert classify_measurements(_rows(_b12(160.0)), person=person)["sex"].tolist() == ["female"]


def test_a_person_listed_twice_or_context_given_twice_is_refused() -> None:
    with pytest.raises(ColumnError, match="twice"):
        classify_measurements(_rows(_b12(160.0)), person=pd.DataFrame({"person_id": [1, 1]}))
    joined = _rows(_b12(160.0)).assign(age=70)
    with pytest.raises(ColumnError, match="not both"):
        classify_measurements(joined, person=_person(gender_concept_id=[FEMALE] * 3))


def test_context_joined_by_the_caller_is_read() -> None:
    out = classify_measurements(_rows(_b12(160.0)).assign(age=70, sex="F"))
    assert (out["age"].iloc[0], out["sex"].iloc[0]) == (70, "F")


def test_polars_input() -> None:
    pl = pytest.importorskip("polars")
    frame = pl.from_pandas(_rows(_b12(150.0, operator_concept_id=LT)))
    out = classify_measurements(frame)
    assert isinstance(out, pd.DataFrame)
    assert out["b12"].tolist() == ["<150 pg/mL"]


def _duckdb_measurements(value_type: str) -> Any:
    """A connection holding MEASUREMENT as OMOP's DuckDB DDL declares it (value NUMERIC), or
    with the value as another type."""
    duckdb = pytest.importorskip("duckdb")
    connection = duckdb.connect()
    connection.execute(
        f"""CREATE TABLE measurement (
            measurement_id integer NOT NULL, person_id integer NOT NULL,
            measurement_concept_id integer NOT NULL, measurement_date date NOT NULL,
            measurement_datetime TIMESTAMP NULL, operator_concept_id integer NULL,
            value_as_number {value_type} NULL, unit_concept_id integer NULL,
            measurement_source_value varchar(50) NULL, unit_source_value varchar(50) NULL,
            value_source_value varchar(50) NULL)"""
    )
    connection.execute(
        "INSERT INTO measurement VALUES "
        "(1, 1, 3000593, '2024-03-01', '2024-03-01 08:10', NULL, 0.4567, NULL, '2132-9', "
        "'ng/mL', NULL), "
        "(2, 2, 3000593, '2024-03-02', NULL, 4171756, 50, NULL, '2132-9', 'pg/mL', '<50')"
    )
    return connection


def test_duckdb_relation_input() -> None:
    connection = _duckdb_measurements("DOUBLE")
    out = classify_measurements(connection.sql("SELECT * FROM measurement"))
    assert out["b12"].tolist() == ["0.4567 ng/mL", "<50 pg/mL"]
    assert out["b12lab_group_start"].tolist() == [
        pd.Timestamp("2024-03-01 08:10"),
        pd.Timestamp("2024-03-02"),
    ]


def test_omop_numeric_keeps_three_decimals_and_cast_gives_plain_numbers() -> None:
    connection = _duckdb_measurements("NUMERIC")
    kept = connection.sql("SELECT value_as_number FROM measurement").fetchall()
    assert [float(value) for (value,) in kept] == [0.457, 50.0]  # 0.4567 was stored as 0.457
    as_stored = classify_measurements(connection.sql("SELECT * FROM measurement"))
    assert as_stored["b12"].tolist() == ["0.457 ng/mL", "<50.000 pg/mL"]
    cast = connection.sql(
        "SELECT * REPLACE (CAST(value_as_number AS DOUBLE) AS value_as_number) FROM measurement"
    )
    assert classify_measurements(cast)["b12"].tolist() == ["0.457 ng/mL", "<50 pg/mL"]


def test_command_line(tmp_path: Path) -> None:
    measurements = tmp_path / "measurement.csv"
    _rows(
        _b12(150.0, person=7, operator_concept_id=LT, unit_source_value=None, unit_concept_id=1001),
        _b12(400.0, person=8, operator_concept_id=4171757),
    ).to_csv(measurements, index=False)
    person = tmp_path / "person.csv"
    pd.DataFrame({"person_id": [7], "gender_concept_id": [FEMALE]}).to_csv(person, index=False)
    out = tmp_path / "out.csv"
    options = ["--omop", "--person", str(person), "--unit-concept", "1001=pg/mL"]
    assert main(["classify", str(measurements), *options, "-o", str(out)]) == 0
    written = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert written["b12"].tolist() == ["<150.0 pg/mL", "400.0 pg/mL"]  # as the file has them
    assert written["sex"].tolist() == ["female", ""]
    assert written["b12lab_error"].iloc[1].startswith("line 3: invalid_value: operator_concept_id")
    record = json.loads(Path(f"{out}.b12lab.json").read_text(encoding="utf-8"))
    assert record["options"]["omop"] == {
        "concept": {},
        "unit_concept": {"1001": "pg/mL"},
        "person": str(person),
        "window": None,
    }
    assert (record["rows_in"], record["rows_out"]) == (2, 2)


def test_command_line_reads_parquet_and_refuses_long_with_omop(tmp_path: Path) -> None:
    path = tmp_path / "measurement.parquet"
    _rows(_b12(0.4567, unit_source_value="ng/mL")).to_parquet(path)
    out = tmp_path / "out.csv"
    assert main(["classify", str(path), "--omop", "-o", str(out)]) == 0
    assert pd.read_csv(out)["b12"].tolist() == ["0.4567 ng/mL"]
    assert main(["classify", str(path), "--omop", "--long"]) == 2
    assert main(["classify", str(path), "--omop", "--concept", "42"]) == 2


def test_large_person_ids_and_a_missing_one_keep_their_digits() -> None:
    big = 2**60 + 1
    frame = _rows(_b12(160.0, person=big), _b12(170.0, person=None), _b12(160.0, person=big))
    frame["person_id"] = pd.array([big, None, big], dtype="Int64")
    out = classify_measurements(frame)
    assert out["person_id"].tolist() == [big, pd.NA]
    assert out["b12"].tolist() == ["160 pg/mL", "170 pg/mL"]


def test_times_with_offsets_are_compared_in_utc_and_dates_are_midnight_utc() -> None:
    pa = pytest.importorskip("pyarrow")
    utc = datetime.UTC
    frame = pa.table(
        {
            "person_id": [1, 1, 2],
            "measurement_date": pa.array(
                [datetime.date(2024, 3, 1)] * 2 + [datetime.date(2024, 3, 2)]
            ),
            "measurement_datetime": pa.array(
                [datetime.datetime(2024, 3, 1, 8, 10, tzinfo=utc)] * 2 + [None],
                pa.timestamp("us", tz="UTC"),
            ),
            "measurement_concept_id": [B12, 0, B12],
            "measurement_source_value": ["2132-9", "13964-2", "2132-9"],
            "value_as_number": [160.0, 0.52, 400.0],
            "unit_source_value": ["pg/mL", "umol/L", "pg/mL"],
        }
    )
    out = classify_measurements(frame)
    assert out["b12lab_group_start"].tolist() == [
        pd.Timestamp("2024-03-01 08:10", tz="UTC"),
        pd.Timestamp("2024-03-02", tz="UTC"),
    ]
    assert out["mma"].tolist() == ["0.52 umol/L", None]


def test_text_times_with_different_offsets_are_one_collection_if_the_same_instant() -> None:
    frame = _rows(
        _b12(160.0, measurement_datetime="2024-03-31T08:10+01:00"),
        _mma(0.52, 1, measurement_concept_id=0, measurement_datetime="2024-03-31T09:10+02:00"),
    )
    out = classify_measurements(frame)
    assert len(out) == 1
    assert out["mma"].tolist() == ["0.52 umol/L"]
    mixed = frame.assign(measurement_datetime=["2024-03-31T08:10+01:00", "2024-03-31T08:10"])
    with pytest.raises(ColumnError, match="with and without a UTC offset"):
        classify_measurements(mixed)


def test_context_columns_chosen_by_name_are_read_from_arrow_too() -> None:
    pa = pytest.importorskip("pyarrow")
    frame = pa.Table.from_pandas(_rows(_b12(160.0)).assign(AGE_AT_DRAW=70, unused=[[1, 2]]))
    out = classify_measurements(frame, columns={"age": "AGE_AT_DRAW"})
    assert out["age"].tolist() == [70]
    with pytest.raises(ColumnError, match="not both"):
        classify_measurements(
            frame, columns={"age": "AGE_AT_DRAW"}, person=_person(gender_concept_id=[FEMALE] * 3)
        )


def test_row_errors_and_names_must_match_the_rows() -> None:
    frame = _rows(_b12(160.0, operator_concept_id=1), _b12(400.0, person=2))
    out = classify_measurements(frame, row_names=["line 2", "line 3"], row_errors=["", "ragged"])
    assert out["b12lab_error"].str[:13].tolist() == ["line 2: inval", "ragged"]
    with pytest.raises(InvalidValueError, match="row_names"):
        classify_measurements(frame, row_names=["line 2"])
    with pytest.raises(InvalidValueError, match="row_errors"):
        classify_measurements(frame, row_errors=[""])


def _mma(value: float, person: int, **more: Any) -> dict[str, Any]:
    return {
        "person_id": person,
        "measurement_date": "2024-03-01",
        "measurement_source_value": "13964-2",
        "value_as_number": value,
        "unit_source_value": "umol/L",
        **more,
    }


def test_range_low_and_high_are_the_reported_range_when_asked() -> None:
    rows = pd.DataFrame(
        [
            _mma(0.45, 1, range_low=0.0, range_high=0.5),  # normal by its own range
            _mma(0.45, 2, range_high=0.44),  # high by its own range, upper limit only
            _mma(0.45, 3),  # no range: the laboratory table (0.40), visibly
            _mma(0.45, 4, range_low=0.0, range_high=0.45),  # limits are inclusive
        ]
    )
    table = classify_measurements(rows)
    assert list(table["b12lab_mma_band"]) == ["high"] * 4
    reported = classify_measurements(rows, use_reported_ranges=True)
    assert list(reported["b12lab_mma_band"]) == ["normal", "high", "high", "normal"]
    sources = ["reported", "reported", "table", "reported"]
    assert list(reported["b12lab_mma_range_source"]) == sources
    assert list(reported["b12lab_mma_reported_range"])[:2] == ["0-0.5 umol/L", "<=0.44 umol/L"]


def test_reported_ranges_need_the_range_columns() -> None:
    with pytest.raises(ColumnError, match="range_low or range_high"):
        classify_measurements(_rows(_b12(150)), use_reported_ranges=True)


def test_command_line_omop_reported_ranges(tmp_path: Path) -> None:
    source = tmp_path / "measurement.csv"
    pd.DataFrame([_mma(0.45, 1, range_low=0.0, range_high=0.5)]).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    assert main(["classify", str(source), "--omop", "--reported-ranges", "-o", str(out)]) == 0
    assert pd.read_csv(out)["b12lab_mma_band"].item() == "normal"
    record = json.loads(out.with_name(out.name + ".b12lab.json").read_text(encoding="utf-8"))
    assert record["reported_ranges"]["column"] == "range_low, range_high"
    given = ["classify", str(source), "--omop", "--reference-range-column", "range_high"]
    assert main(given) == 2


@pytest.mark.parametrize(
    ("source", "analyte"),
    [
        ("LOINC:2132-9", "b12"),
        ("loinc | 2132-9", "b12"),
        ("2132-9 Vitamin B12 [Mass/volume] in Serum or Plasma", "b12"),
        ("2132-9", "b12"),
        ("Vitamin B12", "b12"),
    ],
)
def test_a_source_value_that_starts_with_a_loinc_code_is_read_by_it(
    source: str, analyte: str
) -> None:
    row = _b12(150, measurement_source_value=source)
    row["measurement_concept_id"] = 0
    out = classify_measurements(_rows(row, _b12(300, person=2)))
    assert out.loc[0, analyte] == "150 pg/mL"
    assert out.loc[0, "b12lab_error"] == ""


def test_a_source_value_with_a_code_b12lab_does_not_read_stays_unread() -> None:
    row = _b12(150, measurement_source_value="718-7 Hemoglobin")
    row["measurement_concept_id"] = 0
    out = classify_measurements(_rows(row, _b12(300, person=2)))
    assert out.loc[0, "b12lab_error"].startswith("no_known_test")
