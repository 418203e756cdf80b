"""The command line on generated files: chunking, formats, atomic output, exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import b12lab
from b12lab._io import cli
from b12lab._io.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "patients.csv"
LAB_TABLE = ROOT / "tests" / "fixtures" / "tables" / "sex-stratified-lab.toml"


def _run(
    *args: str, stdin: str | None = None, umask: int | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "b12lab", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        umask=-1 if umask is None else umask,
    )


def _record(output: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(Path(f"{output}.b12lab.json").read_text(encoding="utf-8"))
    return record


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
    assert list(result["b12lab_category"]) == ["deficiency_likely", "deficiency_unlikely", ""]
    assert result["b12lab_error"].iloc[2].startswith("no_known_test:")
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


def test_run_record_beside_the_output(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("Cobalamin,mma,sex\n160,0.52 umol/L,f\n400,0.2 umol/L,m\n95,see comment,f\n")
    out = tmp_path / "out.csv"
    done = _run(
        "classify",
        str(path),
        "-o",
        str(out),
        *("--map", "b12=Cobalamin", "--unit", "b12=pg/mL", "--laboratory", str(LAB_TABLE)),
        *("--explain", "--decimal", "."),
    )
    assert done.returncode == 0, done.stderr
    record = _record(out)
    guideline, lab = b12lab.tables.load("nice-ng239"), b12lab.tables.load_file(LAB_TABLE)
    assert record["b12lab_version"] == b12lab.__version__
    assert record["table"] == {"key": guideline.key, "sha256": guideline.sha256, "path": None}
    assert record["laboratory"] == {"key": lab.key, "sha256": lab.sha256, "path": str(LAB_TABLE)}
    assert record["input"] == {
        "name": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    assert record["output"] == {"name": str(out), "format": "csv"}
    assert record["options"] == {
        "map": {"b12": "Cobalamin"},
        "unit": {"b12": "pg/mL"},
        "decimal": ".",
        "delimiter": None,
        "encoding": "utf-8",
        "explain": True,
        "strict": False,
        "keep_formulas": False,
        "long": None,
    }
    assert (record["rows_in"], record["rows_out"]) == (3, 3)
    assert record["errors"] == {"invalid_value": 1}
    assert sum(record["categories"].values()) == 2
    for category, count in record["categories"].items():
        assert f"  {category}: {count}" in done.stderr
    assert record["warnings"] == []


def test_run_record_of_a_long_run_names_its_options(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "patient_id,at,test,value\nP1,2026-01-01 08:00,2132-9,160 pg/mL\n"
        "P1,2026-01-01 09:00,13964-2,0.52 umol/L\n"
    )
    out = tmp_path / "visits.csv"
    done = _run(
        "classify",
        str(path),
        "--long",
        "--time",
        "at",
        "--window",
        "24h",
        "-o",
        str(out),
        "--strict",
    )
    assert done.returncode == 0, done.stderr
    record = _record(out)
    assert record["options"]["strict"] is True
    assert record["options"]["long"] == {  # None: found by its common name
        "patient": None,
        "time": "at",
        "time_format": None,
        "window": "24h",
        "test": None,
        "value": None,
        "unit_column": None,
        "reference_range_column": None,
        "reported_ranges": False,
    }
    assert record["reported_ranges"] is None
    assert (record["rows_in"], record["rows_out"]) == (2, 1)


def test_parquet_carries_the_run_record_in_its_metadata(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    done = _run("classify", str(EXAMPLE), "-o", str(out))
    assert done.returncode == 0, done.stderr
    metadata = pq.read_metadata(out).metadata
    assert json.loads(metadata[b"b12lab"]) == _record(out)
    assert _record(out)["output"]["format"] == "parquet"


def test_no_run_record_when_the_run_fails_and_none_left_stale(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    assert _run("classify", str(EXAMPLE), "-o", str(out)).returncode == 0
    assert _record(out)["rows_in"] == 14
    failed = _run("classify", str(EXAMPLE), "-o", str(out), "--map", "b12=no_such_column")
    assert failed.returncode == 2
    assert _record(out)["rows_in"] == 14  # the earlier run's output and record, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.csv.b12lab.json"]


def test_version() -> None:
    done = _run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"b12lab {b12lab.__version__}"


def test_dash_reads_standard_input_and_writes_standard_output() -> None:
    from_file = _run("classify", str(EXAMPLE))
    piped = _run("classify", "-", "-o", "-", stdin=EXAMPLE.read_text(encoding="utf-8"))
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == from_file.stdout
    assert "14 rows in, 14 rows out" in piped.stderr


def test_parquet_on_standard_input_is_recognised(tmp_path: Path) -> None:
    parquet = tmp_path / "in.parquet"
    pd.read_csv(EXAMPLE, dtype=str).to_parquet(parquet)
    out = tmp_path / "out.csv"
    done = subprocess.run(
        [sys.executable, "-m", "b12lab", "classify", "-", "-o", str(out)],
        input=parquet.read_bytes(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(out)) == 14
    assert _record(out)["input"] == {
        "name": "-",
        "sha256": hashlib.sha256(parquet.read_bytes()).hexdigest(),
    }


@pytest.mark.parametrize("suffix", [".ndjson", ".jsonl", ".JSONL"])
def test_json_lines_output(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    done = _run("classify", str(EXAMPLE), "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = b12lab.classify_frame(pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False))
    assert len(rows) == len(expected)
    assert list(rows[0]) == list(expected.columns)
    assert [row["b12lab_category"] for row in rows] == expected["b12lab_category"].tolist()
    assert rows[0]["b12lab_b12"] == expected["b12lab_b12"].iloc[0]  # every digit kept
    assert rows[0]["holotc"] is None
    assert _record(out)["output"]["format"] == "ndjson"


def test_json_lines_escape_what_json_and_line_readers_need(tmp_path: Path) -> None:
    notes = ['say "hi"', "back\\slash", "two\nlines", "tab\there", "line\u2028end", "µ", "=1+1"]
    path = tmp_path / "notes.csv"
    pd.DataFrame({"b12": ["160 pg/mL"] * len(notes), "note": notes}).to_csv(path, index=False)
    out = tmp_path / "out.ndjson"
    done = _run("classify", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    *lines, last = out.read_bytes().split(b"\n")
    assert last == b""
    rows = [json.loads(line) for line in lines]
    assert [row["note"] for row in rows] == notes  # formulas matter to spreadsheets, not JSON
    assert "\u2028".encode() not in out.read_bytes()


def test_pq_is_parquet(tmp_path: Path) -> None:
    out = tmp_path / "out.pq"
    assert _run("classify", str(EXAMPLE), "-o", str(out)).returncode == 0
    assert len(pd.read_parquet(out)) == 14


@pytest.mark.parametrize("name", ["out.txt", "out", "out.csv.gz"])
def test_unknown_output_extension_is_refused_before_reading(tmp_path: Path, name: str) -> None:
    done = _run("classify", str(tmp_path / "missing.csv"), "-o", str(tmp_path / name))
    assert done.returncode == 2
    assert "output format" in done.stderr
    assert ".ndjson" in done.stderr
    assert "missing.csv" not in done.stderr  # refused before the input was looked at
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_output_files_get_the_permissions_of_the_umask(
    tmp_path: Path, umask: int, mode: int
) -> None:
    out = tmp_path / "out.csv"
    assert _run("classify", str(EXAMPLE), "-o", str(out), umask=umask).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert stat.S_IMODE(Path(f"{out}.b12lab.json").stat().st_mode) == mode


def test_errors_name_the_output_never_a_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "no_such_folder" / "out.csv"
    done = _run("classify", str(EXAMPLE), "-o", str(out))
    assert done.returncode == 2
    assert f"No such file or directory: {out}" in done.stderr
    assert ".partial" not in done.stderr


def test_summary_hints_at_unit_and_map_for_results_without_a_unit(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("b12,mma\n160,0.52\n")
    done = _run("classify", str(path))
    assert done.returncode == 0, done.stderr
    assert "error unknown_unit: 1" in done.stderr
    assert "--unit ANALYTE=UNIT" in done.stderr
    assert "--map ANALYTE=COLUMN" in done.stderr
    clean = _run("classify", str(path), "--unit", "b12=pg/mL", "--unit", "mma=umol/L")
    assert "--unit ANALYTE=UNIT" not in clean.stderr


@pytest.mark.parametrize(("given", "seen"), [(None, "1"), ("4", "4")])
def test_the_command_runs_numpy_with_one_blas_thread_unless_told(
    given: str | None, seen: str
) -> None:
    """numpy's BLAS threads spin at start-up and b12lab does no linear algebra."""
    code = (
        "import os\n"
        "from b12lab._io import cli\n"
        "cli.main = lambda: print(os.environ['OPENBLAS_NUM_THREADS']) or 0\n"
        "raise SystemExit(cli.entry())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert (done.returncode, done.stdout.strip()) == (0, seen), done.stderr


@pytest.mark.parametrize("command", [["--help"], ["classify", "--help"]])
def test_help_lists_analytes_and_default_table_without_heavy_imports(command: list[str]) -> None:
    code = (
        "import contextlib, io, sys\n"
        "from b12lab._io.cli import main\n"
        "text = io.StringIO()\n"
        "with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):\n"
        f"    main({command!r})\n"
        "loaded = [m for m in ('pandas', 'pint', 'pyarrow', 'pydantic') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print(text.getvalue())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for analyte in b12lab.ANALYTES.values():
        assert f"  {analyte.name} " in done.stdout
        for alias in analyte.aliases:
            assert alias in done.stdout
    assert f"default table: {b12lab.tables.DEFAULT_TABLE}" in done.stdout
    assert _run(*command).stdout == done.stdout.removesuffix("\n")


def _device(path: Path, minor: int) -> Path:
    """A private copy of the device (1, minor): 3 is /dev/null, 7 is /dev/full."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        with open(path, "wb"):
            pass
    except OSError:
        pytest.skip("device nodes cannot be made or opened here")
    return path


def test_a_device_is_written_through_never_replaced(tmp_path: Path) -> None:
    null = _device(tmp_path / "null", 3)
    done = _run("classify", str(EXAMPLE), "-o", str(null))
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(null.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]  # no record, no temporary file


def test_a_full_device_is_a_clear_error(tmp_path: Path) -> None:
    full = _device(tmp_path / "full", 7)
    done = _run("classify", str(EXAMPLE), "-o", str(full))
    assert done.returncode == 2
    assert f"No space left on device: {full}" in done.stderr
    assert "Traceback" not in done.stderr
    assert stat.S_ISCHR(full.stat().st_mode)


@pytest.mark.parametrize("name", ["results.csv", "results"])
def test_a_fifo_is_written_through_never_replaced(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        done = _run("classify", str(EXAMPLE), "-o", str(fifo))
        assert done.returncode == 0, done.stderr
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        out, _ = reader.communicate(timeout=120)
    finally:
        reader.kill()
        reader.wait()
        assert reader.stdout is not None
        reader.stdout.close()
    assert len(pd.read_csv(io.BytesIO(out))) == 14


def test_a_symlink_is_followed_to_the_file_it_names(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    link = tmp_path / "latest.csv"
    link.symlink_to(runs / "2026.csv")
    for _ in range(2):  # the target missing, then present
        done = _run("classify", str(EXAMPLE), "-o", str(link))
        assert done.returncode == 0, done.stderr
        assert link.is_symlink()
        assert len(pd.read_csv(runs / "2026.csv")) == 14
        assert _record(runs / "2026.csv")["rows_out"] == 14
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.csv", "runs"]


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_chunk_bytes_below_the_minimum_are_refused(value: str) -> None:
    done = _run("classify", str(EXAMPLE), "--chunk-bytes", value)
    assert done.returncode == 2
    assert "--chunk-bytes" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_delimiter_backslash_t_means_tab(tmp_path: Path) -> None:
    path = tmp_path / "tabs.csv"
    path.write_text("b12\tmma;note\n160 pg/mL\t0.52 umol/L;x\n")  # ';' alone would be detected
    done = _run("classify", str(path), "--delimiter", "\\t")
    assert done.returncode == 0, done.stderr
    result = pd.read_csv(io.StringIO(done.stdout), dtype=str, keep_default_na=False)
    assert result["b12lab_category"].tolist() == ["deficiency_likely"]
    assert result["mma;note"].tolist() == ["0.52 umol/L;x"]


@pytest.mark.parametrize("delimiter", [";;", "", "ab", '"'])
def test_a_delimiter_that_is_not_one_character_is_refused(delimiter: str) -> None:
    done = _run("classify", str(EXAMPLE), "--delimiter", delimiter)
    assert done.returncode == 2
    assert "--delimiter" in done.stderr
    assert "one character" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unexpected_error_never_exits_with_the_row_error_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr(cli, "_classify", broken)
    assert cli.main(["classify", str(EXAMPLE)]) == cli.EXIT_INTERNAL != cli.EXIT_ROW_ERRORS
    assert "internal error: RuntimeError: something unforeseen" in capsys.readouterr().err


def test_an_interrupted_run_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_classify", interrupted)
    assert cli.main(["classify", str(EXAMPLE)]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_reader_that_stops_early_ends_the_run_quietly(lab_file: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "b12lab", "classify", str(lab_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as run:
        assert run.stdout is not None
        assert run.stderr is not None
        assert run.stdout.readline().startswith(b'"id"')
        run.stdout.close()  # as `| head -1` does
        errors = run.stderr.read().decode()
        status = run.wait(timeout=120)
    assert status == 141, errors
    assert "Traceback" not in errors
    assert "Exception ignored" not in errors


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A million rows: long enough to classify that a signal arrives while it is written."""
    block = "".join(
        f"S{i},{100 + i % 800} pmol/L,0.{10 + i % 80} umol/L,{18 + i % 80}\n" for i in range(1000)
    )
    path = tmp_path_factory.mktemp("large") / "large.csv"
    path.write_text("id,b12,mma,age\n" + block * 1000)
    return path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminating_signal_removes_the_partial_output(
    large_file: Path, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "out.csv"
    command = ["classify", str(large_file), "-o", str(out), "--chunk-bytes", "65536"]
    with subprocess.Popen(
        [sys.executable, "-m", "b12lab", *command], stderr=subprocess.PIPE
    ) as run:
        while not list(tmp_path.glob(".out.csv.*.partial")):
            assert run.poll() is None, "the run ended before it was signalled"
        run.send_signal(signum)
        assert run.stderr is not None
        errors = run.stderr.read().decode()
        status = run.wait(timeout=120)
    assert status == 128 + signum, errors
    assert "Traceback" not in errors
    assert list(tmp_path.iterdir()) == []


def test_signal_handlers_are_restored_after_a_run(tmp_path: Path) -> None:
    before = {signum: signal.getsignal(signum) for signum in cli.TERMINATING}
    assert main(["classify", str(EXAMPLE), "-o", str(tmp_path / "out.csv")]) == 0
    assert {signum: signal.getsignal(signum) for signum in cli.TERMINATING} == before


@pytest.mark.parametrize(
    "command",
    [
        ["--version"],
        ["tables"],
        ["convert", "160 pg/mL", "--analyte", "b12"],
        ["classify", str(EXAMPLE)],
        ["classify", str(EXAMPLE), "-o", "/dev/stdout"],
    ],
)
def test_a_reader_gone_before_the_first_byte_ends_any_command_quietly(command: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # as `| head -c 0` does, before anything is written
    with subprocess.Popen(
        [sys.executable, "-m", "b12lab", *command], stdout=write, stderr=subprocess.PIPE
    ) as run:
        os.close(write)
        assert run.stderr is not None
        errors = run.stderr.read().decode()
        status = run.wait(timeout=120)
    assert status == 141, errors
    assert "Traceback" not in errors
    assert "Broken pipe" not in errors


def test_a_closed_standard_output_still_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    command = [sys.executable, "-m", "b12lab", "classify", str(EXAMPLE)]
    to_file = _without_standard_output([*command, "-o", str(out)])
    assert to_file.returncode == 0, to_file.stderr
    assert out.exists()
    to_standard_output = _without_standard_output(command)
    assert to_standard_output.returncode == 2
    assert "standard output is closed" in to_standard_output.stderr
    assert "Traceback" not in to_standard_output.stderr


def _without_standard_output(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run with file descriptor 1 closed, as ``>&-`` does."""
    return subprocess.run(
        command,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )


def test_the_input_is_hashed_beside_the_reading(tmp_path: Path) -> None:
    from b12lab._io.run_record import BackgroundDigest, file_sha256

    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 << 20) + b"tail")
    with open(path, "rb") as file:
        expected = file_sha256(file)
    assert expected == hashlib.sha256(path.read_bytes()).hexdigest()
    assert BackgroundDigest(open(path, "rb"))() == expected  # noqa: SIM115
    stopped = BackgroundDigest(open(path, "rb"))  # noqa: SIM115
    stopped.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        stopped()
