"""Throughput of batch classification, as ratios against baselines measured in the same run.

Machines here are noisy, so no absolute time is trusted on its own: each figure is the median of
several repeats, reported next to a baseline timed in the same process.

    python benchmarks/bench_classify.py [--rows 200000] [--repeats 5]

Baselines:
* floor: bare numpy doing a comparable job (fixed cut-offs, one unit per column, no tables);
* naive: a Python loop that calls ``b12lab.classify`` once per row (sampled and extrapolated).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

import b12lab


def synthetic(rows: int, seed: int = 12) -> pd.DataFrame:
    """Seeded lab results: mixed units, about 1 % censored, 5 % missing, 0.1 % malformed."""
    rng = np.random.default_rng(seed)
    b12_pmol = rng.lognormal(np.log(300), 0.5, rows)
    pick = rng.random(rows)
    b12 = np.where(
        pick < 0.5,
        [f"{v:.0f} pmol/L" for v in b12_pmol],
        [f"{v * 1.35537:.0f} pg/mL" for v in b12_pmol],
    )
    mma = np.array(
        [f"{v:.2f} umol/L" for v in rng.lognormal(np.log(0.25), 0.5, rows)], dtype=object
    )
    hcy = np.array([f"{v:.1f} umol/L" for v in rng.lognormal(np.log(11), 0.35, rows)], dtype=object)
    b12 = b12.astype(object)
    b12[rng.random(rows) < 0.01] = "<100 pg/mL"
    for column in (b12, mma, hcy):
        column[rng.random(rows) < 0.05] = None
    b12[rng.random(rows) < 0.001] = "see comment"
    return pd.DataFrame({"b12": b12, "mma": mma, "hcy": hcy, "age": rng.integers(18, 95, rows)})


def floor(df: pd.DataFrame) -> np.ndarray:
    parts = df["b12"].astype("string").str.extract(r"^\s*([<>]?)\s*([0-9.]+)\s*(.*)$")
    value = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    value = np.where(parts[2].fillna("").to_numpy() == "pg/mL", value * 0.7378, value)
    return np.digitize(value, [133.0, 258.0])


def timed(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def naive(df: pd.DataFrame, sample: int) -> float:
    rows = df.head(sample).to_dict("records")
    start = time.perf_counter()
    for row in rows:
        with contextlib.suppress(b12lab.B12LabError):
            b12lab.classify(b12=row["b12"], mma=row["mma"], hcy=row["hcy"], age=float(row["age"]))
    return (time.perf_counter() - start) / sample * len(df)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-sample", type=int, default=2_000)
    args = parser.parse_args()
    df = synthetic(args.rows)
    b12lab.classify_frame(df.head(100))  # warm the caches, as a long run would be
    ours = timed(lambda: b12lab.classify_frame(df), args.repeats)
    base = timed(lambda: floor(df), args.repeats)
    loop = naive(df, args.naive_sample)
    print(f"rows: {args.rows:,}")
    print(f"classify_frame: {args.rows / ours:,.0f} rows/s")
    print(f"floor (bare numpy, B12 only): {args.rows / base:,.0f} rows/s")
    print(f"classify_frame / floor throughput ratio: {base / ours:.2f}")
    print(f"speed-up over a per-row classify() loop: {loop / ours:,.0f}x")


if __name__ == "__main__":
    main()
