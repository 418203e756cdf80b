"""The medicines context input, and the risk list of a table's ``[medicines]`` section.

NICE NG239 version 2 lists the medicines it names as risk factors, with aliases, and flags
``risk_medicine``; the first versions have no list and answer as before, noting that they read
no medicines.
"""

from __future__ import annotations

import io
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import b12lab
from b12lab import tables
from b12lab._core import context as context_module
from b12lab._core.medicines import medicine_names
from b12lab._io.cli import main

ROOT = Path(__file__).resolve().parents[1]
B12 = "300 pmol/L"
CLASS_HINT = " (where one belongs to a listed class, give the class, e.g. 'proton pump inhibitor')"


def _flags(result: b12lab.Result) -> set[str]:
    return {flag.id for flag in result.flags}


def _frame(**columns: list[object]) -> pd.DataFrame:
    """A frame of object columns holding each cell as it is (lists and sets included)."""
    frame = {}
    for name, values in columns.items():
        column = np.empty(len(values), dtype=object)
        column[:] = values
        frame[name] = column
    return pd.DataFrame(frame)


def _not_listed(*names: str, table: str = "nice-ng239@2") -> str:
    return f"medicines not on the risk list of {table}: {', '.join(names)}{CLASS_HINT}"


def _table_text(name: str) -> str:
    return (ROOT / "reference_ranges" / name).read_text(encoding="utf-8")


MEDICINES_SECTION = _table_text("nice-ng239/2.toml").split("[medicines]\n", 1)[1].split("\n\n")[0]
"""The body of NICE NG239 version 2's ``[medicines]`` section."""


# -- reading a cell ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "names"),
    [
        ("metformin", ("metformin",)),
        ("Metformin; Omeprazole", ("metformin", "omeprazole")),
        ("metformin,omeprazole", ("metformin", "omeprazole")),
        ("metformin | omeprazole", ("metformin", "omeprazole")),
        ("metformin\nomeprazole\r\n", ("metformin", "omeprazole")),
        ("  Proton   PUMP\tinhibitor ", ("proton pump inhibitor",)),
        ("metformin; METFORMIN;; ,", ("metformin",)),
        (["Metformin", "ppi; colchicine"], ("metformin", "ppi", "colchicine")),
        (("aspirin",), ("aspirin",)),
        ({"topiramate", "colchicine"}, ("colchicine", "topiramate")),  # sets in sorted order
        (frozenset({"b", "a"}), ("a", "b")),
        ("none", ()),
        (" NIL ", ()),
        ("", None),
        (" ; | ", None),
        ([], None),
    ],
)
def test_a_cell_gives_its_names(cell: object, names: tuple[str, ...] | None) -> None:
    assert medicine_names(cell) == names


# -- one patient ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "listed"),
    [
        ("metformin", "metformin"),
        ("METFORMIN", "metformin"),
        ("aspirin; Metformin", "metformin"),
        ("ppi", "proton pump inhibitor"),
        ("PPIs", "proton pump inhibitor"),
        ("proton  pump inhibitors", "proton pump inhibitor"),
        ("H2RA", "h2 receptor antagonist"),
        ("h2 blocker", "h2 receptor antagonist"),
        ("colchicine", "colchicine"),
        ("topiramate", "topiramate"),
        ("ppi, proton pump inhibitor", "proton pump inhibitor"),  # one class, named once
        ("metformin | h2 receptor blocker", "metformin, h2 receptor antagonist"),
        (["ppis", "topiramate"], "proton pump inhibitor, topiramate"),
        (("colchicine",), "colchicine"),
        ({"metformin"}, "metformin"),
    ],
)
def test_a_listed_medicine_or_alias_raises_the_flag(cell: object, listed: str) -> None:
    result = b12lab.classify(b12=B12, medicines=cell)  # type: ignore[arg-type]
    assert "risk_medicine" in _flags(result)
    assert result.notes[0] == f"risk medicines: {listed}"
    plain = b12lab.classify(b12=B12)
    assert result.category == plain.category
    assert result.rule == plain.rule


