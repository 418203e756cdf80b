"""Coverage-guided fuzzing of table validation and loading.

Each input is parsed with ``tomllib``; parsed data goes to ``b12lab.tables.validate`` (and, when
valid, classifies one patient with it), and the raw bytes go to ``b12lab.tables.load_file``
through a temporary file. Any exception other than a ``B12LabError`` is a crash; so is any
warning, as in the test suite.

    python fuzz/fuzz_tables.py -max_total_time=60 -timeout=5 -print_final_stats=1 \
        -artifact_prefix=fuzz/crashes/ /tmp/b12lab-corpus/tables fuzz/corpus/tables
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import tomllib
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import b12lab
    from b12lab import tables

FOLDER = Path(tempfile.mkdtemp(prefix="b12lab-fuzz-"))
atexit.register(shutil.rmtree, FOLDER, ignore_errors=True)
TABLE_FILE = FOLDER / "table.toml"


def check_validate(data: bytes) -> None:
    """validate() on parsed TOML gives a model or a TableValidationError; a valid model can
    classify a patient, or refuses with a B12LabError."""
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    try:
        model = tables.validate(raw, origin="fuzz.toml")
    except b12lab.TableValidationError:
        return
    table = tables.Table(model=model, sha256="0" * 64, origin="fuzz.toml")
    try:
        b12lab.classify(b12="200 pmol/L", mma="0.3 umol/L", age=70.0, sex="female", table=table)
    except b12lab.B12LabError:
        return


def check_load_file(data: bytes) -> None:
    """load_file() gives a table or a B12LabError, whatever the bytes."""
    TABLE_FILE.write_bytes(data)
    try:
        tables.load_file(TABLE_FILE)
    except b12lab.B12LabError:
        return


def test_one_input(data: bytes) -> None:
    check_validate(data)
    check_load_file(data)


def main() -> None:
    warnings.simplefilter("error")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
