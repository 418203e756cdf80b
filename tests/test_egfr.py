"""eGFR derived from creatinine (CKD-EPI 2021) when a table's ``[derived.egfr]`` asks for it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import b12lab
from b12lab import tables
from b12lab._core.units import conversion_factor
from tests.conftest import DERIVED_EGFR, egfr_lab_text

CKD_EPI = "CKD-EPI 2021 creatinine equation"


def _write(directory: Path, text: str, name: str = "lab.toml") -> tables.Table:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return tables.load_file(path)


@pytest.fixture(scope="session")
def lab(egfr_lab: tables.Table) -> tables.Table:
    return egfr_lab


@pytest.mark.parametrize(
    ("creatinine", "age", "sex", "expected"),
    [
        ("0.9 mg/dL", 55, "female", 75.4988),
        ("1.0 mg/dL", 40, "male", 97.575),
        ("0.6 mg/dL", 30, "female", 123.758),
        ("300 µmol/L", 70, "male", 18.69),  # 3.3936 mg/dL with creatinine at 113.12 g/mol
    ],
)
def test_worked_examples(
    lab: tables.Table, creatinine: str, age: int, sex: str, expected: float
) -> None:
    result = b12lab.classify(creatinine=creatinine, age=age, sex=sex, table=lab)
    marker = result.markers["egfr"]
    assert marker.value is not None
    decimals = len(str(expected).split(".")[1])
    assert round(marker.value.magnitude, decimals) == expected
    assert marker.value.to("mL/min/bsa173").magnitude == marker.value.magnitude
    assert marker.derived_from is not None
    shown = result.markers["creatinine"].given
    assert marker.derived_from.startswith(f"{CKD_EPI} from serum creatinine {shown}, age {age}")
    assert "generic-us-lab@99" in marker.derived_from
    assert "Inker LA" in marker.derived_from


def test_renal_impairment_flag_from_creatinine_alone(lab: tables.Table) -> None:
    result = b12lab.classify(mma="0.6 µmol/L", creatinine="300 µmol/L", age=70, sex="M", table=lab)
    assert [f.id for f in result.flags if f.id == "renal_impairment"] == ["renal_impairment"]
    flag = next(f for f in result.flags if f.id == "renal_impairment")
    assert flag.markers == ("egfr",)
    assert result.markers["egfr"].band == "reduced"
    assert result.markers["egfr"].interpretation == "L"


def test_a_given_egfr_wins(lab: tables.Table) -> None:
    result = b12lab.classify(
        creatinine="300 µmol/L", egfr="80 mL/min/1.73m2", age=70, sex="M", table=lab
    )
    marker = result.markers["egfr"]
    assert marker.value is not None
    assert marker.value.magnitude == 80
    assert marker.derived_from is None
    assert marker.band == "not_reduced"
    assert "renal_impairment" not in {f.id for f in result.flags}


@pytest.mark.parametrize(
    ("context", "why"),
    [
        ({"age": 17, "sex": "M"}, "age under 18 years"),
        ({"age": 50, "sex": "unknown"}, "sex not given"),
        ({"age": 50}, "sex not given"),
        ({"sex": "F"}, "age not given"),
        ({}, "age not given, sex not given"),
    ],
)
def test_no_derivation_without_an_adult_of_known_sex(
    lab: tables.Table, context: dict[str, object], why: str
) -> None:
    result = b12lab.classify(creatinine="300 µmol/L", table=lab, **context)  # type: ignore[arg-type]
    assert "egfr" not in result.markers
    assert "renal_impairment" not in {f.id for f in result.flags}
    assert f"eGFR not derived from creatinine ({CKD_EPI}): {why}" in result.notes


def test_no_note_without_creatinine_or_with_a_given_egfr(lab: tables.Table) -> None:
    assert b12lab.classify(b12="300 pmol/L", age=17, table=lab).notes == ()
    given = b12lab.classify(creatinine="90 µmol/L", egfr="70 mL/min/1.73m2", age=17, table=lab)
    assert given.notes == ()


def test_a_censored_creatinine_gives_a_censored_egfr(lab: tables.Table) -> None:
    low = b12lab.classify(creatinine="<44 µmol/L", age=70, sex="M", table=lab).markers["egfr"]
    at_44 = b12lab.classify(creatinine="44 µmol/L", age=70, sex="M", table=lab).markers["egfr"]
    assert low.censoring == ">"
    assert low.value is not None
    assert at_44.value is not None
    assert low.value.magnitude == pytest.approx(at_44.value.magnitude, rel=1e-12)
    assert low.band == "not_reduced"
    at_most = b12lab.classify(creatinine="<=44 µmol/L", age=70, sex="M", table=lab)
    assert at_most.markers["egfr"].censoring == ">="
    spanning = b12lab.classify(creatinine=">80 µmol/L", age=70, sex="M", table=lab)
    marker = spanning.markers["egfr"]
    assert marker.censoring == "<"
    assert marker.band is None
    assert marker.indeterminate_because_censored
    assert marker.note == "censored result spans more than one band"


def test_a_guideline_takes_the_equation_from_its_laboratory_table(lab: tables.Table) -> None:
    result = b12lab.classify(
        b12="300 pmol/L", creatinine="300 µmol/L", age=70, sex="M", laboratory=lab
    )
    assert "renal_impairment" in {f.id for f in result.flags}
    assert result.markers["egfr"].derived_from is not None
    first = b12lab.classify(
        b12="300 pmol/L", creatinine="300 µmol/L", age=70, sex="M", table="nice-ng239@1"
    )
    assert "egfr" not in first.markers
    default = b12lab.classify(b12="300 pmol/L", creatinine="300 µmol/L", age=70, sex="M")
    assert default.markers["egfr"].derived_from is not None  # generic-us-lab@2 derives it
    assert "renal_impairment" in {f.id for f in default.flags}


PEOPLE = pd.DataFrame(
    {
        "creatinine": [
            "0.9 mg/dL",
            "300 µmol/L",
            "<44 µmol/L",
            ">80 µmol/L",
            None,
            "1 mg/dL",
            "90 µmol/L",
            "hemolysed",
            "300 µmol/L",
            "0.9 mg/dL",
        ],
        "egfr": [None, None, None, None, None, None, "45 mL/min/1.73m2", None, "pending", None],
        "age": [55, 70, 70, 70, 50, 17, 60, 40, 70, "unknown"],
        "sex": ["F", "M", "M", "M", "F", "M", "F", "M", "M", "F"],
    }
)


def test_frame_says_what_classify_says(lab: tables.Table) -> None:
    out = b12lab.classify_frame(PEOPLE, table=lab, explain=True)
    assert out["b12lab_egfr_derived"].dtype == bool
    assert out["b12lab_egfr_derived"].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 1, 0]
    for row, person in enumerate(PEOPLE.to_dict("records")):
        given = {k: v for k, v in person.items() if isinstance(v, str | int)}
        single = b12lab.classify(**given, table=lab)  # type: ignore[arg-type]
        got = out.iloc[row]
        marker = single.markers.get("egfr")
        assert got["b12lab_egfr_derived"] == (
            marker is not None and marker.derived_from is not None
        )
        if marker is None or marker.value is None:
            assert math.isnan(got["b12lab_egfr"])
        else:
            assert got["b12lab_egfr"] == pytest.approx(marker.value.magnitude, rel=1e-12)
            assert got["b12lab_egfr_censoring"] == marker.censoring.value
            assert got["b12lab_egfr_band"] == (marker.band or "")
        assert got["b12lab_egfr_note"] == ((marker.note if marker else None) or "")
        assert got["b12lab_notes"] == "; ".join(single.notes)
        assert got["b12lab_flags"] == ";".join(f.id for f in single.flags)
        assert got["b12lab_category"] == single.category.value
    assert out["b12lab_notes"].iloc[5].endswith("age under 18 years")
    assert out["b12lab_notes"].iloc[9] == (
        f"age 'unknown' read as not given; eGFR not derived from creatinine ({CKD_EPI}): "
        "age not given"
    )


def test_derivation_runs_once_per_distinct_creatinine_age_and_sex(lab: tables.Table) -> None:
    frame = pd.concat([PEOPLE] * 50, ignore_index=True)
    out = b12lab.classify_frame(frame, table=lab)
    again = b12lab.classify_frame(PEOPLE, table=lab)
    np.testing.assert_array_equal(
        out["b12lab_egfr"].to_numpy()[: len(PEOPLE)], again["b12lab_egfr"].to_numpy()
    )
    assert out["b12lab_egfr_derived"].sum() == 50 * again["b12lab_egfr_derived"].sum()


@pytest.mark.parametrize("table", [t for t in tables.available() if t.endswith("@1")])
def test_first_versions_add_no_column(table: str | None) -> None:
    out = b12lab.classify_frame(PEOPLE, table=table)
    assert "b12lab_egfr_derived" not in out.columns
    without = b12lab.classify_frame(PEOPLE.drop(columns="egfr"), table=table)
    assert not [c for c in without.columns if c.startswith("b12lab_egfr")]
    assert "eGFR" not in "".join(out["b12lab_notes"])


def test_a_table_without_the_section_behaves_as_before(tmp_path: Path) -> None:
    plain = _write(tmp_path, egfr_lab_text(""))
    out = b12lab.classify_frame(PEOPLE, table=plain)
    shipped = b12lab.classify_frame(PEOPLE, table="generic-us-lab@1")
    assert list(out.columns) == list(shipped.columns)
    for column in ("b12lab_egfr", "b12lab_egfr_band", "b12lab_flags", "b12lab_notes"):
        assert out[column].astype(str).tolist() == shipped[column].astype(str).tolist()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('"ckd-epi-2021-creatinine"', '"mdrd"'), "not one b12lab implements"),
        (('creatinine_unit = "mg/dL"', 'creatinine_unit = "mmHg"'), "creatinine_unit"),
        (("male = 0.9 }", "male = 0 }"), "kappa must be above zero"),
        (("numerator = 142", "numerator = nan"), "numerator"),
        (("min_age = 18", "min_age = -1"), "min_age"),
        (("min_age = 18", "min_age = 18\nrace_factor = 1.159"), "race_factor"),
    ],
)
def test_a_broken_section_is_refused(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = egfr_lab_text(DERIVED_EGFR.replace(*change))
    with pytest.raises(b12lab.TableValidationError, match=message):
        _write(tmp_path, text)


def test_the_table_must_band_egfr(tmp_path: Path) -> None:
    text = egfr_lab_text()
    start = text.index("[variables.egfr]")
    text = text[:start] + text[text.index("[variables.age]") :]
    flag = text.index('[[flags]]\nid = "renal_impairment"')
    text = text[:flag] + text[text.index("[[flags]]", flag + 1) :]
    with pytest.raises(b12lab.TableValidationError, match="no bands for egfr"):
        _write(tmp_path, text)


TO_MG_DL = conversion_factor("creatinine", "µmol/L", "mg/dL")


def _derived(lab: tables.Table, creatinine: str, age: float, sex: str) -> float:
    marker = b12lab.classify(creatinine=creatinine, age=age, sex=sex, table=lab).markers["egfr"]
    assert marker.value is not None
    assert marker.derived_from is not None
    return float(marker.value.magnitude)


@given(
    low=st.floats(min_value=10, max_value=2000),
    factor=st.floats(min_value=1.001, max_value=10),
    age=st.floats(min_value=18, max_value=110),
    sex=st.sampled_from(["female", "male"]),
)
def test_egfr_falls_as_creatinine_rises_whatever_the_unit(
    lab: tables.Table, low: float, factor: float, age: float, sex: str
) -> None:
    high = low * factor
    at_low = _derived(lab, f"{low!r} µmol/L", age, sex)
    at_high = _derived(lab, f"{high!r} µmol/L", age, sex)
    assert at_high < at_low
    in_mg_dl = _derived(lab, f"{low * TO_MG_DL!r} mg/dL", age, sex)
    assert in_mg_dl == pytest.approx(at_low, rel=1e-9)


def test_a_zero_creatinine_derives_no_egfr() -> None:
    result = b12lab.classify(b12="500 ng/L", creatinine="0 umol/L", age=50, sex="F")
    assert "egfr" not in result.markers
    assert result.notes == (
        "eGFR not derived from creatinine (CKD-EPI 2021 creatinine equation): "
        "creatinine is not above zero",
    )
    below = b12lab.classify(b12="500 ng/L", creatinine="<10 umol/L", age=50, sex="F")
    assert below.markers["egfr"].censoring == ">"
    assert below.markers["egfr"].band == "not_reduced"
