"""The ``b12lab`` command line.

Modules that pull in pandas, pyarrow, pint or pydantic are imported inside the functions that
need them, so ``b12lab --help`` and ``b12lab --version`` answer at once.

Exit codes:

* 0 — done (rows with errors are reported in ``b12lab_error`` and in the summary);
* 1 — ``--strict`` was given and at least one row has an error;
* 2 — the command could not run: bad arguments, unreadable or missing file, missing column,
  unknown table or unit;
* 70 — an unexpected internal error (the traceback is printed); never 1, which means row errors;
* 130 — interrupted (Ctrl-C); 129 and 143 — ended by SIGHUP or SIGTERM (128 + the signal's
  number, as a shell reports a process killed by it); 141 — the reader of the output went away
  (``| head``).

However the run ends early, the temporary output file is removed: nothing is left beside the
output but a complete file.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import tempfile
import textwrap
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from b12lab._io.run_record import (
    BackgroundDigest,
    Counts,
    file_sha256,
    record_json,
    run_record,
)
from b12lab.errors import B12LabError, B12LabWarning, ErrorCode

if TYPE_CHECKING:
    import pandas as pd

    from b12lab._core.policy import Policy
    from b12lab._io.reading import Chunk
    from b12lab.tables import Table

__all__ = ["main"]

EXIT_OK, EXIT_ROW_ERRORS, EXIT_FAILED = 0, 1, 2
EXIT_INTERNAL = 70  # EX_SOFTWARE in sysexits.h
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 128 + 2, 128 + 13  # as if killed by SIGINT, SIGPIPE
MIN_CHUNK_BYTES = 1
"""A block may hold less than one record and still work (it reads on to the record's end)."""
FHIR_INPUTS = (".json", ".ndjson")
"""Input extensions read as FHIR (a Bundle or Observation; NDJSON of resources)."""
FHIR_OUTPUT = ".json"
"""An output extension that writes a FHIR Bundle (for FHIR input)."""
UNIT_HINT = (
    "  hint: a result without a unit, or in a unit b12lab does not know, is not classified; "
    "give the unit of a column's bare numbers with --unit ANALYTE=UNIT (e.g. --unit b12=pg/mL), "
    "and choose the column of an analyte with --map ANALYTE=COLUMN"
)


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


TERMINATING = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals that end a run like Ctrl-C: its temporary output is removed (SIGHUP is POSIX only)."""


class Terminated(BaseException):
    """A termination signal, raised where the run is so that its cleanup runs as for Ctrl-C.

    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` may swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def entry() -> int:
    """The ``b12lab`` command: :func:`main`, in a process of its own.

    numpy's OpenBLAS starts a thread per core as numpy is imported, and they spin for a while:
    on a small machine that takes a core from the run's start (about 0.05 s here). b12lab does
    no linear algebra, so one thread is enough, unless the environment says otherwise.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    input_name = "the input"
    with _terminating_signals():
        try:
            args = _parser().parse_args(argv)  # --version and --help write to standard output
            input_name = getattr(args, "input", input_name)
            return int(args.run(args))
        except (Exception, KeyboardInterrupt, Terminated) as exc:
            return _failed(exc, input_name)


@contextmanager
def _terminating_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` during the run; the previous handlers return
    afterwards. Python's default for them ends the process at once, leaving the temporary output
    (patient data) behind. Only the main thread may set handlers: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _terminate) for signum in TERMINATING}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received.clear()


_received: list[int] = []
"""The termination signal received, if any, until the run ends."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    """Raise once; a second signal is ignored, so that it cannot cut the cleanup short.

    The signal is also remembered: an exception raised in a handler is lost if it surfaces
    inside C code that clears errors (``hasattr`` does), so the run also stops at the next
    chunk (:func:`_stop_if_terminated`).
    """
    for each in TERMINATING:
        signal.signal(each, signal.SIG_IGN)
    _received.append(signum)
    raise Terminated(signum)


def _stop_if_terminated() -> None:
    """Raise :class:`Terminated` if a termination signal arrived but its exception was lost."""
    if _received:
        raise Terminated(_received[0])


def _failed(exc: BaseException, input_name: str) -> int:
    """Report a failure in one line (a defect with its traceback) and give its exit status."""
    if isinstance(exc, BrokenPipeError):
        return _reader_gone()
    if isinstance(exc, KeyboardInterrupt):
        print("b12lab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(exc, Terminated):
        print(f"b12lab: ended by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    if isinstance(exc, B12LabError):
        message = str(exc)
    elif isinstance(exc, OSError):
        message = _os_error(exc)
    elif isinstance(exc, UnicodeDecodeError) or _is_arrow_invalid(exc):
        message = f"cannot read {input_name}: {exc}"
    else:
        traceback.print_exception(exc)
        print(f"b12lab: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    print(f"b12lab: error: {message}", file=sys.stderr)
    return EXIT_FAILED


def _reader_gone() -> int:
    """Whoever read the output stopped early (``| head``): stop quietly, as other tools do.

    Standard output is pointed at the null device so that Python's own flush at exit does not
    fail on the closed pipe again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def _is_arrow_invalid(exc: BaseException) -> bool:
    """pyarrow's "cannot parse this" error; without pyarrow loaded, it cannot be one."""
    arrow = sys.modules.get("pyarrow")
    return arrow is not None and isinstance(exc, arrow.ArrowInvalid)


