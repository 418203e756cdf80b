"""Write results as CSV, Parquet or JSON lines, in order, atomically, spreadsheet-safe.

The output goes to a temporary file that replaces the target only when the run is complete, so
an interrupted run never leaves a partial file that looks finished; its run record follows it the
same way. Only regular files are replaced: a device, a FIFO or a terminal is written through.
Each chunk is written on a background thread while the next one is classified (the arrow
writers release the GIL).
"""

from __future__ import annotations

import errno
import functools
import io
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from b12lab._io.run_record import METADATA_KEY, record_path

__all__ = [
    "FORMATS",
    "FORMULA_START",
    "Output",
    "is_stream",
    "neutralize_formulas",
    "output_format",
    "replace_whole",
    "write_whole",
    "writer",
]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet run a text cell as a formula."""
_FORMULA_FIRST = pa.array(FORMULA_START, type=pa.large_string())


FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
"""Output format by file name extension."""


def output_format(path: Path | None) -> str:
    """The format a name asks for; standard output (``None``) and other streams get CSV.

    An unknown extension is refused rather than written as CSV under a misleading name; a stream
    (``/dev/null``, a FIFO) names no file, so it gets CSV unless its name says otherwise.
    """
    if path is None:
        return "csv"
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        if is_stream(path):
            return "csv"
        raise ValueError(
            f"cannot tell the output format of {str(path)!r}; name the file with one of "
            f"{', '.join(FORMATS)} (.ndjson and .jsonl write one JSON object per line), "
            "or give - for CSV on standard output"
        ) from None


@dataclass
class Output:
    """Appends result chunks with ``write``; ``record`` (JSON text), if set, goes with them.

    Parquet carries the record in its metadata; a regular file also gets it beside it, as
    ``<name>.b12lab.json``. Both appear only when the whole run succeeded.
    """

    write: Callable[[pd.DataFrame], None]
    record: str | None = None


def is_stream(path: Path) -> bool:
    """Whether ``path`` (its target, for a symlink) exists and is not a regular file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode)


@contextmanager
def writer(
    path: Path | None, stdout: Callable[[], IO[bytes]], *, safe_for_spreadsheets: bool = True
) -> Iterator[Output]:
    """Where result chunks go; a file and its record appear, complete, only on success.

    ``stdout`` gives standard output when ``path`` is ``None`` (it is not asked for otherwise).
    Chunks are written strictly in order, at most one in flight. CSV text cells that a
    spreadsheet would run as formulas get a leading ``'`` unless ``safe_for_spreadsheets`` is off.
    Only a regular file (or a new one) is replaced atomically, through a symlink to it if ``path``
    is one. Anything else (``/dev/null``, a FIFO, a terminal) is written through: replacing it
    would turn a device into a file of results.
    """
    fmt = output_format(path)
    safe = safe_for_spreadsheets
    if path is None:
        with _formatted(stdout(), fmt, safe=safe, shown="standard output") as output:
            yield output
    elif is_stream(path):
        with (
            open(path, "wb", buffering=0) as stream,
            _formatted(stream, fmt, safe=safe, shown=str(path)) as output,
        ):
            yield output
    else:
        with _atomic(Path(os.path.realpath(path)), fmt, safe=safe, shown=str(path)) as output:
            yield output


@contextmanager
def _atomic(target: Path, fmt: str, *, safe: bool, shown: str) -> Iterator[Output]:
    """Write beside ``target``, then rename over it, and put the record beside it the same way."""
    written: list[str] = []
    try:
        _temporary(target, shown, written)
        temporary = written[0]
        with (
            open(temporary, "wb", buffering=0) as sink,
            _formatted(sink, fmt, safe=safe, shown=shown) as output,
        ):
            yield output
        if output.record is not None:
            _temporary(record_path(target), shown, written)
            Path(written[1]).write_text(output.record, encoding="utf-8")
        _commit(written, target, shown)
    finally:
        for name in written:
            if os.path.exists(name):
                os.unlink(name)


