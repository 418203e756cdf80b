"""Files as laboratory systems really export them: encodings, dialects, ragged and odd lines.

The invariant throughout: rows out equal rows in, in order, and every row is either classified
or carries an error that names its line and reason.
"""

from __future__ import annotations

import codecs
import json
import string
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12lab._io import records
from b12lab._io.cli import main
from b12lab._io.reading import read_chunks
from b12lab._io.writing import FORMULA_START, neutralize_formulas
from b12lab.errors import InputFileError


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
    path.write_text("hcy;mma\n1,476 umol/L;0,2 umol/L\n")
    assert "thousands or a decimal comma" in classify_file(path)["b12lab_error"].iloc[0]
    assert classify_file(path, "--decimal", ".")["b12lab_error"].iloc[0].startswith("line 2:")
    assert classify_file(path, "--decimal", ",")["b12lab_hcy"].iloc[0] == "1.476"


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
    # a ragged line's cells may sit in the wrong columns: no value is read from them
    assert [value == "" for value in result["b12lab_b12"]] == [True, True, False]


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


# --- quoting: a quote opens a field only at a field start, and must close ----------------------


def test_unclosed_quote_is_refused_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "unclosed.csv"
    path.write_text('id,b12\nP1,"160 pmol/L\nP2,300 pmol/L\nP3,300 pmol/L\n')
    out = tmp_path / "out.csv"
    assert main(["classify", str(path), "-o", str(out)]) == 2
    assert 'the quote (") that opens a field on line 2 is never closed' in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("chunk_bytes", ["64", "4096", str(16 << 20)])
def test_unclosed_quote_in_a_long_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chunk_bytes: str
) -> None:
    rows = [f"S{i},{300 + i % 7} pmol/L" for i in range(6000)]
    rows[10] = 'S10,"160 pmol/L'
    path = tmp_path / "stray.csv"
    path.write_text("id,b12\n" + "\n".join(rows) + "\n")
    assert (
        main(["classify", str(path), "-o", str(tmp_path / "out.csv"), "--chunk-bytes", chunk_bytes])
        == 2
    )
    assert "on line 12 is never closed" in capsys.readouterr().err


@pytest.mark.parametrize("chunk_bytes", ["64", str(16 << 20)])
def test_a_quote_inside_an_unquoted_field_is_a_character(tmp_path: Path, chunk_bytes: str) -> None:
    rows = [f"S{i},{300 + i % 7} pmol/L,ok" for i in range(400)]
    rows[1] = 'S1,160 pmol/L,O"Brien'
    rows[2] = 'S2,160 pmol/L,"quoted, ""twice"""'
    rows[3] = 'S3,160 pmol/L,"closed"then text"'
    rows[300] = "S300,see comment,ok"
    rows[399] = "S399,pmol/L,ok"
    path = tmp_path / "quotes.csv"
    path.write_text("id,b12,comment\n" + "\n".join(rows) + "\n")
    result = classify_file(path, "--chunk-bytes", chunk_bytes)
    assert list(result["id"]) == [f"S{i}" for i in range(400)]
    assert list(result["comment"].iloc[1:4]) == ['O"Brien', 'quoted, "twice"', 'closedthen text"']
    failed = result.loc[result["b12lab_error"] != "", "b12lab_error"]
    assert [error.split(": ")[0] for error in failed] == ["line 302", "line 401"]


