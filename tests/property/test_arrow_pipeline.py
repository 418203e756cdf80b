"""Arrow data says, row by row, what the same values say as a pandas frame."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import b12lab
from tests.strategies import CONTEXT_CELLS, rows

NAMES = ("b12", "holotc", "mma", "hcy", "folate", "creatinine", "egfr", *CONTEXT_CELLS)
TABLES = st.sampled_from([None, "bsh-2014@2", "generic-us-lab@2", "nice-ng239@1"])


def _arrow_column(cells: list[object], encode: bool) -> pa.Array:
    """The cells as Arrow holds them; a column Arrow cannot hold becomes text (nulls kept)."""
    try:
        column = pa.array(cells, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        column = pa.array([None if cell is None else str(cell) for cell in cells], pa.string())
    if encode and pa.types.is_string(column.type):
        return column.dictionary_encode()
    return column


def _same_values_in_pandas(table: pa.Table) -> pd.DataFrame:
    """The table's values as Python objects in object columns: the pandas way to give them."""
    data = {}
    for name in table.column_names:
        cells = np.empty(table.num_rows, dtype=object)
        for position, cell in enumerate(table.column(name).to_pylist()):
            cells[position] = cell
        data[name] = cells
    return pd.DataFrame(data)


def _cells(values: list[object]) -> list[object]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


@pytest.mark.filterwarnings("ignore::b12lab.errors.UnusedColumnWarning")
@given(
    people=st.lists(rows(), min_size=1, max_size=8),
    chosen=TABLES,
    encode=st.booleans(),
    batch=st.booleans(),
)
def test_arrow_data_gives_what_the_same_values_give_in_pandas(
    people: list[dict[str, Any]], chosen: str | None, encode: bool, batch: bool
) -> None:
    table = pa.table({n: _arrow_column([p.get(n) for p in people], encode) for n in NAMES})
    given_data = table.to_batches()[0] if batch and table.num_rows else table
    out = b12lab.classify_frame(given_data, table=chosen, explain=True)
    expected = b12lab.classify_frame(_same_values_in_pandas(table), table=chosen, explain=True)
    assert isinstance(out, pa.Table)
    assert out.num_rows == len(people)
    assert out.select(list(NAMES)).equals(table)
    added = [name for name in expected.columns if name.startswith("b12lab_")]
    assert out.column_names == [*NAMES, *added]
    for name in added:
        assert _cells(out.column(name).to_pylist()) == _cells(expected[name].tolist()), name
