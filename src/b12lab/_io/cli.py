"""The ``b12lab`` command line.

Exit codes:

* 0 — done (rows with errors are reported in ``b12lab_error`` and in the summary);
* 1 — ``--strict`` was given and at least one row has an error;
* 2 — the command could not run: bad arguments, unreadable or missing file, missing column,
  unknown table or unit.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from b12lab import __version__, tables
from b12lab._core.columns import PREFIX
from b12lab._core.frame import classify_frame
from b12lab._core.measurements import measure
from b12lab._core.policy import Policy, resolve
from b12lab._core.units import conversion_factor, display_unit
from b12lab._io.long_format import classify_long
from b12lab._io.reading import CHUNK_BYTES, Chunk, read_chunks
from b12lab._io.run_record import Counts, file_sha256, record_json, run_record
from b12lab._io.writing import output_format, writer
from b12lab.errors import B12LabError, B12LabWarning

__all__ = ["main"]

EXIT_OK, EXIT_ROW_ERRORS, EXIT_FAILED = 0, 1, 2


@dataclass
class Progress:
    """Rows and bytes done, for the progress bar and the closing summary."""

    total_bytes: int
    rows_in: int = 0
    rows: int = 0
    bytes_read: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except B12LabError as exc:
        print(f"b12lab: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"b12lab: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_FAILED
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        print(f"b12lab: error: cannot read {args.input}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="b12lab",
        description="Cited, reproducible interpretation of vitamin B12 laboratory results. "
        "b12lab supports, and does not replace, clinical judgement.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    classify = commands.add_parser("classify", help="classify every row of a CSV or Parquet file")
    classify.add_argument("input", type=Path, help="CSV or .parquet file, one patient per row")
    classify.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write CSV, or Parquet for .parquet (default: CSV to stdout)",
    )
    classify.add_argument("--table", default=None, help="table id or id@version")
    classify.add_argument("--laboratory", default=None, help="laboratory table file or id")
    classify.add_argument("--map", action="append", default=[], metavar="ANALYTE=COLUMN")
    classify.add_argument("--unit", action="append", default=[], metavar="ANALYTE=UNIT")
    classify.add_argument("--strict", action="store_true", help="exit 1 if any row has an error")
    classify.add_argument(
        "--explain", action="store_true", help="add b12lab_reasons: the deciding rule in words"
    )
    long = classify.add_argument_group("long format (one row per result; read whole)")
    long.add_argument("--long", action="store_true", help="input has one row per result")
    long.add_argument("--patient", default="patient_id", help="patient or specimen id column")
    long.add_argument("--time", default=None, help="collection time column")
    long.add_argument(
        "--window", default=None, help="results within this of a visit's first, e.g. 24h"
    )
    long.add_argument("--test", default="test", help="test code (LOINC) or name column")
    long.add_argument("--value", default="value", help="result column")
    long.add_argument("--unit-column", default=None, help="unit column, if units are apart")
    dialect = classify.add_argument_group("CSV dialect")
    dialect.add_argument(
        "--delimiter", default=None, help="field separator (default: detected from the header)"
    )
    dialect.add_argument(
        "--decimal",
        choices=[".", ",", "auto"],
        default="auto",
        help="decimal mark of results; auto reads 0,52 as 0.52 and refuses ambiguous 1,476",
    )
    dialect.add_argument("--encoding", default="utf-8", help="text encoding, e.g. cp1252")
    classify.add_argument(
        "--keep-formulas",
        action="store_true",
        help="write text cells starting with = + - @ as they are (default: prefix ')",
    )
    classify.add_argument(
        "--chunk-bytes",
        type=int,
        default=CHUNK_BYTES,
        help="bytes of CSV read per chunk; memory use follows it (default: 16 MiB)",
    )
    classify.set_defaults(run=_classify)

    listing = commands.add_parser("tables", help="list shipped tables, or show one")
    listing.add_argument("table", nargs="?", help="table id or id@version to show")
    listing.set_defaults(run=_tables)

    convert = commands.add_parser("convert", help="convert a result to another unit")
    convert.add_argument("value", help='a result such as "160 pg/mL" or "<148 pmol/L"')
    convert.add_argument("--analyte", required=True)
    convert.add_argument("--to", default=None, help="target unit (default: canonical)")
    convert.set_defaults(run=_convert)
    return parser


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise B12LabError(f"--{what} takes ANALYTE=VALUE, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _classify(args: argparse.Namespace) -> int:
    if not args.input.is_file():
        raise OSError(2, "No such file", str(args.input))
    laboratory = args.laboratory
    if laboratory is not None and Path(laboratory).suffix == ".toml":
        laboratory = tables.load_file(laboratory)
    options: dict[str, Any] = {
        "columns": _pairs(args.map, "map"),
        "units": _pairs(args.unit, "unit"),
        "table": args.table,
        "laboratory": laboratory,
        "explain": args.explain,
        "decimal": args.decimal,
    }
    policy = resolve(options["table"], laboratory)  # an unusable table fails before any input
    with open(args.input, "rb") as source:
        input_sha256 = file_sha256(source)
    progress = Progress(total_bytes=args.input.stat().st_size)
    show = _progress_bar(progress) if sys.stderr.isatty() else None
    safe = not args.keep_formulas
    with (
        writer(args.output, sys.stdout.buffer, safe_for_spreadsheets=safe) as output,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", B12LabWarning)
        for chunk in _inputs(args):
            if args.long:
                result = classify_long(
                    chunk.frame,
                    patient=args.patient,
                    time=args.time,
                    window=args.window,
                    test=args.test,
                    value=args.value,
                    unit=args.unit_column,
                    table=options["table"],
                    laboratory=options["laboratory"],
                )
            else:
                result = classify_frame(chunk.frame, row_errors=chunk.errors, **options)
            progress.rows_in += len(chunk.frame)
            _count(progress, result, chunk.consumed)
            output.write(result if args.long else _with_lines(result, chunk))
            if show is not None:
                show()
        progress.warnings = list(dict.fromkeys(str(w.message) for w in caught))
        output.record = record_json(_record(args, policy, input_sha256, progress))
    if show is not None:
        print(file=sys.stderr)
    _summary(progress)
    return EXIT_ROW_ERRORS if args.strict and sum(progress.errors.values()) else EXIT_OK


def _record(
    args: argparse.Namespace, policy: Policy, input_sha256: str, progress: Progress
) -> dict[str, Any]:
    """The run record of a finished run (see run_record)."""
    from_file = isinstance(args.laboratory, str) and Path(args.laboratory).suffix == ".toml"
    output = args.output
    return run_record(
        version=__version__,
        table=policy.table,
        laboratory=policy.laboratory,
        laboratory_path=args.laboratory if from_file else None,
        options=_record_options(args),
        input_name=str(args.input),
        input_sha256=input_sha256,
        output_name="-" if output is None else str(output),
        output_format=output_format(output),
        counts=Counts(
            rows_in=progress.rows_in,
            rows_out=progress.rows,
            categories=progress.categories,
            errors=progress.errors,
            warnings=progress.warnings,
        ),
    )


def _record_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options that shape the output, as given (tables are recorded apart, resolved)."""
    long = {
        name: getattr(args, name)
        for name in ("patient", "time", "window", "test", "value", "unit_column")
    }
    return {
        "map": _pairs(args.map, "map"),
        "unit": _pairs(args.unit, "unit"),
        "decimal": args.decimal,
        "delimiter": args.delimiter,
        "encoding": args.encoding,
        "explain": args.explain,
        "strict": args.strict,
        "keep_formulas": args.keep_formulas,
        "long": long if args.long else None,
    }