def _os_error(exc: OSError) -> str:
    """``reason: file``, or the bare reason of an error that names no file (a full disk)."""
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename}" if exc.filename is not None else reason


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        from b12lab import __version__

        print(f"b12lab {__version__}")
        parser.exit()


def _output_path(text: str) -> Path | None:
    """``-o``: ``-`` for standard output, or a file whose extension names its format."""
    from b12lab._io.writing import output_format

    if text == "-":
        return None
    path = Path(text)
    if path.suffix.lower() == FHIR_OUTPUT:  # a FHIR Bundle, for FHIR input (checked later)
        return path
    try:
        output_format(path)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return path


def _chunk_bytes(text: str) -> int:
    """``--chunk-bytes``: a whole number of bytes, not below the minimum."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, got {text!r}") from None
    if value < MIN_CHUNK_BYTES:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_CHUNK_BYTES} bytes, got {value}")
    return value


def _delimiter(text: str) -> str:
    """``--delimiter``: one character; ``\\t`` means tab, as a shell passes it unexpanded."""
    value = "\t" if text == "\\t" else text
    if len(value) != 1 or value in '"\r\n':
        raise argparse.ArgumentTypeError(
            f"expected one character other than a quote or line end, such as ';' or \\t for "
            f"tab; got {text!r}"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    from b12lab.tables import DEFAULT_TABLE

    epilog = _epilog()
    parser = argparse.ArgumentParser(
        prog="b12lab",
        description="Cited, reproducible interpretation of vitamin B12 laboratory results.\n"
        "b12lab supports, and does not replace, clinical judgement.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action=_Version, default=argparse.SUPPRESS, help="print the version and exit"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    classify = commands.add_parser(
        "classify",
        help="classify every row of a CSV or Parquet file, or a FHIR Bundle",
        description="Classify every row of a CSV or Parquet file, one patient per row\n"
        "(or, with --long, one result per row), or the Observations of a FHIR R4 Bundle\n"
        "or NDJSON, one row or derived Observation per subject and collection.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    classify.add_argument(
        "input",
        help="CSV or .parquet file, one patient per row; a FHIR Bundle (.json) or NDJSON of "
        "Observations (.ndjson); - reads standard input",
    )
    classify.add_argument(
        "-o",
        "--output",
        type=_output_path,
        help="write here; the extension names the format: .csv, .parquet or .pq, "
        ".ndjson or .jsonl (JSON lines), .json (a FHIR Bundle, for FHIR input); - or none: "
        "CSV to standard output",
    )
    classify.add_argument(
        "--table", default=None, help=f"table id or id@version (default: {DEFAULT_TABLE})"
    )
    _add_column_options(classify)
    classify.add_argument(
        "--laboratory-column",
        default=None,
        metavar="COLUMN",
        help="column naming each row's site; each site's table is given as --laboratory "
        "SITE=TABLE, and a row of any other site gets an unknown_laboratory error",
    )
    classify.add_argument("--strict", action="store_true", help="exit 1 if any row has an error")
    classify.add_argument(
        "--explain", action="store_true", help="add b12lab_reasons: the deciding rule in words"
    )
    _add_fhir_options(classify)
    _add_long_options(classify)
    _add_omop_options(classify)
    _add_dialect_options(classify)
    classify.add_argument(
        "--keep-formulas",
        action="store_true",
        help="write text cells starting with = + - @ as they are (default: prefix ')",
    )
    classify.add_argument(
        "--chunk-bytes",
        type=_chunk_bytes,
        default=None,
        help="bytes of CSV read per chunk; memory use follows it "
        f"(default: 16 MiB, at least {MIN_CHUNK_BYTES})",
    )
    classify.set_defaults(run=_classify)

    _add_diff_command(commands, epilog)
    _add_report_command(commands, epilog)

    listing = commands.add_parser("tables", help="list shipped tables, or show one")
    listing.add_argument("table", nargs="?", help="table id or id@version to show")
    listing.add_argument(
        "--json",
        action="store_true",
        help="print the table's full content, key and sha256 as JSON (needs a table id)",
    )
    listing.set_defaults(run=_tables)

    convert = commands.add_parser("convert", help="convert a result to another unit")
    convert.add_argument("value", help='a result such as "160 pg/mL" or "<148 pmol/L"')
    convert.add_argument("--analyte", required=True)
    convert.add_argument("--to", default=None, help="target unit (default: canonical)")
    convert.set_defaults(run=_convert)
    return parser


def _add_fhir_options(command: argparse.ArgumentParser) -> None:
    """``--from fhir`` and ``--to fhir``: FHIR R4 in and out (see :mod:`b12lab.fhir`)."""
    fhir = command.add_argument_group("FHIR R4 (read whole; grouped as with --long)")
    fhir.add_argument(
        "--from",
        dest="source_format",
        choices=["fhir"],
        default=None,
        help="read the input as FHIR JSON or NDJSON whatever its name (default: by extension, "
        f"{' and '.join(FHIR_INPUTS)})",
    )
    fhir.add_argument(
        "--to",
        dest="target_format",
        choices=["fhir"],
        default=None,
        help="write a FHIR collection Bundle of derived Observations (default: by -o's "
        "extension, .json for FHIR input)",
    )


def _add_omop_options(command: argparse.ArgumentParser) -> None:
    """``--omop``: the input is an OMOP CDM MEASUREMENT table (see :mod:`b12lab.omop`)."""
    omop = command.add_argument_group(
        "OMOP CDM (MEASUREMENT rows, one row per person and collection out; read whole)"
    )
    omop.add_argument(
        "--omop", action="store_true", help="input is an OMOP MEASUREMENT table (with --window)"
    )
    omop.add_argument(
        "--concept",
        action="append",
        default=[],
        metavar="CONCEPT_ID=TEST",
        help="read this measurement_concept_id as a LOINC code or analyte, e.g. "
        "--concept 3000593=b12; repeat for each concept",
    )
    omop.add_argument(
        "--unit-concept",
        action="append",
        default=[],
        metavar="CONCEPT_ID=UNIT",
        help="the unit a unit_concept_id stands for (its UCUM code), e.g. 8845=pg/mL; read "
        "before unit_source_value",
    )
    omop.add_argument(
        "--person",
        default=None,
        metavar="FILE",
        help="the PERSON table (CSV or Parquet), for sex and age at collection",
    )


def _add_column_options(command: argparse.ArgumentParser) -> None:
    """The laboratory table and how columns are read: the same for every command that reads."""
    command.add_argument(
        "--laboratory",
        action="append",
        default=[],
        metavar="TABLE",
        help="laboratory table file or id; with --laboratory-column, SITE=TABLE, repeated once "
        "per site",
    )
    command.add_argument("--map", action="append", default=[], metavar="ANALYTE=COLUMN")
    command.add_argument("--unit", action="append", default=[], metavar="ANALYTE=UNIT")


def _add_long_options(command: argparse.ArgumentParser) -> None:
    """``--long`` and the columns of a long export: the same for every command that reads."""
    long = command.add_argument_group("long format (one row per result; read whole)")
    long.add_argument("--long", action="store_true", help="input has one row per result")
    long.add_argument(
        "--patient",
        default=None,
        help="patient or specimen id column (default: patient_id, mrn, ...)",
    )
    long.add_argument(
        "--time", default=None, help="collection time column (default: collection_datetime, ...)"
    )
    long.add_argument(
        "--time-format",
        action="append",
        default=None,
        metavar="FORMAT",
        help="how --time is written, in strptime codes, e.g. '%%d.%%m.%%Y %%H:%%M'; repeat for "
        "sites that differ (ISO8601 names ISO 8601; default: ISO 8601 only)",
    )
    long.add_argument(
        "--window", default=None, help="results within this of a visit's first, e.g. 24h"
    )
    long.add_argument(
        "--test", default=None, help="test code (LOINC) or name column (default: test, loinc, ...)"
    )
    long.add_argument("--value", default=None, help="result column (default: value, result, ...)")
    long.add_argument(
        "--unit-column", default=None, help="unit column, if units are apart (default: unit, ...)"
    )
    long.add_argument(
        "--reference-range-column",
        default=None,
        metavar="COLUMN",
        help="column of the reference range reported with each result (0-0.40, <15 umol/L): "
        "MMA and homocysteine are banded against it instead of the laboratory table",
    )
    long.add_argument(
        "--reported-ranges",
        action="store_true",
        help="band MMA and homocysteine against the reference range reported with each result: "
        "with --long, the column found by its name (reference_range, ref_range, ...); with "
        "--omop, range_low and range_high; with FHIR input, each Observation's referenceRange",
    )


def _add_dialect_options(command: argparse.ArgumentParser) -> None:
    dialect = command.add_argument_group("CSV dialect")
    dialect.add_argument(
        "--delimiter",
        type=_delimiter,
        default=None,
        help="field separator, one character; \\t for tab (default: detected from the header)",
    )
    dialect.add_argument(
        "--decimal",
        choices=[".", ",", "auto"],
        default="auto",
        help="decimal mark of results; auto reads 0,52 as 0.52 and refuses ambiguous 1,476",
    )
    dialect.add_argument("--encoding", default="utf-8", help="text encoding, e.g. cp1252")


def _add_diff_command(commands: Any, epilog: str) -> None:
    """``b12lab diff``: the same rows under two tables."""
    command = commands.add_parser(
        "diff",
        help="compare two tables on the same rows",
        description="Classify every row of a CSV or Parquet file under two tables, print how\n"
        "the categories move from --table (rows) to --against (columns), and write\n"
        "the rows whose category or error code changed with -o. The whole file is\n"
        "read into memory at once (classify reads it in blocks).",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "input", help="CSV or .parquet file, one patient per row; - reads standard input"
    )
    command.add_argument(
        "--table", required=True, help="the table in use, as id@version (e.g. nice-ng239@1)"
    )
    command.add_argument(
        "--against", required=True, help="the table to compare with, as id@version"
    )
    command.add_argument(
        "-o",
        "--output",
        type=_file_output,
        help="write the changed rows here, with both answers (a_*: --table, b_*: --against); "
        "the extension names the format: .csv, .parquet or .pq, .ndjson or .jsonl",
    )
    _add_column_options(command)
    _add_dialect_options(command)
    command.set_defaults(run=_diff)


def _add_report_command(commands: Any, epilog: str) -> None:
    """``b12lab report``: one self-contained HTML page of a file's results."""
    command = commands.add_parser(
        "report",
        help="write an offline HTML report of a file's results",
        description="Classify every row of a CSV or Parquet file and write one HTML page that\n"
        "opens with no network: counts by category and error, each analyte's distribution\n"
        "with the table's band edges, flags, the run record and, with --against, how the\n"
        "categories move to another table. Aggregates only: no identifier, no row's values.\n"
        "The figures need matplotlib: pip install 'b12lab[report]'. The whole file is read\n"
        "into memory at once.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "input", help="CSV or .parquet file, one patient per row; - reads standard input"
    )
    command.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="the HTML file to write, e.g. report.html; - writes to standard output",
    )
    command.add_argument(
        "--table", default=None, help="table id or id@version (default: the default table)"
    )
    command.add_argument(
        "--against",
        default=None,
        help="also show how each row's category moves to this table (id@version)",
    )
    _add_column_options(command)
    _add_long_options(command)
    _add_dialect_options(command)
    command.set_defaults(run=_report)


