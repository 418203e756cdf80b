"""Run the command line over a seeded corpus of messy laboratory exports and count the outcome.

    python fuzz/messy_corpus.py [--files 200] [--seed 7]

Each generated file mixes what laboratory systems really write: UTF-8 with and without BOM or
Windows-1252 (with the micro sign as byte 0xB5), CRLF or LF, comma, semicolon or tab delimiters
with matching decimal marks, quoted fields with separators, quotes and line breaks, blank lines,
ragged lines, a repeated header, trailing separators, thousands separators, leading ``+``,
stray whitespace, no-result words and free text. It prints rows in, rows out and errors by
reason, and fails if any row is lost, reordered, or has both a category and an error.
"""

from __future__ import annotations

import argparse
import collections
import random
import tempfile
from pathlib import Path

import pandas as pd

from b12lab._io.cli import main

RESULTS = [
    "160 pg/mL", "<100 ng/L", ">1476 pmol/L", "1,476 pmol/L", "+250 pmol/L", "  300 pmol/L ",
    "n/a", "--", "pending", "hemolysed", "see comment", "", "0.52 µmol/L", "12.5 umol/L",
    "≥ 0.40 umol/L", "180 kg", "-5 pmol/L", "1e308 mg/dL",
]  # fmt: skip
COMMENTS = ["ok", 'said "repeat"', "a, b", "line\nbreak", "=1+1", "@SUM(A1)", ""]


def messy_file(rng: random.Random, folder: Path, number: int) -> tuple[Path, list[str], int]:
    """A file, the options to read it with, and the number of data rows in it."""
    delimiter = rng.choice([",", ";", "\t"])
    decimal = "," if delimiter == ";" and rng.random() < 0.7 else "."
    encoding = rng.choice(["utf-8", "utf-8-sig", "cp1252"])
    newline = rng.choice(["\n", "\r\n"])
    header = ["id", "b12", "mma", "age", "comment"]

    def field(text: str) -> str:
        if decimal == ",":
            text = text.replace("0.52", "0,52").replace("12.5", "12,5").replace("1,476", "1.476")
        needs_quotes = any(c in text for c in (delimiter, '"', "\n", "\r"))
        return '"' + text.replace('"', '""') + '"' if needs_quotes else text

    lines, rows = [delimiter.join(header)], 0
    for index in range(rng.randint(1, 60)):
        roll = rng.random()
        if roll < 0.05:
            lines.append("")  # a blank line: not a row
            continue
        cells = [f"P{number}-{index}", rng.choice(RESULTS), rng.choice(RESULTS),
                 str(rng.randint(16, 99)), rng.choice(COMMENTS)]  # fmt: skip
        if roll < 0.10:
            cells = cells[: rng.randint(1, 4)]  # ragged: too few fields
        elif roll < 0.13:
            cells += ["extra"]  # ragged: too many fields
        elif roll < 0.15:
            cells = header  # the header again
        lines.append(delimiter.join(field(c) for c in cells))
        rows += 1
    path = folder / f"messy-{number}.csv"
    data = newline.join(lines) + newline
    path.write_bytes(data.encode(encoding, errors="replace"))
    options = ["--delimiter", delimiter, "--decimal", decimal]
    if encoding == "cp1252":
        options += ["--encoding", "cp1252"]
    return path, options, rows


def main_corpus() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows_in = rows_out = 0
    reasons: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        for number in range(args.files):
            path, options, rows = messy_file(rng, Path(folder), number)
            out = path.with_suffix(".out.csv")
            status = main(["classify", str(path), "-o", str(out), *options])
            assert status == 0, f"file {number} failed with status {status}"
            result = pd.read_csv(out, dtype=str, keep_default_na=False, sep=",")
            rows_in += rows
            rows_out += len(result)
            assert len(result) == rows, f"file {number}: {rows} rows in, {len(result)} out"
            failed = result["b12lab_error"] != ""
            assert ((result["b12lab_category"] != "") ^ failed).all(), f"file {number}"
            assert result.loc[failed, "b12lab_error"].str.match(r"line [0-9]+: ").all()
            reasons.update(result.loc[failed, "b12lab_error"].str.split(": ").str[1])
    print(f"files: {args.files}, rows in: {rows_in}, rows out: {rows_out}")
    print(f"rows with an error: {sum(reasons.values())}")
    for reason, count in reasons.most_common():
        print(f"  {reason}: {count}")


if __name__ == "__main__":
    main_corpus()
