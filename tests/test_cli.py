"""The command line on generated files: chunking, formats, atomic output, exit codes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import b12lab
from b12lab._io.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "patients.csv"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "b12lab", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def lab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded export: mixed units, censored, missing and malformed cells, quoted commas."""
    rng = np.random.default_rng(7)
    n = 3000
    b12 = rng.lognormal(np.log(250), 0.6, n)
    unit = rng.choice(["pmol/L", "pg/mL", "ng/L"], n)
    factor = np.where(unit == "pmol/L", 1.0, 1.35537)
    cells = np.array(
        [f"{v * f:.0f} {u}" for v, f, u in zip(b12, factor, unit, strict=True)], dtype=object
    )
    cells[rng.random(n) < 0.01] = "<100 pg/mL"
    cells[rng.random(n) < 0.05] = ""
    cells[rng.random(n) < 0.002] = "see comment, pending"
    frame = pd.DataFrame(
        {
            "id": [f"S{i:05d}" for i in range(n)],
            "b12": cells,
            "mma": [f"{v:.2f} umol/L" for v in rng.lognormal(np.log(0.25), 0.6, n)],
            "age": rng.integers(18, 99, n),
        }
    )
    path = tmp_path_factory.mktemp("cli") / "labs.csv"
    frame.to_csv(path, index=False)
    return path


