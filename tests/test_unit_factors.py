"""The precomputed conversion factors are pint's, bit for bit, and pint stays unloaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from b12lab._core.analytes import ANALYTES
from b12lab._core.unit_factors import FACTORS, KINDS
from b12lab._core.units import (
    canonical_spelling,
    conversion_factor,
    dimension_kind,
    pint_factor,
    quantity,
)
from b12lab.errors import DimensionError

SOURCES = (
    "pmol/L",
    "nmol/L",
    "umol/L",
    "mmol/L",
    "nmol/mL",
    "pg/mL",
    "ng/L",
    "ng/mL",
    "ug/L",
    "mg/L",
    "mg/dL",
    "mL/min/bsa173",
)
"""The spellings laboratories send for the analytes b12lab reads."""
TARGETS = ("pmol/L", "nmol/L", "umol/L", "nmol/mL", "pg/mL", "ng/L", "ng/mL", "mg/dL")
"""The units results are converted to: each analyte's canonical unit and the tables' units."""


def _computed() -> dict[tuple[str, str, str], float]:
    factors = {}
    for name, analyte in ANALYTES.items():
        targets = {canonical_spelling(analyte.canonical_unit), *TARGETS}
        for source in SOURCES:
            for target in sorted(targets):
                try:
                    factors[(name, source, target)] = pint_factor(name, source, target)
                except DimensionError:
                    continue
    return factors


def test_factors_are_pints_bit_for_bit() -> None:
    computed = _computed()
    assert computed == FACTORS
    assert all(FACTORS[key].hex() == computed[key].hex() for key in computed)


@pytest.mark.parametrize("unit", sorted(KINDS))
def test_kinds_are_pints(unit: str) -> None:
    dims = quantity(1.0, unit).dimensionality
    expected = {"[substance] / [length] ** 3": "substance", "[mass] / [length] ** 3": "mass"}
    assert KINDS[unit] == expected.get(str(dims), "other")


def test_other_spellings_of_a_listed_unit_take_its_factor() -> None:
    assert conversion_factor("b12", "pg/ml") == FACTORS[("b12", "pg/mL", "pmol/L")]
    assert conversion_factor("mma", "µmol/L") == 1.0
    assert dimension_kind("µmol/L") == "substance"


def test_an_unlisted_unit_still_converts_through_pint() -> None:
    assert ("b12", "pmol/mL", "pmol/L") not in FACTORS
    assert conversion_factor("b12", "pmol/mL") == pytest.approx(1000.0)


def test_known_units_never_import_pint() -> None:
    code = (
        "import sys, pandas as pd, b12lab\n"
        "frame = pd.DataFrame({'b12': ['160 pg/mL', '<50 pmol/L', 'see comment'],"
        " 'mma': ['0.52 umol/L', '410 nmol/L', None], 'hcy': ['12.5', '9', '14 umol/L']})\n"
        "b12lab.classify_frame(frame)\n"
        "print('pint' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def _table_text(factors: dict[tuple[str, str, str], float]) -> str:
    kinds = {unit: dimension_kind(unit) for unit in SOURCES}
    lines = ["KINDS: dict[str, str] = {"]
    lines += [f"    {unit!r}: {kind!r}," for unit, kind in kinds.items()]
    lines += ["}", "FACTORS: dict[tuple[str, str, str], float] = {"]
    lines += [f"    {key!r}: {value!r}," for key, value in factors.items()]
    return "\n".join([*lines, "}", ""])


if __name__ == "__main__":
    module = Path(__file__).resolve().parents[1] / "src" / "b12lab" / "_core" / "unit_factors.py"
    text = module.read_text(encoding="utf-8")
    head = text[: text.index("KINDS: dict")]
    module.write_text(head + _table_text(_computed()), encoding="utf-8")
