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
        help="classify every row of a CSV or Parquet file",
        description="Classify every row of a CSV or Parquet file, one patient per row\n"
        "(or, with --long, one result per row).",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    classify.add_argument(
        "input", help="CSV or .parquet file, one patient per row; - reads standard input"
    )
    classify.add_argument(
        "-o",
        "--output",
        type=_output_path,
        help="write here; the extension names the format: .csv, .parquet or .pq, "
        ".ndjson or .jsonl (JSON lines); - or none: CSV to standard output",
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
    long = classify.add_argument_group("long format (one row per result; read whole)")
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

    laboratory = _laboratory(args)
    options: dict[str, Any] = {
        "columns": _pairs(args.map, "map"),
        "units": _pairs(args.unit, "unit"),
        "table": args.table,
        "laboratory": laboratory,
        "explain": args.explain,
        "decimal": args.decimal,
    }
    if isinstance(laboratory, dict):
        if args.long:
            raise B12LabError(
                "--laboratory-column is not supported with --long; classify each site's "
                "export apart, with its own --laboratory"
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
            if args.long:
                visits = _classify_long(args, chunk, options)
                result = _uncited(visits)  # counted by error code, written citing lines
            else:
                result = classify_frame(chunk.frame, row_errors=chunk.errors, **options)
            progress.rows_in += len(chunk.frame)
            _count(progress, result, chunk.consumed)
            output.write(visits if args.long else _with_lines(result, chunk))
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
    import numpy as np

    from b12lab._io.long_format import classify_long

    failed = chunk.errors != ""
    cited = np.full(len(chunk.errors), "", dtype=object)
    cited[failed] = [
        f"{chunk.unit} {line}: {error}"
        for line, error in zip(chunk.lines[failed], chunk.errors[failed], strict=True)
    ]
    return classify_long(
        chunk.frame,
        patient=args.patient,
        time=args.time,
        time_format=args.time_format,
        window=args.window,
        test=args.test,
        value=args.value,
        unit=args.unit_column,
        row_errors=cited,
        row_names=[f"{chunk.unit} {line}" for line in chunk.lines],
        **options,
    )


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


def _record_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options that shape the output, as given (tables are recorded apart, resolved)."""
    long = {
        name: getattr(args, name)
        for name in ("patient", "time", "time_format", "window", "test", "value", "unit_column")
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
    } | _site_options(args)


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
    if not args.long:
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
