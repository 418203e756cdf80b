"""The one exception tree of b12lab.

Every error b12lab raises derives from :class:`B12LabError`, and each concrete error also derives
from the builtin it resembles, so ``except ValueError`` keeps working for callers who do not know
b12lab::

    B12LabError
    ├── MeasurementError (ValueError)          a value or unit for an analyte cannot be used
    │   ├── UnknownUnitError                   the unit string is not a unit
    │   ├── DimensionError                     a unit, but not a concentration of this analyte
    │   ├── InvalidValueError                  non-numeric, NaN, infinite or negative value
    │   └── ImplausibleValueError              outside the table's ``absolute`` plausibility limits
    ├── ConflictingContextError (ValueError)   context that contradicts itself (pregnant and male)
    ├── InputFileError (ValueError)            a file cannot be read as a table
    ├── MissingDependencyError (ImportError)   an optional feature's library is not installed
    ├── UnknownAnalyteError (LookupError)      an analyte name b12lab does not know
    ├── ColumnError (LookupError)              a data frame or file lacks a column it needs
    └── TableError                             a reference table cannot be used
        ├── TableNotFoundError (LookupError)   no shipped table has that id or version
        ├── TableValidationError (ValueError)  a table file breaks the schema
        └── TableIntegrityError (ValueError)   a shipped file's bytes differ from the manifest

Each error carries a stable ``code`` (used as the per-row error code in batch results) and its
fields, and pickles with them, because Dask sends errors between processes. Every code a batch
row can carry is an :class:`ErrorCode`.

Warnings derive from :class:`B12LabWarning`; :class:`UnusedColumnWarning` names columns that look
like results and were not read.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "B12LabError",
    "B12LabWarning",
    "ColumnError",
    "ConflictingContextError",
    "DimensionError",
    "ErrorCode",
    "ImplausibleValueError",
    "InputFileError",
    "InvalidValueError",
    "MeasurementError",
    "MissingDependencyError",
    "TableError",
    "TableIntegrityError",
    "TableNotFoundError",
    "TableValidationError",
    "UnknownAnalyteError",
    "UnknownUnitError",
    "UnusedColumnWarning",
]


class ErrorCode(enum.StrEnum):
    """Why a row (or a call) could not be classified: the prefix of every ``b12lab_error``."""

    ERROR = "error"
    MEASUREMENT = "measurement"
    UNKNOWN_UNIT = "unknown_unit"
    WRONG_DIMENSION = "wrong_dimension"
    INVALID_VALUE = "invalid_value"
    IMPLAUSIBLE_VALUE = "implausible_value"
    CONFLICTING_CONTEXT = "conflicting_context"
    UNKNOWN_ANALYTE = "unknown_analyte"
    MISSING_COLUMN = "missing_column"
    TABLE = "table"
    TABLE_NOT_FOUND = "table_not_found"
    TABLE_INVALID = "table_invalid"
    TABLE_INTEGRITY = "table_integrity"
    UNREADABLE_FILE = "unreadable_file"
    RAGGED_ROW = "ragged_row"
    REPEATED_HEADER = "repeated_header"
    DUPLICATE_RESULT = "duplicate_result"
    NO_KNOWN_TEST = "no_known_test"
    UNKNOWN_LABORATORY = "unknown_laboratory"
    """A row's site (``laboratory_column``) is missing or has no table in ``laboratory=``."""


class B12LabError(Exception):
    """Root of every error raised by b12lab."""

    code: ErrorCode = ErrorCode.ERROR

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        for name, value in fields.items():
            setattr(self, name, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.fields))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[B12LabError], message: str, fields: dict[str, Any]) -> B12LabError:
    return cls(message, **fields)


class MeasurementError(B12LabError, ValueError):
    """A value or unit given for an analyte cannot be used."""

    code = ErrorCode.MEASUREMENT


class UnknownUnitError(MeasurementError):
    code = ErrorCode.UNKNOWN_UNIT


class DimensionError(MeasurementError):
    code = ErrorCode.WRONG_DIMENSION


class InvalidValueError(MeasurementError):
    code = ErrorCode.INVALID_VALUE


class ImplausibleValueError(MeasurementError):
    code = ErrorCode.IMPLAUSIBLE_VALUE


class UnknownAnalyteError(B12LabError, LookupError):
    code = ErrorCode.UNKNOWN_ANALYTE


class ColumnError(B12LabError, LookupError):
    code = ErrorCode.MISSING_COLUMN


class TableError(B12LabError):
    """A reference-range table cannot be found, parsed or trusted."""

    code = ErrorCode.TABLE


class TableNotFoundError(TableError, LookupError):
    code = ErrorCode.TABLE_NOT_FOUND


class TableValidationError(TableError, ValueError):
    code = ErrorCode.TABLE_INVALID


class TableIntegrityError(TableError, ValueError):
    code = ErrorCode.TABLE_INTEGRITY


class ConflictingContextError(B12LabError, ValueError):
    """Context that cannot all be true, such as pregnancy given with sex male."""

    code = ErrorCode.CONFLICTING_CONTEXT


class InputFileError(B12LabError, ValueError):
    """A file cannot be read as a table: undecodable bytes, no header, an unclear delimiter."""

    code = ErrorCode.UNREADABLE_FILE


class MissingDependencyError(B12LabError, ImportError):
    """An optional feature needs a library that is not installed; the message names the extra
    that brings it (``pip install 'b12lab[report]'``)."""


class B12LabWarning(UserWarning):
    """Root of the warnings b12lab gives."""


class UnusedColumnWarning(B12LabWarning):
    """A column looks like a result b12lab reads, but no analyte was read from it."""