def _file_output(text: str) -> Path:
    """``diff -o``: a file; standard output already holds the matrix."""
    path = _output_path(text)
    if path is None:
        raise argparse.ArgumentTypeError(
            "diff prints its matrix on standard output; give -o a file name"
        )
    return path


def _epilog() -> str:
    """The analytes, the column names read as each, and the default table: what --map needs."""
    from b12lab._core.analytes import ANALYTES
    from b12lab.tables import DEFAULT_TABLE

    indent = " " * 14
    lines = ["analytes, and the column names read as each (in any case; --map ANALYTE=COLUMN"]
    lines.append("for any other name):")
    for analyte in ANALYTES.values():
        lines.append(f"  {analyte.name:<12}{analyte.title} [{analyte.canonical_unit}]")
        aliases = ", ".join(analyte.aliases)
        lines += textwrap.wrap(aliases, width=90, initial_indent=indent, subsequent_indent=indent)
    lines.append(f"\ndefault table: {DEFAULT_TABLE}, newest version (all tables: b12lab tables)")
    return "\n".join(lines)


def _pairs(items: Sequence[str], what: str, form: str = "ANALYTE=VALUE") -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise B12LabError(f"--{what} takes {form}, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _classify(args: argparse.Namespace) -> int:
    from b12lab._core.policy import resolve
    from b12lab._io.reading import CHUNK_BYTES

    if _fhir_input(args):
        return _classify_fhir(args)
    if args.target_format == "fhir" or _fhir_output(args):
        raise B12LabError(
            "a FHIR Bundle (--to fhir, or -o with .json) is written only for FHIR input: give "
            "a Bundle (.json) or NDJSON (.ndjson), or --from fhir"
        )

    laboratory = _laboratory(args)
    options: dict[str, Any] = {
        "columns": _pairs(args.map, "map"),
        "units": _pairs(args.unit, "unit"),
        "table": args.table,
        "laboratory": laboratory,
        "explain": args.explain,
        "decimal": args.decimal,
    }
    if args.long and args.omop:
        raise B12LabError("give --long or --omop, not both: --omop reads OMOP's own columns")
    _check_reported_ranges(args)
    if isinstance(laboratory, dict):
        if args.long or args.omop:
            raise B12LabError(
                f"--laboratory-column is not supported with {'--omop' if args.omop else '--long'};"
                " classify each site's export apart, with its own --laboratory"
            )
        options["laboratory_column"] = args.laboratory_column
        for site_table in laboratory.values():  # an unusable table fails before any input
            resolve(options["table"], site_table)
        policy = resolve(options["table"], None)
    else:
        policy = resolve(options["table"], laboratory)  # an unusable table fails before input
    with _input_file(args.input) as (source, input_sha256):
        chunk_bytes = args.chunk_bytes or CHUNK_BYTES
        reading = argparse.Namespace(**{**vars(args), "input": source, "chunk_bytes": chunk_bytes})
        return _classify_file(reading, options, _record_maker(args, policy, input_sha256))


def _fhir_input(args: argparse.Namespace) -> bool:
    return args.source_format == "fhir" or Path(args.input).suffix.lower() in FHIR_INPUTS


def _fhir_output(args: argparse.Namespace) -> bool:
    output = args.output
    return output is not None and output.suffix.lower() == FHIR_OUTPUT


def _classify_fhir(args: argparse.Namespace) -> int:
    """FHIR in: one row (or derived Observation) per group; CSV, Parquet, NDJSON or a Bundle out."""
    from b12lab._core.policy import resolve
    from b12lab.fhir import bundle_json, classify_bundle

    not_here = [
        option
        for option, given in (
            ("--map", args.map),
            ("--unit", args.unit),
            ("--long", args.long),
            ("--laboratory-column", args.laboratory_column),
            ("--patient", args.patient),
            ("--time", args.time),
            ("--test", args.test),
            ("--value", args.value),
            ("--unit-column", args.unit_column),
            ("--reference-range-column", args.reference_range_column),
        )
        if given
    ]
    if not_here:
        raise B12LabError(
            f"{', '.join(not_here)} do(es) not apply to FHIR input: tests are read by LOINC "
            "code, units from valueQuantity, subjects and times from each Observation"
        )
    laboratory = _laboratory(args)
    assert not isinstance(laboratory, dict)  # no --laboratory-column here
    policy = resolve(args.table, laboratory)  # an unusable table fails before any input
    to_fhir = args.target_format == "fhir" or _fhir_output(args)
    with (
        _input_file(args.input) as (source, input_sha256),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", B12LabWarning)
        result = classify_bundle(
            source,
            table=args.table,
            laboratory=laboratory,
            window=args.window,
            explain=args.explain or to_fhir,
            use_reported_ranges=args.reported_ranges,
        )
        digest = input_sha256()  # while the file is open: the hash stops with it
    progress = Progress(total_bytes=0, rows_in=int(result.attrs.get("observations", 0)))
    _count(progress, result, 0)
    progress.warnings = list(dict.fromkeys(str(w.message) for w in caught))
    if to_fhir:
        from b12lab._io.writing import write_whole

        text = bundle_json(result, indent=None) + "\n"  # unindented: json's fast C encoder
        write_whole(args.output, text.encode("utf-8"), _standard_output)
    else:
        make_record = _record_maker(args, policy, lambda: digest)
        from b12lab._io.writing import writer

        with writer(
            args.output, _standard_output, safe_for_spreadsheets=not args.keep_formulas
        ) as output:
            output.write(result)
            output.record = record_json(make_record(progress))
    _summary(progress)
    return EXIT_ROW_ERRORS if args.strict and sum(progress.errors.values()) else EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    """The matrix and a summary on standard output; the changed rows to ``-o``."""
    from b12lab._core.policy import resolve
    from b12lab._io.diff import diff, matrix_text
    from b12lab._io.reading import CHUNK_BYTES, read_chunks
    from b12lab._io.writing import writer

    laboratory = _laboratory(args)
    if isinstance(laboratory, dict):  # pragma: no cover - diff has no --laboratory-column
        raise B12LabError("diff takes one --laboratory")
    for table in (args.table, args.against):
        resolve(table, laboratory)  # an unusable table fails before any input
    with (
        _input_file(args.input) as (source, _),
        _arrow_signals_off(),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", B12LabWarning)
        chunks = read_chunks(
            source, chunk_bytes=CHUNK_BYTES, delimiter=args.delimiter, encoding=args.encoding
        )
        whole = _joined(list(chunks))
        _stop_if_terminated()
        result = diff(
            whole.frame,
            table=args.table,
            against=args.against,
            columns=_pairs(args.map, "map"),
            units=_pairs(args.unit, "unit"),
            laboratory=laboratory,
            decimal=args.decimal,
            row_errors=whole.errors,
        )
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"b12lab: warning: {message}", file=sys.stderr)
    if args.output is not None:
        with writer(args.output, _standard_output) as output:
            output.write(_errors_cited(result.changed, whole))
    print(matrix_text(result))
    print(_diff_summary(len(whole.frame), result.moved, len(result.changed)))
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    """Write the page; a short summary on standard error, as classify gives."""
    from b12lab._core.policy import resolve
    from b12lab._io.report_build import build, read_source, write_text
    from b12lab._io.report_plots import require_matplotlib

    require_matplotlib()  # before any input: the missing extra is the first thing to hear
    laboratory = _laboratory(args)
    if isinstance(laboratory, dict):  # pragma: no cover - report has no --laboratory-column
        raise B12LabError("report takes one --laboratory")
    resolve(args.table, laboratory)  # an unusable table fails before any input
    if args.against is not None:
        resolve(args.against, laboratory)
    _check_reported_ranges(args)
    with _input_file(args.input) as (path, input_sha256), _arrow_signals_off():
        source = read_source(
            path,
            delimiter=args.delimiter,
            encoding=args.encoding,
            name=args.input,
            sha256=input_sha256(),
        )
        _stop_if_terminated()
        made = build(
            source,
            table=args.table,
            laboratory=laboratory,
            against=args.against,
            columns=_pairs(args.map, "map"),
            units=_pairs(args.unit, "unit"),
            decimal=args.decimal,
            long=_long_options(args) if args.long else None,
            options=_report_options(args),
            laboratory_path=_laboratory_file(args),
            output_name=str(args.output),
        )
    _stop_if_terminated()
    if str(args.output) == "-":
        _standard_output().write(made.text.encode("utf-8"))
    else:
        write_text(args.output, made.text)
    summary = made.summary
    _summary(
        Progress(
            total_bytes=0,
            rows_in=len(source.frame),
            rows=summary.rows,
            categories={name: count for name, count in summary.categories.items() if count},
            errors=dict(summary.errors),
            warnings=[str(warning) for warning in made.warnings],
        )
    )
    where = "standard output" if str(args.output) == "-" else args.output
    print(f"b12lab: report written to {where}", file=sys.stderr)
    return EXIT_OK


def _long_options(args: argparse.Namespace) -> dict[str, Any]:
    """classify_long's options, from --patient, --time and the others."""
    return {
        "patient": args.patient,
        "time": args.time,
        "time_format": args.time_format,
        "window": args.window,
        "test": args.test,
        "value": args.value,
        "unit": args.unit_column,
        "reference_range": args.reference_range_column,
        "use_reported_ranges": _uses_reported_ranges(args),
    }


_LONG_OPTIONS = (
    "patient",
    "time",
    "time_format",
    "window",
    "test",
    "value",
    "unit_column",
    "reference_range_column",
    "reported_ranges",
)
"""The long-format options a run record holds, as given."""


def _report_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options that shape a report, as given, named as classify records them."""
    long = {name: getattr(args, name) for name in _LONG_OPTIONS}
    return {
        "map": _pairs(args.map, "map"),
        "unit": _pairs(args.unit, "unit"),
        "decimal": args.decimal,
        "delimiter": args.delimiter,
        "encoding": args.encoding,
        "long": long if args.long else None,
    }


def _diff_summary(rows: int, moved: int, changed: int) -> str:
    """``N rows, M changed category``, and the rows whose error code alone changed, if any."""
    summary = f"{rows} rows, {moved} changed category"
    if changed > moved:
        summary += f", {changed - moved} changed error code"
    return summary


def _errors_cited(changed: pd.DataFrame, whole: Chunk) -> pd.DataFrame:
    """Both sides' errors cite the line (or row) of the input, as classify's output does.

    ``changed`` keeps the index of the joined input: positions in ``whole``.
    """
    import numpy as np

    from b12lab._io.diff import SIDES

    lines = whole.lines[changed.index.to_numpy(dtype=np.intp)]
    where = np.char.add(np.char.add(f"{whole.unit} ", lines.astype(str)), ": ").astype(object)
    cited = changed.copy()
    for side in SIDES:
        errors = cited[f"{side}error"].to_numpy(dtype=object)
        cited[f"{side}error"] = np.where(errors != "", where + errors, errors)
    return cited


def _classify_file(
    args: argparse.Namespace,
    options: dict[str, Any],
    make_record: Callable[[Progress], dict[str, Any]],
) -> int:
    from b12lab._core.frame import classify_frame
    from b12lab._io.writing import writer

    progress = Progress(total_bytes=args.input.stat().st_size)
    show = _progress_bar(progress) if sys.stderr.isatty() else None
    safe = not args.keep_formulas
    with (
        _arrow_signals_off(),
        writer(args.output, _standard_output, safe_for_spreadsheets=safe) as output,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", B12LabWarning)
        for chunk in _inputs(args):
            _stop_if_terminated()
            grouped = args.long or args.omop
            if grouped:
                visits = (_classify_omop if args.omop else _classify_long)(args, chunk, options)
                result = _uncited(visits)  # counted by error code, written citing lines
            else:
                result = classify_frame(chunk.frame, row_errors=chunk.errors, **options)
            progress.rows_in += len(chunk.frame)
            _count(progress, result, chunk.consumed)
            output.write(visits if grouped else _with_lines(result, chunk))
            if show is not None:
                show()
        _stop_if_terminated()  # the output is not committed
        progress.warnings = list(dict.fromkeys(str(w.message) for w in caught))
        output.record = record_json(make_record(progress))
    if show is not None:
        print(file=sys.stderr)
    _summary(progress)
    return EXIT_ROW_ERRORS if args.strict and sum(progress.errors.values()) else EXIT_OK


def _standard_output() -> IO[bytes]:
    """Standard output's bytes, asked for only when the output goes there: a job started with
    standard output closed (``>&-``) can still write a file."""
    if sys.stdout is None:
        raise OSError(errno.EBADF, "standard output is closed; give a file with -o")
    return sys.stdout.buffer


@contextmanager
def _arrow_signals_off() -> Iterator[None]:
    """Python's signal handlers alone, while the run reads with pyarrow.

    pyarrow's parser takes SIGINT and SIGTERM over while it runs and passes them on through a
    helper thread, and can lose one that arrives as a parse ends: a Ctrl-C or SIGTERM then
    goes unnoticed. Without it, Python's handlers run as soon as each block is parsed.
    """
    import pyarrow as pa

    pa.enable_signal_handlers(False)
    try:
        yield
    finally:
        pa.enable_signal_handlers(True)  # its default


def _classify_long(args: argparse.Namespace, chunk: Chunk, options: dict[str, Any]) -> pd.DataFrame:
    """One row per visit; a reader error (a ragged line, say) cites its line in its visit."""
    from b12lab._io.long_format import classify_long

    return classify_long(
        chunk.frame,
        patient=args.patient,
        time=args.time,
        time_format=args.time_format,
        window=args.window,
        test=args.test,
        value=args.value,
        unit=args.unit_column,
        reference_range=args.reference_range_column,
        use_reported_ranges=_uses_reported_ranges(args),
        row_errors=_cited_errors(chunk),
        row_names=[f"{chunk.unit} {line}" for line in chunk.lines],
        **options,
    )


def _classify_omop(args: argparse.Namespace, chunk: Chunk, options: dict[str, Any]) -> pd.DataFrame:
    """One row per person and collection of an OMOP MEASUREMENT table."""
    from b12lab.omop import classify_measurements

    return classify_measurements(
        chunk.frame,
        concept_map=_pairs(args.concept, "concept", "CONCEPT_ID=TEST"),
        unit_concept_map=_pairs(args.unit_concept, "unit-concept", "CONCEPT_ID=UNIT"),
        person=_person(args.person),
        window=args.window,
        row_errors=_cited_errors(chunk),
        row_names=[f"{chunk.unit} {line}" for line in chunk.lines],
        use_reported_ranges=_uses_reported_ranges(args),
        **options,
    )


def _person(name: str | None) -> pd.DataFrame | None:
    """``--person``: the PERSON table, read whole (a reader error in it stops the run: a
    person's sex or age cannot be half read)."""
    from b12lab._io.reading import read_chunks

    if name is None:
        return None
    whole = _joined(list(read_chunks(Path(name))))
    failed = whole.errors != ""
    if failed.any():
        line = int(whole.lines[failed][0])
        raise B12LabError(f"--person {name}: {whole.unit} {line}: {whole.errors[failed][0]}")
    return whole.frame


def _cited_errors(chunk: Chunk) -> Any:
    """Reader errors, each citing its line (or row); ``""`` for rows without one."""
    import numpy as np

    failed = chunk.errors != ""
    cited = np.full(len(chunk.errors), "", dtype=object)
    cited[failed] = [
        f"{chunk.unit} {line}: {error}"
        for line, error in zip(chunk.lines[failed], chunk.errors[failed], strict=True)
    ]
    return cited


def _uncited(visits: pd.DataFrame) -> pd.DataFrame:
    """The visits with each error's leading ``line N:`` removed, so errors count by code."""
    from b12lab._core.columns import PREFIX

    errors = visits[f"{PREFIX}error"].astype(str)
    return visits.assign(
        **{f"{PREFIX}error": errors.str.replace(r"^(?:line|row) [0-9]+: ", "", regex=True)}
    )


@contextmanager
def _input_file(name: str) -> Iterator[tuple[Path, Callable[[], str]]]:
    """The file to read, and the SHA-256 of its bytes (asked for when the record is written).

    A file is hashed on a thread of its own while it is read (hashlib releases the GIL), so the
    hash costs no time of its own. The reader reads a file twice (its header, then its blocks),
    so standard input (``-``) and pipes are first copied to a private temporary file, hashed on
    the way.
    """
    path = Path(name)
    if name != "-" and path.is_file():
        digest = BackgroundDigest(open(path, "rb"))  # noqa: SIM115  (the digest closes it)
        try:
            yield path, digest
        finally:
            digest.stop()
        return
    if name != "-" and not path.exists():
        raise FileNotFoundError(errno.ENOENT, "No such file", name)
    if name != "-" and path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", name)
    with tempfile.TemporaryDirectory(prefix="b12lab-") as directory, ExitStack() as stack:
        source: IO[bytes] = (
            sys.stdin.buffer if name == "-" else stack.enter_context(open(path, "rb"))
        )
        copy = Path(directory) / ("stdin" if name == "-" else path.name)
        with open(copy, "wb") as sink:
            copied = file_sha256(source, copy_to=sink)
        yield _named_by_content(copy), lambda: copied


def _named_by_content(path: Path) -> Path:
    """A copied stream has no trustworthy name: Parquet is told by its magic bytes."""
    with open(path, "rb") as file:
        parquet = file.read(4) == b"PAR1"
    if parquet and path.suffix.lower() not in (".parquet", ".pq"):
        return path.rename(path.with_name(path.name + ".parquet"))
    return path


def _record_maker(
    args: argparse.Namespace, policy: Policy, input_sha256: Callable[[], str]
) -> Callable[[Progress], dict[str, Any]]:
    """What a finished run writes as its record (see run_record), given its counts."""
    from b12lab import __version__
    from b12lab._io.writing import output_format

    output = args.output
    sites = getattr(args, "laboratory_column", None) is not None

    def make(progress: Progress) -> dict[str, Any]:
        return run_record(
            version=__version__,
            table=policy.table,
            laboratory=None if sites else policy.laboratory,  # sites: in the options
            laboratory_path=_laboratory_file(args),
            options=_record_options(args),
            reported_ranges=_reported_ranges(args, policy),
            input_name=args.input,
            input_sha256=input_sha256(),
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

    return make


def _laboratory(args: argparse.Namespace) -> str | Table | dict[str, str | Table] | None:
    """``--laboratory``: one table (loaded if a file), or with ``--laboratory-column`` a table
    per site, from its ``SITE=TABLE`` options."""
    from b12lab import tables

    given: list[str] = args.laboratory
    column = getattr(args, "laboratory_column", None)
    if column is None:
        if len(given) > 1:
            raise B12LabError(
                f"--laboratory was given {len(given)} times; give it once, or give "
                "--laboratory-column COLUMN and one --laboratory SITE=TABLE per site"
            )
        path = _laboratory_file(args)
        return tables.load_file(path) if path is not None else (given[0] if given else None)
    if not given:
        raise B12LabError(
            f"--laboratory-column {column} needs one --laboratory SITE=TABLE per site"
        )
    sites: dict[str, str | Table] = {}
    for site, name in _pairs(given, "laboratory", "SITE=TABLE").items():
        sites[site] = tables.load_file(name) if Path(name).suffix == ".toml" else name
    return sites


def _laboratory_file(args: argparse.Namespace) -> str | None:
    """``--laboratory`` as given, if it names one table file rather than a shipped table."""
    given: list[str] = args.laboratory
    if getattr(args, "laboratory_column", None) is not None or len(given) != 1:
        return None
    return given[0] if Path(given[0]).suffix == ".toml" else None


def _uses_reported_ranges(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "reported_ranges", False)) or (
        getattr(args, "reference_range_column", None) is not None
    )


def _check_reported_ranges(args: argparse.Namespace) -> None:
    """Reported ranges come with the results of a long export or OMOP rows (FHIR: checked
    there)."""
    option = "--reported-ranges" if args.reported_ranges else "--reference-range-column"
    if _uses_reported_ranges(args) and not (args.long or getattr(args, "omop", False)):
        raise B12LabError(
            f"{option} needs --long, --omop or FHIR input: ranges are reported with each result "
            "of a long export, one row per result"
        )
    if args.reference_range_column is not None and getattr(args, "omop", False):
        raise B12LabError(
            "--reference-range-column does not apply to --omop: give --reported-ranges, which "
            "reads MEASUREMENT's range_low and range_high"
        )


def _reported_ranges(args: argparse.Namespace, policy: Policy) -> dict[str, Any] | None:
    """With --reference-range-column: the column, and the analytes banded against it."""
    from b12lab._core.reported_ranges import record

    if not _uses_reported_ranges(args):
        return None
    column = getattr(args, "reference_range_column", None)
    if column is None and getattr(args, "omop", False):
        column = "range_low, range_high"
    elif column is None:
        column = "referenceRange" if _fhir_input(args) else "found by name"
    return record(column, policy)


def _record_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options that shape the output, as given (tables are recorded apart, resolved)."""
    long = {name: getattr(args, name) for name in _LONG_OPTIONS}
    return (
        {
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
        | _site_options(args)
        | _omop_options(args)
        | _fhir_options(args)
    )


def _omop_options(args: argparse.Namespace) -> dict[str, Any]:
    """With --omop: how the MEASUREMENT table was read (nothing otherwise)."""
    if not getattr(args, "omop", False):
        return {}
    omop = {
        "concept": _pairs(args.concept, "concept", "CONCEPT_ID=TEST"),
        "unit_concept": _pairs(args.unit_concept, "unit-concept", "CONCEPT_ID=UNIT"),
        "person": args.person,
        "window": args.window,
    }
    return {"omop": omop}


def _fhir_options(args: argparse.Namespace) -> dict[str, Any]:
    """With FHIR input: its window (none otherwise)."""
    return {"fhir": {"window": args.window}} if _fhir_input(args) else {}


def _site_options(args: argparse.Namespace) -> dict[str, Any]:
    """With --laboratory-column: the column and each site's table as given (none otherwise)."""
    if getattr(args, "laboratory_column", None) is None:
        return {}
    return {
        "laboratory_column": args.laboratory_column,
        "laboratory": _pairs(args.laboratory, "laboratory", "SITE=TABLE"),
    }


def _inputs(args: argparse.Namespace) -> Iterator[Chunk]:
    """Chunks of the input; a long export is read whole, since a visit may span chunks."""
    from b12lab._io.reading import read_chunks

    chunks = read_chunks(
        args.input, chunk_bytes=args.chunk_bytes, delimiter=args.delimiter, encoding=args.encoding
    )
    if not (args.long or args.omop):
        return chunks
    return iter([_joined(list(chunks))])


def _joined(parts: list[Chunk]) -> Chunk:
    """The chunks of a file as one, its rows numbered from 0 (the reader yields at least one)."""
    import numpy as np
    import pandas as pd

    from b12lab._io.reading import Chunk

    return Chunk(
        pd.concat([part.frame for part in parts], ignore_index=True),
        np.concatenate([p.lines for p in parts]),
        np.concatenate([p.errors for p in parts]),
        parts[-1].consumed,
        parts[-1].unit,
    )


def _with_lines(result: pd.DataFrame, chunk: Chunk) -> pd.DataFrame:
    """Errors cite the line (or row) of the input they come from, never the row's content.

    Works on the error column's codes: only the failed rows are touched.
    """
    import numpy as np
    import pandas as pd

    from b12lab._core.columns import PREFIX

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
    from b12lab._core.columns import PREFIX

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
    if ErrorCode.UNKNOWN_UNIT in progress.errors:
        lines.append(UNIT_HINT)
    print("\n".join(lines), file=sys.stderr)


def _tables(args: argparse.Namespace) -> int:
    from b12lab import tables
    from b12lab._io.table_text import table_json, table_text

    if args.table is None:
        if args.json:
            print(
                "b12lab: error: --json needs a table id (b12lab tables lists them)", file=sys.stderr
            )
            return EXIT_FAILED
        for spec in tables.available():
            table = tables.load(spec)
            print(f"{spec}\t{table.model.status}\t{table.model.title}")
        return EXIT_OK
    table = tables.load(args.table)
    sys.stdout.write(table_json(table) if args.json else table_text(table))
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    from b12lab._core.measurements import measure
    from b12lab._core.units import conversion_factor, display_unit

    measured = measure(args.value, analyte=args.analyte)
    target = args.to or None
    converted = measured.to(target) if target else measured.canonical()
    conversion_factor(measured.analyte, measured.unit, converted.unit)
    print(f"{converted.censoring.value}{converted.value:.6g} {display_unit(converted.unit)}")
    return EXIT_OK