def test_the_flag_cites_its_source_and_table() -> None:
    (flag,) = [
        f for f in b12lab.classify(b12=B12, medicines="ppi").flags if f.id == "risk_medicine"
    ]
    assert flag.table == "nice-ng239@2"
    assert "Pulse" in flag.source
    assert "NASGP" in flag.source
    assert "see the notes" in flag.message


def test_medicines_not_listed_are_named_with_a_hint() -> None:
    result = b12lab.classify(b12=B12, medicines="Omeprazole; aspirin")
    assert "risk_medicine" not in _flags(result)
    assert result.notes == (_not_listed("omeprazole", "aspirin"),)
    both = b12lab.classify(b12=B12, medicines="omeprazole, metformin, PPI")
    assert both.notes == (
        "risk medicines: metformin, proton pump inhibitor",
        _not_listed("omeprazole"),
    )


@pytest.mark.parametrize("cell", [None, "", "  ", " ; ", float("nan"), pd.NA, np.nan, []])
def test_not_given_raises_no_flag_and_no_note(cell: object) -> None:
    result = b12lab.classify(b12=B12, medicines=cell)  # type: ignore[arg-type]
    assert "risk_medicine" not in _flags(result)
    assert result.notes == ()
    assert result == b12lab.classify(b12=B12)


def test_none_is_given_and_lists_no_risk_medicine(tmp_path: Path) -> None:
    """ "none" is an answer (risk_medicine false); "unknown" is no answer (missing), with a note."""
    text = _table_text("nice-ng239/2.toml").replace('id = "nice-ng239"', 'id = "medicines-test"')
    text += (
        '\n[[flags]]\nid = "no_risk_medicine"\nwhen = { risk_medicine = ["false"] }\n'
        'message = "No risk medicine."\nsource = "test flag"\n'
        '\n[[flags]]\nid = "medicines_not_asked"\nwhen = { risk_medicine = ["missing"] }\n'
        'message = "Medicines not asked."\nsource = "test flag"\n'
    )
    path = tmp_path / "medicines-test.toml"
    path.write_text(text, encoding="utf-8")
    table = tables.load_file(path)
    expected = {
        "none": ({"no_risk_medicine"}, ()),
        "aspirin": ({"no_risk_medicine"}, (_not_listed("aspirin", table="medicines-test@2"),)),
        "ppi": ({"risk_medicine"}, ("risk medicines: proton pump inhibitor",)),
        "unknown": ({"medicines_not_asked"}, ("medicines 'unknown' read as not given",)),
        None: ({"medicines_not_asked"}, ()),
    }
    for cell, (flags, notes) in expected.items():
        result = b12lab.classify(b12=B12, medicines=cell, table=table)
        assert (
            _flags(result) & {"risk_medicine", "no_risk_medicine", "medicines_not_asked"} == flags
        )
        assert result.notes == notes


@pytest.mark.parametrize("cell", [5, 2.5, True, {"ppi": 1}, ["metformin", 3], np.int64(7), b"ppi"])
def test_other_values_are_invalid_and_name_the_field(cell: object) -> None:
    with pytest.raises(b12lab.InvalidValueError) as caught:
        b12lab.classify(b12=B12, medicines=cell)  # type: ignore[arg-type]
    assert str(caught.value).startswith("medicines: ")
    assert "give the names as text separated by ';'" in str(caught.value)
    assert caught.value.code == b12lab.ErrorCode.INVALID_VALUE
    assert caught.value.fields["analyte"] == "medicines"
    out = b12lab.classify_frame(_frame(b12=[B12, B12], medicines=[cell, "metformin"]))
    assert list(out["b12lab_error"]) == [f"invalid_value: {caught.value}", ""]
    assert list(out["b12lab_category"]) == ["", "deficiency_unlikely"]


