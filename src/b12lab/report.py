"""An offline report of a batch: one HTML file that opens anywhere and loads nothing.

:func:`html` gives the page as text and :func:`write` writes it to a file; ``b12lab report`` is
the same on the command line. The page counts rows by category and by error code, draws each
analyte's distribution with the table's band edges, counts flags, shows the run record (tables
with their SHA-256, b12lab's version, the input file's SHA-256) and, with ``against``, the
matrix of how categories move to another table (as :func:`b12lab.diff` counts them).

The page holds aggregates only: no patient or specimen identifier, no row's values in a table,
no error message (messages may quote a value), only error codes. It loads no script, font,
image or style from anywhere, so opening it sends nothing over the network.

The figures need matplotlib, in the ``report`` extra (``pip install 'b12lab[report]'``);
without it both functions raise :class:`~b12lab.errors.MissingDependencyError`, an
``ImportError`` that says so.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from b12lab._core.numerals import Decimal
    from b12lab.tables import Table

__all__ = ["html", "write"]


def html(
    data: pd.DataFrame | str | os.PathLike[str],
    *,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
    against: str | Table | None = None,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    decimal: Decimal = ".",
    delimiter: str | None = None,
    encoding: str | None = None,
) -> str:
    """The report of ``data`` as one self-contained HTML page.

    ``data`` is a data frame, one patient per row, or a CSV or Parquet file read as
    ``b12lab classify`` reads it (``delimiter`` detected from the header unless given;
    ``encoding`` UTF-8 unless given), whole. ``table``, ``laboratory``, ``columns``, ``units``
    and ``decimal`` are as in :func:`b12lab.classify_frame`. With ``against`` (another table),
    the page also shows how each row's category moves from ``table`` to ``against``.

    A column that looks like a result but is not read is named in the page and warned about
    (:class:`~b12lab.errors.UnusedColumnWarning`), as :func:`b12lab.classify_frame` does.
    """
    from b12lab._io.report_build import build, read_source
    from b12lab._io.report_plots import require_matplotlib

    require_matplotlib()  # before reading: a missing extra is the first thing to hear
    source = read_source(data, delimiter=delimiter, encoding=encoding)
    made = build(
        source,
        table=table,
        laboratory=laboratory,
        against=against,
        columns=columns,
        units=units,
        decimal=decimal,
        options=_options(columns, units, decimal, delimiter, encoding),
    )
    for warning in made.warnings:
        warnings.warn(warning, stacklevel=2)
    return made.text


def write(
    data: pd.DataFrame | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
    against: str | Table | None = None,
    columns: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    decimal: Decimal = ".",
    delimiter: str | None = None,
    encoding: str | None = None,
) -> Path:
    """Write :func:`html`'s page to ``path`` (UTF-8) and return the path.

    The file appears whole or not at all: the page is written beside it and then renamed.
    """
    text = html(
        data,
        table=table,
        laboratory=laboratory,
        against=against,
        columns=columns,
        units=units,
        decimal=decimal,
        delimiter=delimiter,
        encoding=encoding,
    )
    from b12lab._io.report_build import write_text

    return write_text(Path(path), text)


def _options(
    columns: Mapping[str, str] | None,
    units: Mapping[str, str] | None,
    decimal: str,
    delimiter: str | None,
    encoding: str | None,
) -> dict[str, object]:
    """The options recorded in the run record, named as ``b12lab classify`` records them."""
    return {
        "map": dict(columns or {}),
        "unit": dict(units or {}),
        "decimal": decimal,
        "delimiter": delimiter,
        "encoding": encoding,
    }
