"""A table for people (plain text, 100 columns) and for machines (JSON).

``b12lab tables ID`` prints :func:`table_text`: the bands of every variable (stratum by
stratum), the rules in the order they are tried, the flags, the variables a guideline takes
from a laboratory table, and the medicines it names as risk factors. ``b12lab tables ID --json``
prints :func:`table_json`: the whole table as its schema dumps it, with its key and SHA-256.

The text names the fields it knows and passes over any others, so a field added to the schema
later shows in the JSON at once and in the text once it is written here.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from b12lab._core.table_schema import (
        Absolute,
        Band,
        Flag,
        Laboratory,
        Medicines,
        Rule,
        Stratum,
        VariableBands,
    )
    from b12lab.tables import Table

__all__ = ["WIDTH", "conditions_text", "table_json", "table_text"]

WIDTH = 100
"""Columns of the text; long texts wrap at word boundaries."""
_LABEL = 16
_CODE = 5
_FIELD = 12


def table_text(table: Table) -> str:
    """The table as plain text: heading, bands, rules, flags, laboratory ranges, medicines."""
    sections = [_heading(table), _bands(table.model.variables)]
    model = table.model
    if model.rules:
        sections.append(_rules(model.rules))
    if model.flags:
        sections.append(_flags(model.flags))
    if model.laboratory is not None:
        sections.append(_laboratory(model.laboratory))
    if model.medicines is not None:
        sections.append(_medicines(model.medicines))
    if model.cross_check or model.derived is not None or model.schema_version >= 2:
        sections.append(_engine_notes(table))
    if model.caveats:
        sections.append(
            ["Caveats", *(line for c in model.caveats for line in _wrapped(c, "  - ", "    "))]
        )
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def table_json(table: Table) -> str:
    """The table's full content, its key (``id@version``) and its SHA-256, as JSON."""
    document = {
        "key": table.key,
        "sha256": table.sha256,
        "table": table.model.model_dump(mode="json"),
    }
    return json.dumps(document, indent=2) + "\n"


def conditions_text(when: Sequence[Mapping[str, Sequence[object]]]) -> str:
    """A rule's or flag's ``when`` in words, on one line.

    Within an alternative every condition must hold (``and``); any alternative may hold
    (``, or``); a variable may be in any of its listed bands (``or``).

    >>> conditions_text([{"b12": ["deficient"]}, {"holotc": ["deficient"]}])
    'b12 is deficient, or holotc is deficient'
    >>> conditions_text([{"b12": ["indeterminate"], "mma": ["high"]}])
    'b12 is indeterminate and mma is high'
    >>> conditions_text([{"hcy": ["normal", "low", "missing"], "pregnant": [True]}])
    'hcy is normal, low or missing and pregnant is true'
    """
    return ", or ".join(_alternative(condition) for condition in when)


def _alternative(condition: Mapping[str, Sequence[object]]) -> str:
    return " and ".join(f"{name} is {_either(wanted)}" for name, wanted in condition.items())


def _either(wanted: Sequence[object]) -> str:
    words = [_word(value) for value in wanted]
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


def _word(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: float, decimals: int | None = None) -> str:
    """At the table's published precision, else every digit the file gave (``25279.45``)."""
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return str(int(value)) if value.is_integer() else repr(value)


# --- sections -------------------------------------------------------------------------------


def _heading(table: Table) -> list[str]:
    model = table.model
    citation = model.citation
    lines = [f"{table.key} ({model.status}) sha256 {table.sha256}"]
    lines += _wrapped(model.title)
    lines += _wrapped(f"{citation.document} ({citation.year})")
    lines += _field("section", citation.section, "")
    lines += _field("url", citation.url, "")
    lines += _field("kind", f"{model.kind} table", "")
    lines += _field("effective", model.effective, "")
    lines += _field("population", model.population, "")
    return lines


def _bands(variables: Mapping[str, VariableBands]) -> list[str]:
    lines = ["Bands (per variable; where a variable has strata, the first that applies is used)"]
    for name, variable in variables.items():
        lines += _variable(name, variable)
    return lines


def _variable(name: str, variable: VariableBands) -> list[str]:
    units = ", ".join(variable.units)
    lines = [f"  {name} [{units}]"]
    lines += _field("note", variable.note, "    ")
    if variable.absolute is not None:
        lines += _field("plausible", _plausible(variable.absolute), "    ")
    strata = variable.all_strata()
    for number, stratum in enumerate(strata, start=1):
        if variable.strata is not None:
            named = f" ({stratum.name})" if stratum.name else ""
            lines.append(f"    stratum {number} of {len(strata)}: {_stratum(stratum)}{named}")
        for band in stratum.bands:
            lines += _band(band, variable.units)
    return lines


def _stratum(stratum: Stratum) -> str:
    parts = []
    if stratum.sex is not None:
        parts.append(f"sex is {stratum.sex}")
    if stratum.pregnant is not None:
        parts.append("pregnant" if stratum.pregnant else "not pregnant")
    if stratum.age_min is not None:
        parts.append(f"age >= {_number(stratum.age_min)}")
    if stratum.age_max is not None:
        parts.append(f"age < {_number(stratum.age_max)}")
    return " and ".join(parts) if parts else "everyone"


def _band(band: Band, units: Mapping[str, int]) -> list[str]:
    indent = " " * (6 + _LABEL + _CODE)
    head = f"      {band.label:<{_LABEL - 1}} {band.interpretation.value:<{_CODE - 1}} "
    lines = _wrapped(_edges(band, units), head, indent)
    if band.wording is not None:
        lines += _wrapped(band.wording, indent, indent)
    return lines


