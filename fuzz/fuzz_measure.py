"""Coverage-guided fuzzing of ``b12lab.measure``, ``normalize`` and ``read_text``.

Each input is decoded as UTF-8 text (undecodable bytes replaced) and read for every analyte.
Any exception other than a ``B12LabError`` is a crash; so is any warning, as in the test suite.

    python fuzz/fuzz_measure.py -max_total_time=60 -timeout=5 -print_final_stats=1 \
        -artifact_prefix=fuzz/crashes/ /tmp/b12lab-corpus/measure fuzz/corpus/measure
"""

from __future__ import annotations

import contextlib
import math
import sys
import warnings

import atheris

with atheris.instrument_imports():
    import b12lab
    from b12lab._core.measurements import read_text

ANALYTES = sorted(b12lab.ANALYTES)


def check_measurement(text: str, analyte: str) -> None:
    """measure() gives a finite, non-negative measurement or a B12LabError."""
    try:
        result = b12lab.measure(text, analyte=analyte)
    except b12lab.B12LabError:
        return
    if not (math.isfinite(result.value) and result.value >= 0 and result.unit):
        raise AssertionError(f"measure({text!r}, analyte={analyte!r}) gave {result!r}")


def check_reading(text: str, analyte: str) -> None:
    """read_text() with a column's default unit, and normalize(), never leak other errors."""
    for call in (
        lambda: read_text(text, analyte, b12lab.ANALYTES[analyte].canonical_unit),
        lambda: b12lab.normalize(text, analyte=analyte),
    ):
        with contextlib.suppress(b12lab.B12LabError):
            call()


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    for analyte in ANALYTES:
        check_measurement(text, analyte)
        check_reading(text, analyte)


def main() -> None:
    warnings.simplefilter("error")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