def test_medicines_come_after_the_other_fields_in_errors_and_notes() -> None:
    with pytest.raises(b12lab.InvalidValueError, match=r"^b12_replacement:"):
        b12lab.classify(b12=B12, b12_replacement="maybe", medicines=5)  # type: ignore[arg-type]
    with pytest.raises(b12lab.ConflictingContextError):
        b12lab.classify(b12=B12, sex="M", pregnant="yes", medicines="ppi")
    result = b12lab.classify(b12=B12, sex="U", medicines="metformin; aspirin")
    assert result.notes == (
        "sex 'U' read as not given",
        "risk medicines: metformin",
        _not_listed("aspirin"),
    )


# -- tables that read no medicines ----------------------------------------------------------------


FIRST_VERSIONS = [s for s in tables.available() if s.endswith("@1")]


@pytest.mark.parametrize("spec", FIRST_VERSIONS)
@pytest.mark.parametrize("cell", ["metformin", ["ppi", "aspirin"], "none"])
def test_first_versions_answer_as_without_medicines_and_say_so(spec: str, cell: object) -> None:
    given: dict[str, Any] = {"b12": "160 pg/mL", "mma": "0.52 umol/L", "hcy": "20 umol/L"}
    given |= {"sex": "F", "age": 70}
    plain = b12lab.classify(**given, table=spec)
    with_medicines = b12lab.classify(**given, medicines=cell, table=spec)
    assert with_medicines.category == plain.category
    assert with_medicines.rule == plain.rule
    assert with_medicines.flags == plain.flags
    assert with_medicines.reasons == plain.reasons
    assert with_medicines.markers == plain.markers
    assert with_medicines.table == plain.table
    read_none = () if cell == "none" else (f"medicines not read by {spec}",)
    assert with_medicines.notes == plain.notes + read_none


def test_a_table_without_a_list_says_it_reads_no_medicines() -> None:
    result = b12lab.classify(b12="200 pmol/L", medicines="metformin", table="bsh-2014@2")
    assert result.notes == ("medicines not read by bsh-2014@2",)
    assert "risk_medicine" not in _flags(result)


@pytest.fixture(scope="module")
def lab_with_list(tmp_path_factory: pytest.TempPathFactory) -> tuple[tables.Table, tables.Table]:
    """A guideline with the risk_medicine flag but no list, and a laboratory table with one."""
    folder = tmp_path_factory.mktemp("medicines")
    guideline = _table_text("nice-ng239/2.toml").replace('id = "nice-ng239"', 'id = "no-list"')
    guideline = guideline.replace("[medicines]\n" + MEDICINES_SECTION + "\n\n", "")
    assert "[medicines]" not in guideline
    lab = _table_text("generic-us-lab/2.toml").replace('id = "generic-us-lab"', 'id = "own-lab"')
    lab += "\n[medicines]\n" + MEDICINES_SECTION.replace('"colchicine", ', "") + "\n"
    paths = folder / "no-list.toml", folder / "own-lab.toml"
    for path, text in zip(paths, (guideline, lab), strict=True):
        path.write_text(text, encoding="utf-8")
    return tables.load_file(paths[0]), tables.load_file(paths[1])


def test_the_laboratory_list_decides_when_the_guideline_has_none(
    lab_with_list: tuple[tables.Table, tables.Table],
) -> None:
    guideline, lab = lab_with_list
    result = b12lab.classify(b12=B12, medicines="ppi; colchicine", table=guideline, laboratory=lab)
    assert "risk_medicine" in _flags(result)
    assert result.notes == (
        "risk medicines: proton pump inhibitor",
        _not_listed("colchicine", table="own-lab@2"),
    )
    alone = b12lab.classify(b12=B12, medicines="ppi", table=guideline)  # default laboratory
    assert alone.notes == ("medicines not read by no-list@2",)
    assert "risk_medicine" not in _flags(alone)


def test_the_guideline_list_wins_over_the_laboratory_list(
    lab_with_list: tuple[tables.Table, tables.Table],
) -> None:
    result = b12lab.classify(b12=B12, medicines="colchicine", laboratory=lab_with_list[1])
    assert result.notes == ("risk medicines: colchicine",)


# -- the table section -----------------------------------------------------------------------------


