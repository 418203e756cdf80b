"""Make a report: read the rows, classify them through the one pipeline, summarize, draw.

Shared by :mod:`b12lab.report` and ``b12lab report``. A file is read as ``b12lab classify``
reads it (every cell as text, ragged lines kept with their reason) but whole, since the figures
need every value; the rows are classified with :func:`b12lab.classify_frame` (or, for a long
export, :func:`b12lab.classify_long`), and compared under a second table with
:func:`b12lab.diff`. The run record is the one ``b12lab classify`` writes beside its output.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core import reported_ranges
from b12lab._core.frame import classify_frame
from b12lab._core.numerals import Decimal
from b12lab._core.policy import Policy, resolve
from b12lab._io.diff import diff
from b12lab._io.long_format import classify_long
from b12lab._io.reading import read_chunks
from b12lab._io.report_html import page
from b12lab._io.report_plots import distribution_svg, require_matplotlib
from b12lab._io.report_summary import Summary, summarize
from b12lab._io.run_record import Counts, file_sha256, run_record
from b12lab._io.writing import replace_whole
from b12lab.errors import B12LabError, B12LabWarning, InputFileError
from b12lab.tables import Table

__all__ = ["Report", "Source", "build", "read_source", "write_text"]

DATA_FRAME = "(data frame)"
"""The input's name in the record when rows are given as a data frame, not a file."""


@dataclass(frozen=True, eq=False)
class Report:
    """A report's page, the warnings the rows gave (also listed in the page), and its counts."""

    text: str
    warnings: list[Warning]
    summary: Summary


@dataclass(frozen=True, eq=False)
class Source:
    """The rows to report on, the reader's errors for them, and what they were read from."""

    frame: pd.DataFrame
    row_errors: npt.NDArray[np.object_] | None
    name: str
    sha256: str
    """SHA-256 of the file's bytes; "" for a data frame."""


def read_source(
    data: pd.DataFrame | str | os.PathLike[str],
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    name: str | None = None,
    sha256: str | None = None,
) -> Source:
    """A data frame as it is, or a CSV or Parquet file read whole, as ``b12lab classify``
    reads it. ``name`` and ``sha256`` stand for the file as the user gave it when ``data`` is a
    copy (standard input)."""
    if isinstance(data, pd.DataFrame):
        return Source(data, None, DATA_FRAME if name is None else name, sha256 or "")
    if not isinstance(data, str | os.PathLike):
        raise TypeError(
            f"a report reads a pandas DataFrame or the path of a CSV or Parquet file, not "
            f"{type(data).__name__}; convert Arrow data with .to_pandas()"
        )
    path = Path(data)
    if Path(str(data) if name is None else name).suffix.lower() in (".json", ".ndjson"):
        raise InputFileError(  # read as CSV, it would be refused as having no analyte column
            f"{path.name}: a report reads a CSV or Parquet file; FHIR (.json, .ndjson) is read "
            "by b12lab.fhir.classify_bundle (on the command line, b12lab classify)"
        )
    if sha256 is None:
        with open(path, "rb") as file:
            sha256 = file_sha256(file)
    chunks = list(read_chunks(path, delimiter=delimiter, encoding=encoding))
    frame = pd.concat([chunk.frame for chunk in chunks], ignore_index=True)
    errors = np.concatenate([chunk.errors for chunk in chunks]).astype(object)
    return Source(frame, errors, str(data) if name is None else name, sha256)


def build(
    source: Source,
    *,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
    against: str | Table | None = None,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    decimal: Decimal = ".",
    long: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    laboratory_path: str | None = None,
    output_name: str = "-",
) -> Report:
    """The report of ``source``'s rows, classified under ``table`` (and ``against``).

    ``long`` holds :func:`b12lab.classify_long`'s options for a long export (``against`` is
    then refused); ``options`` are recorded in the run record as given.
    """
    require_matplotlib()  # before any work: a missing extra is the first thing to hear
    if long is not None and against is not None:
        raise B12LabError(
            "a comparison with another table (against, --against) needs one patient per row; "
            "it cannot be made on a long export (--long)"
        )
    policy = resolve(table, laboratory)
    compared = None if against is None else resolve(against, laboratory)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", B12LabWarning)
        result = _classified(source, policy, columns, units, decimal, long)
        comparison = (
            None
            if compared is None
            else diff(
                source.frame,
                table=policy.table,
                against=compared.table,
                columns=columns,
                units=units,
                laboratory=laboratory,
                decimal=decimal,
                row_errors=source.row_errors,
            )
        )
    said = _distinct(caught)
    summary = summarize(result, policy)
    recorded = dict(options or {})
    if compared is not None:
        recorded["against"] = {"key": compared.table.key, "sha256": compared.table.sha256}
    record = run_record(
        version=_version(),
        table=policy.table,
        laboratory=policy.laboratory,
        laboratory_path=laboratory_path,
        options=recorded,
        input_name=source.name,
        input_sha256=source.sha256,
        output_name=output_name,
        output_format="html",
        counts=_counts(source, summary, [str(warning) for warning in said]),
        reported_ranges=_reported_ranges(long, policy),
    )
    figures = {d.analyte: distribution_svg(d) for d in summary.distributions}
    return Report(page(summary, figures, record, comparison), said, summary)


def _classified(
    source: Source,
    policy: Policy,
    columns: Mapping[str, str] | None,
    units: Mapping[str, str] | None,
    decimal: Decimal,
    long: Mapping[str, Any] | None,
) -> pd.DataFrame:
    common: dict[str, Any] = {
        "columns": columns,
        "units": units,
        "table": policy.table,
        "laboratory": policy.laboratory,
        "decimal": decimal,
        "row_errors": source.row_errors,
    }
    if long is not None:
        return classify_long(source.frame, **long, **common)
    result: pd.DataFrame = classify_frame(source.frame, **common)
    return result


def _reported_ranges(long: Mapping[str, Any] | None, policy: Policy) -> dict[str, Any] | None:
    """The run record's ``reported_ranges``, as ``b12lab classify`` records them: the column,
    and the analytes that may be banded against it."""
    if long is None or not long.get("use_reported_ranges"):
        return None
    return reported_ranges.record(long.get("reference_range") or "found by name", policy)


def _counts(source: Source, summary: Summary, said: list[str]) -> Counts:
    return Counts(
        rows_in=len(source.frame),
        rows_out=summary.rows,
        categories={name: count for name, count in summary.categories.items() if count},
        errors=summary.errors,
        warnings=said,
    )


def _distinct(caught: list[warnings.WarningMessage]) -> list[Warning]:
    """b12lab's warnings, each text once; others are passed on as they came."""
    said: dict[str, Warning] = {}
    for caught_one in caught:
        message = caught_one.message
        if isinstance(message, B12LabWarning):
            said.setdefault(str(message), message)
        else:
            warnings.warn_explicit(
                message, caught_one.category, caught_one.filename, caught_one.lineno
            )
    return list(said.values())


def write_text(path: Path, text: str) -> Path:
    """``text`` (UTF-8) to ``path``, appearing whole or not at all (see :func:`replace_whole`)."""
    return replace_whole(path, text.encode("utf-8"))


def _version() -> str:
    from b12lab import __version__

    return __version__