def test_a_quote_still_open_after_the_limit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stray quote far from its partner would swallow the lines between: refused early."""
    monkeypatch.setattr(records, "MAX_QUOTED_BYTES", 1 << 20)
    rows = [f"S{i},{300 + i % 7} pmol/L" for i in range(100_000)]
    rows[1] = 'S1,"160 pmol/L'
    rows[90_000] = 'S90000,"300 pmol/L"'  # pairs with the stray quote, 1.3 MiB later
    path = tmp_path / "far.csv"
    path.write_text("id,b12\n" + "\n".join(rows) + "\n")
    assert main(["classify", str(path), "-o", str(tmp_path / "out.csv")]) == 2
    assert "on line 3 is not closed within 1 MiB" in capsys.readouterr().err


def test_finding_records_reads_each_byte_a_bounded_number_of_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a record has not ended, each read is as large as all before it: linear time."""
    scanned: list[int] = []
    scan = records.scan

    def counted(data: bytes, delimiters: bytes, *, final: bool) -> records.Records:
        scanned.append(len(data))
        return scan(data, delimiters, final=final)

    monkeypatch.setattr(records, "scan", counted)
    rows = [f"S{i},{300 + i % 7} pmol/L,a note" for i in range(20_000)]
    rows[10] = 'S10,160 pmol/L,"stray'
    path = tmp_path / "stray.csv"
    path.write_text("id,b12,comment\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputFileError, match="line 12 is never closed"):
        list(read_chunks(path, chunk_bytes=64))
    assert sum(scanned) < 4 * path.stat().st_size


def test_lone_carriage_returns_end_lines(tmp_path: Path) -> None:
    """Old Mac exports end lines with a lone CR; pyarrow reads them as line ends, and so do we."""
    path = tmp_path / "mac.csv"
    path.write_bytes(b'id,b12\rP1,160 pg/mL\rP2,"see\rcomment"\rP3,x\r\nP4,400 pmol/L\r')
    result = classify_file(path, "--chunk-bytes", "8")
    assert list(result["id"]) == ["P1", "P2", "P3", "P4"]
    assert [error.split(": ")[0] for error in result["b12lab_error"]] == [
        "",
        "line 3",
        "line 5",
        "",
    ]


TOKENS = st.sampled_from(['"', '""', ",", ";", "\n", "\r\n", "\r", "\n\n", " ", "a", "b1"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(TOKENS, max_size=40), chunk_bytes=st.sampled_from([8, 64, 1 << 20]))
def test_records_are_the_rows_pyarrow_parses(
    tmp_path: Path, tokens: list[str], chunk_bytes: int
) -> None:
    """Stray, doubled and unbalanced quotes, blank lines and every line end: the records found
    are the rows pyarrow parses from the whole text, each with its own line, or the file is
    refused for a quote that never closes, or that a quote inside a field closes lines later."""
    body = "".join(tokens).encode()
    path = tmp_path / "tokens.csv"
    path.write_bytes(b"b12,mma,c\n" + body)
    try:
        chunks = list(read_chunks(path, chunk_bytes=chunk_bytes, delimiter=","))
    except InputFileError as exc:
        refused = str(exc)
    else:
        refused = ""
    if refused:
        assert "is never closed" in refused or "inside a field on a later line" in refused
        return
    lines = np.concatenate([chunk.lines for chunk in chunks])
    assert len(lines) == _pyarrow_rows(body, ["b12", "mma", "c"])
    assert (lines >= 2).all()
    assert (np.diff(lines) > 0).all()


def _pyarrow_rows(data: bytes, names: list[str]) -> int:
    """Rows pyarrow finds in ``data`` read whole, ragged ones included."""
    if not data.strip(b"\r\n"):
        return 0
    ragged: list[str] = []

    def count(row: pa_csv.InvalidRow) -> str:
        ragged.append(row.text)
        return "skip"

    table = pa_csv.read_csv(
        pa.py_buffer(data),
        read_options=pa_csv.ReadOptions(column_names=names, use_threads=False),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=count),
        convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )
    return int(table.num_rows) + len(ragged)


# --- sizes: blocks of pyarrow, long headers and records ---------------------------------------


def test_quoted_line_breaks_in_a_block_over_a_mebibyte(tmp_path: Path) -> None:
    """pyarrow parses a block in parallel pieces; it must be told when values hold line ends."""
    note = "\n".join("a note over ten lines")
    rows = [f'S{i},{160 + i % 50} pg/mL,"{note}"' for i in range(40_000)]
    path = tmp_path / "notes.csv"
    path.write_text("id,b12,comment\n" + "\n".join(rows) + "\n")
    assert path.stat().st_size > 2 << 20
    result = classify_file(path)
    assert len(result) == 40_000
    assert (result["b12lab_error"] == "").all()
    assert result["comment"].iloc[-1] == note


def test_a_record_of_several_mebibytes(tmp_path: Path) -> None:
    path = tmp_path / "long-record.csv"
    note = "x" * (3 << 20)
    path.write_text(f"id,b12,comment\nS1,160 pg/mL,short\nS2,160 pg/mL,{note}\nS3,x,short\n")
    result = classify_file(path)
    assert list(result["id"]) == ["S1", "S2", "S3"]
    assert len(result["comment"].iloc[1]) == 3 << 20
    assert list(result["b12lab_error"].str.split(": ").str[0]) == ["", "", "line 4"]


def test_a_header_over_64_kib(tmp_path: Path) -> None:
    extra = [f"comment_{i:05d}" for i in range(6000)]
    header = ",".join(["id", "b12", *extra])
    assert len(header) > 1 << 16
    path = tmp_path / "wide.csv"
    path.write_text(header + "\n" + ",".join(["S1", "160 pg/mL", *extra]) + "\n")
    result = classify_file(path)
    assert result["b12lab_error"].iloc[0] == ""
    assert result["b12lab_category"].iloc[0] == "deficiency_likely"
    assert result["comment_05999"].iloc[0] == "comment_05999"


# --- encodings whose line ends are not one byte ------------------------------------------------

UTF16_EXPORT = 'id;b12;comment\r\nP1;"160 pg/mL";"µ and\r\nä"\r\nP2;0,3 nmol/L;ok\r\nP3;x;ok\r\n'


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("chunk_bytes", ["7", str(16 << 20)])
def test_utf16_and_utf32_with_a_byte_order_mark(
    tmp_path: Path, encoding: str, chunk_bytes: str
) -> None:
    data = UTF16_EXPORT.encode(encoding)
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        data = "\ufeff".encode(encoding) + data
    path = tmp_path / "unicode.csv"
    path.write_bytes(data)
    result = classify_file(path, "--chunk-bytes", chunk_bytes)
    assert list(result["id"]) == ["P1", "P2", "P3"]
    assert result["comment"].iloc[0] == "µ and\r\nä"
    assert list(result["b12lab_category"]) == ["deficiency_likely", "deficiency_unlikely", ""]
    assert result["b12lab_error"].iloc[2].startswith("line 5: invalid_value")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_without_a_byte_order_mark_needs_the_encoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    path = tmp_path / "unmarked.csv"
    path.write_bytes(UTF16_EXPORT.encode(encoding))
    assert main(["classify", str(path)]) == 2
    assert "give --encoding utf-16 (or utf-32)" in capsys.readouterr().err
    family = encoding[:6]
    assert list(classify_file(path, "--encoding", family)["id"]) == ["P1", "P2", "P3"]


def test_undecodable_utf16_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.csv"
    lone_surrogate = b"\x00\xdc"
    path.write_bytes("id,b12\r\nP1,160 pg/mL\r\n".encode("utf-16") + lone_surrogate + b"x\x00")
    assert main(["classify", str(path), "-o", str(tmp_path / "out.csv")]) == 2
    assert "line 3 is not valid utf-16" in capsys.readouterr().err


# --- Parquet: every column type passes through or gives a per-row error ------------------------

PARQUET_COLUMNS = {
    "binary": pa.array([b"\x00\xff", None, b"ok"], pa.binary()),
    "large_binary": pa.array([b"\xfe", b"", None], pa.large_binary()),
    "fixed_binary": pa.array([b"\xff\x00", None, b"ab"], pa.binary(2)),
    "binary_dictionary": pa.array([b"\xff", None, b"\xff"], pa.binary()).dictionary_encode(),
    "decimal": pa.array([Decimal("1.10"), None, Decimal("-3")], pa.decimal128(6, 2)),
    "list": pa.array([["x", "y"], None, []], pa.list_(pa.string())),
    "struct": pa.array([{"x": 1.5, "y": "a"}, None, {"x": None, "y": "b"}]),
    "map": pa.array([[("k", "v")], None, []], pa.map_(pa.string(), pa.string())),
    "dictionary": pa.array(["north", None, "north"]).dictionary_encode(),
    "timestamp": pa.array([datetime(2024, 9, 30, 13, 46), None, datetime(2024, 1, 2)]),
    "timestamp_tz": pa.array(
        [datetime(2024, 9, 30, 13, 46), None, None], pa.timestamp("us", "UTC")
    ),
    "int_with_nulls": pa.array([2**63 - 1, None, -(2**53) - 1], pa.int64()),
    "uint_with_nulls": pa.array([2**64 - 1, None, 0], pa.uint64()),
    "null": pa.array([None, None, None], pa.null()),
}


@pytest.mark.parametrize("suffix", [".csv", ".ndjson", ".parquet"])
@pytest.mark.parametrize("name", list(PARQUET_COLUMNS))
def test_parquet_columns_of_every_type_pass_through(tmp_path: Path, name: str, suffix: str) -> None:
    column = PARQUET_COLUMNS[name]
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["A", "B", "C"], "b12": ["160 pmol/L"] * 3, name: column}), path)
    out = tmp_path / f"out{suffix}"
    assert main(["classify", str(path), "-o", str(out)]) == 0
    if suffix == ".parquet":
        result = pq.read_table(out)
        expected = _decoded(column).to_pylist()
        assert json.loads(json.dumps(result.column(name).to_pylist(), default=repr)) == json.loads(
            json.dumps(expected, default=repr)
        )
    else:
        result = pa.Table.from_pandas(_read_text_output(out))
    assert result.column("b12lab_error").to_pylist() == ["", "", ""]
    assert [float(value) for value in result.column("b12lab_b12").to_pylist()] == [160.0] * 3


