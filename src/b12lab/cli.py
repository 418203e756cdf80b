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
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from b12lab import tables
from b12lab.errors import B12LabError
from b12lab.frame import PREFIX, classify_frame
from b12lab.measurements import measure
from b12lab.units import conversion_factor, display_unit

__all__ = ["main"]

EXIT_OK, EXIT_ROW_ERRORS, EXIT_FAILED = 0, 1, 2


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="b12lab",
        description="Cited, reproducible interpretation of vitamin B12 laboratory results. "
        "b12lab supports, and does not replace, clinical judgement.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    classify = commands.add_parser("classify", help="classify every row of a CSV file")
    classify.add_argument("input", type=Path, help="CSV file, one patient per row")
    classify.add_argument("-o", "--output", type=Path, help="write CSV here (default: stdout)")
    classify.add_argument("--table", default=None, help="table id or id@version")
    classify.add_argument("--laboratory", default=None, help="laboratory table file or id")
    classify.add_argument("--map", action="append", default=[], metavar="ANALYTE=COLUMN")
    classify.add_argument("--unit", action="append", default=[], metavar="ANALYTE=UNIT")
    classify.add_argument("--strict", action="store_true", help="exit 1 if any row has an error")
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
    frame = pd.read_csv(args.input, dtype=str, keep_default_na=False, na_values=[""])
    laboratory = args.laboratory
    if laboratory is not None and Path(laboratory).suffix == ".toml":
        laboratory = tables.load_file(laboratory)
    result = classify_frame(
        frame,
        columns=_pairs(args.map, "map"),
        units=_pairs(args.unit, "unit"),
        table=args.table,
        laboratory=laboratory,
    )
    if args.output is None:
        result.to_csv(sys.stdout, index=False)
    else:
        result.to_csv(args.output, index=False)
    _summary(result)
    errors = int((result[f"{PREFIX}error"] != "").sum())
    return EXIT_ROW_ERRORS if args.strict and errors else EXIT_OK


def _summary(result: pd.DataFrame) -> None:
    errors = result[f"{PREFIX}error"]
    failed = int((errors != "").sum())
    lines = [f"b12lab: {len(result)} rows in, {len(result)} rows out, {failed} with errors"]
    counts = result.loc[errors == "", f"{PREFIX}category"].value_counts()
    lines += [f"  {category}: {count}" for category, count in counts.items()]
    reasons = errors[errors != ""].str.split(":").str[0].value_counts().head(5)
    lines += [f"  error {reason}: {count}" for reason, count in reasons.items()]
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
