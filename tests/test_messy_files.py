"""Files as laboratory systems really export them: encodings, dialects, ragged and odd lines.

The invariant throughout: rows out equal rows in, in order, and every row is either classified
or carries an error that names its line and reason.
"""

from __future__ import annotations

import string
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12lab._io.cli import main


def classify_file(path: Path, *options: str) -> pd.DataFrame:
    out = path.with_name(path.stem + ".out.csv")
    assert main(["classify", str(path), "-o", str(out), *options]) == 0
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def test_windows_1252_export_with_micro_sign(tmp_path: Path) -> None:
    path = tmp_path / "cp1252.csv"
    path.write_bytes("id,mma\r\nA,0.52 µmol/L\r\nB,0.2 µmol/L\r\n".encode("cp1252"))
    assert b"\xb5" in path.read_bytes()
    result = classify_file(path, "--encoding", "cp1252")
    assert list(result["b12lab_mma_band"]) == ["high", "normal"]


def test_undecodable_bytes_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cp1252.csv"
    path.write_bytes("id,mma\nA,0.2 umol/L\nB,0.52 µmol/L\n".encode("cp1252"))
    assert main(["classify", str(path), "-o", str(tmp_path / "out.csv")]) == 2
    message = capsys.readouterr().err
    assert "line 3" in message
    assert "--encoding cp1252" in message
    assert not (tmp_path / "out.csv").exists()


def test_semicolons_and_decimal_commas_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "de.csv"
    path.write_text(
        "Patient;Vitamin B12;MMA\nA;160 pg/mL;0,52 µmol/L\nB;1.476,0 pmol/L;0,20 µmol/L\n"
    )
    result = classify_file(path)
    assert list(result["b12lab_mma"]) == ["0.52", "0.2"]
    assert list(result["b12lab_b12"].astype(float).round(1)) == [118.0, 1476.0]


def test_ambiguous_thousands_is_a_row_error_until_the_decimal_mark_is_given(tmp_path: Path) -> None:
    path = tmp_path / "ambiguous.csv"
    path.write_text("b12;mma\n1,476 pmol/L;0,2 umol/L\n")
    assert "thousands or a decimal comma" in classify_file(path)["b12lab_error"].iloc[0]
    assert classify_file(path, "--decimal", ".")["b12lab_error"].iloc[0].startswith("line 2:")
    assert classify_file(path, "--decimal", ",")["b12lab_b12"].iloc[0] == "1.476"


def test_tab_delimited(tmp_path: Path) -> None:
    path = tmp_path / "tabs.tsv"
    path.write_text("b12\tmma\n160 pg/mL\t0.52 umol/L\n")
    assert classify_file(path)["b12lab_category"].iloc[0] == "deficiency_likely"


def test_unclear_delimiter_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "both.csv"
    path.write_text("b12;mma,age\n1;2,3\n")
    assert main(["classify", str(path)]) == 2
    assert "--delimiter" in capsys.readouterr().err
    assert len(classify_file(path, "--delimiter", ";")) == 1


def test_ragged_blank_repeated_header_and_trailing_separator_lines(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "id,b12,comment,\n"  # trailing separator: an unnamed last column
        "A,160 pg/mL,ok,\n"
        "B,400 pmol/L\n"  # too few fields
        "\n"  # blank line: not a row
        "C,300 pmol/L,x,y,z\n"  # too many fields
        "id,b12,comment,\n"  # the header again
        "D,100 pmol/L,fine,\n"
    )
    result = classify_file(path)
    assert list(result["id"]) == ["A", "B", "C", "id", "D"]  # a ragged row keeps its fields
    errors = list(result["b12lab_error"])
    assert errors[0] == errors[4] == ""
    assert errors[1] == "line 3: ragged_row: expected 4 fields, found 2"
    assert errors[2] == "line 5: ragged_row: expected 4 fields, found 5"
    assert errors[3] == "line 6: repeated_header: this line repeats the header"
    assert list(result["b12lab_category"]) == ["deficiency_likely", "", "", "", "deficiency_likely"]


