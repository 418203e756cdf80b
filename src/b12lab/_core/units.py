"""The unit registry, laboratory spellings, and cached conversion factors.

One pint registry serves the package. Mass ⇄ substance conversions go through pint's
``chemistry`` context with the analyte's molar mass as its parameter. Arrays are never converted
element by element: a scalar factor is computed once per (analyte, unit, target) and cached.

The registry is built on first use (``registry`` is a lazy module attribute): importing pint and
building it takes about a quarter of a second, and the unit spellings laboratories send take
their factors from :mod:`b12lab._core.unit_factors`, which pint computed beforehand (a test
holds them equal, bit for bit). Only a spelling not listed there, or a Quantity, needs pint.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from b12lab._core.analytes import Analyte, get_analyte
from b12lab._core.unit_factors import FACTORS, KINDS
from b12lab.errors import DimensionError, UnknownUnitError

if TYPE_CHECKING:
    import pint

__all__ = [
    "canonical_spelling",
    "conversion_factor",
    "dimension_kind",
    "display_unit",
    "pint_factor",
    "quantity",
]
# ``registry`` is public too, through the module __getattr__ below.


@functools.cache
def _registry() -> pint.UnitRegistry[float]:
    import pint

    built = pint.UnitRegistry[float](autoconvert_offset_to_baseunit=False, cache_folder=None)
    # eGFR is normalized to a body surface area of 1.73 m²; UCUM writes it {1.73_m2}.
    built.define("bsa173 = 1.73 * meter ** 2")
    return built


def __getattr__(name: str) -> Any:
    """``registry``, built on first use."""
    if name == "registry":
        return _registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def quantity(value: float, unit: str) -> pint.Quantity[float]:
    """A pint Quantity of the package's registry."""
    return _registry().Quantity(value, parse_unit(unit))


def _substance() -> Any:
    return _registry().parse_units("mol/L").dimensionality


def _mass() -> Any:
    return _registry().parse_units("g/L").dimensionality


_BSA = re.compile(r"/\s*\{?\s*1[.,]73\s*[_ ]?\s*m\s*(?:2|²|\^2|\*\*2)\s*\}?", re.IGNORECASE)
_MICRO = re.compile(r"[µμ]|\bmc(?=(?:g|mol)\b)")
_ALLOWED = re.compile(r"^[A-Za-z/ .*^0-9()]+$")

# Spellings seen in laboratory exports that pint does not read as meant.
_LAB_SPELLINGS = {
    "pg/ml": "pg/mL",
    "ng/ml": "ng/mL",
    "ug/ml": "ug/mL",
    "mg/dl": "mg/dL",
    "nmol/ml": "nmol/mL",
    "umol/ml": "umol/mL",
}


_FOLDED = {spelling.lower(): spelling for spelling in (*KINDS, *_LAB_SPELLINGS.values())}
"""The spellings b12lab knows, by their lower case: UCUM's case-insensitive form (``PMOL/L``,
``UMOL/L``), which older laboratory systems send, names exactly these."""


def canonical_spelling(unit: str) -> str:
    """The spelling pint reads: ``µ`` as ``u``, ``1.73m²`` as ``bsa173``, ``pg/ml`` as ``pg/mL``,
    and a known unit written all in capitals (``PMOL/L``) as it is meant; another unit in
    capitals is left as it is (pint would read ``P`` as peta), to be refused."""
    text = unit.strip()
    capitals = not re.search(r"[a-z]", _MICRO.sub("", text)) and bool(re.search(r"[A-Z]", text))
    text = _BSA.sub("/bsa173", text)
    text = _MICRO.sub("u", text)
    text = text.replace("²", "^2")
    folded = text.lower().replace(" ", "")
    if capitals and folded in _FOLDED:
        return _FOLDED[folded]
    return _LAB_SPELLINGS.get(folded, text)


_EXPONENT = re.compile(r"(?:\^|\*\*)\s*(?P<power>[^\s/*^]*)")


def _small_exponents(text: str) -> bool:
    """Exponents are single small integers (pint would evaluate ``^9^9^9`` for ever)."""
    powers = [m["power"] for m in _EXPONENT.finditer(text)]
    chained = re.search(r"(?:\^|\*\*)\s*-?[0-9]+\s*(?:\^|\*\*)", text)
    return chained is None and all(re.fullmatch(r"-?[0-9]{1,2}", p) for p in powers)


