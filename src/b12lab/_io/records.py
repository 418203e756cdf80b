"""Where the records of CSV text end, found in one vectorized pass, and blocks of whole records.

Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``, as pyarrow's parser reads them. A record ends
at a line end outside quotes. As in RFC 4180, a quote opens a quoted field only at the start of
a field (first in the data, or after a delimiter or a line end); inside one, ``""`` is a quote
and a single quote closes it. A quote anywhere else (``O"Brien``) is an ordinary character.
pyarrow follows the same rule, so the records found here are the rows it parses.

Quotes come in runs (one or more in a row), and each run either keeps the state (inside or
outside a quoted field), flips it, or ends any quoted field:

* a run of even length keeps it: escaped quotes inside; ``""`` (an empty field) or plain text
  outside;
* a run of odd length at a field start flips it: it opens a field, or closes one just before a
  delimiter or line end;
* a run of odd length elsewhere ends any quoted field: it closes one, or is plain text.

So the state after a run is the parity of the flips since the last run that ended a field: a
cumulative sum over the runs, with no loop over the text.

A quoted field that spans lines and is closed by a quote followed by more text (``"...`` on one
line, ``O"Brien`` on a later one) is not a field: its opening quote is stray, and reading it would
merge the lines between into one row. The reader refuses such a file, naming the quote's line.

Every byte is looked at a fixed number of times, so the time to find records grows linearly
with the size of the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from b12lab.errors import InputFileError

__all__ = [
    "MAX_QUOTED_BYTES",
    "Block",
    "RecordReader",
    "Records",
    "Source",
    "count_line_ends",
    "record_lines",
    "scan",
]

MAX_QUOTED_BYTES = 64 << 20
"""A quoted field longer than this is taken to open at a stray quote: no laboratory writes one,
and reading on would hold the rest of the file in memory as a single field."""

HEADER_BYTES = 1 << 16
"""Bytes read first when looking for the header; more are read while it has not ended."""

_LF, _CR, _QUOTE = ord("\n"), ord("\r"), ord('"')
_Positions = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Records:
    """Where records end in some text (indices of the last byte of their line end)."""

    ends: _Positions
    line_ends: _Positions
    open_quote: int
    """Index of the quote that opened a field still open at the end of the text, or -1."""
    longest_quoted: tuple[int, int] = (-1, 0)
    """Where the longest quoted field starts, and its length (to the end of the text if open)."""
    stray_quote: int = -1
    """Index of a quote that opens a field over several lines which a quote inside a field
    closes (``O"Brien`` on a later line), or -1: the quote that opens it is taken to be stray."""

    @property
    def quoted_line_ends(self) -> bool:
        """Whether a quoted field holds a line end (pyarrow must then be told)."""
        return bool(self.line_ends.size > self.ends.size)

    def longest(self, size: int) -> int:
        """Bytes in the longest record of text of ``size`` bytes, line end included."""
        bounds = np.concatenate([[-1], self.ends, [size - 1]])
        return int(np.diff(bounds).max(initial=0))

    def before(self, cut: int) -> Records:
        """The records of the text's first ``cut`` bytes, which end at a record end."""
        return Records(self.ends[self.ends < cut], self.line_ends[self.line_ends < cut], -1)


def scan(data: bytes, delimiters: bytes, *, final: bool) -> Records:
    """Records of ``data``, which starts at a record start; ``final`` if nothing follows it."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    line_ends = _line_ends(buffer, final=final)
    ends_field = np.zeros(256, dtype=bool)
    ends_field[np.frombuffer(delimiters + b"\n\r", dtype=np.uint8)] = True
    quotes = np.flatnonzero(buffer == _QUOTE)
    if _simply_quoted(buffer, quotes, ends_field):
        return _simple_records(quotes, line_ends, buffer.shape[0])
    return _run_records(buffer, quotes, line_ends, delimiters)


def _run_records(
    buffer: npt.NDArray[np.uint8], quotes: _Positions, line_ends: _Positions, delimiters: bytes
) -> Records:
    """Records found by the analysis of quote runs (see the module docstring)."""
    starts, inside, flips, after = _quote_runs(buffer, quotes, delimiters)
    if not starts.size:
        return Records(line_ends, line_ends, -1)
    run = np.searchsorted(starts, line_ends) - 1  # the last run before each line end
    quoted = np.where(run >= 0, inside[np.maximum(run, 0)], False)
    open_quote = int(starts[np.flatnonzero(flips)[-1]]) if inside[-1] else -1
    longest = _longest_quoted(starts, inside, buffer.shape[0])
    separators = np.frombuffer(delimiters + b"\n\r", dtype=np.uint8)
    stray = _stray_quote(buffer, starts, inside, after, line_ends, separators)
    return Records(line_ends[~quoted], line_ends, open_quote, longest, stray)


def _simply_quoted(
    buffer: npt.NDArray[np.uint8], quotes: _Positions, ends_field: npt.NDArray[np.bool_]
) -> bool:
    """Whether the quotes pair up as whole fields with no quote inside: ``"text"`` opened at a
    field start, closed before a delimiter, a line end or the end of the text (a last field may
    still be open where a block ends). Writers quote this way, and such text needs none of the
    run analysis, which would find the same records."""
    opens, closes = quotes[0::2], quotes[1::2]
    if opens.size and opens[0] == 0:
        opens = opens[1:]
    after = closes + 1
    if after.size and after[-1] == buffer.shape[0]:
        after = after[:-1]
    return bool(
        ends_field[buffer[opens - 1]].all()
        and ends_field[buffer[after]].all()
        and ((closes - quotes[0::2][: closes.size]) > 1).all()
    )


def _simple_records(quotes: _Positions, line_ends: _Positions, size: int) -> Records:
    """Records when every quote pairs as a whole field (see :func:`_simply_quoted`)."""
    if not quotes.size:
        return Records(line_ends, line_ends, -1)
    quoted = np.searchsorted(quotes, line_ends) % 2 == 1  # an odd count of quotes before it
    opens, closes = quotes[0::2], quotes[1::2]
    open_quote = int(opens[-1]) if opens.size > closes.size else -1
    if open_quote >= 0:
        closes = np.append(closes, size)
    longest = int(np.argmax(closes - opens))
    length = int(closes[longest] - opens[longest])
    return Records(line_ends[~quoted], line_ends, open_quote, (int(opens[longest]), length))


def _stray_quote(
    buffer: npt.NDArray[np.uint8],
    starts: _Positions,
    inside: npt.NDArray[np.bool_],
    after: _Positions,
    line_ends: _Positions,
    separators: npt.NDArray[np.uint8],
) -> int:
    """The opening quote of the first field over several lines that closes inside a field.

    A quoted field closes properly at a delimiter, a line end or the end of the text. One that
    closes before other text (``"...O"Brien``) and spans lines is a stray quote paired with a
    literal one further on: reading it would merge the lines between into one field.
    """
    before = np.concatenate([[False], inside[:-1]])
    closes = np.flatnonzero(before & ~inside)
    size = buffer.shape[0]
    ends_field = np.zeros(256, dtype=bool)
    ends_field[separators] = True
    following = after[closes]
    proper = (following >= size) | ends_field[buffer[np.minimum(following, size - 1)]]
    improper = closes[~proper]
    if not improper.size:
        return -1
    opened = np.maximum.accumulate(np.where(inside & ~before, np.arange(starts.size), 0))
    first = starts[opened[improper]]
    spans = np.searchsorted(line_ends, first) != np.searchsorted(line_ends, starts[improper])
    return int(first[spans][0]) if spans.any() else -1


def _longest_quoted(
    starts: _Positions, inside: npt.NDArray[np.bool_], size: int
) -> tuple[int, int]:
    """Start and length of the longest quoted field; one still open runs to ``size``."""
    before = np.concatenate([[False], inside[:-1]])
    opened = starts[inside & ~before]
    closed = np.append(starts[~inside & before], size)[: opened.size]
    if not opened.size:
        return (-1, 0)
    longest = int(np.argmax(closed - opened))
    return int(opened[longest]), int(closed[longest] - opened[longest])


def _line_ends(buffer: npt.NDArray[np.uint8], *, final: bool) -> _Positions:
    """Every ``\\n`` and every lone ``\\r``; a ``\\r`` that ends unfinished text may be a
    ``\\r\\n`` cut in two, so it counts only when the text is ``final``."""
    newlines = np.flatnonzero(buffer == _LF)
    returns = np.flatnonzero(buffer == _CR)
    if not returns.size:
        return newlines
    following = buffer[np.minimum(returns + 1, buffer.shape[0] - 1)]
    last = returns == buffer.shape[0] - 1
    lone = returns[np.where(last, final, following != _LF)]
    return np.union1d(newlines, lone).astype(np.int64)


def _quote_runs(
    buffer: npt.NDArray[np.uint8], quotes: _Positions, delimiters: bytes
) -> tuple[_Positions, npt.NDArray[np.bool_], npt.NDArray[np.bool_], _Positions]:
    """Each run of quotes: where it starts, whether a quoted field is open after it, whether it
    flipped the state (see the module docstring), and where the text after it starts."""
    if not quotes.size:
        return quotes, np.zeros(0, dtype=bool), np.zeros(0, dtype=bool), quotes
    first = np.concatenate([[True], np.diff(quotes) != 1])
    starts = quotes[first]
    lengths = np.diff(np.append(np.flatnonzero(first), quotes.size))
    odd = lengths % 2 == 1
    separators = np.frombuffer(delimiters + b"\n\r", dtype=np.uint8)
    at_field_start = (starts == 0) | np.isin(buffer[np.maximum(starts - 1, 0)], separators)
    flips, ended = odd & at_field_start, odd & ~at_field_start
    count = np.cumsum(flips)
    last_end = np.maximum.accumulate(np.where(ended, np.arange(starts.size), -1))
    base = np.where(last_end >= 0, count[np.maximum(last_end, 0)], 0)
    return starts, (count - base) % 2 == 1, flips, starts + lengths


def count_line_ends(data: bytes) -> int:
    """Line ends in ``data``, quoted or not: the lines it spans, less one."""
    return int(_line_ends(np.frombuffer(data, dtype=np.uint8), final=True).size)


def record_lines(data: bytes, records: Records) -> _Positions:
    """The 1-based line (within ``data``) on which each non-blank record starts."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    starts = np.concatenate([[0], records.ends + 1])
    stops = np.append(records.ends, buffer.shape[0])
    length = stops - starts
    first = buffer[np.minimum(starts, max(buffer.shape[0] - 1, 0))] if buffer.size else starts
    blank = (length == 0) | ((length == 1) & (first == _CR))
    lines: _Positions = np.searchsorted(records.line_ends, starts[~blank]).astype(np.int64) + 1
    return lines


class Source(Protocol):
    """UTF-8 bytes of a file, read a piece at a time."""

    def read(self, size: int) -> bytes: ...


@dataclass(frozen=True)
class Block:
    """Whole records, where they end, and the line ends before them in the file."""

    data: bytes
    records: Records
    lines_before: int


class RecordReader:
    """Blocks of whole records from a source, each read in time linear in its size.

    When a block holds no record end yet, the next read is as large as the block, so a record
    of any length is scanned a bounded number of times. A quoted field left open at the end of
    the file, or longer than :data:`MAX_QUOTED_BYTES`, is refused, naming the line of its quote.
    """

    def __init__(self, source: Source, name: str) -> None:
        self._source = source
        self._name = name
        self._carry = b""
        self._lines = 0
        self._ended = False

    def header(self, delimiters: bytes) -> Block | None:
        """The first record, or None for an empty file."""
        return self._next(HEADER_BYTES, delimiters, first=True)

    def blocks(self, size: int, delimiters: bytes) -> Iterator[Block]:
        """The remaining records, in blocks of about ``size`` bytes."""
        while (block := self._next(size, delimiters, first=False)) is not None:
            yield block

    def _next(self, size: int, delimiters: bytes, *, first: bool) -> Block | None:
        data, records = self._read_records(size, delimiters)
        if not data:
            return None
        if records.open_quote >= 0 and self._ended:
            raise self._unclosed(records, records.open_quote, "is never closed")
        if records.stray_quote >= 0:
            raise self._unclosed(
                records,
                records.stray_quote,
                'is closed only by a quote inside a field on a later line (as in O"Brien)',
            )
        if records.ends.size and (first or not self._ended):
            cut = int(records.ends[0 if first else -1]) + 1
        else:
            cut = len(data)
        block = Block(data[:cut], records.before(cut), self._lines)
        self._lines += int(block.records.line_ends.size)
        self._carry = data[cut:]
        return block

    def _read_records(self, size: int, delimiters: bytes) -> tuple[bytes, Records]:
        """The carried text and more, until it holds a record end or the file ends."""
        data = self._carry
        while True:
            more = b"" if self._ended else self._source.read(max(size, len(data)))
            self._ended = not more
            data += more
            records = scan(data, delimiters, final=self._ended)
            start, length = records.longest_quoted
            if length > MAX_QUOTED_BYTES:
                limit = MAX_QUOTED_BYTES >> 20
                raise self._unclosed(records, start, f"is not closed within {limit} MiB")
            if records.ends.size or self._ended:
                return data, records

    def _unclosed(self, records: Records, quote: int, what: str) -> InputFileError:
        line = self._lines + int(np.searchsorted(records.line_ends, quote)) + 1
        return InputFileError(
            f'{self._name}: the quote (") that opens a field on line {line} {what}, so the '
            "lines after it would be read as one field; close the quote, or remove it if it is "
            "part of a value",
            line=line,
        )
