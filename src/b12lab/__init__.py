"""b12lab: cited, reproducible interpretation of vitamin B12 laboratory results.

b12lab supports, and does not replace, clinical judgement.

The public names are loaded on first use (PEP 562), so ``import b12lab`` and ``b12lab --help``
stay quick and pull in neither pandas, pint, pyarrow nor pydantic until a name needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from b12lab import errors  # the exception tree imports nothing heavy
from b12lab._io.pandas_hook import register_accessor

if TYPE_CHECKING:
    from b12lab import fhir, omop, report, tables
    from b12lab._core.analytes import ANALYTES, Analyte
    from b12lab._core.categories import Category, Censoring, Interpretation
    from b12lab._core.frame import classify_frame
    from b12lab._core.measurements import Measurement, measure, normalize
    from b12lab._core.patient import classify
    from b12lab._core.results import Flag, MarkerResult, Reason, Result, TableRef
    from b12lab._core.units import registry
    from b12lab._io.diff import Diff, diff
    from b12lab._io.long_format import classify_long
    from b12lab.errors import (
        B12LabError,
        B12LabWarning,
        ColumnError,
        ConflictingContextError,
        DimensionError,
        ErrorCode,
        ImplausibleValueError,
        InputFileError,
        InvalidValueError,
        MeasurementError,
        MissingDependencyError,
        TableError,
        TableIntegrityError,
        TableNotFoundError,
        TableValidationError,
        UnknownAnalyteError,
        UnknownUnitError,
        UnusedColumnWarning,
    )

    __version__: str

__all__ = [
    "ANALYTES",
    "Analyte",
    "B12LabError",
    "B12LabWarning",
    "Category",
    "Censoring",
    "ColumnError",
    "ConflictingContextError",
    "Diff",
    "DimensionError",
    "ErrorCode",
    "Flag",
    "ImplausibleValueError",
    "InputFileError",
    "Interpretation",
    "InvalidValueError",
    "MarkerResult",
    "Measurement",
    "MeasurementError",
    "MissingDependencyError",
    "Reason",
    "Result",
    "TableError",
    "TableIntegrityError",
    "TableNotFoundError",
    "TableRef",
    "TableValidationError",
    "UnknownAnalyteError",
    "UnknownUnitError",
    "UnusedColumnWarning",
    "__version__",
    "classify",
    "classify_frame",
    "classify_long",
    "diff",
    "fhir",
    "measure",
    "normalize",
    "omop",
    "registry",
    "report",
    "tables",
]

_HOMES: dict[str, str] = {
    "ANALYTES": "b12lab._core.analytes",
    "Analyte": "b12lab._core.analytes",
    "Category": "b12lab._core.categories",
    "Censoring": "b12lab._core.categories",
    "Interpretation": "b12lab._core.categories",
    "classify_frame": "b12lab._core.frame",
    "Measurement": "b12lab._core.measurements",
    "measure": "b12lab._core.measurements",
    "normalize": "b12lab._core.measurements",
    "classify": "b12lab._core.patient",
    "Flag": "b12lab._core.results",
    "MarkerResult": "b12lab._core.results",
    "Reason": "b12lab._core.results",
    "Result": "b12lab._core.results",
    "TableRef": "b12lab._core.results",
    "registry": "b12lab._core.units",
    "classify_long": "b12lab._io.long_format",
    "Diff": "b12lab._io.diff",
    "diff": "b12lab._io.diff",
    **dict.fromkeys(errors.__all__, "b12lab.errors"),
}
"""The module each public name is defined in."""


def __getattr__(name: str) -> Any:
    """Load a public name on first use and keep it, so the next lookup is a plain one."""
    if name == "__version__":
        value: Any = _version()
    elif name in ("tables", "report", "omop", "fhir"):
        value = importlib.import_module(f"b12lab.{name}")
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'b12lab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("b12lab")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0+unknown"


register_accessor()
