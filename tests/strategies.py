"""Hypothesis strategies for b12lab: units, measurements, patients and tables.

Names are plural nouns; each strategy draws only valid objects unless its name says "broken".
The entry-point strategies (``values``, ``unit_texts``, ``result_texts``, ``contexts``) are the
exception: they draw anything a caller might pass, valid or not, to check that b12lab answers
every input with a result or a ``B12LabError``.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from b12lab._core.analytes import ANALYTES
from b12lab._core.units import conversion_factor, dimension_kind

ROOT = Path(__file__).resolve().parents[1]

CONCENTRATION_UNITS = (
    "pmol/L",
    "nmol/L",
    "umol/L",
    "µmol/L",
    "μmol/L",
    "mmol/L",
    "nmol/mL",
    "pM",
    "nM",
    "uM",
    "pg/mL",
    "pg/ml",
    "ng/L",
    "ng/mL",
    "ug/L",
    "µg/L",
    "mcg/L",
    "mg/L",
    "mg/dL",
)


def units_for(analyte: str, kind: str | None = None) -> list[str]:
    """Every unit spelling b12lab accepts for ``analyte`` (optionally of one kind)."""
    record = ANALYTES[analyte]
    if analyte == "egfr":
        return ["mL/min/1.73m2", "mL/min/1.73 m²", "mL/min/{1.73_m2}"]
    allowed = [
        u for u in CONCENTRATION_UNITS if record.molar_mass or dimension_kind(u) == "substance"
    ]
    return [u for u in allowed if kind is None or dimension_kind(u) == kind]


def units(analyte: str, kind: str | None = None) -> st.SearchStrategy[str]:
    return st.sampled_from(units_for(analyte, kind))


def magnitudes(low: float = 1e-3, high: float = 1e4) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


# Ranges in canonical units that keep results inside every shipped table's plausibility limits.
CANONICAL_RANGES = {
    "b12": (26.0, 5000.0),  # above the lowest total B12 NHANES observed
    "holotc": (1.0, 300.0),
    "mma": (0.01, 150.0),
    "hcy": (0.5, 400.0),
    "folate": (1.0, 1000.0),
    "egfr": (1.0, 150.0),
    "creatinine": (10.0, 2000.0),
}


def canonical_values(analyte: str) -> st.SearchStrategy[float]:
    low, high = CANONICAL_RANGES[analyte]
    return magnitudes(low, high)


def censored_texts(analyte: str) -> st.SearchStrategy[str]:
    """Censored results as laboratories print them: ``<148 pmol/L``, ``≥ 0.4 umol/L``."""
    signs = st.sampled_from(["<", "<=", "≤", ">", ">=", "≥"])
    return st.builds(
        lambda sign, space, value, unit: f"{sign}{space}{value:g} {unit}",
        signs,
        st.sampled_from(["", " "]),
        canonical_values(analyte),
        st.just(ANALYTES[analyte].canonical_unit),
    )


@st.composite
def patients(draw: st.DrawFn, *, censored: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``b12lab.classify`` in canonical units; any marker may be absent."""
    result: dict[str, Any] = {}
    for analyte in ("b12", "holotc", "mma", "hcy", "folate", "egfr"):
        if draw(st.booleans()):
            if censored and analyte in ("b12", "mma") and draw(st.booleans()):
                result[analyte] = draw(censored_texts(analyte))
            else:
                result[analyte] = (
                    draw(canonical_values(analyte)),
                    ANALYTES[analyte].canonical_unit,
                )
    if draw(st.booleans()):
        result["age"] = draw(st.floats(min_value=16, max_value=105))
    result["sex"] = draw(st.sampled_from([None, "female", "male"]))
    # pregnancy with sex male is a conflicting_context error, tested on its own
    result["pregnant"] = draw(
        st.sampled_from([None, False] if result["sex"] == "male" else [None, False, True])
    )
    for field in ("nitrous_oxide", "b12_replacement"):
        result[field] = draw(st.sampled_from([None, False, True]))
    return result


def shipped_table_data(name: str = "nice-ng239/1.toml") -> dict[str, Any]:
    return tomllib.loads((ROOT / "reference_ranges" / name).read_text(encoding="utf-8"))


CONTEXT_FLAGS_TOML = """
[[flags]]
id = "nitrous_oxide_use"
when = { nitrous_oxide = [true] }
message = "Recreational nitrous oxide use: B12 may look normal while its function is blocked."
source = "test flag"

[[flags]]
id = "b12_replacement_started"
when = { b12_replacement = [true] }
message = "B12 replacement started before the sample: results may not show a deficiency."
source = "test flag"

[[flags]]
id = "untreated_exposure_unknown"
when = { b12_replacement = ["false"], nitrous_oxide = ["missing"] }
message = "No B12 replacement; nitrous oxide use not asked."
source = "test flag"
"""
"""Flags on the yes/no context fields no shipped table uses yet (a yes, a "false" label and
"missing"), as table-file text to append to a table."""
CONTEXT_FLAGS: tuple[dict[str, Any], ...] = tuple(tomllib.loads(CONTEXT_FLAGS_TOML)["flags"])


