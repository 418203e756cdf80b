"""The same rows under two tables: how a laboratory reviews a guideline update before adopting it.

The rows are classified under the table in use (``table``) and under the candidate (``against``),
both through :func:`b12lab.classify_frame`, the one pipeline. The result counts how categories
move from one to the other and lists the rows whose category or error differ, both answers side
by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core.categories import Category
from b12lab._core.columns import PREFIX
from b12lab._core.frame import classify_frame
from b12lab._core.numerals import Decimal
from b12lab._core.policy import resolve
from b12lab.errors import ColumnError
from b12lab.tables import Table

__all__ = ["ANSWERS", "LABELS", "SIDES", "Diff", "diff", "matrix_text"]

LABELS = (*(str(Category.from_rank(rank)) for rank in range(len(Category))), "error")
"""Rows and columns of the matrix, in this order: the categories by rank, then ``error``."""
ANSWERS = ("category", "rule", "flags", "error")
"""The ``b12lab_*`` columns of each side that ``changed`` shows."""
SIDES = ("a_", "b_")
"""Prefixes of the answers under ``table`` and under ``against``, in ``changed``."""


@dataclass(frozen=True, eq=False)  # frames have no single truth value to compare by
class Diff:
    """The same rows classified under ``table`` and under ``against`` (both ``id@version``).

    ``matrix`` counts rows by their category under ``table`` (index) and under ``against``
    (columns), both in the order of :data:`LABELS`; a row with an error counts as ``error``.
    ``changed`` holds the input rows (columns and index as given) whose category or error code
    differ, followed by ``a_category``, ``a_rule``, ``a_flags``, ``a_error`` (under ``table``)
    and ``b_category``, ``b_rule``, ``b_flags``, ``b_error`` (under ``against``). A row whose
    rule, flags or error message alone changed is counted on the diagonal and not listed.
    """

    table: str
    against: str
    matrix: pd.DataFrame
    changed: pd.DataFrame

    @property
    def moved(self) -> int:
        """Rows counted off the diagonal: their category (or error, or lack of one) changed."""
        counts = self.matrix.to_numpy()
        return int(counts.sum() - np.trace(counts))


def diff(
    df: pd.DataFrame,
    *,
    table: str | Table,
    against: str | Table,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    laboratory: str | Table | None = None,
    decimal: Decimal = ".",
    row_errors: Sequence[str] | np.ndarray | None = None,
) -> Diff:
    """Classify ``df`` under ``table`` and under ``against``; count and list what changed.

    A row has changed when its category or its error code (:class:`b12lab.ErrorCode`) differs.

    ``columns``, ``units``, ``laboratory``, ``decimal`` and ``row_errors`` are as in
    :func:`b12lab.classify_frame` and apply to both sides. A guideline table without
    ``laboratory`` uses its own default laboratory table, so ``nice-ng239@1`` and ``nice-ng239@2``
    are each read with the laboratory table they name.
    """
    keys = [resolve(each, laboratory).table.key for each in (table, against)]
    clash = sorted(set(map(str, df.columns)) & {side + name for side in SIDES for name in ANSWERS})
    if clash:
        raise ColumnError(
            f"the data has column(s) {', '.join(map(repr, clash))}, which the diff adds; "
            "rename them",
            columns=tuple(clash),
        )
    first, second = (
        classify_frame(
            df,
            columns=columns,
            units=units,
            table=each,
            laboratory=laboratory,
            decimal=decimal,
            row_errors=row_errors,
        )
        for each in (table, against)
    )
    return Diff(
        table=keys[0],
        against=keys[1],
        matrix=_matrix(_labels(first), _labels(second), keys),
        changed=_changed(df, first, second),
    )


def _labels(result: pd.DataFrame) -> npt.NDArray[np.intp]:
    """Each row's position in :data:`LABELS`: its category's, or ``error``'s."""
    failed = result[f"{PREFIX}error"].astype(str).to_numpy() != ""
    category = result[f"{PREFIX}category"].astype(str).to_numpy()
    labels = pd.Categorical(np.where(failed, "error", category), categories=LABELS)
    return np.asarray(labels.codes, dtype=np.intp)


def _matrix(
    first: npt.NDArray[np.intp], second: npt.NDArray[np.intp], keys: list[str]
) -> pd.DataFrame:
    size = len(LABELS)
    counts = np.bincount(first * size + second, minlength=size * size).reshape(size, size)
    return pd.DataFrame(
        counts.astype(np.int64),
        index=pd.Index(LABELS, name=keys[0]),
        columns=pd.Index(LABELS, name=keys[1]),
    )


def _changed(df: pd.DataFrame, first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Input rows whose category or error code differ, with both sides' answers."""
    category, error = f"{PREFIX}category", f"{PREFIX}error"
    moved = first[category].astype(str).to_numpy() != second[category].astype(str).to_numpy()
    moved |= _error_codes(first[error]) != _error_codes(second[error])
    kept = [c for c in df.columns if not str(c).startswith(PREFIX)]  # as classify_frame does
    answers = [
        result.loc[moved, [f"{PREFIX}{name}" for name in ANSWERS]]
        .astype(str)
        .set_axis([side + name for name in ANSWERS], axis=1)
        for side, result in zip(SIDES, (first, second), strict=True)
    ]
    changed: pd.DataFrame = pd.concat([df.loc[moved, kept], *answers], axis=1)
    return changed


def _error_codes(errors: pd.Series) -> npt.NDArray[np.object_]:
    """The code of each ``code: message`` error ("" for none): the wording of a message, which
    may quote a table's sources, is not a change."""
    column = errors.astype(str).astype("category")  # each distinct message is cut once
    codes = np.array([text.partition(":")[0] for text in column.cat.categories], dtype=object)
    return np.asarray(codes[column.cat.codes.to_numpy()], dtype=object)


def matrix_text(result: Diff) -> str:
    """The matrix as a plain-text table, under a line that says which table is which."""
    plain = result.matrix.rename_axis(index=None, columns=None)
    heading = f"rows: {result.table}; columns: {result.against}"
    return f"{heading}\n{plain.to_string()}"