def _with_section(section: str, *, schema: int = 2) -> dict[str, Any]:
    data = tomllib.loads(_table_text("nice-ng239/2.toml"))
    data["schema_version"] = schema
    data["medicines"] = tomllib.loads(section)["medicines"]
    return data


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        (
            '[medicines]\nrisk = ["metformin"]\naliases = { "ppi" = "proton pump inhibitor" }\n'
            'source = "s"',
            "points to 'proton pump inhibitor', which is not in risk",
        ),
        ('[medicines]\nrisk = ["Metformin"]\nsource = "s"', "not a medicine name"),
        (
            '[medicines]\nrisk = ["metformin"]\naliases = { "PPI" = "metformin" }\nsource = "s"',
            "not a medicine name",
        ),
        ('[medicines]\nrisk = ["metformin;ppi"]\nsource = "s"', "not a medicine name"),
        ('[medicines]\nrisk = ["proton  pump inhibitor"]\nsource = "s"', "not a medicine name"),
        ('[medicines]\nrisk = [" metformin"]\nsource = "s"', "not a medicine name"),
        ('[medicines]\nrisk = ["metformin", "metformin"]\nsource = "s"', "more than once"),
        ('[medicines]\nrisk = ["a", "b"]\naliases = { "a" = "b" }\nsource = "s"', "itself in risk"),
        ('[medicines]\nrisk = []\nsource = "s"', "risk"),
        ('[medicines]\nrisk = ["metformin"]', "source"),
        ('[medicines]\nrisk = ["metformin"]\nsource = "s"\nclasses = []', "classes"),
    ],
)
def test_a_broken_section_is_refused_at_load(section: str, problem: str) -> None:
    with pytest.raises(b12lab.TableValidationError, match=problem):
        tables.validate(_with_section(section), origin="broken.toml")


def test_the_section_needs_schema_version_2() -> None:
    data = _with_section('[medicines]\nrisk = ["metformin"]\nsource = "s"', schema=1)
    data["rules"] = data["flags"] = []  # schema 2 conditions aside
    data.pop("cross_check", None)
    with pytest.raises(b12lab.TableValidationError, match="medicines needs schema_version = 2"):
        tables.validate(data, origin="old.toml")


def test_the_table_listing_shows_the_list() -> None:
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdout", out)
        assert main(["tables", "nice-ng239@2"]) == 0
    text = out.getvalue()
    assert "Risk medicines" in text
    assert "  proton pump inhibitor (also: ppi, ppis, proton pump inhibitors)" in text


# -- many rows -------------------------------------------------------------------------------------


def test_frame_rows_equal_classify() -> None:
    people: list[dict[str, Any]] = [
        {"b12": B12, "medicines": "metformin; omeprazole"},
        {"b12": "120 pmol/L", "medicines": ["PPIs", "aspirin"]},
        {"b12": "60 pmol/L", "medicines": None},
        {"b12": B12, "medicines": "unknown", "sex": "U"},
        {"b12": B12, "medicines": "none"},
        {"b12": B12, "medicines": {"h2ra", "topiramate"}},
        {"b12": B12, "medicines": 5},
        {"b12": B12, "medicines": "metformin; omeprazole"},
    ]
    df = _frame(**{key: [p.get(key) for p in people] for key in ("b12", "medicines", "sex")})
    out = b12lab.classify_frame(df)
    for row, person in enumerate(people):
        if person["medicines"] == 5:
            with pytest.raises(b12lab.InvalidValueError) as caught:
                b12lab.classify(**person)
            assert out["b12lab_error"].iloc[row] == f"invalid_value: {caught.value}"
            continue
        single = b12lab.classify(**person)
        assert out["b12lab_category"].iloc[row] == single.category.value
        assert out["b12lab_flags"].iloc[row] == ";".join(f.id for f in single.flags)
        assert out["b12lab_notes"].iloc[row] == "; ".join(single.notes)
    assert list(out["b12lab_flags"].str.contains("risk_medicine")) == [
        True, True, False, False, False, True, False, True,
    ]  # fmt: skip


