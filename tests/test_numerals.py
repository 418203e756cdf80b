"""Numbers as laboratories write them: decimal marks, thousands separators, no-result words."""

from __future__ import annotations

import pandas as pd
import pytest

import b12lab
from b12lab._core.numerals import read_number


@pytest.mark.parametrize(
    ("token", "decimal", "value"),
    [
        ("0.52", ".", 0.52),
        ("1,476", ".", 1476.0),
        ("1,476.5", ".", 1476.5),
        ("0,52", ",", 0.52),
        ("1.476,5", ",", 1476.5),
        ("1.476", ",", 1476.0),
        ("0,52", "auto", 0.52),
        ("1.476,5", "auto", 1476.5),
        ("1,476.5", "auto", 1476.5),
        ("+160", ".", 160.0),
        ("1.6e2", ".", 160.0),
        (".5", ".", 0.5),
    ],
)
def test_numbers_read_under_each_decimal_mark(token: str, decimal: str, value: float) -> None:
    assert read_number(token, decimal) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "decimal", "words"),
    [
        ("0,52", ".", "decimal mark"),
        ("1,476", "auto", "thousands or a decimal comma"),
        ("1.476,5", ".", "not '.'"),
        ("12,34,5", ".", "neither"),
        ("1.2.3", ".", "not a number"),
    ],
)
def test_ambiguous_or_malformed_numbers_are_refused(token: str, decimal: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        read_number(token, decimal)  # type: ignore[arg-type]


def test_single_patient_reads_thousands_and_refuses_a_decimal_comma() -> None:
    assert b12lab.measure("1,476 pmol/L", analyte="b12").value == 1476.0
    with pytest.raises(b12lab.InvalidValueError, match="decimal mark"):
        b12lab.measure("0,52 umol/L", analyte="mma")


def test_batch_reads_decimal_commas_when_told() -> None:
    import pandas as pd

    df = pd.DataFrame(
        {"mma": ["0,52 umol/L", "0,30 umol/L"], "b12": ["1.476 pmol/L", "250 pmol/L"]}
    )
    out = b12lab.classify_frame(df, decimal=",")
    assert list(out["b12lab_mma"]) == [0.52, 0.30]
    assert list(out["b12lab_b12"]) == [1476.0, 250.0]


@pytest.mark.parametrize("word", ["n/a", "N/A", "--", "pending", "Hemolysed", " not done "])
def test_no_result_words_are_missing_results(word: str) -> None:
    result = b12lab.classify(b12="250 ng/L", mma=word)
    marker = result.markers["mma"]
    assert marker.value is None
    assert marker.band is None
    assert marker.note == f"no result: {' '.join(word.strip().lower().split())}"
    assert result.rule == "indeterminate-mma-not-measured"


@pytest.mark.parametrize("unit", ["0)", "0*", "(", "**", "/", "^2", "pg/mL)"])
def test_unit_garbage_is_an_unknown_unit(unit: str) -> None:
    with pytest.raises(b12lab.UnknownUnitError):
        b12lab.measure(f"160 {unit}", analyte="b12")


@pytest.mark.parametrize("cell", ["1.476 pmol/L", "1,476 pmol/L", "12.500 umol/L"])
def test_auto_refuses_either_mark_when_the_column_gives_no_evidence(cell: str) -> None:
    out = b12lab.classify_frame(pd.DataFrame({"b12": [cell]}), decimal="auto")
    assert out["b12lab_error"].iloc[0].startswith("invalid_value: b12:")
    assert "thousands or a decimal" in out["b12lab_error"].iloc[0]


@pytest.mark.parametrize(
    ("cells", "values"),
    [
        (["0,52 umol/L", "1,476 umol/L"], [0.52, 1.476]),
        (["0.52 umol/L", "1.476 umol/L"], [0.52, 1.476]),
        (["0,476 umol/L"], [0.476]),
        (["1.476,5 pmol/L", "1,476 nmol/L"], [1476.5, 1476.0]),
    ],
)
def test_auto_reads_a_column_with_the_mark_it_shows(cells: list[str], values: list[float]) -> None:
    analyte = "b12" if "pmol" in cells[0] else "mma"
    out = b12lab.classify_frame(pd.DataFrame({analyte: cells}), decimal="auto")
    assert list(out["b12lab_error"]) == [""] * len(cells)
    assert out[f"b12lab_{analyte}"].tolist() == pytest.approx(values)
