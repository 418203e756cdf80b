"""The command line's output on the benchmark's own file shapes, held byte for byte.

The inputs are small seeded files from ``benchmarks/synthetic.py`` (both shapes: "value unit"
in one cell, and value and unit columns); the outputs were written by the command line and
committed. A faster path that changes a single byte of them is wrong. To rewrite the fixtures
after a deliberate change of results: ``python tests/test_bench_outputs.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from b12lab._io.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "bench"
ROWS = 3000
EXPLAIN_ROWS = 300
CASES = {
    # name: (input shape, rows, extra options)
    "cells": ("cells", ROWS, ()),
    "columns": ("columns", ROWS, ()),
    "cells-explain": ("cells", EXPLAIN_ROWS, ("--explain",)),
    "columns-explain": ("columns", EXPLAIN_ROWS, ("--explain",)),
}


def _writers() -> dict[str, Callable[[Path, int], None]]:
    spec = importlib.util.spec_from_file_location("synthetic", ROOT / "benchmarks" / "synthetic.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {"cells": module.write_synthetic, "columns": module.write_columns}


def _input(shape: str, rows: int) -> Path:
    return FIXTURES / f"{shape}-{rows}.csv"


def _classify(case: str, target: Path, *extra: str) -> bytes:
    shape, rows, options = CASES[case]
    code = main(["classify", str(_input(shape, rows)), "-o", str(target), *options, *extra])
    assert code == 0
    return target.read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_is_byte_identical(case: str, tmp_path: Path) -> None:
    expected = (FIXTURES / f"{case}.out.csv").read_bytes()
    assert _classify(case, tmp_path / "out.csv") == expected


@pytest.mark.parametrize("case", ["cells", "columns"])
def test_small_blocks_write_the_same_bytes(case: str, tmp_path: Path) -> None:
    expected = (FIXTURES / f"{case}.out.csv").read_bytes()
    assert _classify(case, tmp_path / "out.csv", "--chunk-bytes", "20000") == expected


@pytest.mark.parametrize("shape", ["cells", "columns"])
def test_inputs_are_the_benchmark_files(shape: str, tmp_path: Path) -> None:
    """The committed inputs are what the benchmark writes, so they take its paths."""
    written = tmp_path / "input.csv"
    _writers()[shape](written, ROWS)
    assert written.read_bytes() == _input(shape, ROWS).read_bytes()


def _rewrite() -> None:
    writers = _writers()
    for shape, rows, _ in CASES.values():
        writers[shape](_input(shape, rows), rows)
    for case in CASES:
        _classify(case, FIXTURES / f"{case}.out.csv")
        (FIXTURES / f"{case}.out.csv.b12lab.json").unlink()


if __name__ == "__main__":
    _rewrite()
    sys.exit(0)


def test_batches_of_rows_are_written_as_one(tmp_path: Path) -> None:
    """The writer formats many rows at a time; the bytes are those of arrow's default."""
    import io

    import numpy as np
    import pandas as pd
    import pyarrow.csv as pa_csv

    from b12lab._io.writing import _arrow, _write_csv

    rows = 70_000  # more than one batch
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "text": pd.Series(rng.integers(0, 500, rows).astype(str), dtype=object),
            "value": np.where(rng.random(rows) < 0.1, np.nan, rng.lognormal(5, 1, rows)),
            "band": pd.Categorical.from_codes(rng.integers(0, 3, rows), ["low", "mid", 'a "b"']),
        }
    )
    written = io.BytesIO()
    _write_csv(frame, written, {})
    expected = io.BytesIO()
    pa_csv.write_csv(
        _arrow(frame), expected, write_options=pa_csv.WriteOptions(quoting_style="needed")
    )
    assert written.getvalue() == expected.getvalue()
