"""Hypothesis strategies for b12lab: units, measurements, patients and tables.

Names are plural nouns; each strategy draws only valid objects unless its name says "broken".
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from b12lab.analytes import ANALYTES
from b12lab.units import dimension_kind

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
    "b12": (1.0, 5000.0),
    "holotc": (1.0, 300.0),
    "mma": (0.01, 150.0),
    "hcy": (0.5, 400.0),
    "folate": (1.0, 1000.0),
    "egfr": (1.0, 150.0),
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
    result["pregnant"] = draw(st.sampled_from([None, False, True]))
    return result


def shipped_table_data(name: str = "nice-ng239/1.toml") -> dict[str, Any]:
    return tomllib.loads((ROOT / "reference_ranges" / name).read_text(encoding="utf-8"))


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
