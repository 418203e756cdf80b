"""FHIR R4 in and out: Observations read as a long export, one derived Observation per group.

Every Bundle written is validated with the ``fhir.resources`` R4B models.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given, settings
from hypothesis import strategies as st

import b12lab
from b12lab import fhir
from b12lab._io.cli import main
from b12lab.errors import B12LabWarning, InputFileError
from tests.strategies import canonical_values

UCUM = "http://unitsofmeasure.org"
WHEN = "2024-03-01T08:30:00+01:00"


def observation(
    ident: str,
    loinc: str,
    value: Any = None,
    unit: str | None = "pg/mL",
    *,
    subject: str = "Patient/p1",
    status: str | None = "final",
    when: str | None = WHEN,
    comparator: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An Observation as a laboratory sends it; ``value`` makes a ``valueQuantity``."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ident,
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": subject},
    }
    if status is not None:
        resource["status"] = status
    if when is not None:
        resource["effectiveDateTime"] = when
    if value is not None:
        quantity: dict[str, Any] = {"value": value}
        if unit is not None:
            quantity |= {"unit": unit, "system": UCUM, "code": unit}
        if comparator is not None:
            quantity["comparator"] = comparator
        resource["valueQuantity"] = quantity
    return resource | extra


def bundle(*resources: dict[str, Any], kind: str = "searchset") -> dict[str, Any]:
    entries = [
        {"fullUrl": f"https://lab.example/fhir/{r['resourceType']}/{r['id']}", "resource": r}
        if "id" in r
        else {"resource": r}
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def valid(result: pd.DataFrame) -> dict[str, Any]:
    """The output Bundle, after the R4B models accept it (and its JSON text)."""
    written = fhir.to_bundle(result)
    Bundle.model_validate(written)
    Bundle.model_validate_json(fhir.bundle_json(result))
    assert written["type"] == "collection"
    assert len(written["entry"]) == len(result)
    return written


def derived(written: dict[str, Any], subject: str) -> dict[str, Any]:
    (found,) = [
        e["resource"]
        for e in written["entry"]
        if e["resource"].get("subject", {}).get("reference") == subject
    ]
    resource: dict[str, Any] = found
    return resource


@pytest.fixture
def laboratory_bundle() -> dict[str, Any]:
    """Two patients: p1 with B12, MMA, a haemoglobin and a Patient; p2 with a preliminary B12."""
    return bundle(
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1952-05-01"},
        observation(
            "b12",
            "2132-9",
            160,
            "pg/mL",
            referenceRange=[
                {"low": {"value": 180, "unit": "pg/mL"}, "high": {"value": 914, "unit": "pg/mL"}}
            ],
        ),
        observation("mma", "13964-2", Decimal("0.52"), "umol/L"),
        observation("hb", "718-7", Decimal("12.1"), "g/dL"),
        observation("b12-p2", "2132-9", 400, subject="Patient/p2", status="preliminary"),
    )


def test_a_bundle_gives_one_row_and_one_derived_observation_per_group(
    laboratory_bundle: dict[str, Any],
) -> None:
    result = fhir.classify_bundle(laboratory_bundle, explain=True)
    assert list(result["subject"]) == ["Patient/p1", "Patient/p2"]
    p1, p2 = result.iloc[0], result.iloc[1]
    assert p1["b12lab_category"] == "deficiency_likely"
    assert (p1["age"], p1["sex"]) == (71, "female")  # a Patient in the Bundle gives context
    assert p1["b12lab_effective"] == WHEN  # as the laboratory wrote it
    assert p1["b12lab_derived_from"].split() == [
        "https://lab.example/fhir/Observation/b12",
        "https://lab.example/fhir/Observation/mma",
    ]
    assert "718-7" in p1["b12lab_set_aside"]
    assert p2["b12lab_category"] == ""
    assert p2["b12lab_error"].startswith("invalid_value: https://lab.example/fhir/Observation")
    assert "'preliminary' is not final" in p2["b12lab_error"]

    written = valid(result)
    first = derived(written, "Patient/p1")
    assert first["status"] == "final"
    assert first["valueCodeableConcept"]["coding"][0] == {
        "system": fhir.CATEGORY_SYSTEM,
        "code": "deficiency_likely",
        "display": "Vitamin B12 deficiency likely",
    }
    assert first["effectiveDateTime"] == WHEN
    assert [d["reference"] for d in first["derivedFrom"]] == p1["b12lab_derived_from"].split()
    assert "nice-ng239@2 (sha256 " in first["method"]["text"]
    assert "laboratory table generic-us-lab@2 (sha256 " in first["method"]["text"]
    notes = [n["text"] for n in first["note"]]
    assert "rule: confirmed-deficiency" in notes
    assert any("deficient band" in note for note in notes)  # the reasons
    for key in ("nice-ng239@2", "generic-us-lab@2"):
        for caveat in b12lab.tables.load(key).model.caveats:
            assert any(f"Caveat of {key}: {caveat}" in note for note in notes)
    bands = {
        c["code"]["coding"][0]["code"]: c["interpretation"][0]["coding"][0]["code"]
        for c in first["component"]
    }
    assert bands == {"b12": "L", "mma": "H"}

    failed = derived(written, "Patient/p2")
    assert "valueCodeableConcept" not in failed
    assert "component" not in failed
    assert failed["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert failed["note"][0]["text"] == p2["b12lab_error"]


def test_the_laboratory_observations_are_never_changed(laboratory_bundle: dict[str, Any]) -> None:
    before = copy.deepcopy(laboratory_bundle)
    fhir.to_bundle(fhir.classify_bundle(laboratory_bundle))
    assert laboratory_bundle == before


def test_a_comparator_is_censoring() -> None:
    result = fhir.classify_bundle(
        bundle(observation("b12", "2132-9", 50, "pmol/L", comparator="<"))
    )
    assert result["b12"].iloc[0] == "<50 pmol/L"
    assert result["b12lab_b12_censoring"].iloc[0] == "<"
    component = valid(result)["entry"][0]["resource"]["component"][0]
    assert component["valueQuantity"]["comparator"] == "<"


def test_the_ucum_code_comes_first_then_the_unit() -> None:
    by_code = observation("a", "2132-9", 100, subject="Patient/a")
    by_code["valueQuantity"] |= {"code": "pmol/L", "unit": "picomoles per litre"}
    local = observation("b", "2132-9", 100, subject="Patient/b")
    local["valueQuantity"] |= {"system": "urn:local:units", "code": "PMOLL", "unit": "pmol/L"}
    unit_only = observation("c", "2132-9", 100, subject="Patient/c")
    del unit_only["valueQuantity"]["code"], unit_only["valueQuantity"]["system"]
    frame = fhir.read_observations(bundle(by_code, local, unit_only))
    assert list(frame["unit"]) == ["pmol/L", "pmol/L", "pg/mL"]
    result = fhir.classify_bundle(bundle(by_code, local, unit_only))
    assert list(result["b12lab_b12"].round(3)) == [100.0, 100.0, 73.781]


def test_values_keep_every_digit_and_the_reference_range_is_text() -> None:
    text = json.dumps(bundle(observation("m", "13964-2", 1, "umol/L")))
    text = text.replace('"value": 1', '"value": 0.123456789012345678901')
    frame = fhir.read_observations(text)
    assert frame["value"].iloc[0] == "0.123456789012345678901"
    python = fhir.read_observations(
        bundle(
            observation("f", "13964-2", 0.52, "umol/L"),  # a float, as Python callers give it
            observation("n", "13964-2", float("nan"), "umol/L"),
            observation("s", "13964-2", "0.52", "umol/L"),  # a JSON string is no number
        )
    )
    assert python["value"].iloc[0] == "0.52"
    assert python["error"].iloc[0] == ""
    assert "valueQuantity.value is not finite" in python["error"].iloc[1]
    assert "valueQuantity.value is a str, not a number" in python["error"].iloc[2]
    ranged = observation(
        "h",
        "13965-9",
        9,
        "umol/L",
        referenceRange=[{"high": {"value": Decimal("15.0"), "code": "umol/L", "system": UCUM}}],
    )
    texts = observation("f", "2284-8", 9, "ng/mL", referenceRange=[{"text": "see report"}])
    frame = fhir.read_observations(bundle(ranged, texts))
    assert list(frame["reference_range"]) == ["<=15.0 umol/L", "see report"]


@pytest.mark.parametrize(
    ("status", "used"),
    [
        ("final", True),
        ("amended", True),
        ("corrected", True),
        ("preliminary", False),
        ("registered", False),
        (None, False),
    ],
)
def test_only_final_amended_or_corrected_results_are_classified(
    status: str | None, used: bool
) -> None:
    result = fhir.classify_bundle(bundle(observation("b", "2132-9", 160, status=status)))
    assert (result["b12lab_category"].iloc[0] != "") is used
    assert (result["b12lab_error"].iloc[0] == "") is used
    if not used:
        assert "is not final" in result["b12lab_error"].iloc[0]


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error"])
def test_an_observation_that_is_not_a_result_is_set_aside_with_a_note(status: str) -> None:
    result = fhir.classify_bundle(
        bundle(
            observation("b", "2132-9", 160, status=status),
            observation("m", "13964-2", Decimal("0.52"), "umol/L"),
        )
    )
    (row,) = result.to_dict("records")
    assert row["b12lab_error"] == ""
    assert "b12" not in row  # not read: no result column
    assert f"Observation/b (status {status}) is not a result" in row["b12lab_set_aside"]
    notes = [n["text"] for n in valid(result)["entry"][0]["resource"]["note"]]
    assert row["b12lab_set_aside"] in notes


def test_bad_input_gives_an_error_per_group_and_loses_no_group() -> None:
    """Unknown codes, a missing unit, a value that is no number, a preliminary result, no value
    at all: each subject still gets its group, and each error names the Observation."""
    no_value = observation("none", "13964-2", subject="Patient/e")
    no_value["dataAbsentReason"] = {"coding": [{"code": "not-performed"}]}
    boolean = observation("bool", "2132-9", subject="Patient/f", valueBoolean=True)
    inputs = bundle(
        observation("ok", "2132-9", 400, subject="Patient/a"),
        observation("hb", "718-7", 12, "g/dL", subject="Patient/b"),
        observation("plt", "777-3", 250, "10*3/uL", subject="Patient/b"),
        observation("nounit", "2132-9", 160, None, subject="Patient/c"),
        observation("text", "2132-9", subject="Patient/d", valueString="see comment"),
        no_value,
        boolean,
        observation("early", "13965-9", 9, "umol/L", subject="Patient/g", status="preliminary"),
    )
    result = fhir.classify_bundle(inputs).set_index("subject")
    assert list(result.index) == [f"Patient/{p}" for p in "abcdefg"]
    errors = result["b12lab_error"]
    assert errors["Patient/a"] == ""
    assert errors["Patient/b"].startswith("no_known_test: none of the 2 result(s)")
    assert errors["Patient/b"].endswith("by the LOINC codes listed in b12lab.ANALYTES")
    assert result.at["Patient/b", "b12lab_set_aside"] == (
        "2 observation(s) with a test b12lab does not read (718-7, 777-3)"
    )
    assert errors["Patient/c"].startswith(
        "unknown_unit: https://lab.example/fhir/Observation/nounit"
    )
    assert errors["Patient/d"].startswith("invalid_value: b12: ")
    assert "no value (dataAbsentReason not-performed)" in errors["Patient/e"]
    assert "valueBoolean is not a quantity" in errors["Patient/f"]
    assert "status 'preliminary' is not final" in errors["Patient/g"]
    assert (result.loc[errors != "", "b12lab_category"] == "").all()
    written = valid(result.reset_index())
    absent = [e for e in written["entry"] if "dataAbsentReason" in e["resource"]]
    assert len(absent) == 6


def test_a_bundle_with_no_result_b12lab_reads_is_refused_clearly() -> None:
    with pytest.raises(InputFileError, match="none of the 2 Observation"):
        fhir.classify_bundle(
            bundle(observation("hb", "718-7", 12, "g/dL"), observation("x", "777-3", 250, "/nL"))
        )
    with pytest.raises(InputFileError, match="is a Patient"):
        fhir.classify_bundle({"resourceType": "Patient", "id": "p"})
    with pytest.raises(InputFileError, match="not a FHIR resource"):
        fhir.classify_bundle("[1, 2]")


def test_red_cell_folate_is_not_serum_folate_and_the_other_codes_are_read() -> None:
    result = fhir.classify_bundle(
        bundle(
            observation("rbc", "2283-0", 300, "ng/mL"),  # folate in red blood cells
            observation("fol", "14732-2", 20, "nmol/L"),  # serum folate, moles
            observation("hcy", "2428-1", Decimal("1.2"), "mg/L"),  # homocysteine, mass
            observation("b12", "14685-2", 300, "pmol/L"),  # total B12, moles
        )
    )
    row = result.iloc[0]
    assert row["folate"] == "20 nmol/L"
    assert row["hcy"] == "1.2 mg/L"
    assert row["b12lab_ignored_results"] == 1
    assert "2283-0" in row["b12lab_set_aside"]


def test_groups_follow_classify_long_times_and_window() -> None:
    early = observation("b", "2132-9", 160, when="2024-03-01T08:30:00+01:00")
    later = observation("m", "13964-2", Decimal("0.52"), "umol/L", when="2024-03-01T09:30:00Z")
    dated = observation("f", "2284-8", 9, "ng/mL", when="2024-03-05")  # a date, no offset
    by_time = fhir.classify_bundle(bundle(early, later, dated))
    assert len(by_time) == 3
    visits = fhir.classify_bundle(bundle(early, later, dated), window="24h")
    assert len(visits) == 2
    first = visits.iloc[0]
    assert (first["b12lab_effective"], first["b12lab_effective_end"]) == (
        "2024-03-01T08:30:00+01:00",
        "2024-03-01T09:30:00Z",
    )
    period = valid(visits)["entry"][0]["resource"]["effectivePeriod"]
    assert period == {"start": "2024-03-01T08:30:00+01:00", "end": "2024-03-01T09:30:00Z"}
    frame = fhir.read_observations(bundle(early, later, dated))
    long = b12lab.classify_long(
        frame.drop(columns=["observation", "error", "note"]),
        patient="subject",
        time="effective",
        window="24h",
    )
    assert list(long["b12lab_category"]) == list(visits["b12lab_category"])


def test_subjects_by_identifier_and_observations_without_subject_or_time() -> None:
    plain = observation("a", "2132-9", 160)
    del plain["subject"], plain["effectiveDateTime"]
    by_identifier = observation("b", "2132-9", 160, when=None)
    by_identifier["subject"] = {"identifier": {"system": "urn:mrn", "value": "42"}}
    by_identifier["effectivePeriod"] = {"start": "2024-01-01T10:00:00Z"}
    garbled = observation("c", "2132-9", 160, when="on Tuesday")
    result = fhir.classify_bundle(bundle(plain, by_identifier, garbled))
    assert len(result) == 3
    rows = {row["b12lab_derived_from"]: row for row in result.to_dict("records")}
    garbled_row = rows["https://lab.example/fhir/Observation/c"]
    assert garbled_row["b12lab_error"].startswith("invalid_value: https://lab.example/fhir/")
    assert "collection time is not a FHIR dateTime" in garbled_row["b12lab_error"]
    assert rows["https://lab.example/fhir/Observation/a"]["b12lab_category"] != ""
    entries = [e["resource"] for e in valid(result)["entry"]]
    subjects = [e.get("subject") for e in entries]
    assert {"identifier": {"system": "urn:mrn", "value": "42"}} in subjects
    assert None in subjects  # an Observation without subject: a derived one without subject


def test_a_subject_contained_in_its_observation_never_joins_two_observations() -> None:
    # "#p" is local to each Observation: here two different patients
    alice = observation(
        "a", "2132-9", 400, subject="#p", contained=[{"resourceType": "Patient", "id": "p"}]
    )
    bob = observation(
        "b",
        "13964-2",
        0.9,
        "umol/L",
        subject="#p",
        contained=[{"resourceType": "Patient", "id": "p"}],
    )
    result = fhir.classify_bundle(bundle(alice, bob))
    assert len(result) == 2
    assert list(result["b12lab_category"]) == ["deficiency_unlikely", "deficiency_possible"]
    assert [e["resource"].get("subject") for e in valid(result)["entry"]] == [None, None]


def test_a_patient_contained_in_its_observation_gives_that_observations_age_and_sex() -> None:
    """MMA 0.44 µmol/L is normal from 65 (0.46) and high below (0.40) in generic-us-lab@2."""
    older = {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1950-02-01"}
    younger = {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1990-02-01"}
    first = observation("a", "13964-2", 0.44, "umol/L", subject="#p", contained=[older])
    second = observation("b", "13964-2", 0.44, "umol/L", subject="#p", contained=[younger])
    elsewhere = observation("c", "13964-2", 0.44, "umol/L", subject="#q", contained=[older])
    result = fhir.classify_bundle(bundle(first, second, elsewhere))
    assert list(result["age"]) == [74, 34, None]
    assert list(result["sex"]) == ["female", "male", None]
    assert list(result["b12lab_mma_band"]) == ["normal", "high", "high"]
    assert [e["resource"].get("subject") for e in valid(result)["entry"]] == [None, None, None]


def test_loinc_by_its_oid_is_loinc_and_a_local_coding_first_is_passed_over() -> None:
    by_oid = observation("b", "2132-9", 160)
    by_oid["code"]["coding"][0]["system"] = "urn:oid:2.16.840.1.113883.6.1"
    local_first = observation("m", "13964-2", 0.52, "umol/L")
    local_first["code"]["coding"].insert(0, {"system": "urn:lab:local", "code": "MMA"})
    result = fhir.classify_bundle(bundle(by_oid, local_first))
    assert result["b12lab_derived_from"].iloc[0].split() == [
        "https://lab.example/fhir/Observation/b",
        "https://lab.example/fhir/Observation/m",
    ]
    assert result["b12lab_category"].iloc[0] == "deficiency_likely"


def test_a_mistyped_year_beside_a_time_to_the_nanosecond_is_still_a_time() -> None:
    # nine decimals alone would make the times nanoseconds, where the year 1024 cannot be
    early = observation("b", "2132-9", 160, when="1024-03-01T08:30:00Z")
    precise = observation("m", "13964-2", 0.52, "umol/L", when="2024-03-01T08:30:00.123456789Z")
    result = fhir.classify_bundle(bundle(early, precise), window="24h")
    assert list(result["b12lab_error"]) == ["", ""]
    assert list(result["b12lab_effective"]) == [
        "1024-03-01T08:30:00Z",
        "2024-03-01T08:30:00.123456789Z",  # written back as the laboratory wrote it
    ]


def test_other_resources_are_counted_in_a_warning() -> None:
    inputs = bundle(
        observation("b", "2132-9", 160),
        {"resourceType": "Condition", "id": "c"},
        {"resourceType": "Specimen", "id": "s"},
        {"resourceType": "Specimen", "id": "t"},
    )
    with pytest.warns(B12LabWarning, match=r"3 resource\(s\).*Condition \(1\), Specimen \(2\)"):
        fhir.classify_bundle(inputs)


def test_ndjson_and_a_single_observation(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1950-01-01"}
        ),
        json.dumps(observation("b", "2132-9", 160)),
        "{not json",
        json.dumps(observation("m", "13964-2", 0.52, "umol/L")),
    ]
    path = tmp_path / "observations.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = fhir.classify_bundle(path)
    assert len(result) == 2  # the broken line stands alone, as an error
    assert result["b12lab_error"].iloc[1].startswith("unreadable_file: line 3: not a JSON object")
    assert result["sex"].iloc[0] == "male"
    assert result["b12lab_derived_from"].iloc[0] == "Observation/b Observation/m"
    valid(result)
    single = fhir.classify_bundle(json.dumps(observation("b", "2132-9", 160)).encode())
    assert single["b12lab_category"].iloc[0] == "deficiency_likely"


def test_text_with_a_byte_order_mark_is_read_as_fhir_not_as_a_file_name() -> None:
    # a file read with encoding="utf-8" keeps its BOM; CRLF, blank lines, no final newline
    lines = [
        json.dumps(observation("b", "2132-9", 160)),
        json.dumps(observation("m", "13964-2", 1)),
    ]
    ndjson = "\ufeff" + "\r\n\r\n".join(lines)
    result = fhir.classify_bundle(ndjson)
    assert result["b12lab_derived_from"].iloc[0] == "Observation/b Observation/m"
    document = "\ufeff" + json.dumps(bundle(observation("b", "2132-9", 160)))
    assert fhir.read_observations(document)["value"].iloc[0] == "160"


@pytest.mark.parametrize("empty", ["", "  \n", b""])
def test_empty_input_is_no_fhir_resource_not_a_file_name(empty: str | bytes) -> None:
    with pytest.raises(InputFileError, match="not a FHIR resource"):
        fhir.classify_bundle(empty)  # "" was read as the file name ".", a directory


@pytest.mark.parametrize("wrong", [None, 42, [observation("b", "2132-9", 160)]])
def test_input_of_another_type_is_a_type_error_that_says_what_is_read(wrong: Any) -> None:
    with pytest.raises(TypeError, match="FHIR input is a Bundle or Observation"):
        fhir.classify_bundle(wrong)


def test_a_number_beyond_any_float_keeps_its_exponent() -> None:
    # written out, 1e200000000 would be 200 million digits in the frame and the message
    text = json.dumps(bundle(observation("b", "2132-9", 1), observation("m", "13964-2", 2)))
    text = text.replace('"value": 1', '"value": 1e200000000').replace(
        '"value": 2', '"value": 1.5E-400'
    )
    frame = fhir.read_observations(text)
    assert list(frame["value"]) == ["1E+200000000", "1.5E-400"]
    result = fhir.classify_bundle(text)
    assert result["b12lab_error"].iloc[0].startswith("invalid_value: b12: 1E+200000000 pg/mL")


def test_command_line_round_trip(
    tmp_path: Path, laboratory_bundle: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(laboratory_bundle, default=float), encoding="utf-8")
    out = tmp_path / "derived.json"
    assert main(["classify", str(source), "-o", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    Bundle.model_validate(written)
    assert [e["resource"]["subject"]["reference"] for e in written["entry"]] == [
        "Patient/p1",
        "Patient/p2",
    ]
    assert "4 rows in, 2 rows out, 1 with errors" in capsys.readouterr().err  # Observations in

    table = tmp_path / "derived.csv"
    assert main(["classify", str(source), "-o", str(table), "--strict"]) == 1
    assert list(pd.read_csv(table)["b12lab_category"].fillna("")) == ["deficiency_likely", ""]
    record = json.loads((tmp_path / "derived.csv.b12lab.json").read_text(encoding="utf-8"))
    assert record["options"]["fhir"] == {"window": None}

    assert main(["classify", str(source), "--to", "fhir"]) == 0
    Bundle.model_validate_json(capsys.readouterr().out)

    text = tmp_path / "results.txt"
    text.write_text(json.dumps(laboratory_bundle, default=float), encoding="utf-8")
    assert main(["classify", str(text), "--from", "fhir", "--window", "24h"]) == 0
    assert capsys.readouterr().out.startswith('"subject",')


def test_command_line_refuses_fhir_output_for_csv_and_options_that_do_not_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("b12\n160 pg/mL\n", encoding="utf-8")
    assert main(["classify", str(csv), "-o", str(tmp_path / "out.json")]) == 2
    assert "only for FHIR input" in capsys.readouterr().err
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(bundle(observation("b", "2132-9", 160))), encoding="utf-8")
    assert main(["classify", str(source), "--map", "b12=X"]) == 2
    assert "--map do(es) not apply to FHIR input" in capsys.readouterr().err


FHIR_MARKERS = {"b12": "14685-2", "mma": "13964-2", "hcy": "13965-9", "folate": "14732-2"}
UCUM_UNITS = {"b12": "pmol/L", "mma": "umol/L", "hcy": "umol/L", "folate": "nmol/L"}


@st.composite
def laboratory_results(draw: st.DrawFn) -> dict[str, tuple[str, float]]:
    """Some of B12, MMA, homocysteine and folate (at least one): a comparator and a value."""
    chosen = draw(st.sets(st.sampled_from(sorted(FHIR_MARKERS)), min_size=1))
    return {
        analyte: (draw(st.sampled_from(["", "", "<", ">="])), draw(canonical_values(analyte)))
        for analyte in sorted(chosen)
    }


@settings(max_examples=25)
@given(results=laboratory_results(), age=st.none() | st.integers(16, 99))
def test_a_bundle_gets_the_answer_classify_gives_the_same_results(
    results: dict[str, tuple[str, float]], age: int | None
) -> None:
    resources = []
    if age is not None:
        born = f"{2024 - age - 1}-06-01"  # so the patient is ``age`` on 2024-03-01
        resources.append({"resourceType": "Patient", "id": "p1", "birthDate": born})
    for analyte, (comparator, value) in results.items():
        resources.append(
            observation(
                analyte,
                FHIR_MARKERS[analyte],
                Decimal(repr(value)),
                UCUM_UNITS[analyte],
                comparator=comparator or None,
            )
        )
    row = fhir.classify_bundle(bundle(*resources)).iloc[0]
    expected = b12lab.classify(
        **{a: f"{c}{v!r} {UCUM_UNITS[a]}" for a, (c, v) in results.items()}, age=age
    )
    assert row["b12lab_category"] == expected.category
    assert row["b12lab_rule"] == (expected.rule or "")
    assert row["b12lab_error"] == ""


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = (
    "status", "code", "subject", "effectiveDateTime", "effectivePeriod", "valueQuantity",
    "valueString", "dataAbsentReason", "referenceRange", "id",
)  # fmt: skip


@settings(max_examples=25)
@given(
    garbled=st.dictionaries(st.sampled_from(FIELDS), JSON, min_size=1),
    quantity=st.dictionaries(
        st.sampled_from(["value", "comparator", "unit", "code", "system"]), JSON
    ),
)
def test_garbled_observations_never_crash_and_never_vanish(
    garbled: dict[str, Any], quantity: dict[str, Any]
) -> None:
    """Whatever a sender puts in an Observation's fields, the reader answers with a row: the
    good Observation beside it is still classified, and nothing but b12lab's errors is raised."""
    broken = observation("x", "2132-9", 160, subject="Patient/x") | garbled
    odd = observation("y", "13964-2", subject="Patient/y")
    odd["valueQuantity"] = quantity
    frame = fhir.read_observations(bundle(observation("ok", "2132-9", 160), broken, odd))
    assert len(frame) == 3
    try:
        result = fhir.classify_bundle(bundle(observation("ok", "2132-9", 160), broken, odd))
    except b12lab.B12LabError:
        return  # a clear error about the whole input (a time column pandas cannot compare)
    assert (result["subject"] == "Patient/p1").sum() == 1
    assert result.loc[result["subject"] == "Patient/p1", "b12lab_error"].iloc[0] == ""
    valid(result)


