"""Write results as CSV or Parquet, in order, atomically, and safe to open in a spreadsheet.

The output goes to a temporary file that replaces the target only when the run is complete, so
an interrupted run never leaves a partial file that looks finished. Each chunk is written on a
background thread while the next one is classified (the arrow writers release the GIL).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

__all__ = ["FORMULA_START", "neutralize_formulas", "writer"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet run a text cell as a formula."""
_FORMULA_FIRST = pa.array(FORMULA_START, type=pa.large_string())


@contextmanager
def writer(
    path: Path | None, stdout: IO[bytes], *, safe_for_spreadsheets: bool = True
) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A function that appends result chunks; the file appears, complete, only on success.

    Chunks are written strictly in order, at most one in flight. CSV text cells that a
    spreadsheet would run as formulas get a leading ``'`` unless ``safe_for_spreadsheets`` is off.
    """
    csv_write = functools.partial(_write_csv, safe=safe_for_spreadsheets)
    if path is None:
        with _ordered_writes(lambda frame, state: csv_write(frame, stdout, state)) as write:
            yield write
        stdout.flush()
        return
    directory = path.resolve().parent
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=directory)
    os.close(handle)
    parquet = path.suffix.lower() in (".parquet", ".pq")
    try:
        with open(temporary, "wb") as sink:
            if parquet:
                target = functools.partial(_write_parquet, path=temporary)
            else:
                target = functools.partial(csv_write, sink=sink)
            with _ordered_writes(lambda frame, state: target(frame, state=state)) as write:
                yield write
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextmanager
def _ordered_writes(
    write: Callable[[pd.DataFrame, dict[str, Any]], None],
) -> Iterator[Callable[[pd.DataFrame], None]]:
    state: dict[str, Any] = {}
    pending: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="b12lab-writer") as pool:

        def submit(frame: pd.DataFrame) -> None:
            if pending:
                pending.pop().result()  # at most one chunk in flight; re-raises its error
            pending.append(pool.submit(write, frame, state))

        yield submit
        if pending:
            pending.pop().result()
    if "writer" in state:
        state["writer"].close()


_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """The chunk as an arrow table; categorical columns stay dictionary-encoded (cheap to write)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    columns = [
        column.cast(_DICTIONARY) if pa.types.is_dictionary(column.type) else column
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


def neutralize_formulas(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Prefix ``'`` to text cells that start like a formula (OWASP CSV injection advice)."""
    if pa.types.is_dictionary(column.type):
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        safe = [
            pa.DictionaryArray.from_arrays(c.indices, neutralize_formulas(c.dictionary))
            for c in chunks
        ]
        return pa.chunked_array(safe, type=column.type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    first = pc.utf8_slice_codeunits(column, 0, 1)
    risky = pc.is_in(first, value_set=_FORMULA_FIRST.cast(first.type))
    if not pc.any(risky).as_py():
        return column
    quote, nothing = pa.scalar("'", column.type), pa.scalar("", column.type)
    return pc.if_else(risky, pc.binary_join_element_wise(quote, column, nothing), column)


def _write_csv(
    frame: pd.DataFrame, sink: IO[bytes], state: dict[str, Any], *, safe: bool = True
) -> None:
    table = _arrow(frame)
    if safe:
        table = pa.Table.from_arrays(
            [neutralize_formulas(c) for c in table.columns], names=table.column_names
        )
    if "writer" not in state:
        options = pa_csv.WriteOptions(quoting_style="needed")
        state["writer"] = pa_csv.CSVWriter(sink, table.schema, write_options=options)
        state["schema"] = table.schema
    state["writer"].write_table(table.cast(state["schema"]))


def _write_parquet(frame: pd.DataFrame, path: str, state: dict[str, Any]) -> None:
    table = _arrow(frame)
    if "writer" not in state:
        state["writer"] = pq.ParquetWriter(path, table.schema)
        state["schema"] = table.schema
    state["writer"].write_table(table.cast(state["schema"]))
