"""Read CSV and Parquet files in chunks of whole records, as laboratories export them.

Every cell is read as text (a column of numbers may hold ``<50`` further down). A CSV file is read
as UTF-8 (:mod:`b12lab._io.text`), cut into blocks at record ends (:mod:`b12lab._io.records`) and
each block is parsed on its own, so memory holds one block whatever the file size (pyarrow's own
streaming reader reads the whole file ahead).
Each row keeps the line it came from: errors cite line numbers, never the row's content. A row
whose field count differs from the header's (a ragged line) keeps the fields it has, padded with
empty ones or cut to the header's width, and carries its reason, so rows out always equal rows
in and the user can still tell which sample it was.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from b12lab._core.columns import bare_name as _bare
from b12lab._core.columns import recognise as _recognise
from b12lab._core.interchange import NULLABLE_INTEGERS, decimals_as_text
from b12lab._io.records import Block, RecordReader, Records, record_lines
from b12lab._io.text import Text, open_text
from b12lab.errors import ColumnError, InputFileError

__all__ = ["CHUNK_BYTES", "Chunk", "detect_delimiter", "read_chunks"]

CHUNK_BYTES = 16 << 20
DELIMITERS = (",", ";", "\t", "|")
_Columns = TypeVar("_Columns", pa.RecordBatch, pa.Table)
_PYARROW_BLOCK = 1 << 20
"""pyarrow's parsing block (its default); raised for a block holding a longer record."""


@dataclass(frozen=True)
class Chunk:
    """Rows of text, the line (CSV) or row (Parquet) each came from, and reader errors."""

    frame: pd.DataFrame
    lines: npt.NDArray[np.int64]
    errors: npt.NDArray[np.object_]
    consumed: int
    unit: str = "line"


def read_chunks(
    path: Path,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> Iterator[Chunk]:
    """Chunks of the file; ``delimiter`` is detected from the header when not given."""
    if path.suffix.lower() in (".parquet", ".pq"):
        yield from _parquet_chunks(path)
    else:
        yield from _csv_chunks(path, chunk_bytes, delimiter, encoding or "utf-8")


def _csv_chunks(
    path: Path, chunk_bytes: int, delimiter: str | None, encoding: str
) -> Iterator[Chunk]:
    with open(path, "rb") as raw:
        text = open_text(raw, encoding, path.name)
        reader = RecordReader(text, path.name)
        names, delimiter = _csv_header(reader, text, delimiter)
        convert = pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.large_string()),  # what pandas holds: no cast
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
        )
        empty = True
        for block in reader.blocks(chunk_bytes, delimiter.encode()):
            chunk = _chunk(block, text, names, delimiter, convert)
            if len(chunk.frame):
                empty = False
                yield chunk
    if empty:  # a header and no rows: the output still has its header
        frame = pd.DataFrame({name: pd.Series(dtype=object) for name in names})
        nothing = np.zeros(0, dtype=np.int64)
        yield Chunk(frame, nothing, np.zeros(0, dtype=object), path.stat().st_size)


def _chunk(
    block: Block, text: Text, names: list[str], delimiter: str, convert: pa_csv.ConvertOptions
) -> Chunk:
    """One block parsed, each row with the line it starts on."""
    data = text.checked(block.data, block.lines_before)
    parsed = _parse_block(data, names, delimiter, convert, block.records)
    lines = record_lines(data, block.records) + block.lines_before
    if len(lines) != len(parsed.frame):  # cannot happen: pyarrow reads records as we do
        lines = np.full(len(parsed.frame), -1, dtype=np.int64)
    return Chunk(parsed.frame, lines, parsed.errors, text.position)


@dataclass(frozen=True)
class _Parsed:
    frame: pd.DataFrame
    errors: npt.NDArray[np.object_]


def _parse_block(
    data: bytes,
    names: list[str],
    delimiter: str,
    convert: pa_csv.ConvertOptions,
    records: Records,
) -> _Parsed:
    """Parse whole records; ragged ones keep the fields they have and carry their reason."""
    ragged: list[_Ragged] = []

    def keep_aside(row: pa_csv.InvalidRow) -> str:
        ragged.append(_Ragged(row.number or 0, row.expected_columns, row.actual_columns, row.text))
        return "skip"

    def parse(threads: bool) -> pa.Table:
        return pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(
                column_names=names,
                use_threads=threads,
                block_size=_block_size(records.longest(len(data))),
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=records.quoted_line_ends,
                invalid_row_handler=keep_aside,
            ),
            convert_options=convert,
        )

    table = parse(threads=True)
    if ragged:  # parse again in order, to learn where the ragged records were
        ragged.clear()
        table = parse(threads=False)
    frame = table.to_pandas()
    errors = np.full(len(frame), "", dtype=object)
    if ragged:
        frame, errors = _with_ragged_rows(frame, ragged, delimiter)
    errors[_repeated_header(frame, names) & (errors == "")] = (
        "repeated_header: this line repeats the header"
    )
    return _Parsed(frame, errors)


def _block_size(longest: int) -> int:
    """pyarrow's block size: a record longer than a block would stop the parse ("straddling
    object"), so a block holding one gets blocks twice its length."""
    return int(min(max(_PYARROW_BLOCK, 2 * longest), (1 << 31) - 1))