def _mma_with(ranges: list[dict[str, Any]] | None, value: str = "0.45") -> dict[str, Any]:
    extra = {} if ranges is None else {"referenceRange": ranges}
    return bundle(observation("mma", "13964-2", Decimal(value), "umol/L", **extra))


def _high(value: str, unit: str = "umol/L", **more: Any) -> dict[str, Any]:
    return {"high": {"value": Decimal(value), "unit": unit, "system": UCUM, "code": unit}} | more


def _typed(code: str) -> dict[str, Any]:
    system = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
    return {"type": {"coding": [{"system": system, "code": code}]}}


@settings(max_examples=25)
@given(
    mma=st.tuples(st.sampled_from(["", "<", ">"]), st.decimals("0.05", "2.00", places=2)),
    hcy=st.decimals("3.0", "40.0", places=1),
    limits=st.tuples(st.decimals("0.20", "0.80", places=2), st.decimals("10", "20", places=0)),
    b12=st.sampled_from(["100", "200", "400"]),
)
def test_reported_ranges_give_the_answer_classify_gives_with_them(
    mma: tuple[str, Decimal], hcy: Decimal, limits: tuple[Decimal, Decimal], b12: str
) -> None:
    comparator, value = mma
    high = [_high(str(limits[0]))], [_high(str(limits[1]))]
    resources = [
        observation("b12", "2132-9", Decimal(b12), "pmol/L"),
        observation("mma", "13964-2", value, "umol/L", comparator=comparator or None),
        observation("hcy", "13965-9", hcy, "umol/L"),
    ]
    resources[1]["referenceRange"], resources[2]["referenceRange"] = high
    row = fhir.classify_bundle(bundle(*resources), use_reported_ranges=True).iloc[0]
    expected = b12lab.classify(
        b12=f"{b12} pmol/L",
        mma=f"{comparator}{value} umol/L",
        hcy=f"{hcy} umol/L",
        reference_ranges={"mma": f"<={limits[0]} umol/L", "hcy": f"<={limits[1]} umol/L"},
    )
    assert row["b12lab_error"] == ""
    assert row["b12lab_category"] == expected.category
    assert row["b12lab_rule"] == (expected.rule or "")
    assert row["b12lab_mma_band"] == (expected.markers["mma"].band or "")  # "": indeterminate
    assert row["b12lab_hcy_band"] == expected.markers["hcy"].band


