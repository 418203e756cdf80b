"""Patient context as every entry point reads it: age, sex, pregnancy, recreational nitrous
oxide use, B12 replacement started before the sample, and the medicines the patient takes.

One reader per field, used cell by cell by ``classify`` and per distinct cell by the batch path,
so ``"F"``, ``"72"`` or ``"yes"`` mean the same everywhere. The yes/no fields share one reader.
A value that says the field is not known (``"U"``, ``"unknown"``) is read as not given, with a
note; a value that cannot be read is an error; context that contradicts itself (pregnant and
male) is a ``conflicting_context`` error.

Medicines are read into names (:mod:`b12lab._core.medicines`) and become the code
``risk_medicine``: whether a name is on the risk list of the table that decides, with notes
naming the medicines on it and those not.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core.cells import distinct_cells
from b12lab._core.engine import MISSING, Context
from b12lab._core.medicines import Names, RiskList, medicine_names
from b12lab._core.table_schema import CONTEXT_LABELS, YES_NO_LABELS
from b12lab.errors import B12LabError, ConflictingContextError, InvalidValueError

__all__ = [
    "CONTEXT_FIELDS",
    "PREGNANT_CODES",
    "SEX_CODES",
    "YES_NO_CODES",
    "ContextColumns",
    "read_age",
    "read_b12_replacement",
    "read_context",
    "read_medicines",
    "read_nitrous_oxide",
    "read_pregnant",
    "read_sex",
]

_FEMALE, _MALE = (CONTEXT_LABELS["sex"].index(s) for s in ("female", "male"))
_TRUE, _FALSE = (YES_NO_LABELS.index(s) for s in ("true", "false"))

SEX_CODES = {
    **dict.fromkeys(("female", "f", "woman", "w"), _FEMALE),
    **dict.fromkeys(("male", "m", "man"), _MALE),
}
"""Accepted spellings of sex (lower case) and their codes."""
YES_NO_CODES = {
    **dict.fromkeys(("true", "yes", "y", "1"), _TRUE),
    **dict.fromkeys(("false", "no", "n", "0"), _FALSE),
}
"""Accepted spellings of a yes/no field (lower case) and their codes."""
PREGNANT_CODES = {**YES_NO_CODES, "pregnant": _TRUE, "not pregnant": _FALSE}
"""Accepted spellings of pregnancy status (lower case) and their codes."""
UNKNOWN_WORDS = frozenset(
    {"u", "unk", "unknown", "x", "not known", "not stated", "unspecified", "other", "?"}
)
"""Words that say a field is not known: read as not given, with a note."""

T = TypeVar("T", int, float, Names | None)
Cells = pd.Series | Sequence[object]


@dataclass(frozen=True)
class Read(Generic[T]):
    """One context cell read: its code or value, and a note when it was read as not given."""

    value: T
    note: str = ""


def read_sex(cell: object) -> Read[int]:
    text = _text(cell)
    if text is None:
        return Read(MISSING)
    if text in SEX_CODES:
        return Read(SEX_CODES[text])
    if text in UNKNOWN_WORDS:
        return Read(MISSING, f"sex {_shown(cell)} read as not given")
    raise InvalidValueError(
        f"sex: {_shown(cell)} is not understood; give female or male (F/M), or leave it out",
        analyte="sex",
        value=_shown(cell),
    )


def read_pregnant(cell: object) -> Read[int]:
    return _read_yes_no(cell, "pregnant", PREGNANT_CODES, "pregnancy")


def read_nitrous_oxide(cell: object) -> Read[int]:
    """Recreational nitrous oxide use: yes or no."""
    return _read_yes_no(cell, "nitrous_oxide", YES_NO_CODES, "nitrous oxide use")


def read_b12_replacement(cell: object) -> Read[int]:
    """B12 replacement (injections or tablets) started before the sample was taken: yes or no."""
    return _read_yes_no(cell, "b12_replacement", YES_NO_CODES, "B12 replacement")


def read_medicines(cell: object) -> Read[Names | None]:
    """Medicines taken: names in one text (``"metformin; omeprazole"``) or a list of texts.

    The value is the distinct names (``()`` for "none"), or None when none are given.
    """
    if not isinstance(cell, list | tuple | set | frozenset) and _text(cell) is None:
        return Read(None)
    names = medicine_names(cell)
    if names and all(name in UNKNOWN_WORDS for name in names):
        return Read(None, f"medicines {_shown(cell)} read as not given")
    return Read(names)


def _read_yes_no(cell: object, name: str, codes: Mapping[str, int], noun: str) -> Read[int]:
    """A yes/no field: booleans, 0 and 1, or a spelling in ``codes``; ``noun`` names it in notes."""
    if isinstance(cell, bool | np.bool_):
        return Read(_TRUE if cell else _FALSE)
    if isinstance(cell, numbers.Integral) and int(cell) in (0, 1):
        return Read(_TRUE if int(cell) == 1 else _FALSE)
    text = _text(cell)
    if text is None:
        return Read(MISSING)
    if text in codes:
        return Read(codes[text])
    if text in UNKNOWN_WORDS:
        return Read(MISSING, f"{noun} {_shown(cell)} read as not given")
    raise InvalidValueError(
        f"{name}: {_shown(cell)} is not understood; give yes or no (True or False), "
        "or leave it out",
        analyte=name,
        value=_shown(cell),
    )


def read_age(cell: object) -> Read[float]:
    """Age in years; numbers and numeric text are read, anything else is refused."""
    text = _text(cell)
    if text is None:
        return Read(math.nan)
    if text in UNKNOWN_WORDS:
        return Read(math.nan, f"age {_shown(cell)} read as not given")
    number: object = cell.item() if isinstance(cell, np.generic) else cell
    if isinstance(number, str):
        try:
            number = float(text)
        except ValueError:
            number = None
    if isinstance(number, numbers.Real) and not isinstance(number, bool):
        try:
            age = float(number)
        except OverflowError:
            age = math.inf
        if math.isfinite(age) and 0 <= age < 200:
            return Read(age + 0.0)
    raise InvalidValueError(
        f"age: {_shown(cell)} is not an age in years; give a number from 0 to 200, or leave it out",
        analyte="age",
        value=_shown(cell),
    )


def _text(cell: object) -> str | None:
    """The cell as lower-case text, or None when it is empty."""
    if cell is None or cell is pd.NA or (isinstance(cell, float) and math.isnan(cell)):
        return None
    if isinstance(cell, np.floating) and math.isnan(float(cell)):
        return None
    text = " ".join(str(cell).strip().lower().split())
    return text or None


def _shown(cell: object) -> str:
    shown = repr(cell.item() if isinstance(cell, np.generic) else cell)
    return shown if len(shown) <= 40 else shown[:37] + "..."


CodedReader = Callable[[object], Read[int]] | Callable[[object], Read[float]]
Reader = CodedReader | Callable[[object], Read[Names | None]]

_CODED_FIELDS: Mapping[str, CodedReader] = {
    "age": read_age,
    "sex": read_sex,
    "pregnant": read_pregnant,
    "nitrous_oxide": read_nitrous_oxide,
    "b12_replacement": read_b12_replacement,
}
CONTEXT_FIELDS: Mapping[str, Reader] = {**_CODED_FIELDS, "medicines": read_medicines}
"""Every context field and its reader, in the order a row's first error is chosen."""

