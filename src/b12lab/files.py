"""CSV and Parquet files in chunks: memory stays flat whatever the file size.

Every cell is read as text (a column of numbers may hold ``<50`` further down), each chunk goes
through :func:`b12lab.classify_frame`, and the output is written to a temporary file that replaces
the target only when the run is complete, so an interrupted run never leaves a partial file that
looks finished.
"""

from __future__ import annotations

import csv
import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from b12lab.errors import ColumnError

__all__ = ["CHUNK_BYTES", "Progress", "read_chunks", "writer"]

CHUNK_BYTES = 16 << 20


@dataclass
class Progress:
    """Rows and bytes done, for a progress bar; ``total_bytes`` is the input file's size."""

    total_bytes: int
    rows_in: int = 0
    rows: int = 0
    bytes_read: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def read_chunks(
    path: Path, *, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[tuple[pd.DataFrame, int]]:
    """Yield (chunk as text columns, bytes of input consumed so far)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        yield from _parquet_chunks(path)
    else:
        yield from _csv_chunks(path, chunk_bytes)


def _csv_chunks(path: Path, chunk_bytes: int) -> Iterator[tuple[pd.DataFrame, int]]:
    """Parse the file one block of whole records at a time.

    pyarrow's streaming reader reads ahead without bound (a whole 500 MB file sits in memory),
    so blocks are cut here, at a line end outside quotes, and each is parsed on its own: memory
    holds one block and its results, whatever the file size.
    """
    names = _csv_header(path, chunk_bytes)
    convert = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
    )
    empty, consumed = True, 0
    with open(path, "rb") as source:
        for number, block in enumerate(_record_blocks(source, chunk_bytes)):
            consumed += len(block)
            # The first block starts with the header line; the names are given, so skip it.
            read = pa_csv.ReadOptions(column_names=names, skip_rows=1 if number == 0 else 0)
            table = pa_csv.read_csv(pa.py_buffer(block), read_options=read, convert_options=convert)
            if table.num_rows:
                empty = False
                yield table.to_pandas(), consumed
    if empty:  # a header and no rows: the output still gets its header
        yield pd.DataFrame({name: pd.Series(dtype=object) for name in names}), path.stat().st_size


def _record_blocks(source: IO[bytes], size: int) -> Iterator[bytes]:
    """Blocks of about ``size`` bytes that end at a line end outside any quoted field."""
    carry = b""
    while True:
        data = source.read(size)
        if not data:
            if carry:
                yield carry
            return
        block = carry + data
        cut = _last_record_end(block)
        if cut < 0:  # no complete record yet: read more
            carry = block
            continue
        yield block[: cut + 1]
        carry = block[cut + 1 :]


def _last_record_end(block: bytes) -> int:
    """Index of the last newline outside quotes, or -1; the block starts outside quotes, and
    quotes pair up (``""`` inside a quoted field escapes one)."""
    position = block.rfind(b"\n")
    while position >= 0:
        if block.count(b'"', 0, position) % 2 == 0:
            return position
        position = block.rfind(b"\n", 0, position)
    return -1


def _csv_header(path: Path, chunk_bytes: int) -> list[str]:
    """Column names from the first line only (no type inference over a whole block)."""
    with open(path, newline="", encoding="utf-8-sig") as text:
        names = next(csv.reader(text), [])
    if not names:
        raise ColumnError(f"{path.name}: the file is empty; expected a header line", columns=[])
    if len(set(names)) != len(names):
        raise ColumnError(f"{path.name}: the header repeats a column name: {names}", columns=names)
    return names


def _parquet_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, int]]:
    parquet = pq.ParquetFile(path)
    size, rows, done = path.stat().st_size, max(parquet.metadata.num_rows, 1), 0
    empty = True
    for batch in parquet.iter_batches(batch_size=1 << 18):
        empty = False
        done += batch.num_rows
        yield batch.to_pandas(), int(size * done / rows)
    if empty:
        yield parquet.schema_arrow.empty_table().to_pandas(), size


@contextmanager
def writer(path: Path | None, stdout: IO[bytes]) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A function that appends result chunks; the file appears, complete, only on success.

    Each chunk is written on a background thread while the next one is classified (the arrow
    writers release the GIL); chunks are written strictly in order, at most one in flight.
    """
    if path is None:
        with _ordered_writes(lambda frame, state: _write_csv(frame, stdout, state)) as write:
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
                target = functools.partial(_write_csv, sink=sink)
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


def _write_csv(frame: pd.DataFrame, sink: IO[bytes], state: dict[str, Any]) -> None:
    table = _arrow(frame)
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