def _inputs(args: argparse.Namespace) -> Iterator[Chunk]:
    """Chunks of the input; a long export is read whole, since a visit may span chunks."""
    chunks = read_chunks(
        args.input, chunk_bytes=args.chunk_bytes, delimiter=args.delimiter, encoding=args.encoding
    )
    if not args.long:
        return chunks
    parts = list(chunks)
    whole = pd.concat([part.frame for part in parts], ignore_index=True)
    return iter(
        [
            Chunk(
                whole,
                np.concatenate([p.lines for p in parts]),
                np.concatenate([p.errors for p in parts]),
                parts[-1].consumed,
            )
        ]
    )


def _with_lines(result: pd.DataFrame, chunk: Chunk) -> pd.DataFrame:
    """Errors cite the line (or row) of the input they come from, never the row's content.

    Works on the error column's codes: only the failed rows are touched.
    """
    column = result[f"{PREFIX}error"].astype("category")
    codes = column.cat.codes.to_numpy()
    categories = np.asarray(column.cat.categories.astype(str), dtype=object)
    failed = categories[codes] != ""
    if failed.any():
        where = np.char.add(np.char.add(f"{chunk.unit} ", chunk.lines[failed].astype(str)), ": ")
        texts = np.char.add(where, categories[codes[failed]].astype(str))
        unique, inverse = np.unique(texts, return_inverse=True)
        renumbered = np.zeros(len(codes), dtype=np.int32)
        renumbered[failed] = np.asarray(inverse).reshape(-1) + 1
        labels = pd.Index(["", *unique.tolist()], dtype=object)
        result[f"{PREFIX}error"] = pd.Categorical.from_codes(renumbered, categories=labels)
    return result