def _decoded(column: pa.Array) -> pa.Array:
    """What a Parquet round trip gives back: dictionaries decoded, decimals as their text, maps
    as lists of key-value pairs (compared through JSON)."""
    if pa.types.is_dictionary(column.type) and not pa.types.is_string(column.type.value_type):
        column = column.dictionary_decode()
    return column.cast(pa.string()) if pa.types.is_decimal(column.type) else column


def _read_text_output(out: Path) -> pd.DataFrame:
    if out.suffix == ".ndjson":
        return pd.read_json(out, lines=True, dtype=False)
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def test_parquet_bytes_are_hex_in_text_and_nested_values_json(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    table = pa.table(
        {
            "b12": ["160 pmol/L"] * 3,
            "blob": PARQUET_COLUMNS["binary"],
            "tags": PARQUET_COLUMNS["list"],
            "id": PARQUET_COLUMNS["uint_with_nulls"],
        }
    )
    pq.write_table(table, path)
    result = classify_file(path)
    assert list(result["blob"]) == ["00ff", "", "6f6b"]
    assert list(result["tags"]) == ['["x","y"]', "", "[]"]
    assert list(result["id"]) == [str(2**64 - 1), "", "0"]  # every digit kept
    ndjson = tmp_path / "out.ndjson"
    assert main(["classify", str(path), "-o", str(ndjson)]) == 0
    rows = [json.loads(line) for line in ndjson.read_text().splitlines()]
    assert [row["tags"] for row in rows] == [["x", "y"], None, []]
    assert [row["blob"] for row in rows] == ["00ff", None, "6f6b"]


def test_parquet_decimal_results_are_read_as_their_exact_text(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    values = [Decimal("160.50"), Decimal("0.52"), None]
    pq.write_table(
        pa.table(
            {
                "b12": pa.array(values[:1] * 3, pa.decimal128(7, 2)),
                "mma": pa.array(values[1:] + values[1:2], pa.decimal128(38, 2)),
                "mma_unit": ["umol/L"] * 3,
            }
        ),
        path,
    )
    result = classify_file(path, "--unit", "b12=pmol/L", "--unit", "mma=umol/L")
    assert list(result["b12"]) == ["160.50"] * 3
    assert list(result["b12lab_b12"]) == ["160.5"] * 3
    assert list(result["b12lab_mma"]) == ["0.52", "", "0.52"]
    assert list(result["b12lab_error"]) == ["", "", ""]


def test_a_parquet_list_of_results_is_a_row_error(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"b12": pa.array([["160 pmol/L"], None], pa.list_(pa.string()))}), path)
    result = classify_file(path)
    assert [error.split(":")[0] for error in result["b12lab_error"]] == ["row 1", ""]
    assert "invalid_value" in result["b12lab_error"][0]