def test_each_distinct_cell_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    reader = context_module.read_medicines

    def counting(cell: object) -> Any:
        seen.append(cell)
        return reader(cell)

    monkeypatch.setattr(context_module, "read_medicines", counting)
    cells = ["metformin", "ppi; aspirin", None, "Metformin"] * 2_500
    out = b12lab.classify_frame(pd.DataFrame({"b12": [B12] * len(cells), "medicines": cells}))
    assert sorted(map(str, seen)) == sorted(
        map(str, ["metformin", "ppi; aspirin", "Metformin", None])
    )
    assert out["b12lab_flags"].eq("risk_medicine").sum() == 7_500


@pytest.mark.parametrize("header", ["medicines", "Medications", "DRUGS", "current medicines",
                                    "Current_Medicines", "current-medicines"])  # fmt: skip
def test_frame_recognises_the_column(header: str) -> None:
    df = _frame(b12=[B12, B12], **{header: ["ppi", "aspirin"]})
    out = b12lab.classify_frame(df)
    assert list(out["b12lab_flags"]) == ["risk_medicine", ""]
    assert list(out[header]) == ["ppi", "aspirin"]  # the input column is kept as it was


def test_frame_maps_the_column_by_name() -> None:
    df = _frame(b12=[B12], pills=["metformin"])
    out = b12lab.classify_frame(df, columns={"medicines": "pills"})
    assert out["b12lab_flags"].iloc[0] == "risk_medicine"


def test_two_columns_for_medicines_are_refused() -> None:
    df = _frame(b12=[B12], drugs=["ppi"], medications=["ppi"])
    with pytest.raises(b12lab.ColumnError, match="stand for medicines"):
        b12lab.classify_frame(df)


def test_long_format_carries_medicines_to_each_group() -> None:
    export = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P2", "P3", "P3", "P4", "P4"],
            "test": ["b12", "mma"] * 4,
            "value": ["300 pmol/L", "0.2 umol/L"] * 4,
            "medications": [
                "PPI; metformin", "metformin | ppi",  # the same names: one value
                "aspirin", None,
                "metformin", "topiramate",  # two different values
                None, None,
            ],
        }
    )  # fmt: skip
    out = b12lab.classify_long(export)
    assert list(out["medicines"]) == ["PPI; metformin", "aspirin", None, None]
    assert list(out["b12lab_flags"]) == ["risk_medicine", "", "", ""]
    assert out["b12lab_notes"].iloc[1] == _not_listed("aspirin")
    assert out["b12lab_error"].iloc[2] == (
        "conflicting_context: medicines: 2 different values in this group"
    )
    single = b12lab.classify(b12="300 pmol/L", mma="0.2 umol/L", medicines="PPI; metformin")
    assert out["b12lab_notes"].iloc[0] == "; ".join(single.notes)


def test_long_format_maps_medicines_by_name() -> None:
    export = pd.DataFrame(
        {"patient_id": ["P1"], "test": ["b12"], "value": [B12], "rx": ["h2 blocker"]}
    )
    out = b12lab.classify_long(export, columns={"medicines": "rx"})
    assert out["b12lab_flags"].iloc[0] == "risk_medicine"


def test_command_line_recognises_and_maps_the_column(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        'b12,Current Medicines\n300 pmol/L,"metformin, omeprazole"\n300 pmol/L,\n'
        "300 pmol/L,aspirin\n"
    )
    out = tmp_path / "out.csv"
    assert main(["classify", str(path), "-o", str(out)]) == 0
    result = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(result["b12lab_flags"]) == ["risk_medicine", "", ""]
    assert list(result["b12lab_notes"]) == [
        f"risk medicines: metformin; {_not_listed('omeprazole')}",
        "",
        _not_listed("aspirin"),
    ]
    mapped = tmp_path / "mapped.csv"
    mapped.write_text("b12,Rx\n300 pmol/L,PPI\n")
    assert main(["classify", str(mapped), "-o", str(out), "--map", "medicines=Rx"]) == 0
    assert pd.read_csv(out, dtype=str)["b12lab_flags"].iloc[0] == "risk_medicine"