def _count(progress: Progress, result: pd.DataFrame, consumed: int) -> None:
    """Counts per category and per error code, from the (categorical) columns' value counts."""
    progress.rows += len(result)
    progress.bytes_read = consumed
    for category, count in result[f"{PREFIX}category"].value_counts().items():
        if str(category) and count:  # "" is a row with an error
            progress.categories[str(category)] = progress.categories.get(str(category), 0) + int(
                count
            )
    for message, count in result[f"{PREFIX}error"].value_counts().items():
        if str(message) and count:
            reason = str(message).split(":")[0]
            progress.errors[reason] = progress.errors.get(reason, 0) + int(count)


def _progress_bar(progress: Progress) -> Callable[[], None]:
    started = time.monotonic()

    def show() -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        fraction = progress.bytes_read / progress.total_bytes if progress.total_bytes else 1.0
        left = elapsed * (1 - fraction) / fraction if fraction > 0 else float("nan")
        print(
            f"\rb12lab: {progress.rows:,} rows, {progress.rows / elapsed:,.0f} rows/s, "
            f"{fraction:.0%}, {left:,.0f} s left   ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def _summary(progress: Progress) -> None:
    failed = sum(progress.errors.values())
    lines = [f"b12lab: {progress.rows_in} rows in, {progress.rows} rows out, {failed} with errors"]
    lines += [f"  {category}: {count}" for category, count in sorted(progress.categories.items())]
    common = sorted(progress.errors.items(), key=lambda item: -item[1])[:5]
    lines += [f"  error {reason}: {count}" for reason, count in common]
    lines += [f"  warning: {message}" for message in progress.warnings]
    print("\n".join(lines), file=sys.stderr)


def _tables(args: argparse.Namespace) -> int:
    if args.table is None:
        for spec in tables.available():
            table = tables.load(spec)
            print(f"{spec}\t{table.model.status}\t{table.model.title}")
        return EXIT_OK
    table = tables.load(args.table)
    model = table.model
    print(f"{table.key} ({model.status}) sha256 {table.sha256}")
    print(f"{model.title}\n{model.citation.document} ({model.citation.year})")
    for name, variable in model.variables.items():
        for band in variable.all_strata()[0].bands:
            print(f"  {name:8} {band.label:16} {band.interpretation.value:4} {band.wording or ''}")
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    measured = measure(args.value, analyte=args.analyte)
    target = args.to or None
    converted = measured.to(target) if target else measured.canonical()
    conversion_factor(measured.analyte, measured.unit, converted.unit)
    print(f"{converted.censoring.value}{converted.value:.6g} {display_unit(converted.unit)}")
    return EXIT_OK
