"""CSV rows, byte for byte as arrow's CSV writer writes them, built from distinct texts.

Arrow formats every cell of every row. In a classified frame most columns hold a handful of
categories and the numbers repeat, so most of that work is repeated: here each column's distinct
values are formatted once (with arrow's own cast, so numbers read the same), runs of neighbouring
columns with few distinct values are joined into one text per combination of values, and the
rows are assembled with a single ``take`` from those texts. The bytes are arrow's
(``quoting_style="needed"``: text quoted with inner quotes doubled, numbers bare, nulls empty);
a property test holds the two equal. A column of any other type leaves the table to arrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["csv_header", "csv_rows"]

_TEXT = pa.large_string()
_QUOTE, _COMMA, _NOTHING, _BETWEEN = (pa.scalar(t, _TEXT) for t in ('"', ",", "", '","'))
_COMBINATIONS = 1 << 16
"""Most combinations of values a run of columns is joined over; past it each column stays apart."""


@dataclass(frozen=True)
class _Field:
    """One column (or a run of columns joined) as texts and, per row, which text it shows.

    ``rows`` None means row ``i`` shows ``texts[i]``; ``valid`` None means no row is empty.
    ``quoted`` texts are written between quotes (the quotes go into the separators, so that an
    empty row shows nothing, as arrow writes a null).
    """

    texts: pa.Array
    rows: npt.NDArray[np.int64] | None
    valid: npt.NDArray[np.bool_] | None
    quoted: bool


def csv_header(names: list[str]) -> bytes:
    """The header line arrow writes: every name quoted, inner quotes doubled."""
    quoted = ('"' + name.replace('"', '""') + '"' for name in names)
    return (",".join(quoted) + "\n").encode()


def csv_rows(table: pa.Table) -> pa.Buffer | None:
    """The table's rows as CSV text without a header, or None for a column this cannot write."""
    fields = [_field(column.combine_chunks()) for column in table.columns]
    known = [field for field in fields if field is not None]
    if not known or len(known) < len(fields):
        return None
    if not table.num_rows:
        return pa.py_buffer(b"")
    return _assembled(_joined(known, table.num_rows))


def _field(column: pa.Array) -> _Field | None:
    kind = column.type
    valid = None if not column.null_count else np.asarray(column.is_valid(), dtype=bool)
    if _is_text(kind):
        return _Field(_escaped(column.cast(_TEXT)), None, valid, quoted=True)
    if pa.types.is_dictionary(kind) and _is_text(kind.value_type):
        if column.dictionary.null_count:  # an empty entry: written as its own rows would be
            return _field(column.cast(_TEXT))
        return _Field(_escaped(column.dictionary.cast(_TEXT)), _indices(column), valid, True)
    if _is_bare(kind):
        distinct = pc.dictionary_encode(column)
        return _Field(distinct.dictionary.cast(_TEXT), _indices(distinct), valid, quoted=False)
    return None


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _is_bare(kind: pa.DataType) -> bool:
    """Types arrow writes unquoted, as their cast to text."""
    numbers = pa.types.is_integer(kind) or kind in (pa.float32(), pa.float64())
    return bool(numbers or pa.types.is_boolean(kind))


def _indices(column: pa.DictionaryArray) -> npt.NDArray[np.int64]:
    """Each row's dictionary position; an empty row's points anywhere (its ``valid`` hides it)."""
    return np.asarray(column.indices.fill_null(0), dtype=np.int64)


def _escaped(texts: pa.Array) -> pa.Array:
    """Inner quotes doubled; looked for in the text's bytes first, as most text has none."""
    if _has_quote(texts):
        return pc.replace_substring(texts, '"', '""')
    return texts


def _has_quote(texts: pa.Array) -> bool:
    _, offsets, data = texts.buffers()
    if data is None or not len(texts):
        return False
    bounds = np.frombuffer(offsets, dtype=np.int64)[texts.offset : texts.offset + len(texts) + 1]
    text = np.frombuffer(data, dtype=np.uint8)[int(bounds[0]) : int(bounds[-1])]
    return bool(text.size and (text == ord('"')).any())


def _joined(fields: list[_Field], n: int) -> list[_Field]:
    """Runs of neighbouring columns as one: text columns with no empty row joined row by row,
    columns with few distinct values as one column of their combinations."""
    out: list[_Field] = []
    texts: list[_Field] = []  # text columns with no empty row, not joined yet
    few: list[_Field] = []  # columns of distinct values, not combined yet
    for field in fields:
        if field.rows is None and field.quoted and field.valid is None:
            out.extend(_combinations(few, n))
            few = []
            texts.append(field)
        elif field.rows is not None:
            out.extend(_side_by_side(texts))
            texts = []
            few.append(field)
        else:
            out.extend([*_side_by_side(texts), *_combinations(few, n), field])
            texts, few = [], []
    return [*out, *_side_by_side(texts), *_combinations(few, n)]


def _side_by_side(run: list[_Field]) -> list[_Field]:
    """Quoted text columns with no empty row as one: ``a","b","c`` between a pair of quotes."""
    if len(run) < 2:
        return run
    texts = pc.binary_join_element_wise(*(field.texts for field in run), _BETWEEN)
    return [_Field(texts, None, None, quoted=True)]