def test_reported_ranges_are_read_only_when_asked() -> None:
    reported = _mma_with([_high("0.50")])
    assert fhir.classify_bundle(reported)["b12lab_mma_band"].item() == "high"  # table: 0.40
    banded = fhir.classify_bundle(reported, use_reported_ranges=True, explain=True)
    assert banded["b12lab_mma_band"].item() == "normal"
    assert banded["b12lab_mma_range_source"].item() == "reported"
    assert "reported reference range" in banded["b12lab_reasons"].item()
    valid(banded)


@pytest.mark.parametrize(
    ("ranges", "band"),
    [
        ([_high("400", "nmol/L")], "high"),  # 0.45 umol/L = 450 nmol/L
        ([_high("500", "nmol/L")], "normal"),
        ([_high("0.45")], "normal"),  # FHIR limits are inclusive
        ([_high("0.44") | _typed("normal"), _high("0.60") | _typed("treatment")], "high"),
        ([_high("0.50"), _high("0.50")], "normal"),  # the same range twice
        (  # one unit spelled two ways is one unit
            [{"low": {"value": 0, "unit": "µmol/L"}, "high": {"value": 0.44, "code": "umol/L"}}],
            "high",
        ),
    ],
)
def test_the_normal_range_is_read_in_its_own_unit(ranges: list[dict[str, Any]], band: str) -> None:
    out = fhir.classify_bundle(_mma_with(ranges), use_reported_ranges=True)
    assert (out["b12lab_error"].item(), out["b12lab_mma_band"].item()) == ("", band)