def _temporary(path: Path, shown: str, written: list[str]) -> None:
    """A new, empty, private file beside ``path`` (so that renaming it is atomic), listed in
    ``written`` before it exists: an interruption at any point leaves nothing unlisted to remove.

    A failure names the output as given: the temporary name means nothing to the user.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    while True:
        name = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.partial")
        written.append(name)
        try:
            os.close(os.open(name, flags, 0o600))
        except FileExistsError:
            written.remove(name)  # another file's: not ours to remove
            continue
        except OSError as exc:
            written.remove(name)
            raise OSError(exc.errno, exc.strerror, shown) from None
        return


def _commit(written: list[str], path: Path, shown: str) -> None:
    """Output first, then its record; an old record goes first, so none is ever stale.

    The files get the permissions the umask gives a new file, as any other tool's output
    would (a temporary file is created private).
    """
    record = record_path(path)
    mode = 0o666 & ~_umask()
    try:
        for name in written:
            os.chmod(name, mode)
        record.unlink(missing_ok=True)
        os.replace(written[0], path)
        if len(written) > 1:
            os.replace(written[1], record)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, shown) from None


def write_whole(path: Path | None, data: bytes, stdout: Callable[[], IO[bytes]]) -> None:
    """``data`` at once, to standard output (``None``), a stream, or a file that appears whole
    (written beside it, then renamed over it, with the permissions the umask gives)."""
    if path is None:
        write_all(stdout(), data)
        stdout().flush()
        return
    if is_stream(path):
        with open(path, "wb", buffering=0) as stream:
            write_all(stream, data)
        return
    replace_whole(Path(os.path.realpath(path)), data)


def replace_whole(path: Path, data: bytes) -> Path:
    """``data`` to ``path`` through a temporary file in the same folder, then renamed: the
    file appears whole or not at all, with the permissions the umask gives a new file (the
    temporary file is private until then). A failure names ``path``, not the temporary file."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's umask; reading it means setting it, so a private one stands in meanwhile."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_all(sink: IO[bytes], data: Any) -> int:
    """Write every byte of ``data``, or raise.

    A write can take fewer bytes than it was given without an error: a pipe whose reader goes
    away mid-write, a signal during a write to a pipe or device. Python's buffered writer then
    returns the short count, and pyarrow's writers do not look at it, so the rest of the output
    would be lost in silence. Writing the rest makes the next write fail as it should.
    """
    view = memoryview(data).cast("B")
    total = view.nbytes
    while view.nbytes:
        written = sink.write(view)
        if not written:
            raise BlockingIOError(errno.EAGAIN, "the output took none of the bytes written")
        view = view[written:]
    return total


class WholeWrites(io.RawIOBase):
    """``sink`` for pyarrow's writers: each write writes all its bytes or raises (see
    :func:`write_all`); closing it leaves ``sink`` to its owner."""

    def __init__(self, sink: IO[bytes]) -> None:
        super().__init__()
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return write_all(self._sink, data)

    def flush(self) -> None:
        self._sink.flush()


@contextmanager
def _formatted(sink: IO[bytes], fmt: str, *, safe: bool, shown: str) -> Iterator[Output]:
    """Ordered chunk writes in one format; on success the format's writer closes with the record.

    A failed write (a full disk, a closed pipe) names the output as ``shown``. Files are opened
    unbuffered (the writers write whole chunks), so that closing one after a failed write does not
    fail again, unnamed.
    """
    state: dict[str, Any] = {}
    sink = cast("IO[bytes]", WholeWrites(sink))  # a binary file, as the writers need
    if fmt == "parquet":
        target = functools.partial(_write_parquet, sink=sink)
    elif fmt == "ndjson":
        target = functools.partial(_write_ndjson, sink=sink)
    else:
        target = functools.partial(_write_csv, sink=sink, safe=safe)

    def write(frame: pd.DataFrame) -> None:
        with _named(shown):
            target(frame, state=state)

    with _ordered_writes(write) as submit:
        output = Output(submit)
        yield output
    with _named(shown):
        if "writer" in state:
            if fmt == "parquet" and output.record is not None:
                state["writer"].add_key_value_metadata({METADATA_KEY: output.record})
            state["writer"].close()
        sink.flush()