def test_rows_out_equal_rows_in_in_order(lab_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    done = _run("classify", str(lab_file), "-o", str(out))
    assert done.returncode == 0, done.stderr
    source = pd.read_csv(lab_file, dtype=str, keep_default_na=False)
    result = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(result["id"]) == list(source["id"])
    classified = result["b12lab_category"] != ""
    assert (classified ^ (result["b12lab_error"] != "")).all()
    assert f"{len(source)} rows in, {len(source)} rows out" in done.stderr


def test_output_does_not_depend_on_the_chunk_size(lab_file: Path, tmp_path: Path) -> None:
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    assert _run("classify", str(lab_file), "-o", str(whole)).returncode == 0
    assert (
        _run("classify", str(lab_file), "-o", str(chunked), "--chunk-bytes", "4096").returncode == 0
    )
    assert whole.read_bytes() == chunked.read_bytes()


def test_parquet_in_and_out(lab_file: Path, tmp_path: Path) -> None:
    parquet_in = tmp_path / "labs.parquet"
    pd.read_csv(lab_file, dtype=str).to_parquet(parquet_in)
    parquet_out = tmp_path / "out.parquet"
    done = _run("classify", str(parquet_in), "-o", str(parquet_out), "--explain")
    assert done.returncode == 0, done.stderr
    result = pd.read_parquet(parquet_out)
    assert len(result) == 3000
    assert result["b12lab_reasons"].str.len().gt(0).any()


def test_an_interrupted_run_leaves_no_file(lab_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    done = _run("classify", str(lab_file), "-o", str(out), "--map", "b12=no_such_column")
    assert done.returncode == 2
    assert "no_such_column" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("b12,mma\n")
    done = _run("classify", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith('"b12","mma","b12lab_b12"')


def test_unit_and_map_options(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("Cobalamin,MMA_result\n160,0.52\n400,0.2\n")
    done = _run(
        "classify",
        str(path),
        "--map",
        "b12=Cobalamin",
        "--unit",
        "b12=pg/mL",
        "--map",
        "mma=MMA_result",
        "--unit",
        "mma=umol/L",
    )
    assert done.returncode == 0, done.stderr
    result = pd.read_csv(pd.io.common.StringIO(done.stdout), dtype=str, keep_default_na=False)
    assert list(result["b12lab_category"]) == ["deficiency_likely", "deficiency_unlikely"]
    bad = _run("classify", str(path), "--unit", "b12")
    assert bad.returncode == 2
    assert "ANALYTE=VALUE" in bad.stderr


def test_accessor_equals_classify_frame() -> None:
    df = pd.DataFrame({"b12": ["160 pg/mL", "<100 ng/L", None], "age": [70, 40, None]})
    pd.testing.assert_frame_equal(df.b12lab.classify(), b12lab.classify_frame(df))


def test_long_format_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "patient_id,time,test,value,unit\n"
        "P1,2026-01-01 08:00,2132-9,160,pg/mL\n"
        "P1,2026-01-01 09:00,13964-2,0.52,umol/L\n"
        "P1,2026-03-01 08:00,Vitamin B12,400,pmol/L\n"
        "P2,2026-01-02 08:00,sodium,140,mmol/L\n"
    )
    done = _run(
        "classify",
        str(path),
        "--long",
        "--time",
        "time",
        "--window",
        "24h",
        "--unit-column",
        "unit",
    )
    assert done.returncode == 0, done.stderr
    result = pd.read_csv(pd.io.common.StringIO(done.stdout), dtype=str, keep_default_na=False)
    assert list(result["b12lab_category"]) == [
        "deficiency_likely",
        "deficiency_unlikely",
        "insufficient_data",
    ]
    assert "4 rows in, 3 rows out" in done.stderr


def test_quoted_newlines_crlf_and_bom_survive_chunking(tmp_path: Path) -> None:
    rows = [
        f'"S{i}","{160 + i % 10} pg/mL","note\r\nwith ""quotes"", and a comma"' for i in range(200)
    ]
    text = "\ufeffid,b12,comment\r\n" + "\r\n".join(rows) + "\r\n"
    path = tmp_path / "messy.csv"
    path.write_bytes(text.encode("utf-8"))
    whole = _run("classify", str(path))
    tiny = _run("classify", str(path), "--chunk-bytes", "64")
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout == tiny.stdout
    result = pd.read_csv(pd.io.common.StringIO(whole.stdout), dtype=str, keep_default_na=False)
    assert list(result["id"]) == [f"S{i}" for i in range(200)]
    # (text-mode pipes turn the kept \r\n into \n)
    assert result["comment"].iloc[0] == 'note\nwith "quotes", and a comma'
    assert (result["b12lab_b12_band"] == "deficient").all()


def test_cli_classifies_the_bundled_example(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    done = _run("classify", str(EXAMPLE), "-o", str(target))
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(target, dtype=str, keep_default_na=False)
    source = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    assert list(out["patient_id"]) == list(source["patient_id"])
    assert out.loc[out["patient_id"] == "P001", "b12lab_category"].item() == "deficiency_likely"
    assert "14 rows in, 14 rows out" in done.stderr


def test_cli_writes_csv_to_stdout_and_strict_fails_on_row_errors() -> None:
    done = _run("classify", str(EXAMPLE), "--strict")
    assert done.returncode == 1
    assert done.stdout.startswith('"patient_id",')


def test_cli_missing_file_is_one_clear_message(tmp_path: Path) -> None:
    done = _run("classify", str(tmp_path / "missing.csv"))
    assert done.returncode == 2
    assert "missing.csv" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_tables_and_convert() -> None:
    listing = _run("tables")
    assert "nice-ng239@1" in listing.stdout
    shown = _run("tables", "bsh-2014")
    assert "superseded" in shown.stdout
    converted = _run("convert", "<200 ng/L", "--analyte", "b12", "--to", "pmol/L")
    assert converted.stdout.strip() == "<147.561 pmol/L"
    bad = _run("convert", "200 kg", "--analyte", "b12")
    assert bad.returncode == 2
    assert "kg" in bad.stderr


# --- long exports: every option of the command line reaches classify_long -------------------


def _classify_long_file(tmp_path: Path, text: str, *options: str) -> tuple[pd.DataFrame, str]:
    """Output rows and the summary of ``classify --long`` run in this process."""
    path = tmp_path / "long.csv"
    path.write_text(text)
    out = tmp_path / "long.out.csv"
    with pytest.MonkeyPatch.context() as patch:
        summary = io.StringIO()
        patch.setattr(sys, "stderr", summary)
        assert main(["classify", str(path), "--long", "-o", str(out), *options]) == 0
    return pd.read_csv(out, dtype=str, keep_default_na=False), summary.getvalue()


def test_long_decimal_commas(tmp_path: Path) -> None:
    result, _ = _classify_long_file(
        tmp_path,
        "patient_id;test;value\nP1;b12;147,6 pmol/L\nP1;mma;0,52 umol/L\nP1;mma;0,520 umol/L\n",
        "--decimal",
        ",",
    )
    assert result["b12lab_error"].iloc[0] == ""  # 0,52 and 0,520 are one result
    assert result["b12lab_b12"].iloc[0] == "147.6"
    assert result["b12lab_category"].iloc[0] == "deficiency_likely"


def test_long_map_names_tests_and_context_columns(tmp_path: Path) -> None:
    result, _ = _classify_long_file(
        tmp_path,
        "patient_id,test,value,AGE_AT_DRAW\nP1,VITB12-S,300 pmol/L,71\nP1,sodium,140 mmol/L,71\n",
        "--map",
        "b12=VITB12-S",
        "--map",
        "age=AGE_AT_DRAW",
    )
    assert result["b12"].iloc[0] == "300 pmol/L"
    assert result["age"].iloc[0] == "71"
    assert result["b12lab_ignored_results"].iloc[0] == "1"
    assert result["b12lab_category"].iloc[0] == "deficiency_unlikely"


def test_long_unit_for_bare_values(tmp_path: Path) -> None:
    result, _ = _classify_long_file(
        tmp_path,
        "patient_id,test,value\nP1,b12,160\nP1,mma,0.52 umol/L\nP2,b12,400 pmol/L\n",
        "--unit",
        "b12=pg/mL",
    )
    assert list(result["b12"]) == ["160 pg/mL", "400 pmol/L"]
    assert list(result["b12lab_error"]) == ["", ""]
    assert list(result["b12lab_category"]) == ["deficiency_likely", "deficiency_unlikely"]


def test_long_explain(tmp_path: Path) -> None:
    result, _ = _classify_long_file(
        tmp_path, "patient_id,test,value\nP1,b12,160 pg/mL\n", "--explain"
    )
    assert result["b12lab_reasons"].iloc[0].strip() != ""


def test_long_reader_errors_reach_their_visit_and_cite_the_line(tmp_path: Path) -> None:
    result, summary = _classify_long_file(
        tmp_path,
        "patient_id,time,test,value\n"
        "P1,2024-03-01T08:00,b12,160 pg/mL\n"
        "P1,2024-03-01T08:05,mma\n"  # too few fields: a result of P1's visit is missing
        "P2,2024-03-01T08:00,b12,400 pmol/L\n"
        "patient_id,time,test,value\n"  # a header repeated where exports were joined
        "P3,2024-03-01T08:00,b12,160 pg/mL\n",
        "--time",
        "time",
        "--window",
        "24h",
    )
    # the repeated header has no time, so it is a group of its own, after the patients
    assert list(result["patient_id"]) == ["P1", "P2", "P3", "patient_id"]
    assert list(result["b12lab_error"]) == [
        "line 3: ragged_row: expected 4 fields, found 3",
        "",
        "",
        "line 5: repeated_header: this line repeats the header",
    ]
    assert list(result["b12lab_category"]) == ["", "deficiency_unlikely", "deficiency_likely", ""]
    assert "5 rows in, 4 rows out, 2 with errors" in summary
    assert "error ragged_row: 1" in summary
    assert "error repeated_header: 1" in summary


def test_long_header_only_export(tmp_path: Path) -> None:
    result, summary = _classify_long_file(
        tmp_path, "patient_id,time,test,value\n", "--time", "time"
    )
    assert result.empty
    assert list(result.columns[:3]) == ["patient_id", "b12lab_group_start", "b12lab_group_end"]
    assert {"b12lab_category", "b12lab_error", "b12lab_ignored_results"} <= set(result.columns)
    assert "0 rows in, 0 rows out" in summary
