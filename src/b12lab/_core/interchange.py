"""Arrow data in and out of the pandas pipeline: pyarrow, Polars, DuckDB and their kin.

:func:`~b12lab.classify_frame` reads anything that speaks the Arrow PyCapsule interface
(``__arrow_c_stream__`` or ``__arrow_c_array__``) or has a ``to_arrow()`` method. Only the
columns it reads are converted to pandas, each so that a cell reads as it would from a pandas
frame holding the same values: text stays text (dictionary-encoded text is decoded, no pandas
``ArrowDtype``), decimals become their exact decimal text, integers stay exact, nulls are
missing. The input columns are returned untouched, with the result columns appended.

Polars is recognised by the module of the input's type and imported only then.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from b12lab._core.columns import PREFIX
from b12lab.errors import ColumnError

__all__ = ["NULLABLE_INTEGERS", "ArrowInput", "arrow_input", "as_pandas", "decimals_as_text"]

Kind = Literal["arrow", "polars"]


@dataclass(frozen=True)
class ArrowInput:
    """The input as a pyarrow Table, and the kind of object to give back."""

    table: Any  # pyarrow.Table; pyarrow ships no type information
    kind: Kind

    @property
    def names(self) -> list[Hashable]:
        return list(self.table.column_names)

    def frame(self, names: Sequence[str]) -> pd.DataFrame:
        """The named columns as pandas, read as :func:`as_pandas` reads them."""
        positions = [self.table.column_names.index(name) for name in dict.fromkeys(names)]
        return as_pandas(self.table.select(positions))

    def returned(self, results: pd.DataFrame) -> Any:
        """The input's columns (earlier ``b12lab_*`` ones dropped) and ``results``, appended,
        as a pyarrow Table, or a Polars DataFrame when the input was one."""
        names = self.table.column_names
        table = self.table.select([i for i, n in enumerate(names) if not n.startswith(PREFIX)])
        added = pa.Table.from_pandas(results, preserve_index=False)
        for field, column in zip(added.schema, added.columns, strict=True):
            table = table.append_column(field.remove_metadata(), column)
        if self.kind == "polars":
            import polars

            return polars.from_arrow(table)
        return table


def arrow_input(data: object) -> ArrowInput:
    """``data`` as a pyarrow Table; raises :class:`~b12lab.errors.ColumnError` when it is no
    table b12lab can read."""
    kind: Kind = "polars" if type(data).__module__.split(".")[0] == "polars" else "arrow"
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        table = pa.table(data)
    elif callable(getattr(data, "to_arrow", None)):
        table = pa.table(data.to_arrow())  # type: ignore[attr-defined]
    else:
        raise ColumnError(
            f"classify_frame reads a table, and was given {type(data).__name__}; give a pandas "
            "DataFrame, a pyarrow Table or RecordBatch, a Polars DataFrame, a DuckDB relation or "
            "another object with __arrow_c_stream__ (for a dict of columns, "
            "pandas.DataFrame(data))",
            columns=(),
        )
    return ArrowInput(table, kind)


NULLABLE_INTEGERS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
}
"""pandas' integer types that hold a missing value: with numpy's, a column with one becomes
float, and an identifier over 2**53 changes."""


def as_pandas(table: Any) -> pd.DataFrame:
    """Arrow columns as pandas, every value kept and every cell read as from pandas.

    Dictionary-encoded columns are decoded (text stays text), decimals become their exact text,
    integers become pandas' nullable integers, lists and structs become Python lists and dicts,
    and the table's pandas metadata is ignored, so neither an index nor a pandas ``ArrowDtype``
    comes back from it.
    """
    columns = [_decoded(column) for column in table.columns]
    plain = pa.Table.from_arrays(columns, names=table.column_names)
    frame: pd.DataFrame = decimals_as_text(plain).to_pandas(types_mapper=NULLABLE_INTEGERS.get)
    for name, column in zip(plain.column_names, plain.columns, strict=True):
        if pa.types.is_nested(column.type):  # lists as lists, not numpy arrays
            frame[name] = _objects(column.to_pylist())
    return frame


def _objects(cells: list[object]) -> npt.NDArray[np.object_]:
    column = np.empty(len(cells), dtype=object)
    for position, cell in enumerate(cells):  # element by element: lists stay lists
        column[position] = cell
    return column


def _decoded(column: Any) -> Any:
    """A dictionary-encoded column as its values; string views (Polars' text) as large strings,
    which pyarrow can take from and decode."""
    if not pa.types.is_dictionary(column.type):
        return column
    values = column.type.value_type
    if _is_string_view(values):
        values = pa.large_string()
    chunks = [
        pa.DictionaryArray.from_arrays(chunk.indices, chunk.dictionary.cast(values))
        for chunk in column.chunks
    ]
    return pa.chunked_array([chunk.dictionary_decode() for chunk in chunks], type=values)


def _is_string_view(kind: pa.DataType) -> bool:
    is_view = getattr(pa.types, "is_string_view", None)  # pyarrow 16 and later
    return bool(is_view and is_view(kind))


def decimals_as_text(batch: Any) -> Any:
    """Decimal columns as their exact decimal text (``160.50``), read like any result cell.

    pandas would hold them as ``Decimal`` objects, which no result reader takes; text keeps every
    digit, where a float would not.
    """
    columns = [
        column.cast(pa.string()) if _is_decimal(column.type) else column for column in batch.columns
    ]
    return type(batch).from_arrays(columns, names=batch.schema.names)


def _is_decimal(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_decimal(kind.value_type)
    return bool(pa.types.is_decimal(kind))
