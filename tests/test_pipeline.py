"""One pipeline: each way in reads cells and context the same way, and says the same words."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pint
import pytest

import b12lab

FIXTURES = Path(__file__).parent / "fixtures" / "tables"


def _one(**cells: object) -> pd.Series:
    column = {}
    for name, value in cells.items():
        holder = np.empty(1, dtype=object)
        holder[0] = value
        column[name] = holder
    return b12lab.classify_frame(pd.DataFrame(column), explain=True).iloc[0]


def test_censored_result_spanning_bands_has_no_band_and_ind_in_both() -> None:
    single = b12lab.classify(b12="<200 ng/L").markers["b12"]
    row = _one(b12="<200 ng/L")
    assert (single.band, single.interpretation) == (None, "IND")
    assert (row["b12lab_b12_band"], row["b12lab_b12_interpretation"]) == ("", "IND")
    assert single.note == row["b12lab_b12_note"] == "censored result spans more than one band"


def test_frame_names_the_markers_a_flag_rests_on() -> None:
    row = _one(b12="400 pmol/L", mma="0.6 umol/L", hcy="25 umol/L")
    assert row["b12lab_flag_markers"] == "functional_deficiency: mma"
    single = b12lab.classify(b12="400 pmol/L", mma="0.6 umol/L", hcy="25 umol/L")
    assert [f.markers for f in single.flags if f.id == "functional_deficiency"] == [("mma",)]
    hcy_only = _one(b12="400 pmol/L", hcy="25 umol/L")
    assert hcy_only["b12lab_flag_markers"] == "functional_deficiency: hcy"


@pytest.mark.parametrize("word", ["hemolysed", "QNS", "Quantity  not sufficient", "pending"])
def test_no_result_words_are_one_visible_note(word: str) -> None:
    row = _one(b12=word, mma="0.5 umol/L")
    spelled = " ".join(word.lower().split())
    assert row["b12lab_error"] == ""
    assert row["b12lab_b12_note"] == f"no result: {spelled}"
    assert np.isnan(row["b12lab_b12"])
    marker = b12lab.classify(b12=word, mma="0.5 umol/L").markers["b12"]
    assert marker.value is None
    assert marker.note == f"no result: {spelled}"
    assert marker.band is None


@pytest.mark.parametrize(
    "quantity",
    [
        pint.UnitRegistry().Quantity(160, "pg/mL"),
        pint.get_application_registry().Quantity(160, "pg/mL"),
        b12lab.registry.Quantity(160, "pg/mL"),
    ],
    ids=["own-registry", "application-registry", "b12lab-registry"],
)
def test_quantities_of_any_registry_and_pairs_read_alike(quantity: object) -> None:
    expected = b12lab.classify(b12="160 pg/mL").markers["b12"].value
    assert expected is not None
    assert b12lab.classify(b12=quantity).markers["b12"].value == expected  # type: ignore[arg-type]
    for cell in (quantity, (160, "pg/mL")):
        row = _one(b12=cell)
        assert row["b12lab_error"] == ""
        assert row["b12lab_b12"] == pytest.approx(expected.magnitude)
        assert row["b12lab_category"] == "deficiency_likely"


def test_cells_that_cannot_be_hashed_are_row_errors() -> None:
    out = b12lab.classify_frame(
        pd.DataFrame({"b12": pd.Series([[1, 2], {"a": 1}, "160 pg/mL"], dtype=object)})
    )
    assert list(out["b12lab_error"].str.split(":").str[0]) == [
        "invalid_value",
        "invalid_value",
        "",
    ]


@pytest.mark.parametrize(
    ("header", "analyte", "value"),
    [
        ("vitamin_b12_pmol_l", "b12", 160.0),
        ("B12_pg_ml", "b12", 160 * 1000 / 1355.37),
        ("hcy_umol_l", "hcy", 160.0),
        ("Folate (nmol/L)", "folate", 160.0),
    ],
)
def test_unit_suffixes_in_headers_are_read(header: str, analyte: str, value: float) -> None:
    out = b12lab.classify_frame(pd.DataFrame({header: [160]}))
    assert out[f"b12lab_{analyte}"].iloc[0] == pytest.approx(value)


def test_a_header_naming_an_analyte_without_its_volume_is_read_and_needs_a_unit() -> None:
    out = b12lab.classify_frame(pd.DataFrame({"hcy_umol": [12.0]}))
    assert out["b12lab_error"].iloc[0].startswith("unknown_unit: hcy")
    out = b12lab.classify_frame(pd.DataFrame({"hcy_umol": [12.0]}), units={"hcy": "umol/L"})
    assert out["b12lab_hcy_band"].iloc[0] == "normal"


def test_columns_that_look_like_results_and_are_not_read_are_reported() -> None:
    frame = pd.DataFrame({"b12": ["160 pg/mL"], "b12_comment": ["repeat"], "MMA flag": ["H"]})
    with pytest.warns(b12lab.UnusedColumnWarning, match="'b12_comment', 'MMA flag'"):
        b12lab.classify_frame(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b12lab.classify_frame(frame[["b12"]])


@pytest.mark.parametrize(
    "headers",
    [["B12 (pg/mL)", "B12 (pmol/L)"], ["Vitamin B12", "cobalamin"], ["age", "Age"]],
)
def test_two_columns_for_one_analyte_are_refused(headers: list[str]) -> None:
    frame = pd.DataFrame({h: ["160 pg/mL" if "12" in h or "cob" in h else 50] for h in headers})
    if "age" in headers:
        frame["b12"] = "160 pg/mL"
    with pytest.raises(b12lab.ColumnError, match="stand for"):
        b12lab.classify_frame(frame)


def test_every_row_names_its_table_and_laboratory_table() -> None:
    lab = b12lab.tables.load_file(FIXTURES / "sex-stratified-lab.toml")
    frame = pd.DataFrame({"b12": ["300 pmol/L"], "hcy": ["14 umol/L"], "sex": ["F"]})
    default = b12lab.classify_frame(frame)
    own = b12lab.classify_frame(frame, laboratory=lab)
    assert default["b12lab_laboratory"].iloc[0] == "generic-us-lab@2"
    assert own["b12lab_laboratory"].iloc[0] == lab.key
    assert own["b12lab_table"].iloc[0] == default["b12lab_table"].iloc[0] == "nice-ng239@2"
    assert "b12lab_table_sha256" not in own
    alone = b12lab.classify_frame(frame, table="generic-us-lab")
    assert alone["b12lab_laboratory"].iloc[0] == ""


@pytest.mark.parametrize("sex", ["U", "unknown", "X", " Not  known "])
def test_unknown_sex_is_not_given_with_a_note(sex: str) -> None:
    single = b12lab.classify(b12="300 pmol/L", sex=sex)
    row = _one(b12="300 pmol/L", sex=sex)
    assert single.notes == (f"sex {sex!r} read as not given",)
    assert row["b12lab_notes"] == f"sex {sex!r} read as not given"
    assert row["b12lab_error"] == ""
    assert row["b12lab_category"] == single.category.value


def test_context_is_read_alike_by_classify_and_frames() -> None:
    text = b12lab.classify(b12="300 pmol/L", mma="0.43 umol/L", age="85", pregnant="no")
    typed = b12lab.classify(b12="300 pmol/L", mma="0.43 umol/L", age=85, pregnant=False)
    assert text == typed
    row = _one(b12="300 pmol/L", mma="0.43 umol/L", age="85", pregnant="no")
    assert row["b12lab_category"] == text.category.value
    assert row["b12lab_flags"] == ";".join(f.id for f in text.flags)


@pytest.mark.parametrize("pregnant", [True, "yes", 1])
def test_pregnant_and_male_is_a_conflicting_context_error(pregnant: object) -> None:
    with pytest.raises(b12lab.ConflictingContextError, match="pregnant") as caught:
        b12lab.classify(b12="300 pmol/L", sex="male", pregnant=pregnant)  # type: ignore[arg-type]
    assert caught.value.code == b12lab.ErrorCode.CONFLICTING_CONTEXT
    row = _one(b12="300 pmol/L", sex="M", pregnant=pregnant)
    assert row["b12lab_error"] == f"conflicting_context: {caught.value}"
    assert row["b12lab_category"] == ""


def test_error_codes_are_one_enum() -> None:
    codes = {member.value for member in b12lab.ErrorCode}
    for error in (
        b12lab.UnknownUnitError,
        b12lab.DimensionError,
        b12lab.InvalidValueError,
        b12lab.ImplausibleValueError,
        b12lab.ConflictingContextError,
        b12lab.InputFileError,
        b12lab.ColumnError,
        b12lab.TableNotFoundError,
    ):
        assert error.code in codes
    assert {"ragged_row", "repeated_header", "duplicate_result"} <= codes


@pytest.mark.parametrize(
    ("table", "note"),
    [
        ("bsh-2014@1", "not interpreted: neither bsh-2014@1 nor generic-us-lab@1 has bands for it"),
        ("generic-us-lab@1", "not interpreted: generic-us-lab@1 has no bands for it"),
        ("bsh-2014", "not interpreted: neither bsh-2014@2 nor generic-us-lab@2 has bands for it"),
        ("generic-us-lab", "not interpreted: generic-us-lab@2 has no bands for it"),
    ],
)
def test_a_marker_no_table_reads_says_so(table: str, note: str) -> None:
    result = b12lab.classify(b12="1600 ng/L", holotc="20 pmol/L", folate="3 nmol/L", table=table)
    assert result.markers["holotc"].note == note
    assert result.markers["folate"].note is None  # the laboratory table reads it for its flags
    assert "low_folate" in {f.id for f in result.flags}
