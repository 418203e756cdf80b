"""Classified groups as a FHIR R4 ``collection`` Bundle: one derived Observation per group.

The design, and why:

* ``status`` is ``final``: the status describes this record, which b12lab never revises (a new
  table version gives a new record); that it is decision support, not a measurement, is said by
  its ``code``, its ``method`` (the tables and their SHA-256) and its ``note``.
* ``code`` is ``status-interpretation`` in :data:`CODE_SYSTEM`; the category is
  ``valueCodeableConcept`` in :data:`CATEGORY_SYSTEM` (codes as :class:`b12lab.Category`).
* each marker is a ``component`` (code: the analyte's name in :data:`ANALYTE_SYSTEM`): its result
  in b12lab's canonical unit (UCUM), with ``comparator`` if censored, and its band as an HL7 v3
  ObservationInterpretation (``L``, ``N``, ``H``, ``IND``...).
* ``derivedFrom`` references the laboratory's Observations the group was read from;
  ``effectiveDateTime`` is the group's first collection time as the laboratory wrote it
  (``effectivePeriod`` when the group spans several times).
* a group with an error has no value and no category: ``dataAbsentReason`` ``error`` and the
  error in a ``note``.

Nothing is written back into the laboratory's Observations.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any

import pandas as pd

from b12lab._core.analytes import ANALYTES
from b12lab._core.columns import PREFIX

__all__ = ["ANALYTE_SYSTEM", "CATEGORY_SYSTEM", "CODE_SYSTEM", "to_bundle"]

_BASE = "https://b12lab.readthedocs.io/fhir/CodeSystem"
CODE_SYSTEM = f"{_BASE}/observation"
"""What a derived Observation is: ``status-interpretation``."""
CATEGORY_SYSTEM = f"{_BASE}/category"
"""The categories: the values of :class:`b12lab.Category`."""
ANALYTE_SYSTEM = f"{_BASE}/analyte"
"""The markers: the names in :data:`b12lab.ANALYTES` (``b12``, ``mma``, ``hcy``...)."""
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
CATEGORY_CODES = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"
TITLE = "Vitamin B12 status interpretation"
CATEGORIES = {
    "deficiency_likely": "Vitamin B12 deficiency likely",
    "deficiency_possible": "Vitamin B12 deficiency possible",
    "deficiency_unlikely": "Vitamin B12 deficiency unlikely",
    "insufficient_data": "Insufficient data to classify",
}
INTERPRETATIONS = {
    "L": "Low",
    "LL": "Critical low",
    "N": "Normal",
    "H": "High",
    "HH": "Critical high",
    "A": "Abnormal",
    "IND": "Indeterminate",
}
_UCUM_UNITS = {"µmol/L": "umol/L", "mL/min/1.73m²": "mL/min/{1.73_m2}"}
_IDS = uuid.UUID("4f0e5a55-6b1d-5c2e-9a51-b12b12b12b12")
"""Namespace of the derived Observations' ``urn:uuid`` (the same groups give the same ids)."""


