"""The yes/no context fields nitrous_oxide and b12_replacement, read like pregnant everywhere.

No shipped table names them yet, so their effect is checked on a copy of NICE NG239 loaded from
a file, with flags that name them.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import b12lab
from b12lab import tables
from b12lab._core.columns import CONTEXT_COLUMNS
from b12lab._core.context import (
    CONTEXT_FIELDS,
    PREGNANT_CODES,
    YES_NO_CODES,
    read_b12_replacement,
    read_nitrous_oxide,
    read_pregnant,
)
from b12lab._core.pipeline import Inputs
from b12lab._core.table_schema import CONTEXT_LABELS
from b12lab._io.cli import main
from tests.strategies import CONTEXT_FLAGS_TOML, context_flagged_table_text

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("nitrous_oxide", "b12_replacement")
FLAG = {"nitrous_oxide": "nitrous_oxide_use", "b12_replacement": "b12_replacement_started"}
NOUN = {"nitrous_oxide": "nitrous oxide use", "b12_replacement": "B12 replacement"}


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory) -> tables.Table:
    """NICE NG239 as shipped, renamed, with flags on the new fields, loaded from a file."""
    path = tmp_path_factory.mktemp("tables") / "context-test.toml"
    path.write_text(context_flagged_table_text(), encoding="utf-8")
    return tables.load_file(path)


def _flags(result: b12lab.Result) -> set[str]:
    return {flag.id for flag in result.flags}


def _frame(**columns: list[object]) -> pd.DataFrame:
    """A frame of object columns holding each cell as it is."""
    frame = {}
    for name, values in columns.items():
        column = np.empty(len(values), dtype=object)
        column[:] = values
        frame[name] = column
    return pd.DataFrame(frame)


YES = [True, np.bool_(True), 1, np.int64(1), "yes", "Y", " TRUE ", "1"]
NO = [False, np.bool_(False), 0, np.int64(0), "no", "n", "False", "0"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize(
    ("cell", "flagged_as"), [(c, True) for c in YES] + [(c, False) for c in NO]
)
def test_yes_no_spellings(
    field: str, cell: object, flagged_as: bool, flagged: tables.Table
) -> None:
    result = b12lab.classify(b12="300 pmol/L", table=flagged, **{field: cell})  # type: ignore[arg-type]
    assert (FLAG[field] in _flags(result)) is flagged_as
    assert result.notes == ()
    other = FLAG[next(f for f in FIELDS if f != field)]
    assert other not in _flags(result)


def test_the_yes_no_fields_accept_what_pregnant_accepts_but_pregnancy_words() -> None:
    assert set(PREGNANT_CODES) - set(YES_NO_CODES) == {"pregnant", "not pregnant"}
    for text, code in YES_NO_CODES.items():
        assert read_nitrous_oxide(text).value == read_b12_replacement(text).value == code
        assert read_pregnant(text).value == code


@pytest.mark.parametrize("field", FIELDS)
def test_not_given_raises_no_flag(field: str, flagged: tables.Table) -> None:
    for cell in (None, "", "  ", float("nan"), pd.NA):
        result = b12lab.classify(b12="300 pmol/L", table=flagged, **{field: cell})  # type: ignore[arg-type]
        assert not _flags(result) & set(FLAG.values())
        assert result.notes == ()


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("word", ["unknown", "U", "?", " Not  stated "])
def test_unknown_words_are_not_given_with_a_note(
    field: str, word: str, flagged: tables.Table
) -> None:
    note = f"{NOUN[field]} {word!r} read as not given"
    single = b12lab.classify(b12="300 pmol/L", table=flagged, **{field: word})
    assert single.notes == (note,)
    assert FLAG[field] not in _flags(single)
    cells: list[object] = [word]
    row = b12lab.classify_frame(_frame(b12=["300 pmol/L"], **{field: cells}), table=flagged)
    assert row["b12lab_notes"].iloc[0] == note
    assert row["b12lab_error"].iloc[0] == ""
    assert row["b12lab_category"].iloc[0] == single.category.value


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("cell", ["maybe", "pregnant", "not pregnant", 2, -1, 0.5, "yes please"])
def test_bad_values_are_invalid_and_name_the_field(field: str, cell: object) -> None:
    with pytest.raises(b12lab.InvalidValueError) as caught:
        b12lab.classify(b12="300 pmol/L", **{field: cell})  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"{field}: {cell!r} is not understood; give yes or no (True or False), or leave it out"
    )
    assert caught.value.code == b12lab.ErrorCode.INVALID_VALUE
    assert caught.value.fields == {"analyte": field, "value": repr(cell)}
    out = b12lab.classify_frame(_frame(b12=["300 pmol/L", "300 pmol/L"], **{field: [cell, "no"]}))
    assert list(out["b12lab_error"]) == [f"invalid_value: {caught.value}", ""]
    assert list(out["b12lab_category"]) == ["", "deficiency_unlikely"]


@pytest.mark.parametrize(
    ("context", "first"),
    [
        ({"age": "old", "nitrous_oxide": "maybe"}, "age:"),
        ({"pregnant": "maybe", "nitrous_oxide": "maybe"}, "pregnant:"),
        ({"nitrous_oxide": "maybe", "b12_replacement": "maybe"}, "nitrous_oxide:"),
        ({"sex": "M", "pregnant": "yes", "b12_replacement": "maybe"}, "b12_replacement:"),
        ({"sex": "M", "pregnant": "yes", "nitrous_oxide": "no"}, "pregnant is given as yes"),
    ],
)
def test_first_error_order_is_age_sex_pregnant_new_fields_then_conflicts(
    context: dict[str, object], first: str
) -> None:
    with pytest.raises(b12lab.B12LabError) as caught:
        b12lab.classify(b12="300 pmol/L", **context)  # type: ignore[arg-type]
    assert str(caught.value).startswith(first)
    frame = _frame(b12=["300 pmol/L"], **{key: [value] for key, value in context.items()})
    assert b12lab.classify_frame(frame)["b12lab_error"].iloc[0] == (
        f"{caught.value.code}: {caught.value}"
    )


def test_notes_of_several_fields_join_in_field_order() -> None:
    result = b12lab.classify(b12="300 pmol/L", sex="U", b12_replacement="?", nitrous_oxide="unk")
    notes = (
        "sex 'U' read as not given",
        "nitrous oxide use 'unk' read as not given",
        "B12 replacement '?' read as not given",
    )
    assert result.notes == notes
    frame = _frame(b12=["300 pmol/L"], sex=["U"], b12_replacement=["?"], nitrous_oxide=["unk"])
    assert b12lab.classify_frame(frame)["b12lab_notes"].iloc[0] == "; ".join(notes)


def test_conditions_on_false_and_missing(flagged: tables.Table) -> None:
    """The third test flag: b12_replacement "false" with nitrous_oxide "missing"."""
    untreated = "untreated_exposure_unknown"
    assert untreated in _flags(
        b12lab.classify(b12="300 pmol/L", b12_replacement="no", table=flagged)
    )
    for given in ({"nitrous_oxide": "no"}, {"nitrous_oxide": "yes"}, {"b12_replacement": None}):
        kwargs = {"b12_replacement": "no", **given}
        assert untreated not in _flags(b12lab.classify(b12="300 pmol/L", table=flagged, **kwargs))
    unknown = b12lab.classify(
        b12="300 pmol/L", b12_replacement="no", nitrous_oxide="unknown", table=flagged
    )
    assert untreated in _flags(unknown)


@pytest.mark.parametrize("spec", [s for s in tables.available() if s.endswith("@1")])
def test_first_versions_answer_as_without_the_new_fields(spec: str) -> None:
    given = {"b12": "160 pg/mL", "mma": "0.52 umol/L", "hcy": "20 umol/L", "sex": "F", "age": 70}
    plain = b12lab.classify(**given, table=spec)  # type: ignore[arg-type]
    for yes_no in (True, False):
        with_context = b12lab.classify(
            **given,  # type: ignore[arg-type]
            nitrous_oxide=yes_no,
            b12_replacement=yes_no,
            table=spec,
        )
        assert with_context == plain


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("nitrous_oxide", "nitrous_oxide"),
        ("N2O", "nitrous_oxide"),
        ("Nitrous Oxide", "nitrous_oxide"),
        ("nitrous-oxide", "nitrous_oxide"),
        ("b12_replacement", "b12_replacement"),
        ("B12 replacement", "b12_replacement"),
        ("b12_treatment", "b12_replacement"),
    ],
)
def test_frame_recognises_the_columns(header: str, field: str, flagged: tables.Table) -> None:
    cells: list[object] = ["yes", "no", None, True, "unknown"]
    df = _frame(b12=["300 pmol/L"] * len(cells), **{header: cells})
    out = b12lab.classify_frame(df, table=flagged)
    assert list(out["b12lab_flags"].str.contains(FLAG[field])) == [
        True,
        False,
        False,
        True,
        False,
    ]
    assert out["b12lab_notes"].iloc[4] == f"{NOUN[field]} 'unknown' read as not given"
    assert list(out[header]) == cells  # the input column is kept as it was


def test_frame_maps_columns_by_name(flagged: tables.Table) -> None:
    df = _frame(b12=["300 pmol/L"] * 2, laughing_gas=["no", "yes"], jabs=["yes", "no"])
    out = b12lab.classify_frame(
        df, columns={"nitrous_oxide": "laughing_gas", "b12_replacement": "jabs"}, table=flagged
    )
    assert list(out["b12lab_flags"]) == ["b12_replacement_started", "nitrous_oxide_use"]


def test_two_columns_for_one_field_are_refused() -> None:
    df = _frame(b12=["300 pmol/L"], n2o=["yes"], nitrous_oxide=["yes"])
    with pytest.raises(b12lab.ColumnError, match="stand for nitrous_oxide"):
        b12lab.classify_frame(df)


def test_frame_rows_equal_classify(flagged: tables.Table) -> None:
    people: list[dict[str, object]] = [
        {"b12": "300 pmol/L", "nitrous_oxide": "yes", "b12_replacement": None},
        {"b12": "120 pmol/L", "nitrous_oxide": "no", "b12_replacement": "Y"},
        {"b12": "60 pmol/L", "nitrous_oxide": True, "b12_replacement": 1, "sex": "F"},
        {"b12": "300 pmol/L", "nitrous_oxide": "?", "b12_replacement": "no"},
    ]
    df = _frame(**{key: [p.get(key) for p in people] for key in ("b12", *FIELDS, "sex")})
    out = b12lab.classify_frame(df, table=flagged)
    for row, person in enumerate(people):
        single = b12lab.classify(**person, table=flagged)  # type: ignore[arg-type]
        assert out["b12lab_category"].iloc[row] == single.category.value
        assert out["b12lab_flags"].iloc[row] == ";".join(f.id for f in single.flags)
        assert out["b12lab_notes"].iloc[row] == "; ".join(single.notes)
    assert [set(f.split(";")) & set(FLAG.values()) for f in out["b12lab_flags"]] == [
        {"nitrous_oxide_use"},
        {"b12_replacement_started"},
        {"nitrous_oxide_use", "b12_replacement_started"},
        set(),
    ]


def test_long_format_carries_the_fields_to_each_group(flagged: tables.Table) -> None:
    export = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P2", "P3", "P3"],
            "test": ["b12", "mma", "b12", "mma", "b12", "mma"],
            "value": ["300 pmol/L", "0.2 umol/L"] * 3,
            "N2O": ["Y", "yes", "no", None, "yes", "no"],
            "b12_treatment": [None, None, "yes", "yes", None, None],
        }
    )
    out = b12lab.classify_long(export, table=flagged)
    assert list(out["nitrous_oxide"]) == ["Y", "no", None]  # carried under the field's name
    assert list(out["b12_replacement"]) == [None, "yes", None]
    assert list(out["b12lab_flags"]) == ["nitrous_oxide_use", "b12_replacement_started", ""]
    assert out["b12lab_error"].iloc[2] == (
        "conflicting_context: nitrous_oxide: 2 different values in this group"
    )
    single = b12lab.classify(b12="300 pmol/L", mma="0.2 umol/L", nitrous_oxide="Y", table=flagged)
    assert out["b12lab_category"].iloc[0] == single.category.value


def test_long_format_maps_the_fields_by_name(flagged: tables.Table) -> None:
    export = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "test": ["b12"],
            "value": ["300 pmol/L"],
            "gas": ["yes"],
        }
    )
    out = b12lab.classify_long(export, columns={"nitrous_oxide": "gas"}, table=flagged)
    assert out["b12lab_flags"].iloc[0] == "nitrous_oxide_use"


def test_command_line_recognises_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        "b12,N2O,b12_treatment,Gas\n"
        "300 pmol/L,no,yes,x\n"
        "300 pmol/L,maybe,no,x\n"
        "300 pmol/L,unknown,perhaps,x\n"
        "300 pmol/L,,?,x\n"
    )
    out = tmp_path / "out.csv"
    with pytest.MonkeyPatch.context() as patch:
        summary = io.StringIO()
        patch.setattr(sys, "stderr", summary)
        assert main(["classify", str(path), "-o", str(out)]) == 0
    result = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(result["b12lab_error"]) == [
        "",
        "line 3: invalid_value: nitrous_oxide: 'maybe' is not understood; give yes or no (True "
        "or False), or leave it out",
        "line 4: invalid_value: b12_replacement: 'perhaps' is not understood; give yes or no "
        "(True or False), or leave it out",
        "",
    ]
    assert list(result["b12lab_notes"]) == ["", "", "", "B12 replacement '?' read as not given"]
    assert "b12_treatment" not in summary.getvalue()  # read, so not reported as unused


def test_command_line_maps_the_fields(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("b12,Gas\n300 pmol/L,sometimes\n")
    out = tmp_path / "out.csv"
    assert main(["classify", str(path), "-o", str(out), "--map", "nitrous_oxide=Gas"]) == 0
    result = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert (
        result["b12lab_error"]
        .iloc[0]
        .startswith("line 2: invalid_value: nitrous_oxide: 'sometimes'")
    )


def test_a_table_condition_on_the_fields_needs_their_labels(tmp_path: Path) -> None:
    text = (ROOT / "reference_ranges" / "nice-ng239" / "1.toml").read_text(encoding="utf-8")
    path = tmp_path / "bad.toml"
    path.write_text(text + CONTEXT_FLAGS_TOML.replace("[true]", '["sometimes"]', 1))
    with pytest.raises(b12lab.TableValidationError, match="nitrous_oxide has no band"):
        tables.load_file(path)


def test_every_context_field_is_read_recognised_and_carried() -> None:
    assert list(CONTEXT_FIELDS) == list(CONTEXT_COLUMNS) == list(Inputs(n=0, results={}).context)
    # medicines are read into names; conditions see whether one is a risk medicine
    assert set(CONTEXT_LABELS) == set(CONTEXT_FIELDS) - {"age", "medicines"} | {"risk_medicine"}
    assert CONTEXT_LABELS["nitrous_oxide"] == CONTEXT_LABELS["b12_replacement"] == ("true", "false")