def _combinations(run: list[_Field], n: int) -> list[_Field]:
    """Neighbouring columns of distinct values as few columns of the combinations that occur.

    Columns are taken together while their texts could combine in at most ``_COMBINATIONS``
    ways (and fewer than the rows); then the combinations that occur are counted, and usually
    leave room for more columns.
    """
    bound = min(_COMBINATIONS, n)
    out: list[_Field] = []
    group: list[_Field] = []
    ways = 1
    for field in run:
        if group and ways * _choices(field) > bound:
            combined = _combined(group)
            group, ways = [combined], _choices(combined)
            if ways * _choices(field) > bound:
                out.append(combined)
                group, ways = [], 1
        group.append(field)
        ways *= _choices(field)
    return [*out, _combined(group)] if group else out


def _choices(field: _Field) -> int:
    """How many texts a row of the field can show: its texts, and nothing for an empty row."""
    return len(field.texts) + (field.valid is not None)


def _combined(group: list[_Field]) -> _Field:
    """Neighbouring columns as one: each combination that occurs, written out once."""
    if len(group) == 1:
        return group[0]
    code = _choice_of(group[0])
    for field in group[1:]:
        code = code * _choices(field) + _choice_of(field)
    seen = np.bincount(code, minlength=int(np.prod([_choices(f) for f in group]))) > 0
    combinations = np.flatnonzero(seen)
    cells: list[pa.Array] = []
    for field in reversed(group):
        combinations, choice = np.divmod(combinations, _choices(field))
        cells.append(_cell_texts(field, choice))
    texts = pc.binary_join_element_wise(*reversed(cells), _COMMA)
    rank = np.cumsum(seen) - 1
    return _Field(texts, rank[code].astype(np.int64), None, quoted=False)


def _choice_of(field: _Field) -> npt.NDArray[np.int64]:
    assert field.rows is not None
    if field.valid is None:
        return field.rows
    return np.where(field.valid, field.rows, len(field.texts))


def _cell_texts(field: _Field, choices: npt.NDArray[np.int64]) -> pa.Array:
    """The written cell for each choice: quoted when the field is, empty for an empty row."""
    texts = field.texts
    if field.quoted:
        texts = pc.binary_join_element_wise(_QUOTE, texts, _QUOTE, _NOTHING)
    if field.valid is not None:
        texts = pa.concat_arrays([texts, pa.array([""], _TEXT)])
    return texts.take(pa.array(choices))


def _assembled(fields: list[_Field]) -> pa.Buffer:
    """Rows as one text: every piece of every row (separators too) taken in order at once."""
    n = len(fields[0].rows) if fields[0].rows is not None else len(fields[0].texts)
    separators: dict[str, int] = {}
    pieces: list[pa.Array] = []
    columns: list[tuple[bool, npt.NDArray[np.int64]]] = []  # (is a separator, positions)
    start = 0
    for before, field in zip([None, *fields], [*fields, None], strict=True):
        columns.append((True, _separator(before, field, n, separators)))
        if field is None:
            break
        texts, positions = _shown(field, n)
        columns.append((False, positions + start))
        pieces.append(texts)
        start += len(texts)
    pieces.append(pa.array(list(separators), _TEXT))
    order = np.empty((n, len(columns)), dtype=np.int32 if start < 1 << 30 else np.int64)
    for position, (is_separator, values) in enumerate(columns):
        order[:, position] = values + start if is_separator else values
    rows = pa.concat_arrays(pieces).take(pa.array(order.reshape(-1)))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
    data = rows.buffers()[2]
    end = int(offsets[-1])
    return data.slice(0, end) if data is not None else pa.py_buffer(b"")


def _shown(field: _Field, n: int) -> tuple[pa.Array, npt.NDArray[np.int64]]:
    """The field's texts and each row's position in them; an empty row shows an empty text."""
    positions = field.rows if field.rows is not None else np.arange(n, dtype=np.int64)
    if field.valid is None:
        return field.texts, positions
    texts = pa.concat_arrays([field.texts, pa.array([""], _TEXT)])
    return texts, np.where(field.valid, positions, len(field.texts))


def _separator(
    before: _Field | None, after: _Field | None, n: int, separators: dict[str, int]
) -> npt.NDArray[np.int64]:
    """Per row, what goes between two fields: the quotes of the non-empty quoted ones, and a
    comma (a line end after the last)."""

    def text(before_shown: bool, after_shown: bool) -> int:
        piece = '"' if before is not None and before.quoted and before_shown else ""
        piece += "\n" if after is None else ("," if before is not None else "")
        piece += '"' if after is not None and after.quoted and after_shown else ""
        return separators.setdefault(piece, len(separators))

    before_valid = before.valid if before is not None and before.quoted else None
    after_valid = after.valid if after is not None and after.quoted else None
    if before_valid is None and after_valid is None:
        return np.full(n, text(True, True), dtype=np.int64)
    variants = np.array([text(b, a) for b in (False, True) for a in (False, True)])
    shown_before = np.ones(n, dtype=bool) if before_valid is None else before_valid
    shown_after = np.ones(n, dtype=bool) if after_valid is None else after_valid
    return np.asarray(variants[shown_before * 2 + shown_after], dtype=np.int64)
