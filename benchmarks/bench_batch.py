"""Batch throughput and memory, as ratios against baselines measured in the same run.

    python benchmarks/bench_batch.py --rows 1000000 [--rows 10000000] [--repeats 3]
        [--shape cells] [--shape columns] [--sweep] [--startup]

For each size and file shape it writes a seeded synthetic laboratory file and measures, each as
the median of ``--repeats`` runs:

1. the floor: pyarrow reads the CSV, bare numpy converts and classifies B12, MMA and homocysteine
   against fixed cut-offs (no tables, no censoring, no errors), pyarrow writes the result: a
   pipeline that does less than b12lab;
2. ``b12lab classify`` end to end on the same file, in a child process (peak memory from GNU
   time);
3. ``classify_frame`` in memory on the loaded frame;
4. the naive approach: a Python loop that calls pint for every cell (sampled, extrapolated).

Shapes: ``cells`` writes "value unit" in one cell (mixed units per analyte, about 1 % censored,
5 % missing, 0.1 % malformed); ``columns`` writes value and unit columns
(``b12,b12_unit,mma,mma_unit,hcy,hcy_unit``), bare numbers, MMA with three decimals, and its
floor reads the numeric columns directly. ``--sweep`` times ``classify_frame`` with 100 to
1,000,000 distinct B12 values per column; ``--startup`` times ``b12lab --help`` and
``--version`` against ``python -c pass``, and how long ``b12lab classify`` takes to write its
first result row for a small file of each shape.

b12lab's modules are byte-compiled first, as an installed wheel's are: with
``PYTHONDONTWRITEBYTECODE`` set, an editable install would otherwise compile them at every start.

Machines here are noisy: read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pint
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from synthetic import write_columns, write_synthetic

import b12lab

RESULT = r"^\s*(?P<sign>[<>]=?)?\s*(?P<number>[0-9.]+)\s*(?P<unit>.*)$"
# Fixed cut-offs for the floor only (the library reads its own from the tables).
FLOOR_EDGES = {"b12": [133.0, 258.0], "mma": [0.40], "hcy": [15.0]}
FLOOR_FACTORS = {"pg/mL": 0.7378, "ng/L": 0.7378, "pmol/L": 1.0, "umol/L": 1.0, "nmol/L": 0.001}


def floor_columns(source: Path, target: Path) -> None:
    """The floor for value and unit columns: numeric columns read as numbers, one factor per
    unit, fixed cut-offs."""
    table = pa_csv.read_csv(source)
    out = {}
    for name, edges in FLOOR_EDGES.items():
        value = table[name].combine_chunks().to_numpy(zero_copy_only=False)
        units = table[f"{name}_unit"].combine_chunks().dictionary_encode()
        factors = np.array([FLOOR_FACTORS.get(u, np.nan) for u in units.dictionary.to_pylist()])
        converted = value * factors[units.indices.to_numpy()]
        out[f"{name}_value"] = converted
        out[f"{name}_band"] = np.digitize(converted, edges)
    result = pa.table(
        {**{c: table[c] for c in table.column_names}, **{k: pa.array(v) for k, v in out.items()}}
    )
    pa_csv.write_csv(result, target)


def floor(source: Path, target: Path) -> None:
    table = pa_csv.read_csv(
        source,
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in ("b12", "mma", "hcy")}
        ),
    )
    out = {}
    for name, edges in FLOOR_EDGES.items():
        parts = pc.extract_regex(table[name].combine_chunks(), RESULT)
        number = pc.cast(pc.if_else(parts.is_valid(), parts.field("number"), None), pa.float64())
        units = pc.if_else(parts.is_valid(), parts.field("unit"), None).dictionary_encode()
        factors = np.array(
            [FLOOR_FACTORS.get(u, np.nan) for u in units.dictionary.to_pylist()] + [np.nan]
        )
        index = units.indices.fill_null(len(units.dictionary)).to_numpy()
        value = number.to_numpy(zero_copy_only=False) * factors[index]
        out[f"{name}_value"] = value
        out[f"{name}_band"] = np.digitize(value, edges)
    result = pa.table(
        {**{c: table[c] for c in table.column_names}, **{k: pa.array(v) for k, v in out.items()}}
    )
    pa_csv.write_csv(result, target)


def naive_seconds(frame: pd.DataFrame, sample: int) -> float:
    """What a user would write first: pint for every cell, thresholds in the loop."""
    registry = pint.UnitRegistry()
    molar = registry.Quantity(1355.37, "g/mol")
    rows = frame.head(sample).to_dict("records")
    start = time.perf_counter()
    for row in rows:
        cell = row["b12"]
        if not isinstance(cell, str) or not cell[:1].isdigit():
            continue
        number, unit = cell.split(" ", 1)
        quantity = registry.Quantity(float(number), unit)
        if quantity.check("[mass]/[length]**3"):
            quantity = quantity.to("pmol/L", "chemistry", mw=molar)
        value = quantity.to("pmol/L").magnitude
        _ = "deficient" if value < 133 else "indeterminate" if value <= 258 else "unlikely"
    return (time.perf_counter() - start) / sample * len(frame)


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def end_to_end(source: Path, target: Path) -> tuple[float, float]:
    """Seconds and peak resident memory [MiB] of the command line in a child process.

    The peak comes from GNU time, which starts the command from a small process: a child
    forked from this (large) benchmark process would carry its memory into the accounting.
    """
    command = [sys.executable, "-m", "b12lab", "classify", str(source), "-o", str(target)]
    report = target.with_suffix(".rss")
    start = time.perf_counter()
    subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(report), *command],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    return seconds, int(report.read_text().split()[-1]) / 1024


SHAPES = {"cells": (write_synthetic, floor), "columns": (write_columns, floor_columns)}


def measure(rows: int, repeats: int, folder: Path, shape: str) -> None:
    write, floor_of = SHAPES[shape]
    source = folder / f"labs-{shape}-{rows}.csv"
    write(source, rows)
    target = folder / "out.csv"
    floor_s = median_seconds(lambda: floor_of(source, target), repeats)
    runs = [end_to_end(source, target) for _ in range(repeats)]
    e2e_s = statistics.median(r[0] for r in runs)
    peak = max(r[1] for r in runs)
    frame = _frame(source, shape)
    b12lab.classify_frame(frame.head(1000))
    frame_s = median_seconds(lambda: b12lab.classify_frame(frame), repeats)
    print(f"rows: {rows:,}, shape {shape} ({source.stat().st_size / 2**20:,.0f} MiB of CSV)")
    print(f"  end-to-end throughput / floor throughput: {floor_s / e2e_s:.2f}  (target >= 0.6)")
    print(f"  classify_frame in memory: {rows / frame_s / 1e6:.2f} M rows/s  (target >= 5)")
    if shape == "cells":
        speedup = naive_seconds(frame, 2000) / frame_s
        print(f"  speed-up over the naive pint loop: {speedup:,.0f}x  (target >= 300)")
    print(f"  peak memory of the command line: {peak:,.0f} MiB  (target < 1024 at 10M rows)")
    print(f"  [floor {floor_s:.2f} s, end-to-end {e2e_s:.2f} s, in memory {frame_s:.2f} s]")


def _frame(source: Path, shape: str) -> pd.DataFrame:
    if shape == "columns":
        return pa_csv.read_csv(source).to_pandas()
    return pa_csv.read_csv(
        source,
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in ("b12", "mma", "hcy")}
        ),
    ).to_pandas()


def sweep(rows: int, repeats: int) -> None:
    """``classify_frame`` as the number of distinct B12 values per column grows."""
    rng = np.random.default_rng(7)
    print(f"distinct-value sweep, {rows:,} rows in memory (target: within 1.5x of the fastest)")
    speeds = {}
    for distinct in (100, 10_000, 100_000, 1_000_000):
        steps = 50 + rng.integers(0, distinct, rows) * (1950 / distinct)
        b12 = pd.Series(np.round(steps, 4).astype(str), dtype=object) + " pmol/L"
        frame = pd.DataFrame({"b12": b12, "mma": "0.21 umol/L"})
        b12lab.classify_frame(frame.head(100))
        seconds = median_seconds(lambda frame=frame: b12lab.classify_frame(frame), repeats)
        speeds[distinct] = rows / seconds
    fastest = max(speeds.values())
    for distinct, speed in speeds.items():
        print(f"  {distinct:>9,} distinct: {speed / 1e6:.2f} M rows/s ({fastest / speed:.2f}x)")


def startup(repeats: int) -> None:
    """Seconds above a bare interpreter for the command line's help and version."""

    def seconds(*command: str) -> float:
        return median_seconds(
            lambda: subprocess.run(command, check=True, capture_output=True), repeats
        )

    bare = seconds(sys.executable, "-c", "pass")
    for option in ("--help", "--version"):
        above = seconds(sys.executable, "-m", "b12lab", option) - bare
        print(f"  b12lab {option}: {above:.3f} s above python -c pass  (target <= 0.15)")
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
        for shape, (write, _) in SHAPES.items():
            source = Path(folder) / f"small-{shape}.csv"
            write(source, 1000)
            first = statistics.median(first_row(source) for _ in range(repeats))
            print(f"  first row ({shape}, 1,000 rows): {first:.3f} s after start  (target <= 0.5)")


def first_row(source: Path) -> float:
    """Seconds from starting ``b12lab classify`` to its first result row on standard output."""
    command = [sys.executable, "-m", "b12lab", "classify", str(source)]
    start = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as child:
        assert child.stdout is not None
        child.stdout.readline()  # the header
        if not child.stdout.readline():
            raise RuntimeError("b12lab wrote no result row")
        seconds = time.perf_counter() - start
        child.stdout.read()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="rows per file (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES))
    parser.add_argument("--sweep", action="store_true", help="distinct-value sweep")
    parser.add_argument("--startup", action="store_true", help="start-up time")
    args = parser.parse_args()
    compileall.compile_dir(Path(b12lab.__file__).parent, quiet=1)
    if args.startup:
        startup(max(args.repeats, 5))
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
        for rows in args.rows or [1_000_000]:
            for shape in args.shape or ["cells", "columns"]:
                measure(rows, args.repeats, Path(folder), shape)
            if args.sweep:
                sweep(rows, args.repeats)


if __name__ == "__main__":
    main()