Scorer = Callable[[object], tuple[float, str]]
"""A cell's code (or age) and its note."""


def _coded(reader: CodedReader, cell: object) -> tuple[float, str]:
    read = reader(cell)
    return float(read.value), read.note


def _risk_code(risk: RiskList, cell: object) -> tuple[float, str]:
    """``risk_medicine`` for a medicines cell, with the notes of reading and of judging it."""
    read = read_medicines(cell)
    listed, note = risk.judge(read.value)
    code = MISSING if listed is None else _TRUE if listed else _FALSE
    return float(code), "; ".join(text for text in (read.note, note) if text)


@dataclass(frozen=True)
class ContextColumns:
    """Context read for every row, with each row's first error and its notes.

    ``error_codes`` index ``errors`` (0: none); ``notes`` is one text per row ("" for none), or
    None when no row has one (the common case: no array of empty texts is built).
    """

    context: Context
    error_codes: npt.NDArray[np.intp]
    errors: list[B12LabError | None]
    notes: npt.NDArray[np.object_] | None

    def note(self, row: int) -> str:
        return "" if self.notes is None else str(self.notes[row])


def read_context(columns: Mapping[str, Cells | None], n: int, *, risk: RiskList) -> ContextColumns:
    """Read the context columns (absent or None: not given), each distinct cell once.

    Medicines are judged against ``risk``, the list of the table that decides. A row's first
    error is that of the first field in :data:`CONTEXT_FIELDS` order, then a conflict between
    fields.
    """
    errors: list[B12LabError | None] = [None]
    codes = np.zeros(n, dtype=np.intp)
    notes: npt.NDArray[np.object_] | None = None
    read: dict[str, npt.NDArray[np.float64] | np.float64] = {}
    scorers: dict[str, Scorer] = {
        name: functools.partial(_coded, reader) for name, reader in _CODED_FIELDS.items()
    }
    scorers["medicines"] = functools.partial(_risk_code, risk)
    for name, scorer in scorers.items():
        values = columns.get(name)
        if values is None:  # one value for every row: spread when the context is built
            read[name] = np.float64(scorer(None)[0])
            continue
        distinct = _read_distinct(values, scorer, errors)
        if distinct.error_codes is not None:
            codes = np.where(codes == 0, distinct.error_codes, codes)
        notes = _joined(notes, distinct.notes)
        read[name] = distinct.values
    conflict = _conflicts(read["sex"], read["pregnant"])
    if conflict.any():
        errors.append(
            ConflictingContextError(
                "pregnant is given as yes while sex is male; correct one of them",
                fields=("pregnant", "sex"),
            )
        )
        codes = np.where((codes == 0) & conflict, len(errors) - 1, codes)
    context = Context(
        sex=_spread(read["sex"], n, np.int16),
        pregnant=_spread(read["pregnant"], n, np.int16),
        nitrous_oxide=_spread(read["nitrous_oxide"], n, np.int16),
        b12_replacement=_spread(read["b12_replacement"], n, np.int16),
        risk_medicine=_spread(read["medicines"], n, np.int16),
        age=_spread(read["age"], n, np.float64),
    )
    return ContextColumns(context, codes, errors, notes)