def _repeated_header(frame: pd.DataFrame, names: list[str]) -> npt.NDArray[np.bool_]:
    """Rows that repeat the header line; only rows whose first cell is its name are examined."""
    if names[0]:  # compared where the cells are (arrow), with no Python string per row
        first = (frame[names[0]] == names[0]).to_numpy(dtype=bool, na_value=False)
    else:  # an empty name: a missing cell matches it
        first = frame[names[0]].to_numpy(dtype=object, na_value="") == names[0]
    candidates = np.flatnonzero(first)
    repeated = np.zeros(len(frame), dtype=bool)
    if candidates.size:
        rows = frame.iloc[candidates].astype("string").fillna("")
        same = np.ones(candidates.size, dtype=bool)
        for name in names:
            same &= (rows[name].str.strip() == name.strip()).to_numpy(dtype=bool)
        repeated[candidates] = same
    return repeated


@dataclass(frozen=True)
class _Ragged:
    """A record whose field count differs from the header's, as pyarrow reports it."""

    number: int
    expected: int
    actual: int
    text: str


def _with_ragged_rows(
    frame: pd.DataFrame, ragged: Sequence[_Ragged], delimiter: str
) -> tuple[pd.DataFrame, npt.NDArray[np.object_]]:
    """Ragged records put back in place with their fields, so the row can still be identified."""
    total = len(frame) + len(ragged)
    positions = np.array([row.number - 1 for row in ragged], dtype=np.int64)  # numbered from 1
    valid = np.ones(total, dtype=bool)
    valid[positions] = False
    cells = np.empty((total, frame.shape[1]), dtype=object)
    cells[valid] = frame.to_numpy(dtype=object)
    for position, row in zip(positions, ragged, strict=True):
        cells[position] = _fields(row.text, delimiter, frame.shape[1])
    full = pd.DataFrame(
        {
            name: pd.Series(cells[:, index], dtype=frame[name].dtype)
            for index, name in enumerate(frame.columns)
        }
    )
    errors = np.full(total, "", dtype=object)
    for position, row in zip(positions, ragged, strict=True):
        errors[position] = f"ragged_row: expected {row.expected} fields, found {row.actual}"
    return full, errors


def _fields(text: str, delimiter: str, width: int) -> list[str | None]:
    """The first ``width`` fields of a record, padded with empty ones (``None``)."""
    fields = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    kept: list[str | None] = [field or None for field in fields[:width]]
    return kept + [None] * (width - len(kept))


def _csv_header(reader: RecordReader, text: Text, delimiter: str | None) -> tuple[list[str], str]:
    """Column names from the first record, with duplicates made unique (``name.1``), and the
    delimiter."""
    header = _header_line(reader, text, delimiter)
    chosen = delimiter or detect_delimiter(header)
    names = next(csv.reader(io.StringIO(header, newline=""), delimiter=chosen))
    twice = sorted({n for n in names if names.count(n) > 1 and _recognise(_bare(n)) is not None})
    if twice:
        raise ColumnError(
            f"{text.name}: the header names {', '.join(map(repr, twice))} more than once; "
            "keep one, or rename one and choose it with --map",
            columns=tuple(names),
        )
    return _unique(names), chosen


def _header_line(reader: RecordReader, text: Text, delimiter: str | None) -> str:
    """The first record, however long, without its line end."""
    block = reader.header((delimiter or "".join(DELIMITERS)).encode())
    header = "" if block is None else text.checked(block.data, 0).decode("utf-8")
    if not header.strip():
        raise InputFileError(f"{text.name}: the file is empty; expected a header line")
    if "\0" in header:
        raise InputFileError(
            f"{text.name}: the header holds NUL characters, as UTF-16 or UTF-32 text without a "
            "byte order mark does; give --encoding utf-16 (or utf-32)",
            encoding=text.encoding,
        )
    return header.removesuffix("\n").removesuffix("\r")


def detect_delimiter(header: str) -> str:
    """The one delimiter the header line uses outside quotes; refuse to guess between several."""
    outside = "".join(part for index, part in enumerate(header.split('"')) if index % 2 == 0)
    used = [d for d in DELIMITERS if d in outside]
    if len(used) > 1:
        shown = " and ".join(repr(d) for d in used)
        raise InputFileError(
            f"the header line contains {shown}; say which separates fields with --delimiter",
            delimiters=tuple(used),
        )
    return used[0] if used else ","


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}.{count}")
    return unique


def _parquet_chunks(path: Path) -> Iterator[Chunk]:
    import pyarrow.parquet as pq  # only for Parquet input: it takes a while to import

    parquet = pq.ParquetFile(path)
    size, rows, done = path.stat().st_size, max(parquet.metadata.num_rows, 1), 0
    empty = True
    for batch in parquet.iter_batches(batch_size=1 << 18):
        empty = False
        lines = np.arange(done + 1, done + batch.num_rows + 1, dtype=np.int64)
        done += batch.num_rows
        errors = np.full(batch.num_rows, "", dtype=object)
        yield Chunk(_frame(batch), lines, errors, int(size * done / rows), unit="row")
    if empty:
        frame = _frame(parquet.schema_arrow.empty_table())
        yield Chunk(frame, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), size, "row")


def _frame(batch: _Columns) -> pd.DataFrame:
    """Rows of Parquet as pandas, every value kept: integers stay integers, decimals exact."""
    frame: pd.DataFrame = decimals_as_text(batch).to_pandas(types_mapper=NULLABLE_INTEGERS.get)
    return frame
