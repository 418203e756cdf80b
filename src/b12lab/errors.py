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
    ├── UnknownAnalyteError (LookupError)      an analyte name b12lab does not know
    ├── ColumnError (LookupError)              a data frame or file lacks a column it needs
    └── TableError                             a reference table cannot be used
        ├── TableNotFoundError (LookupError)   no shipped table has that id or version
        ├── TableValidationError (ValueError)  a table file breaks the schema
        └── TableIntegrityError (ValueError)   a shipped file's bytes differ from the manifest

Each error carries a stable ``code`` (used as the per-row error code in batch results) and its
fields, and pickles with them, because Dask sends errors between processes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "B12LabError",
    "ColumnError",
    "DimensionError",
    "ImplausibleValueError",
    "InvalidValueError",
    "MeasurementError",
    "TableError",
    "TableIntegrityError",
    "TableNotFoundError",
    "TableValidationError",
    "UnknownAnalyteError",
    "UnknownUnitError",
]


class B12LabError(Exception):
    """Root of every error raised by b12lab."""

    code = "error"

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

    code = "measurement"


class UnknownUnitError(MeasurementError):
    code = "unknown_unit"


class DimensionError(MeasurementError):
    code = "wrong_dimension"


class InvalidValueError(MeasurementError):
    code = "invalid_value"


class ImplausibleValueError(MeasurementError):
    code = "implausible_value"


class UnknownAnalyteError(B12LabError, LookupError):
    code = "unknown_analyte"


class ColumnError(B12LabError, LookupError):
    code = "missing_column"


class TableError(B12LabError):
    """A reference-range table cannot be found, parsed or trusted."""

    code = "table"


class TableNotFoundError(TableError, LookupError):
    code = "table_not_found"


class TableValidationError(TableError, ValueError):
    code = "table_invalid"


class TableIntegrityError(TableError, ValueError):
    code = "table_integrity"