@contextmanager
def _named(shown: str) -> Iterator[None]:
    """An error writing to a file object names no file; give it the output's name."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), shown) from exc


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
    """The chunk as an arrow table; categorical text stays dictionary-encoded (cheap to write).

    Categories of other values (bytes, numbers) are decoded: they need not be valid text.
    """
    # One thread: arrow would start a pool of threads for every chunk, which costs more than
    # converting columns that are mostly arrow's already.
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    columns = [_undictionaried(column) for column in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _undictionaried(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if not pa.types.is_dictionary(column.type):
        return column
    values = column.type.value_type
    if pa.types.is_string(values) or pa.types.is_large_string(values):
        return column.cast(_DICTIONARY)
    return column.cast(values)


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
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if not any(_starts_like_formula(chunk) for chunk in chunks):
        return column
    first = pc.utf8_slice_codeunits(column, 0, 1)
    risky = pc.is_in(first, value_set=_FORMULA_FIRST.cast(first.type))
    quote, nothing = pa.scalar("'", column.type), pa.scalar("", column.type)
    return pc.if_else(risky, pc.binary_join_element_wise(quote, column, nothing), column)


_FORMULA_BYTES = np.zeros(256, dtype=bool)
_FORMULA_BYTES[[ord(c) for c in FORMULA_START]] = True


def _starts_like_formula(chunk: pa.Array) -> bool:
    """Whether any cell's first byte starts a formula, read from the array's buffers (every
    formula start is one ASCII byte, so the first byte of the text is enough)."""
    _, offsets_buffer, data = chunk.buffers()
    if data is None or not len(chunk):
        return False
    width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    window = np.frombuffer(offsets_buffer, dtype=width)[
        chunk.offset : chunk.offset + len(chunk) + 1
    ]
    offsets: npt.NDArray[np.int64] = window.astype(np.int64, copy=False)
    starts = offsets[:-1][offsets[1:] > offsets[:-1]]  # cells with text; a null has none
    text = np.frombuffer(data, dtype=np.uint8)
    return bool(_FORMULA_BYTES[text[starts]].any())


_BINARY = tuple(
    getattr(pa.types, name)
    for name in ("is_binary", "is_large_binary", "is_fixed_size_binary", "is_binary_view")
    if hasattr(pa.types, name)  # binary views are newer than the oldest pyarrow supported
)


def _is_binary(kind: pa.DataType) -> bool:
    return any(is_type(kind) for is_type in _BINARY)


def _is_nested(kind: pa.DataType) -> bool:
    return bool(pa.types.is_nested(kind))


def _textual(table: pa.Table) -> pa.Table:
    """Columns text cannot hold as they are, as text: bytes as hex, nested values as JSON.

    Bytes need not be valid UTF-8 (an image, a hash); a list or a record has no CSV form.
    """
    columns = [_hex_column(c) if _is_binary(c.type) else c for c in table.columns]
    columns = [_json_column(c) if _is_nested(c.type) else c for c in columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _hex_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([_hex(chunk) for chunk in column.chunks], type=pa.large_string())


_HEX_DIGITS = np.frombuffer(
    "".join(f"{byte:02x}" for byte in range(256)).encode(), dtype=np.uint8
).reshape(256, 2)


def _hex(chunk: pa.Array) -> pa.Array:
    """Each cell's bytes as lower-case hexadecimal text (two digits a byte); nulls stay null."""
    chunk = chunk.cast(pa.large_binary())
    bounds = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
    bounds = bounds[chunk.offset : chunk.offset + len(chunk) + 1]
    data = chunk.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    digits = _HEX_DIGITS[raw[bounds[0] : bounds[-1]]].tobytes()
    offsets = pa.py_buffer(((bounds - bounds[0]) * 2).astype(np.int64).tobytes())
    text = pa.LargeStringArray.from_buffers(len(chunk), offsets, pa.py_buffer(digits))
    return pc.if_else(pc.is_null(chunk), pa.scalar(None, pa.large_string()), text)