def _spread(
    values: npt.NDArray[np.float64] | np.float64, n: int, dtype: type[_Number]
) -> npt.NDArray[_Number]:
    """Per-row values in ``dtype``; one value for every row is filled in."""
    if isinstance(values, np.ndarray):
        return values.astype(dtype, copy=False)
    return np.full(n, values, dtype=dtype)


_Number = TypeVar("_Number", np.int16, np.float64)


@dataclass(frozen=True)
class _Distinct:
    values: npt.NDArray[np.float64]
    error_codes: npt.NDArray[np.intp] | None
    """None: no row has an error."""
    notes: npt.NDArray[np.object_] | None


def _read_distinct(
    values: Cells,
    scorer: Scorer,
    errors: list[B12LabError | None],
) -> _Distinct:
    keys, cells = distinct_cells(values)
    read_values = np.full(len(cells) + 1, scorer(None)[0], dtype=np.float64)
    codes = np.zeros(len(cells) + 1, dtype=np.intp)
    notes = np.full(len(cells) + 1, "", dtype=object)
    for position, cell in enumerate(cells):
        try:
            read_values[position], notes[position] = scorer(cell)
        except B12LabError as exc:
            errors.append(exc)
            codes[position] = len(errors) - 1
    rows = np.where(keys < 0, len(cells), keys)
    spread = notes[rows] if any(notes) else None  # notes are rare: skip the gather without them
    return _Distinct(read_values[rows], codes[rows] if codes.any() else None, spread)


def _conflicts(
    sex: npt.NDArray[np.float64] | np.float64, pregnant: npt.NDArray[np.float64] | np.float64
) -> npt.NDArray[np.bool_]:
    conflict: npt.NDArray[np.bool_] = np.asarray((sex == _MALE) & (pregnant == _TRUE))
    return conflict


def _joined(
    first: npt.NDArray[np.object_] | None, second: npt.NDArray[np.object_] | None
) -> npt.NDArray[np.object_] | None:
    """Notes of two fields, joined with "; " where both have one."""
    if first is None or second is None:
        return second if first is None else first
    both = first.astype(bool) & second.astype(bool)
    joined = np.where(first.astype(bool), first, second)
    if both.any():
        joined[both] = first[both] + "; " + second[both]
    return joined
