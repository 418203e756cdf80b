"""Write results as CSV or Parquet, in order, atomically, and safe to open in a spreadsheet.

The output goes to a temporary file that replaces the target only when the run is complete, so
an interrupted run never leaves a partial file that looks finished; its run record follows it the
same way. Each chunk is written on a background thread while the next one is classified (the
arrow writers release the GIL).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from b12lab._io.run_record import METADATA_KEY, record_path

__all__ = ["FORMULA_START", "Output", "neutralize_formulas", "output_format", "writer"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet run a text cell as a formula."""
_FORMULA_FIRST = pa.array(FORMULA_START, type=pa.large_string())


def output_format(path: Path | None) -> str:
    """``parquet`` for a ``.parquet`` or ``.pq`` name, else ``csv`` (standard output included)."""
    return "parquet" if path is not None and path.suffix.lower() in (".parquet", ".pq") else "csv"


@dataclass
class Output:
    """Appends result chunks with ``write``; ``record`` (JSON text), if set, goes with them.

    A Parquet file carries the record in its metadata; a file output gets it beside it, as
    ``<name>.b12lab.json``. Both appear only when the whole run succeeded.
    """

    write: Callable[[pd.DataFrame], None]
    record: str | None = None


@contextmanager
def writer(
    path: Path | None, stdout: IO[bytes], *, safe_for_spreadsheets: bool = True
) -> Iterator[Output]:
    """Where result chunks go; the file and its record appear, complete, only on success.

    Chunks are written strictly in order, at most one in flight. CSV text cells that a
    spreadsheet would run as formulas get a leading ``'`` unless ``safe_for_spreadsheets`` is off.
    """
    if path is None:
        with _formatted(stdout, parquet=False, safe=safe_for_spreadsheets) as output:
            yield output
        stdout.flush()
        return
    parquet = output_format(path) == "parquet"
    temporary = _temporary(path)
    written: list[str] = [temporary]
    try:
        with (
            open(temporary, "wb") as sink,
            _formatted(sink, parquet=parquet, safe=safe_for_spreadsheets) as output,
        ):
            yield output
        if output.record is not None:
            written.append(_temporary(record_path(path)))
            Path(written[1]).write_text(output.record, encoding="utf-8")
        _commit(written, path)
    finally:
        for name in written:
            if os.path.exists(name):
                os.unlink(name)


def _temporary(path: Path) -> str:
    """A new, empty temporary file beside ``path``, so that renaming it is atomic."""
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".partial", dir=path.resolve().parent
    )
    os.close(handle)
    return temporary


def _commit(written: list[str], path: Path) -> None:
    """Output first, then its record; an old record goes first, so none is ever stale."""
    record = record_path(path)
    record.unlink(missing_ok=True)
    os.replace(written[0], path)
    if len(written) > 1:
        os.replace(written[1], record)


@contextmanager
def _formatted(sink: IO[bytes], *, parquet: bool, safe: bool) -> Iterator[Output]:
    """Ordered chunk writes in one format; on success the format's writer closes with the record."""
    state: dict[str, Any] = {}
    if parquet:
        target = functools.partial(_write_parquet, sink=sink)
    else:
        target = functools.partial(_write_csv, sink=sink, safe=safe)
    with _ordered_writes(lambda frame: target(frame, state=state)) as write:
        output = Output(write)
        yield output
    if "writer" in state:
        if parquet and output.record is not None:
            state["writer"].add_key_value_metadata({METADATA_KEY: output.record})
        state["writer"].close()


@contextmanager
def _ordered_writes(
    write: Callable[[pd.DataFrame], None],
) -> Iterator[Callable[[pd.DataFrame], None]]:
    pending: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="b12lab-writer") as pool:

        def submit(frame: pd.DataFrame) -> None:
            if pending:
                pending.pop().result()  # at most one chunk in flight; re-raises its error
            pending.append(pool.submit(write, frame))

        yield submit
        if pending:
            pending.pop().result()


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


def _write_parquet(frame: pd.DataFrame, sink: IO[bytes], state: dict[str, Any]) -> None:
    table = _arrow(frame)
    if "writer" not in state:
        state["writer"] = pq.ParquetWriter(sink, table.schema)
        state["schema"] = table.schema
    state["writer"].write_table(table.cast(state["schema"]))