# --- small cases: a header and nothing else; what to try when a byte does not decode ----------


@pytest.mark.parametrize(
    "content",
    [b"id,b12", b'"id","b12"', b"id;b12", b"\xef\xbb\xbfid,b12", b"id,b12\r", b"id,b12\n\n"],
)
@pytest.mark.parametrize("chunk_bytes", ["1", str(16 << 20)])
def test_a_header_without_rows_or_final_line_end_is_an_empty_result(
    tmp_path: Path, content: bytes, chunk_bytes: str
) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(content)
    result = classify_file(path, "--chunk-bytes", chunk_bytes)
    assert len(result) == 0
    assert list(result.columns[:2]) == ["id", "b12"]


def test_undecodable_cp1252_suggests_another_encoding_than_cp1252(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"id,b12\nA,160 pmol/L\nB,\x81160 pmol/L\n")  # 0x81: undefined in cp1252
    assert main(["classify", str(path), "-o", str(tmp_path / "out.csv"), "--encoding", "cp1252"])
    message = capsys.readouterr().err
    assert "line 3 is not valid cp1252" in message
    assert "--encoding latin-1" in message
    assert "--encoding cp1252" not in message
    result = classify_file(path, "--encoding", "latin-1")  # as suggested: every byte reads
    assert list(result["id"]) == ["A", "B"]