def context_flagged_table_text() -> str:
    """NICE NG239 as shipped, renamed ``context-test``, with :data:`CONTEXT_FLAGS_TOML` added."""
    text = (ROOT / "reference_ranges" / "nice-ng239" / "1.toml").read_text(encoding="utf-8")
    renamed = re.sub(r'^id = "nice-ng239"$', 'id = "context-test"', text, count=1, flags=re.M)
    assert renamed != text
    return renamed + CONTEXT_FLAGS_TOML


def context_flagged_table_data() -> dict[str, Any]:
    """:func:`context_flagged_table_text`, parsed."""
    return tomllib.loads(context_flagged_table_text())


_MUTATIONS = (
    "delete_key",
    "wrong_type",
    "swap_edges",
    "break_contiguity",
    "same_closure",
    "unknown_label",
    "bad_unit",
    "negative_edge",
    "bad_category",
    "twin_mismatch",
)


@st.composite
def broken_tables(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A shipped table with one mutation that must make it invalid, and the mutation's name."""
    data = copy.deepcopy(
        shipped_table_data(draw(st.sampled_from(["nice-ng239/1.toml", "generic-us-lab/1.toml"])))
    )
    mutation = draw(st.sampled_from(_MUTATIONS))
    name = draw(st.sampled_from(sorted(data["variables"])))
    variable = data["variables"][name]
    bands = variable["bands"]
    unit = next(iter(variable["units"]))
    if mutation == "delete_key":
        del data[draw(st.sampled_from(["id", "version", "citation", "variables", "kind"]))]
    elif mutation == "wrong_type":
        data[draw(st.sampled_from(["id", "version", "variables", "rules"]))] = draw(
            st.sampled_from([3, None, [1, 2], "x y z"])
        )
    elif mutation == "swap_edges" and len(bands) > 2:
        bands[0], bands[1] = bands[1], bands[0]
    elif mutation == "break_contiguity":
        bands[1]["lower"] = {u: v * 1.5 + 1 for u, v in bands[1]["lower"].items()}
    elif mutation == "same_closure":
        bands[1]["lower_inclusive"] = bands[0]["upper_inclusive"]
    elif mutation == "unknown_label":
        data["rules"][0]["when"] = {"b12": ["no_such_band"]}
    elif mutation == "bad_unit":
        variable["units"] = {"mmHg": 0}
    elif mutation == "negative_edge":
        for u in bands[0]["upper"]:
            bands[0]["upper"][u] = -1.0
            bands[1]["lower"][u] = -1.0
    elif mutation == "bad_category":
        data["rules"][0]["category"] = "deficiency_certain"
    elif mutation == "twin_mismatch":
        data["variables"]["b12"] = copy.deepcopy(shipped_table_data()["variables"]["b12"])
        data["variables"]["b12"]["bands"][0]["upper"]["pmol/L"] = 150
        data["variables"]["b12"]["bands"][1]["lower"]["pmol/L"] = 150
    else:
        bands[0]["upper"] = {unit: "not a number"}
    return mutation, data


# --- Entry-point strategies: anything a caller may pass, valid or not ------------------------

SPECIAL_VALUES = (0.0, -0.0, 5e-324, 2.2e-308, 1e-300, 1e300, 1.7976931348623157e308, -1.0)
SPECIAL_VALUES += (math.inf, -math.inf, math.nan)
"""Numbers that break naive code: signed zero, subnormals, the float limits, inf and NaN."""


def values() -> st.SearchStrategy[float | int]:
    """Numbers of every magnitude and sign: subnormals, ±inf, -0.0, NaN and small integers.

    Integers stay within ±2**53 (exactly representable); larger ones are exercised by dedicated
    tests.
    """
    return (
        st.sampled_from(SPECIAL_VALUES)
        | st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
        | st.floats(min_value=1e-3, max_value=1e4)
        | st.integers(min_value=-(2**53), max_value=2**53)
    )


JUNK_UNITS = ("kg", "mmHg", "%", "", " ", "mol", "L", "g", "pmol/L/L", "mL/min/1.73m2", "IU/L")
JUNK_UNITS += ("☃", "ｐｍｏｌ/Ｌ", "pmol/L²", "PMOL/L", " pg / mL ", "µ", "1/0", "(", "**")
"""Unit strings that must be refused (or, for the odd spacings, read) without a crash."""


def unit_texts() -> st.SearchStrategy[str]:
    """Unit strings: every accepted concentration spelling, known junk, and random text."""
    return st.sampled_from(CONCENTRATION_UNITS) | st.sampled_from(JUNK_UNITS) | st.text(max_size=12)


_SIGNS = ("", "", "<", "<=", "≤", "=<", ">", ">=", "≥", "=>", "+", "-", "<+", "> -")


@st.composite
def result_texts(draw: st.DrawFn, analyte: str) -> str:
    """Results as laboratories write them for ``analyte``, and garbage.

    Covers censoring signs, stray whitespace, a leading ``+``, exponent forms (``1.5E+02``),
    decimal commas, missing units, units of other analytes and free text.
    """
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(st.text(max_size=20))
    number = draw(values() | magnitudes(*CANONICAL_RANGES.get(analyte, (1.0, 1000.0))))
    form = draw(st.sampled_from(["{:g}", "{:e}", "{:E}", "{:.3f}", "{!r}", "{:.0f}", "{:,}"]))
    try:
        text = form.format(number)
    except (ValueError, OverflowError):  # e.g. "{:.0f}" of a huge int is fine, of NaN is not
        text = str(number)
    unit = draw(units(analyte) | unit_texts() | st.just(""))
    space = draw(st.sampled_from(["", " ", "  ", "\t", "\u00a0"]))
    pad = draw(st.sampled_from(["", " ", "\n", " \t"]))
    return f"{pad}{draw(st.sampled_from(_SIGNS))}{space}{text}{space}{unit}{pad}"


def contexts() -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments ``age``, ``sex``, ``pregnant``, ``nitrous_oxide`` and
    ``b12_replacement`` for ``classify``, valid or junk.

    Ages include negatives, NaN, ±inf, huge floats, booleans and strings; sexes and the yes/no
    fields include every kind of accepted spelling, unknown words and junk of other types.
    """
    ages = st.none() | values() | st.floats(min_value=0, max_value=120) | st.booleans()
    sexes = st.none() | st.sampled_from(["female", "male", "F", "m", " Woman ", "x", ""])
    yes_no = st.none() | st.booleans() | st.sampled_from(["yes", "no", 1, 0, "true", " N ", "unk"])
    pregnancies = yes_no | st.sampled_from(["pregnant", "Not Pregnant"])
    junk = st.text(max_size=5) | st.integers(-5, 5) | st.floats()
    return st.fixed_dictionaries(
        {},
        optional={
            "age": ages | junk,
            "sex": sexes | junk,
            "pregnant": pregnancies | junk,
            "nitrous_oxide": yes_no | junk,
            "b12_replacement": yes_no | junk,
        },
    )


SHIPPED_TABLE_FILES = ("nice-ng239/1.toml", "bsh-2014/1.toml", "generic-us-lab/1.toml")


def _edges(variable: dict[str, Any]) -> list[dict[str, Any]]:
    """Every band of a variable, over all its strata."""
    strata = variable.get("strata") or [{"bands": variable["bands"]}]
    return [band for stratum in strata for band in stratum["bands"]]


def _scale_edges(variable: dict[str, Any], analyte: str, scale: float) -> None:
    """Multiply every edge by ``scale``: primary unit rounded to its decimals, twins recomputed
    from it exactly as the schema checks them, so order, contiguity and twins all hold."""
    primary, *twins = variable["units"]
    for band in _edges(variable):
        for side in ("lower", "upper"):
            if band.get(side) is None:
                continue
            edge = {primary: round(band[side][primary] * scale, variable["units"][primary])}
            for twin in twins:
                factor = conversion_factor(analyte, primary, twin)
                edge[twin] = round(edge[primary] * factor, variable["units"][twin])
            band[side] = edge


def _relabel(data: dict[str, Any], analyte: str, old: str, new: str) -> None:
    """Rename a band everywhere: in every stratum, and in every rule and flag that names it."""
    for band in _edges(data["variables"][analyte]):
        if band["label"] == old:
            band["label"] = new
    for item in [*data.get("rules", []), *data.get("flags", [])]:
        conditions = item["when"] if isinstance(item["when"], list) else [item["when"]]
        for condition in conditions:
            if analyte in condition:
                condition[analyte] = [new if w == old else w for w in condition[analyte]]


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Any]:
    """A shipped table with random edits that keep it valid.

    Edits: every edge of one variable scaled by 0.5-2 (order and published twins kept), one band
    relabelled with its rules and flags updated, a new version number, some flags dropped,
    :data:`CONTEXT_FLAGS` added.
    """
    data = copy.deepcopy(shipped_table_data(draw(st.sampled_from(SHIPPED_TABLE_FILES))))
    names = sorted(data["variables"])
    if draw(st.booleans()):
        name = draw(st.sampled_from(names))
        _scale_edges(data["variables"][name], name, draw(st.floats(min_value=0.5, max_value=2)))
    if draw(st.booleans()):
        name = draw(st.sampled_from(names))
        labels = [band["label"] for band in _edges(data["variables"][name])]
        new = draw(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True))
        if new not in labels and new not in ("missing", "censored", "unbanded"):
            _relabel(data, name, draw(st.sampled_from(labels)), new)
    if draw(st.booleans()):
        data["version"] = f"{draw(st.integers(1, 99))}.{draw(st.integers(0, 9))}"
    if data.get("flags") and draw(st.booleans()):
        size = len(data["flags"])
        keep = draw(st.lists(st.booleans(), min_size=size, max_size=size))
        data["flags"] = [flag for flag, kept in zip(data["flags"], keep, strict=True) if kept]
    if draw(st.booleans()):
        data["flags"] = [*data.get("flags", []), *copy.deepcopy(CONTEXT_FLAGS)]
    return data


NO_RESULT_CELLS = ("hemolysed", "n/a", "QNS", " Pending ", "not done", "--")
MALFORMED_CELLS = ("see comment", "160", "-3 pmol/L", "160 kg", "9e9 pmol/L", "<", "1,2,3 pmol/L")


@st.composite
def cells(draw: st.DrawFn, analyte: str) -> object:
    """One cell of ``analyte`` in any form a caller or a laboratory gives: text, censored text,
    a ``(value, unit)`` pair, a pint Quantity of b12lab's or another registry, a no-result
    word, a malformed text, a bare number, or nothing."""
    kind = draw(
        st.sampled_from(
            ["text", "censored", "pair", "quantity", "foreign", "none", "no_result", "malformed"]
        )
    )
    if kind == "none":
        return None
    if kind == "no_result":
        return draw(st.sampled_from(NO_RESULT_CELLS))
    if kind == "malformed":
        return draw(st.sampled_from(MALFORMED_CELLS) | st.floats(0, 500))
    if kind == "censored":
        return draw(censored_texts(analyte))
    unit = ANALYTES[analyte].canonical_unit
    value = draw(canonical_values(analyte))
    if kind == "text":
        return f"{value!r} {unit}"
    if kind == "pair":
        return (value, unit)
    return _quantity(value, "umol/L" if unit == "µmol/L" else unit, foreign=kind == "foreign")


def _quantity(value: float, unit: str, *, foreign: bool) -> object:

    import b12lab

    if unit == "mL/min/1.73m²":
        return (value, unit)  # pint reads no number inside a unit; no registry knows 1.73 m²
    if not foreign:
        return b12lab.registry.Quantity(value, unit)
    return _foreign_registry().Quantity(value, unit)


_FOREIGN: list[Any] = []


def _foreign_registry() -> Any:
    """A second pint registry, as an application using pint for its own purposes would have."""
    import pint

    if not _FOREIGN:
        _FOREIGN.append(pint.UnitRegistry())
    return _FOREIGN[0]


CONTEXT_CELLS: dict[str, tuple[object, ...]] = {
    "age": (None, 72, 45.5, "72", " 30 ", "old", -1, "unknown", float("nan")),
    "sex": (None, "F", "male", "m", "U", "unknown", "X", "q", ""),
    "pregnant": (None, True, False, "yes", "no", "maybe", 1, 0),
    "nitrous_oxide": (None, True, False, "Y", "no", "unknown", "maybe", 1, 0),
    "b12_replacement": (None, True, False, "yes", " N ", "?", "pregnant", 1, 0),
    "medicines": (
        None,
        "Metformin",
        "PPI; omeprazole",
        " h2  blocker |aspirin\ncolchicine ",
        ["topiramate", "ppis, metformin"],
        ("aspirin",),
        frozenset({"colchicine", "ppi"}),
        [],
        "none",
        "unknown",
        " ; ",
        5,
        ["metformin", 3],
    ),
}
"""Context cells ``rows`` draws from: good spellings, unknown words, bad values, and for
medicines names on a risk list, aliases, names not listed, lists, sets and wrong types."""


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for ``classify``: mixed cells for some analytes (creatinine and eGFR
    included, for tables that derive eGFR), and context cells, including unknown words and
    contradictions (pregnant and male)."""
    names = ["b12", "holotc", "mma", "hcy", "folate", "creatinine", "egfr"]
    analytes = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
    row: dict[str, Any] = {analyte: draw(cells(analyte)) for analyte in analytes}
    for key, choices in CONTEXT_CELLS.items():
        row[key] = draw(st.sampled_from(choices))
    return row
