"""The run record: what a command-line run read, with which tables and options, and what it gave.

A result file is only as trustworthy as what is known about how it was made. The record names the
exact input bytes (SHA-256), the tables (``id@version`` and SHA-256), every option that changes the
output, and the counts the summary printed, so a run can be checked and repeated. It is written
beside the output as ``<output>.b12lab.json`` and, in a Parquet file, also under the metadata key
``b12lab``. It holds no clock time, so the same run gives the same record.

This module imports nothing heavy: the command line builds a record from plain values.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from b12lab.tables import Table

__all__ = [
    "METADATA_KEY",
    "RECORD_SUFFIX",
    "BackgroundDigest",
    "Counts",
    "file_sha256",
    "record_json",
    "record_path",
    "run_record",
]

RECORD_SUFFIX = ".b12lab.json"
"""Appended to the output's file name to name its record."""
METADATA_KEY = "b12lab"
"""Key of the record in a Parquet file's key-value metadata."""
RECORD_VERSION = 1
"""Changes only when a field is renamed or removed."""


@dataclass(frozen=True)
class Counts:
    """Rows in and out, rows per category and per error code, and distinct warnings."""

    rows_in: int
    rows_out: int
    categories: Mapping[str, int]
    errors: Mapping[str, int]
    warnings: Sequence[str]


def file_sha256(source: IO[bytes], *, copy_to: IO[bytes] | None = None) -> str:
    """SHA-256 of everything left in ``source``, read in blocks so memory stays flat.

    With ``copy_to`` the bytes are copied there on the way: a stream is read only once.
    """
    digest = hashlib.sha256()
    while block := source.read(1 << 20):
        digest.update(block)
        if copy_to is not None:
            copy_to.write(block)
    return digest.hexdigest()


class BackgroundDigest:
    """The SHA-256 of an open file, computed on a thread of its own (hashlib releases the GIL),
    so a file is hashed while it is read rather than before. Calling it waits for the digest;
    ``stop`` lets an interrupted run end without hashing the rest. The thread closes the file.
    """

    def __init__(self, source: IO[bytes]) -> None:
        self._stopped = threading.Event()
        self._digest = hashlib.sha256()
        self._error: OSError | None = None
        self._thread = threading.Thread(
            target=self._run, args=(source,), name="b12lab-sha256", daemon=True
        )
        self._thread.start()

    def _run(self, source: IO[bytes]) -> None:
        try:
            with source:
                while not self._stopped.is_set() and (block := source.read(1 << 20)):
                    self._digest.update(block)
        except OSError as exc:
            self._error = exc

    def __call__(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._stopped.is_set():
            raise RuntimeError("the digest was stopped before the end of the file")
        return self._digest.hexdigest()

    def stop(self) -> None:
        self._stopped.set()


def run_record(
    *,
    version: str,
    table: Table,
    laboratory: Table | None,
    laboratory_path: str | None,
    options: Mapping[str, Any],
    input_name: str,
    input_sha256: str,
    output_name: str,
    output_format: str,
    counts: Counts,
    reported_ranges: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record as plain JSON-ready data; see the batch how-to for each field.

    ``reported_ranges`` is set when results were banded against the reference ranges reported
    with them: the column, and the analytes that may be.
    """
    return {
        "record_version": RECORD_VERSION,
        "b12lab_version": version,
        "table": _table(table, None),
        "laboratory": None if laboratory is None else _table(laboratory, laboratory_path),
        "options": dict(options),
        "reported_ranges": None if reported_ranges is None else dict(reported_ranges),
        "input": {"name": input_name, "sha256": input_sha256},
        "output": {"name": output_name, "format": output_format},
        "rows_in": counts.rows_in,
        "rows_out": counts.rows_out,
        "categories": dict(sorted(counts.categories.items())),
        "errors": dict(sorted(counts.errors.items())),
        "warnings": list(counts.warnings),
    }


def record_json(record: Mapping[str, Any]) -> str:
    """The record as indented UTF-8 JSON text, ending with a newline."""
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def _table(table: Table, path: str | None) -> dict[str, str | None]:
    """A table as cited: ``id@version``, its SHA-256, and the file it came from if a user's."""
    return {"key": table.key, "sha256": table.sha256, "path": path}


def record_path(output: Path) -> Path:
    """Where the record of ``output`` goes."""
    return output.with_name(output.name + RECORD_SUFFIX)