def test_undecodable_text_with_nul_bytes_suggests_utf16(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "utf16.csv"
    path.write_bytes("id,mma\nA,0.52 µmol/L\n".encode() + "B,0.5 µmol/L\n".encode("utf-16-le"))
    assert main(["classify", str(path), "-o", str(tmp_path / "out.csv")]) == 2
    message = capsys.readouterr().err
    assert "--encoding utf-16" in message
    assert "cp1252" not in message


def test_header_cells_that_would_run_as_formulas_are_neutralized(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text('b12,"=HYPERLINK(""http://x"",""y"")",@sum\n160 pg/mL,a,b\n')
    out = tmp_path / "out.csv"
    assert main(["classify", str(path), "-o", str(out)]) == 0
    header = out.read_text().splitlines()[0]
    assert "'=HYPERLINK" in header
    assert "'@sum" in header
    assert ',"=HYPERLINK' not in header
    kept = tmp_path / "kept.csv"
    assert main(["classify", str(path), "-o", str(kept), "--keep-formulas"]) == 0
    assert '"=HYPERLINK' in kept.read_text().splitlines()[0]


# --- quotes over a 100,000-row file -----------------------------------------------------------


def _quoted_rows() -> list[str]:
    """100,000 rows; comments hold literal quotes in unquoted fields (O"Brien, 5" tube)."""
    comments = {5: 'O"Brien', 7: '5" tube', 9: 'said "repeat"'}
    return [f"S{i},{300 + i % 7} pmol/L,{comments.get(i % 11, 'ok')}" for i in range(100_000)]


@pytest.mark.parametrize("chunk_bytes", ["65536", str(16 << 20)])
def test_literal_quotes_over_100000_rows_keep_every_row(tmp_path: Path, chunk_bytes: str) -> None:
    rows = _quoted_rows()
    rows[70_000] = "S70000,see comment,ok"
    path = tmp_path / "quotes.csv"
    path.write_text("id,b12,comment\n" + "\n".join(rows) + "\n")
    result = classify_file(path, "--chunk-bytes", chunk_bytes)
    assert list(result["id"]) == [f"S{i}" for i in range(100_000)]
    assert list(result["comment"].iloc[5:10]) == ['O"Brien', "ok", '5" tube', "ok", 'said "repeat"']
    failed = result.loc[result["b12lab_error"] != "", "b12lab_error"]
    assert [error.split(": ")[0] for error in failed] == ["line 70002"]


@pytest.mark.parametrize("chunk_bytes", ["65536", str(16 << 20)])
@pytest.mark.parametrize("literal_quotes", [True, False])
def test_a_stray_quote_early_in_100000_rows_is_refused_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chunk_bytes: str, literal_quotes: bool
) -> None:
    """Alone, the stray quote never closes; with literal quotes after it, the first of them
    would close it and merge the lines between into one row."""
    rows = _quoted_rows() if literal_quotes else [f"S{i},300 pmol/L,ok" for i in range(100_000)]
    rows[1] = 'S1,"160 pmol/L,ok'
    path = tmp_path / "stray.csv"
    path.write_text("id,b12,comment\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out.csv"
    assert main(["classify", str(path), "-o", str(out), "--chunk-bytes", chunk_bytes]) == 2
    message = capsys.readouterr().err
    assert 'the quote (") that opens a field on line 3' in message
    assert ("inside a field on a later line" in message) is literal_quotes
    assert not out.exists()


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_formula_cells_are_found_in_any_slice_of_an_array(kind: pa.DataType) -> None:
    cells = pa.array(["a", None, "=1+1", "", "b", "\tc", "é", "-2"], type=kind)
    for start in range(len(cells)):
        for stop in range(start, len(cells) + 1):
            part = cells.slice(start, stop - start)
            expected = [
                None if c is None else ("'" + c if c[:1] in FORMULA_START else c)
                for c in part.to_pylist()
            ]
            assert neutralize_formulas(part).to_pylist() == expected