def _json_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Each list, map or record cell as compact JSON text; nulls stay null."""
    texts = [None if value is None else _json_value(value) for value in column.to_pylist()]
    return pa.chunked_array([pa.array(texts, type=pa.large_string())])


def _json_value(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(value: object) -> str:
    """JSON has no bytes, dates or decimals: hex for bytes, ISO 8601 or exact text otherwise."""
    if isinstance(value, bytes):
        return value.hex()
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(value)


_CSV_BATCH_ROWS = 1 << 16


def _write_csv(
    frame: pd.DataFrame, sink: IO[bytes], state: dict[str, Any], *, safe: bool = True
) -> None:
    table = _textual(_arrow(frame))
    if safe:
        names = [f"'{n}" if n.startswith(FORMULA_START) else n for n in table.column_names]
        table = pa.Table.from_arrays([neutralize_formulas(c) for c in table.columns], names=names)
    if "writer" not in state:
        # Rows formatted together: larger batches than arrow's default 1024 write about a
        # quarter faster, with the same bytes.
        options = pa_csv.WriteOptions(quoting_style="needed", batch_size=_CSV_BATCH_ROWS)
        state["writer"] = pa_csv.CSVWriter(sink, table.schema, write_options=options)
        state["schema"] = table.schema
    state["writer"].write_table(table.cast(state["schema"]))


def _write_parquet(frame: pd.DataFrame, sink: IO[bytes], state: dict[str, Any]) -> None:
    import pyarrow.parquet as pq  # only for Parquet output: it takes a while to import

    table = _arrow(frame)
    if "writer" not in state:
        state["writer"] = pq.ParquetWriter(sink, table.schema)
        state["schema"] = table.schema
    state["writer"].write_table(table.cast(state["schema"]))


def _write_ndjson(frame: pd.DataFrame, sink: IO[bytes], state: dict[str, Any]) -> None:
    """One JSON object per row and line; numbers keep every digit (shortest round-trip text)."""
    table = _arrow(frame)
    binary = [_hex_column(c) if _is_binary(c.type) else c for c in table.columns]
    table = pa.Table.from_arrays(binary, names=table.column_names)
    if table.num_rows == 0:
        return
    names, columns = table.column_names, table.columns
    members = [_json_members(name, column) for name, column in zip(names, columns, strict=True)]
    rows = pc.binary_join_element_wise(*members, _text(","))
    lines = pc.binary_join_element_wise(_text("{"), rows, _text("}\n"), _text(""))
    for chunk in lines.chunks:
        sink.write(_utf8(chunk))


def _json_members(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``"name":value`` for every cell of a column; missing and non-finite values are null."""
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_finite(column), column, pa.scalar(None, column.type))
    plain = pa.types.is_floating, pa.types.is_integer, pa.types.is_boolean
    if any(is_type(column.type) for is_type in plain):  # their text is valid JSON
        text = pc.cast(column, pa.large_string())
    elif _is_nested(column.type):
        text = _json_column(column)  # already JSON
    else:
        text = pa.chunked_array(
            [_json_strings(chunk) for chunk in column.chunks], type=pa.large_string()
        )
    key = _text(json.dumps(name, ensure_ascii=False) + ":")
    return pc.binary_join_element_wise(key, pc.fill_null(text, _text("null")), _text(""))


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def _json_strings(chunk: pa.Array) -> pa.Array:
    """Cells as JSON strings: quoted by arrow kernels, escaped by :mod:`json` only where needed."""
    if pa.types.is_dictionary(chunk.type):
        return pc.take(_json_strings(chunk.dictionary), chunk.indices)
    text = pc.cast(chunk, pa.large_string())
    quoted = pc.binary_join_element_wise(_text('"'), text, _text('"'), _text(""))
    special = pc.fill_null(pc.match_substring_regex(text, _NEEDS_ESCAPE), False)
    if not pc.any(special).as_py():
        return quoted
    rows = pc.take(text, np.flatnonzero(special.to_numpy(zero_copy_only=False)))
    escaped = [_json_string(value) for value in rows.to_pylist()]
    return pc.replace_with_mask(quoted, special, pa.array(escaped, type=pa.large_string()))


_NEEDS_ESCAPE = '[\\x00-\\x1f"\\\\\u2028\u2029]'
"""Characters JSON does not allow bare in a string, and two that line readers take as line ends."""


def _json_string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _utf8(chunk: pa.Array) -> pa.Buffer:
    """The bytes of a large_string array without nulls, all values back to back."""
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)
    start, stop = offsets[chunk.offset], offsets[chunk.offset + len(chunk)]
    return chunk.buffers()[2].slice(int(start), int(stop - start))
