"""b12lab: cited, reproducible interpretation of vitamin B12 laboratory results.

b12lab supports, and does not replace, clinical judgement.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from b12lab import tables
from b12lab._core.analytes import ANALYTES, Analyte
from b12lab._core.categories import Category, Censoring, Interpretation
from b12lab._core.frame import classify_frame
from b12lab._core.measurements import Measurement, measure, normalize
from b12lab._core.patient import classify
from b12lab._core.results import Flag, MarkerResult, Reason, Result, TableRef
from b12lab._core.units import registry
from b12lab._io import accessor  # noqa: F401  (importing it registers df.b12lab)
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
    TableError,
    TableIntegrityError,
    TableNotFoundError,
    TableValidationError,
    UnknownAnalyteError,
    UnknownUnitError,
    UnusedColumnWarning,
)

try:
    __version__ = version("b12lab")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"

__all__ = [
    "ANALYTES",
    "Analyte",
    "B12LabError",
    "B12LabWarning",
    "Category",
    "Censoring",
    "ColumnError",
    "ConflictingContextError",
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
    "measure",
    "normalize",
    "registry",
    "tables",
]