@pytest.mark.parametrize(
    "ranges",
    [
        [{"text": "see note"}],
        [_high("0.50"), _high("0.60")],  # which one applies cannot be told
        [
            {
                "low": {"value": 0, "unit": "umol/L", "system": UCUM, "code": "umol/L"},
                "high": {"value": 400, "unit": "nmol/L", "system": UCUM, "code": "nmol/L"},
            }
        ],
    ],
)
def test_a_range_that_cannot_be_read_is_an_error_of_its_group(
    ranges: list[dict[str, Any]],
) -> None:
    out = fhir.classify_bundle(_mma_with(ranges), use_reported_ranges=True)
    assert out["b12lab_error"].item().startswith("invalid_value")
    assert out["b12lab_category"].item() == ""
    assert fhir.classify_bundle(_mma_with(ranges))["b12lab_error"].item() == ""  # not asked


def test_an_observation_without_a_range_keeps_the_table_visibly() -> None:
    out = fhir.classify_bundle(_mma_with(None), use_reported_ranges=True)
    assert out["b12lab_mma_band"].item() == "high"
    assert out["b12lab_mma_range_source"].item() == "table"


def test_command_line_reported_ranges(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(_mma_with([_high("0.50")]), default=float), encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["classify", str(source), "--reported-ranges", "-o", str(out)]) == 0
    assert pd.read_csv(out)["b12lab_mma_band"].item() == "normal"
    record = json.loads(out.with_name(out.name + ".b12lab.json").read_text(encoding="utf-8"))
    assert record["reported_ranges"]["column"] == "referenceRange"
    csv = tmp_path / "wide.csv"
    csv.write_text("b12,mma\n300 pmol/L,0.45 umol/L\n", encoding="utf-8")
    assert main(["classify", str(csv), "--reported-ranges"]) == 2
