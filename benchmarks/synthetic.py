"""Seeded synthetic laboratory files in the two common shapes, for the benchmark and its tests.

``write_synthetic`` writes "value unit" in one cell (mixed units per analyte, about 1 % censored,
5 % missing, 0.1 % malformed); ``write_columns`` writes value and unit columns
(``b12,b12_unit,mma,mma_unit,hcy,hcy_unit``), bare numbers, MMA with three decimals. The same
seed gives the same bytes, so a test can hold b12lab's output on them fixed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

__all__ = ["write_columns", "write_synthetic"]


def _cells(
    rng: np.random.Generator,
    values: np.ndarray,
    units: list[str],
    factors: list[float],
    decimals: list[int],
) -> pa.Array:
    """Text cells ``"<value> <unit>"``, at the precision laboratories report in each unit."""
    choice = rng.integers(0, len(units), values.shape[0])
    scale = 10.0 ** np.asarray(decimals)[choice]
    scaled = np.round(values * np.asarray(factors)[choice] * scale) / scale
    numbers = pc.cast(pa.array(scaled), pa.string())
    unit_text = pa.DictionaryArray.from_arrays(pa.array(choice.astype(np.int32)), pa.array(units))
    text = pc.binary_join_element_wise(numbers, pc.cast(unit_text, pa.string()), " ")
    roll = rng.random(values.shape[0])
    text = pc.if_else(pa.array(roll < 0.01), pc.binary_join_element_wise("<", text, ""), text)
    text = pc.if_else(pa.array((roll > 0.5) & (roll < 0.501)), "see comment", text)
    return pc.if_else(pa.array(rng.random(values.shape[0]) < 0.05), None, text)


def write_synthetic(path: Path, rows: int, seed: int = 2026) -> None:
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "specimen": pc.binary_join_element_wise(
                "S", pc.cast(pa.array(np.arange(rows)), pa.string()), ""
            ),
            "b12": _cells(
                rng,
                rng.lognormal(np.log(300), 0.5, rows),
                ["pmol/L", "pg/mL", "ng/L"],
                [1.0, 1.35537, 1.35537],
                [0, 0, 0],
            ),
            "mma": _cells(
                rng,
                rng.lognormal(np.log(0.25), 0.5, rows),
                ["umol/L", "nmol/L"],
                [1.0, 1000.0],
                [2, 0],
            ),
            "hcy": _cells(rng, rng.lognormal(np.log(11), 0.35, rows), ["umol/L"], [1.0], [1]),
            "age": pa.array(rng.integers(18, 99, rows)),
        }
    )
    pa_csv.write_csv(table, path)


def write_columns(path: Path, rows: int, seed: int = 2026) -> None:
    """Value and unit columns, numbers without units, as many laboratory systems export."""
    rng = np.random.default_rng(seed)
    b12_unit = rng.choice(["pmol/L", "pg/mL"], rows)
    b12 = np.round(
        rng.lognormal(np.log(300), 0.5, rows) * np.where(b12_unit == "pg/mL", 1.35537, 1)
    )
    table = pa.table(
        {
            "specimen": pc.binary_join_element_wise(
                "S", pc.cast(pa.array(np.arange(rows)), pa.string()), ""
            ),
            "b12": pa.array(b12),
            "b12_unit": pa.array(b12_unit).dictionary_encode(),
            "mma": pa.array(np.round(rng.lognormal(np.log(0.25), 0.5, rows), 3)),
            "mma_unit": pa.array(np.full(rows, "umol/L")).dictionary_encode(),
            "hcy": pa.array(np.round(rng.lognormal(np.log(11), 0.35, rows), 1)),
            "hcy_unit": pa.array(np.full(rows, "umol/L")).dictionary_encode(),
            "age": pa.array(rng.integers(18, 99, rows)),
        }
    )
    pa_csv.write_csv(table, path)