@functools.lru_cache(maxsize=4096)
def parse_unit(unit: str) -> pint.Unit:
    """Read a laboratory unit string; refuse anything that is not a plain unit expression."""
    text = canonical_spelling(unit)
    if not text or not _ALLOWED.match(text) or not _small_exponents(text):
        raise UnknownUnitError(
            f"{unit!r} is not a unit b12lab can read; write it like pmol/L, pg/mL or umol/L",
            unit=unit,
        )
    try:
        return _registry().parse_units(text)
    except Exception as exc:  # pint's parser raises many kinds (TokenError, AssertionError, ...)
        raise UnknownUnitError(
            f"{unit!r} is not a unit b12lab can read; write it like pmol/L, pg/mL or umol/L",
            unit=unit,
        ) from exc


def dimension_kind(unit: str) -> str:
    """Say whether a unit is a ``substance`` or ``mass`` concentration, or ``other``."""
    known = KINDS.get(canonical_spelling(unit))
    if known is not None:
        return known
    dims = _registry().Quantity(1.0, parse_unit(unit)).dimensionality
    if dims == _substance():
        return "substance"
    if dims == _mass():
        return "mass"
    return "other"


@functools.lru_cache(maxsize=4096)
def conversion_factor(analyte: str, unit: str, target: str | None = None) -> float:
    """Factor that takes a value of ``analyte`` in ``unit`` to ``target`` (default: canonical).

    Raises DimensionError when no conversion exists for this analyte: a mass unit for holoTC, a
    concentration for eGFR, or a unit of another kind altogether (``kg``, ``mmHg``).
    """
    record = get_analyte(analyte)
    goal = target if target is not None else record.canonical_unit
    known = FACTORS.get((record.name, canonical_spelling(unit), canonical_spelling(goal)))
    if known is not None:
        return known
    return pint_factor(record.name, unit, target)


def pint_factor(analyte: str, unit: str, target: str | None = None) -> float:
    """:func:`conversion_factor` as pint computes it (what :mod:`unit_factors` records)."""
    import pint

    record = get_analyte(analyte)
    registry = _registry()
    substance, mass = _substance(), _mass()
    try:
        source = parse_unit(unit)
    except UnknownUnitError as exc:
        raise UnknownUnitError(
            f"{record.name}: {exc}", analyte=record.name, unit=unit, expected=record.canonical_unit
        ) from exc
    goal = parse_unit(target if target is not None else record.canonical_unit)
    one = registry.Quantity(1.0, source)
    try:
        if one.dimensionality == registry.Quantity(1.0, goal).dimensionality:
            return float(one.to(goal).magnitude)
        if record.molar_mass is not None and {one.dimensionality, _dims(goal)} == {
            mass,
            substance,
        }:
            molar_mass = registry.Quantity(record.molar_mass, "g/mol")
            return float(one.to(goal, "chemistry", mw=molar_mass).magnitude)
    except pint.errors.PintError as exc:  # pragma: no cover - guarded by the checks above
        raise _dimension_error(record, unit) from exc
    raise _dimension_error(record, unit)


def _dims(unit: pint.Unit) -> Any:
    return _registry().Quantity(1.0, unit).dimensionality


def _dimension_error(record: Analyte, unit: str) -> DimensionError:
    expected = {
        "substance": "a substance concentration such as pmol/L or umol/L",
        "mass": "a mass concentration such as pg/mL or mg/L",
    }
    if record.name == "egfr":
        wanted = "mL/min/1.73m²"
    elif record.molar_mass is None:
        wanted = expected["substance"] + " (mass units are not used for this analyte)"
    else:
        wanted = expected["substance"] + " or " + expected["mass"]
    return DimensionError(
        f"{unit!r} cannot be a unit of {record.title} ({record.name}); expected {wanted}",
        analyte=record.name,
        unit=unit,
        expected=wanted,
    )


@functools.lru_cache(maxsize=4096)
def display_unit(unit: str) -> str:
    """The unit as b12lab writes it in results: UCUM-like, with µ."""
    text = canonical_spelling(unit)
    text = text.replace("/bsa173", "/1.73m²")
    text = re.sub(r"\b([munpfd]?)l\b", r"\1L", text)
    return re.sub(r"\bu(?=(?:g|mol|L)\b)", "µ", text)