def test_ragged_lines_keep_the_fields_they_have(tmp_path: Path) -> None:
    """Too few fields are padded with empty cells; too many keep the first header-width ones."""
    path = tmp_path / "ragged.csv"
    path.write_text(
        "id;b12;comment\n"
        "S1;160 pg/mL\n"
        'S2;"400;pmol/L";"two\nlines";extra;"more"\n'
        "S3;300 pmol/L;fine\n"
    )
    result = classify_file(path)
    assert list(result["id"]) == ["S1", "S2", "S3"]
    assert list(result["b12"]) == ["160 pg/mL", "400;pmol/L", "300 pmol/L"]
    assert list(result["comment"]) == ["", "two\nlines", "fine"]
    assert list(result["b12lab_error"]) == [
        "line 2: ragged_row: expected 3 fields, found 2",
        "line 3: ragged_row: expected 3 fields, found 5",
        "",
    ]
    assert list(result["b12lab_category"]) == ["", "", "deficiency_unlikely"]


def test_duplicated_header_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fine = tmp_path / "fine.csv"
    fine.write_text("note,b12,note\nx,160 pg/mL,y\n")
    result = classify_file(fine)
    assert list(result.columns[:3]) == ["note", "b12", "note.1"]
    twice = tmp_path / "twice.csv"
    twice.write_text("b12,b12\n160 pg/mL,400 pmol/L\n")
    assert main(["classify", str(twice)]) == 2
    assert "'b12' more than once" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cell", "category", "error"),
    [
        ("1,476 pmol/L", "deficiency_unlikely", ""),
        ("+160 pg/mL", "deficiency_likely", ""),
        ("  160 pg/mL  ", "deficiency_likely", ""),
        ("n/a", "insufficient_data", ""),
        ("--", "insufficient_data", ""),
        ("pending", "insufficient_data", ""),
        ("hemolysed", "insufficient_data", ""),
        ("see comment", "", "line 2: invalid_value: b12: cannot read a number"),
    ],
)
def test_value_spellings(tmp_path: Path, cell: str, category: str, error: str) -> None:
    path = tmp_path / "values.csv"
    pd.DataFrame({"b12": [cell]}).to_csv(path, index=False)
    result = classify_file(path, "--decimal", ".")
    assert result["b12lab_category"].iloc[0] == category
    assert result["b12lab_error"].iloc[0].startswith(error)


def test_formulas_are_neutralized_unless_kept(tmp_path: Path) -> None:
    path = tmp_path / "formulas.csv"
    path.write_text('b12,comment\n160 pg/mL,"=HYPERLINK(""http://x"")"\n160 pg/mL,@SUM(A1)\n')
    assert list(classify_file(path)["comment"]) == ['\'=HYPERLINK("http://x")', "'@SUM(A1)"]
    kept = classify_file(path, "--keep-formulas")
    assert list(kept["comment"]) == ['=HYPERLINK("http://x")', "@SUM(A1)"]


CELLS = st.sampled_from(
    ["160 pg/mL", "<100 ng/L", "0,52 umol/L", "n/a", "see comment", "", "1,476", "=1+1", "x\ny"]
)
FIELDS = st.lists(CELLS | st.text(alphabet=string.printable, max_size=6), min_size=1, max_size=5)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(FIELDS, min_size=1, max_size=30))
def test_generated_files_keep_every_row(tmp_path: Path, records: list[list[str]]) -> None:
    """Random ragged records with quotes, newlines and junk: no row is lost or reordered."""

    def quoted(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"'

    lines = ["b12,mma,comment"] + [",".join(quoted(c) for c in r) for r in records]
    path = tmp_path / "generated.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "generated.out.csv"
    assert main(["classify", str(path), "-o", str(out), "--chunk-bytes", "64"]) == 0
    result = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(result) == len(records)
    classified = result["b12lab_category"] != ""
    failed = result["b12lab_error"] != ""
    assert (classified ^ failed).all()
    assert result.loc[failed, "b12lab_error"].str.match(r"line [0-9]+: [a-z_]+: ").all()