def to_bundle(result: pd.DataFrame) -> dict[str, Any]:
    """A ``collection`` Bundle with one derived Observation per row of ``result``."""
    entries = []
    rows: list[dict[str, Any]] = result.to_dict("records")  # type: ignore[assignment]
    for position, row in enumerate(rows):
        observation = _observation(row)
        key = "|".join(
            str(row.get(name) or "")
            for name in ("subject", f"{PREFIX}effective", f"{PREFIX}derived_from")
        )
        full_url = f"urn:uuid:{uuid.uuid5(_IDS, f'{position}|{key}')}"
        entries.append({"fullUrl": full_url, "resource": observation})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _observation(row: Mapping[str, Any]) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [_concept(CATEGORY_CODES, "laboratory", "Laboratory")],
        "code": _concept(CODE_SYSTEM, "status-interpretation", TITLE) | {"text": TITLE},
    }
    subject = _text(row.get("subject"))
    if subject:
        observation["subject"] = _subject(subject)
    observation |= _effective(row)
    error = _text(row.get(f"{PREFIX}error"))
    category = _text(row.get(f"{PREFIX}category"))
    if error or not category:
        observation["dataAbsentReason"] = _concept(ABSENT_SYSTEM, "error", "Error")
    else:
        observation["valueCodeableConcept"] = _concept(
            CATEGORY_SYSTEM, category, CATEGORIES.get(category, category)
        ) | {"text": CATEGORIES.get(category, category)}
    notes = [error] if error else _notes(row)
    set_aside = _text(row.get(f"{PREFIX}set_aside"))
    if set_aside:
        notes.append(set_aside)
    if notes:
        observation["note"] = [{"text": note} for note in notes]
    method = _text(row.get(f"{PREFIX}method"))
    if method:
        observation["method"] = {"text": method}
    derived = _text(row.get(f"{PREFIX}derived_from")).split()
    if derived:
        observation["derivedFrom"] = [{"reference": reference} for reference in derived]
    components = [] if error else _components(row)
    if components:
        observation["component"] = components
    return observation


def _subject(subject: str) -> dict[str, Any]:
    """A reference, or (read from ``subject.identifier`` as ``system|value``; ``|`` is no
    character of a reference) the identifier again."""
    if "|" in subject:
        system, _, value = subject.partition("|")
        return {"identifier": {"system": system, "value": value} if system else {"value": value}}
    return {"reference": subject}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _text(value: Any) -> str:
    """A cell as text; missing (None, NaN, NA) is ``""``."""
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return ""
    return str(value)


def _effective(row: Mapping[str, Any]) -> dict[str, Any]:
    start = _text(row.get(f"{PREFIX}effective"))
    end = _text(row.get(f"{PREFIX}effective_end"))
    if not start:
        return {}
    if end and end != start:
        return {"effectivePeriod": {"start": start, "end": end}}
    return {"effectiveDateTime": start}


def _notes(row: Mapping[str, Any]) -> list[str]:
    """The rule, the reasons, the flags, the notes and the tables' caveats, each a note of its
    own."""
    texts = ((label, _text(row.get(f"{PREFIX}{column}"))) for column, label in _NOTED)
    return [f"{label}{text}" for label, text in texts if text]


_NOTED = (("rule", "rule: "), ("reasons", ""), ("flags", "flags: "), ("notes", ""), ("caveats", ""))
"""The columns written as notes, in order, and the label each note starts with."""


def _components(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One component per marker with a result or a band, in the order of ``ANALYTES``."""
    components = []
    for name, analyte in ANALYTES.items():
        value = row.get(f"{PREFIX}{name}")
        interpretation = _text(row.get(f"{PREFIX}{name}_interpretation"))
        number = float(value) if isinstance(value, int | float) else math.nan
        if math.isnan(number) and not interpretation:
            continue
        component: dict[str, Any] = {
            "code": _concept(ANALYTE_SYSTEM, name, analyte.title) | {"text": analyte.title}
        }
        if not math.isnan(number):
            component["valueQuantity"] = _quantity(number, row, name, analyte.canonical_unit)
        else:
            component["dataAbsentReason"] = _concept(ABSENT_SYSTEM, "unknown", "Unknown")
        if interpretation:
            display = INTERPRETATIONS.get(interpretation, interpretation)
            component["interpretation"] = [_concept(INTERPRETATION_SYSTEM, interpretation, display)]
        components.append(component)
    return components


def _quantity(number: float, row: Mapping[str, Any], name: str, unit: str) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": number}
    censoring = _text(row.get(f"{PREFIX}{name}_censoring"))
    if censoring:
        quantity["comparator"] = censoring
    code = _UCUM_UNITS.get(unit, unit)
    return quantity | {"unit": unit, "system": UCUM, "code": code}