def _edges(band: Band, units: Mapping[str, int]) -> str:
    """The band's range in every unit it was published in: ``>= 180 and <= 350 ng/L (...)``."""
    texts = [_range(band, unit, units.get(unit)) for unit in units]
    ranges = [text for text in texts if text]
    if not ranges:
        return "any value"
    first, *twins = ranges
    return f"{first} ({'; '.join(twins)})" if twins else first


def _range(band: Band, unit: str, decimals: int | None) -> str:
    parts = []
    if band.lower is not None and unit in band.lower:
        sign = ">=" if band.lower_inclusive else ">"
        parts.append(f"{sign} {_number(band.lower[unit], decimals)}")
    if band.upper is not None and unit in band.upper:
        sign = "<=" if band.upper_inclusive else "<"
        parts.append(f"{sign} {_number(band.upper[unit], decimals)}")
    return f"{' and '.join(parts)} {unit}" if parts else ""


def _plausible(absolute: Absolute) -> str:
    parts = []
    if absolute.lower is not None:
        parts.append(f">= {_number(absolute.lower)}")
    if absolute.upper is not None:
        parts.append(f"<= {_number(absolute.upper)}")
    limits = " and ".join(parts) or "any value"
    return f"{limits} {absolute.unit}; a value outside is a data error ({absolute.source})"


def _rules(rules: Sequence[Rule]) -> list[str]:
    lines = ["Rules (tried in this order; the first that holds gives the category)"]
    for number, rule in enumerate(rules, start=1):
        lines.append(f"  {number}. {rule.id}")
        lines += _conditions(rule.when, "     ")
        lines += _field("category", rule.category.value, "     ")
        lines += _field("reason", rule.reason, "     ")
        lines += _field("source", rule.source, "     ")
    return lines


def _flags(flags: Sequence[Flag]) -> list[str]:
    lines = ["Flags (each is raised wherever it holds)"]
    for flag in flags:
        lines.append(f"  {flag.id}")
        lines += _conditions(flag.when, "     ")
        lines += _field("message", flag.message, "     ")
        lines += _field("source", flag.source, "     ")
    return lines


def _laboratory(laboratory: Laboratory) -> list[str]:
    lines = ["Laboratory ranges (from a laboratory table; classify --laboratory chooses another)"]
    lines += _wrapped(
        f"{', '.join(laboratory.provides)}: from {laboratory.default} by default", "  ", "    "
    )
    if laboratory.optional:
        lines += _wrapped(
            f"{', '.join(laboratory.optional)}: optional; a laboratory table without them is "
            "accepted and rules see no result",
            "  ",
            "    ",
        )
    lines += _field("note", laboratory.note, "  ")
    return lines


def _medicines(medicines: Medicines) -> list[str]:
    lines = ["Risk medicines (a medicine given that is listed makes risk_medicine true)"]
    for name in medicines.risk:
        aliases = [alias for alias, target in medicines.aliases.items() if target == name]
        also = f" (also: {', '.join(aliases)})" if aliases else ""
        lines += _wrapped(f"{name}{also}", "  ", "    ")
    lines += _field("source", medicines.source, "  ")
    return lines


def _engine_notes(table: Table) -> list[str]:
    """How the core reads this table beyond its bands and rules."""
    model = table.model
    lines = ["Reading"]
    if model.schema_version >= 2:
        lines += _wrapped(
            "a censored result (such as <200 ng/L) is read in every band it may lie in: one "
            "category if all agree, else deficiency_possible; reasons quote the row's results",
            "  - ",
            "    ",
        )
    for analyte, spec in model.cross_check.items():
        lines += _wrapped(
            f"{analyte} is not read by this table; it is flagged marker_not_interpreted, and a "
            f"result {spec} reads as outside its normal band makes the category at least "
            "deficiency_possible",
            "  - ",
            "    ",
        )
    if model.derived is not None and model.derived.egfr is not None:
        egfr = model.derived.egfr
        lines += _wrapped(
            f"egfr is derived from creatinine where not given: {egfr.equation}, constants for "
            f"creatinine in {egfr.creatinine_unit}, age {_number(egfr.min_age)} and over",
            "  - ",
            "    ",
        )
        constants = (
            f"numerator {_number(egfr.numerator)}; kappa {_number(egfr.kappa.female)} female, "
            f"{_number(egfr.kappa.male)} male; alpha {_number(egfr.alpha.female)} female, "
            f"{_number(egfr.alpha.male)} male; exponent above kappa "
            f"{_number(egfr.exponent_above_kappa)}; age base {_number(egfr.age_base)}; "
            f"female factor {_number(egfr.female_factor)}"
        )
        lines += _field("constants", constants, "    ")
        lines += _field("source", egfr.source, "    ")
    return lines


# --- layout ---------------------------------------------------------------------------------


def _conditions(when: Sequence[Mapping[str, Sequence[object]]], indent: str) -> list[str]:
    """``when`` on one line if it fits, else one alternative per line, each after ``or``."""
    head = f"{indent}{'when:':<{_FIELD}}"
    text = conditions_text(when)
    if len(head) + len(text) <= WIDTH or len(when) < 2:
        return _wrapped(text, head, " " * len(head))
    lines: list[str] = []
    for index, alternative in enumerate(when):
        words = ("or " if index else "") + _alternative(alternative)
        words += "," if index < len(when) - 1 else ""
        lines += _wrapped(words, head if index == 0 else " " * len(head), " " * (len(head) + 3))
    return lines


def _field(name: str, value: str | None, indent: str) -> list[str]:
    if value is None:
        return []
    head = f"{indent}{name + ':':<{_FIELD}}"
    return _wrapped(value, head, " " * len(head))


def _wrapped(text: str, first: str = "", rest: str | None = None) -> list[str]:
    """``text`` filled to :data:`WIDTH` columns; a word longer than a line (a URL) stays whole."""
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=first if rest is None else rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]
