"""FHIR R4 Observations as a long export: one row per Observation, nothing dropped.

Every Observation in the input becomes one row of a long frame that
:func:`b12lab.classify_long` reads (``subject``, ``effective``, ``test``, ``value``, ``unit``,
``age``, ``sex``, ``reference_range``), with three columns of its own: ``observation`` (how the
Observation is referenced and cited), ``error`` (why a result b12lab reads cannot be used) and
``note`` (why an Observation was set aside without making its group an error).

What is read, and how:

* the test is a LOINC coding (``http://loinc.org``, or LOINC's OID) of ``code``; an
  Observation without one gets a test name no analyte matches (``system|code``), so
  ``code.text`` never stands in;
* ``valueQuantity``: its ``value`` as exact text (read with ``parse_float=Decimal``), its
  ``comparator`` as censoring (``<``, ``<=``, ``>=``, ``>``), its unit from ``code`` when
  ``system`` is UCUM (or absent), else from ``unit``; ``valueString`` is read as a result
  (``"<148 pmol/L"``), ``valueInteger`` as a number without unit;
* only ``final``, ``amended`` and ``corrected`` results are read; ``cancelled`` and
  ``entered-in-error`` ones are not results and are noted; any other status (``preliminary``,
  ``registered``, none) makes the group an error, since a category computed without that
  result could be wrong;
* the collection time is ``effectiveDateTime``, else ``effectivePeriod.start``, else
  ``effectiveInstant``; a time with a UTC offset is compared in UTC, one without (a date) as
  written, both to the microsecond;
* ``referenceRange`` becomes text (``"0.00-0.40 umol/L"``, or its ``text``), read by
  ``classify_long`` only with ``use_reported_ranges``;
* a ``Patient`` in the same input gives ``sex`` (``gender`` male or female) and ``age`` (whole
  years from a full ``birthDate`` to the collection date); so does a Patient contained in the
  Observation that its ``subject`` refers to (``#p``), for that Observation alone: such a
  ``subject`` is read as no subject, since ``#p`` names nothing outside its Observation.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeGuard

import pandas as pd

from b12lab._core.analytes import ANALYTES
from b12lab._core.units import display_unit
from b12lab.errors import ErrorCode, InputFileError

__all__ = ["LOINC", "Observations", "load_resources", "read_observations"]

LOINC = "http://loinc.org"
LOINC_SYSTEMS = frozenset({LOINC, "urn:oid:2.16.840.1.113883.6.1"})
"""LOINC's FHIR URI and its OID, which converters from HL7 v2 and CDA write instead: the HL7
Terminology (THO) CodeSystem ``v3-loinc`` has url ``http://loinc.org`` and identifier
``urn:oid:2.16.840.1.113883.6.1`` (build.fhir.org/ig/HL7/UTG, CodeSystem-v3-loinc)."""
UCUM = "http://unitsofmeasure.org"
USABLE = frozenset({"final", "amended", "corrected"})
"""Statuses of a result b12lab reads."""
NOT_RESULTS = frozenset({"cancelled", "entered-in-error"})
"""Statuses of an Observation that is not a result: set aside with a note."""
COMPARATORS = {"<": "<", "<=": "<=", ">=": ">=", ">": ">"}
COLUMNS = (
    "subject",
    "effective",
    "test",
    "value",
    "unit",
    "reference_range",
    "age",
    "sex",
    "observation",
    "error",
    "note",
)

Resource = Mapping[str, Any]


@dataclass
class Observations:
    """The long frame, the source text of each row's time, and resources that were not read."""

    frame: pd.DataFrame
    effective: list[str | None]
    """Each row's collection time as the Observation gave it (written back unchanged)."""
    codes: list[str | None]
    """Each row's LOINC code, if it has one."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Resources other than Observations and Patients, by resource type."""


def load_resources(source: Mapping[str, Any] | str | bytes | Path) -> list[tuple[Any, str]]:
    """Each resource of the input with its ``fullUrl`` (``""`` if none); a line of NDJSON that
    is not a JSON object comes as a string saying why, to become a row error."""
    if isinstance(source, Mapping):
        return list(_flattened(source, "", top=True))
    if isinstance(source, os.PathLike):
        text = _text(Path(source).read_bytes(), str(source))
    elif isinstance(source, bytes):
        text = _text(source, "the input")
    elif not isinstance(source, str):
        raise TypeError(
            "FHIR input is a Bundle or Observation (a mapping, or JSON text), NDJSON text or "
            f"bytes, or a file (a Path or a file name); got {type(source).__name__}"
        )
    elif source.lstrip("\ufeff \t\r\n").startswith(("{", "[")) or not source.strip():
        text = source.lstrip("\ufeff")  # JSON text (or none), not a file name
    else:
        text = _text(Path(source).read_bytes(), source)
    return _parsed(text)


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"cannot read {name}: FHIR JSON must be UTF-8 ({exc})") from exc


def _parsed(text: str) -> list[tuple[Any, str]]:
    """One JSON document, else NDJSON (one resource per line)."""
    try:
        document = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, Mapping):
        return list(_flattened(document, "", top=True))
    lines = [line for line in text.splitlines() if line.strip()]
    if document is not None or not lines:
        raise InputFileError(
            "the input is not a FHIR resource: give a Bundle or an Observation as a JSON "
            "object, or NDJSON with one resource per line"
        )
    found: list[tuple[Any, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            resource = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError:
            resource = None
        if isinstance(resource, Mapping):
            found += _flattened(resource, "", top=False)
        else:
            found.append((f"line {number}", ""))
    if all(isinstance(item, str) for item, _ in found):
        raise InputFileError(
            "the input is neither a JSON document nor NDJSON: no line is a JSON object"
        )
    return found


def _flattened(resource: Resource, full_url: str, *, top: bool) -> Iterator[tuple[Any, str]]:
    """A Bundle's entries (nested Bundles too), or the resource itself."""
    kind = resource.get("resourceType")
    if kind == "Bundle":
        entries = resource.get("entry")
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping):
                yield from _flattened(entry["resource"], str(entry.get("fullUrl") or ""), top=False)
        return
    if top and kind != "Observation":
        raise InputFileError(
            f"the input is a {kind or 'JSON object without resourceType'}; give a Bundle, an "
            "Observation, or NDJSON of Observations"
        )
    yield resource, full_url


def read_observations(resources: Sequence[tuple[Any, str]]) -> Observations:
    """The long frame of every Observation (and unreadable NDJSON line), in input order."""
    patients = _patients(resources)
    rows: list[dict[str, Any]] = []
    effective: list[str | None] = []
    codes: list[str | None] = []
    skipped: Counter[str] = Counter()
    for position, (resource, full_url) in enumerate(resources, start=1):
        if isinstance(resource, str):  # an NDJSON line that is no JSON object
            rows.append(_unreadable(resource))
            effective.append(None)
            codes.append(None)
            continue
        kind = str(resource.get("resourceType") or "(no resourceType)")
        if kind != "Observation":
            if kind != "Patient":
                skipped[kind] += 1
            continue
        row, when, code = _row(resource, full_url, position, patients)
        rows.append(row)
        effective.append(when if row["effective"] is not None else None)  # written back
        codes.append(code)
    frame = pd.DataFrame(  # object columns: an age stays 71, not 71.0
        {name: pd.Series([row[name] for row in rows], dtype=object) for name in COLUMNS}
    )
    return Observations(frame=frame, effective=effective, codes=codes, skipped=skipped)


def _unreadable(line: str) -> dict[str, Any]:
    error = f"{ErrorCode.UNREADABLE_FILE}: {line}: not a JSON object; give one resource per line"
    return dict.fromkeys(COLUMNS) | {"observation": line, "error": error, "note": ""}


def _row(
    resource: Resource, full_url: str, position: int, patients: Mapping[str, Resource]
) -> tuple[dict[str, Any], str | None, str | None]:
    """One Observation as a long row, its time as written, and its LOINC code."""
    code, test = _test(resource)
    when = _effective(resource)
    subject = _subject(resource)
    row: dict[str, Any] = {
        "subject": subject,
        "effective": _comparable(when),
        "test": test,
        "value": None,
        "unit": None,
        "reference_range": _reference_range(resource.get("referenceRange")),
        "observation": _reference(resource, full_url, position),
        "error": "",
        "note": "",
    }
    row |= _context(patients.get(subject or "") or _contained_patient(resource), when)
    if code is None:  # not a test b12lab reads: ignored (and counted) by classify_long
        return row, when, code
    status = str(resource.get("status") or "")
    if status in NOT_RESULTS:
        row["note"] = f"{row['observation']} (status {status}) is not a result and was not read"
        return row, when, code
    value, unit, error = _value(resource)
    row |= {"value": value, "unit": unit}
    if when is not None and row["effective"] is None:
        error = (
            f"{ErrorCode.INVALID_VALUE}: the collection time is not a FHIR dateTime; the "
            "laboratory must send effectiveDateTime such as 2024-03-01T08:30:00+01:00"
        )
    if status not in USABLE:
        shown = repr(status) if status else "none"
        error = (
            f"{ErrorCode.INVALID_VALUE}: status {shown} is not final; only final, amended or "
            "corrected results are classified (send the final result)"
        )
    row["error"] = error.replace(": ", f": {row['observation']}: ", 1)  # code: where: why
    return row, when, code


_KNOWN = {code: name for name, analyte in ANALYTES.items() for code in analyte.loinc}


def _test(resource: Resource) -> tuple[str | None, str | None]:
    """The LOINC code b12lab reads (if any), and the test as the long frame names it."""
    code = resource.get("code")
    listed = code.get("coding") if isinstance(code, Mapping) else None
    codings = [c for c in listed if isinstance(c, Mapping)] if isinstance(listed, list) else []
    loinc = [str(c.get("code") or "").strip() for c in codings if c.get("system") in LOINC_SYSTEMS]
    for candidate in loinc:
        if candidate in _KNOWN:
            return candidate, candidate
    if loinc:
        return None, f"{LOINC}|{loinc[0]}"
    first = codings[0] if codings else {}
    return None, f"{first.get('system') or ''}|{first.get('code') or ''}"


def _value(resource: Resource) -> tuple[str | None, str | None, str]:
    """The result as text, its unit, and why it cannot be read (``""`` if it can)."""
    if "valueQuantity" in resource:
        return _quantity(resource["valueQuantity"])
    if isinstance(resource.get("valueString"), str) and resource["valueString"].strip():
        return resource["valueString"].strip(), None, ""
    if type(resource.get("valueInteger")) is int:
        return str(resource["valueInteger"]), None, ""
    given = [key for key in resource if key.startswith("value")]
    if given:
        reason = f"{given[0]} is not a quantity; send valueQuantity with a UCUM unit"
    else:
        absent = _absent_reason(resource.get("dataAbsentReason"))
        reason = f"no value{absent}; the result is missing"
    return None, None, f"{ErrorCode.INVALID_VALUE}: {reason}"


def _quantity(quantity: Any) -> tuple[str | None, str | None, str]:
    if not isinstance(quantity, Mapping):
        return None, None, f"{ErrorCode.INVALID_VALUE}: valueQuantity is not an object"
    number = quantity.get("value")
    if not _is_number(number):
        shown = (
            "missing"
            if number is None
            else "not finite"
            if isinstance(number, float | Decimal) and not isinstance(number, bool)
            else f"a {type(number).__name__}, not a number"
        )
        return None, None, f"{ErrorCode.INVALID_VALUE}: valueQuantity.value is {shown}"
    comparator = quantity.get("comparator")
    if comparator is not None and (
        not isinstance(comparator, str) or comparator not in COMPARATORS
    ):
        reason = f"valueQuantity.comparator {comparator!r} cannot be read as censoring"
        return None, None, f"{ErrorCode.INVALID_VALUE}: {reason}; use <, <=, >= or >"
    text = COMPARATORS.get(comparator or "", "") + _digits(number)
    unit = _unit(quantity)
    if unit is None:
        reason = "valueQuantity has neither a UCUM code nor a unit; the laboratory must send it"
        return text, None, f"{ErrorCode.UNKNOWN_UNIT}: {reason}"
    return text, unit, ""


def _is_number(value: Any) -> TypeGuard[Decimal | int | float]:
    """A JSON number: read as Decimal or int from text, or a finite float given in Python."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return not isinstance(value, Decimal) or value.is_finite()


def _digits(number: Decimal | int | float) -> str:
    """Exact digits, never an exponent (``1E+2`` is ``100``); a float by its shortest repr.

    A number beyond any float (``1E+400``) keeps its exponent: written out it would be as many
    digits as the exponent says, and no result is that large or small anyway.
    """
    if isinstance(number, float):
        number = Decimal(repr(number))
    if isinstance(number, Decimal) and abs(number.adjusted()) > sys.float_info.max_10_exp:
        return str(number)
    return format(number, "f") if isinstance(number, Decimal) else str(number)


def _unit(quantity: Mapping[str, Any]) -> str | None:
    """UCUM ``code`` (``system`` UCUM or absent), else the human ``unit``."""
    code = str(quantity.get("code") or "").strip()
    if code and quantity.get("system") in (None, UCUM):
        return code
    unit = str(quantity.get("unit") or "").strip()
    return unit or code or None


def _absent_reason(reason: Any) -> str:
    codings = reason.get("coding") if isinstance(reason, Mapping) else None
    listed = codings if isinstance(codings, list) else []
    codes = [str(c.get("code")) for c in listed if isinstance(c, Mapping) and c.get("code")]
    return f" (dataAbsentReason {codes[0]})" if codes else ""


def _effective(resource: Resource) -> str | None:
    period = resource.get("effectivePeriod")
    for when in (
        resource.get("effectiveDateTime"),
        period.get("start") if isinstance(period, Mapping) else None,
        resource.get("effectiveInstant"),
    ):
        if isinstance(when, str) and when.strip():
            return when.strip()
    return None


_DATE_TIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|"
    r"3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?)?)?(Z|(\+|-)"
    r"((0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?"
)
"""FHIR R4 ``dateTime`` (of which ``instant`` is a part), as the specification writes it."""


def _comparable(when: str | None) -> str | None:
    """A time classify_long can compare: with an offset, in UTC (its offset dropped); without,
    as written; one that is no FHIR ``dateTime`` as none (its row then stands alone)."""
    if when is None or _DATE_TIME.fullmatch(when) is None:
        return None
    try:
        stamp = pd.Timestamp(when)
    except (ValueError, TypeError, OverflowError):
        return None
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    # to the microsecond: nine decimals would make the column nanoseconds, which hold only
    # the years 1677 to 2262 (the time as written is kept for the output)
    return stamp.floor("us").isoformat()


def _subject(resource: Resource) -> str | None:
    """``subject.reference``, else its identifier as ``system|value``.

    A reference to a contained resource (``#p``) names a patient only within its own
    Observation: two Observations that both say ``#p`` may be two patients, so it is no subject
    (the Observation stands alone) rather than a reason to combine their results.
    """
    subject = resource.get("subject")
    if not isinstance(subject, Mapping):
        return None
    if subject.get("reference"):
        reference = str(subject["reference"])
        return None if reference.startswith("#") else reference
    identifier = subject.get("identifier")
    if isinstance(identifier, Mapping) and identifier.get("value"):
        return f"{identifier.get('system') or ''}|{identifier['value']}"
    return None


def _contained_patient(resource: Resource) -> Resource | None:
    """The Patient contained in the Observation that its ``subject`` refers to (``#p``): it
    gives that Observation's sex and age, though it joins no other Observation."""
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    contained = resource.get("contained")
    if not isinstance(reference, str) or not reference.startswith("#"):
        return None
    for item in contained if isinstance(contained, list) else ():
        if not isinstance(item, Mapping) or item.get("resourceType") != "Patient":
            continue
        if f"#{item.get('id')}" == reference:
            found: Resource = item
            return found
    return None


def _reference(resource: Resource, full_url: str, position: int) -> str:
    """How the Observation is referenced: its ``fullUrl``, ``Observation/id``, else by place."""
    if full_url:
        return full_url
    if resource.get("id"):
        return f"Observation/{resource['id']}"
    return f"resource {position} of the input"


_SEVERAL_RANGES = "several reference ranges, none of them the normal range alone"
"""Text no range grammar reads: banding against it is an error of its group, never a guess."""


def _reference_range(ranges: Any) -> str | None:
    """The normal reference range as text: ``low-high unit``, ``>=low``, ``<=high`` or its text.

    FHIR limits are inclusive. Of several ranges, the one typed ``normal`` (or the only one
    without a type) is read; ranges that cannot be told apart, or limits in two different units,
    give text no range grammar reads, so that banding against them is an error, never a guess.
    """
    if not isinstance(ranges, Sequence) or isinstance(ranges, str) or not ranges:
        return None
    candidates = [r for r in ranges if isinstance(r, Mapping)]
    if len(candidates) > 1:
        normal = [r for r in candidates if _range_type(r) in ("", "normal")]
        if len({json.dumps(r, sort_keys=True, default=str) for r in normal}) != 1:
            return _SEVERAL_RANGES
        candidates = normal[:1]
    if not candidates:
        return None
    first = candidates[0]
    low, high = _bound(first.get("low")), _bound(first.get("high"))
    given = [u for u in (_bound_unit(first.get("low")), _bound_unit(first.get("high"))) if u]
    units = {display_unit(u): u for u in given}  # umol/L and µmol/L are one unit
    if len(units) > 1:
        return f"{low} {' / '.join(sorted(units))} {high}"  # two units: read as an error
    unit = given[-1] if given else ""
    if low and high:
        bounds = f"{low}-{high}"
    elif low or high:
        bounds = f">={low}" if low else f"<={high}"
    else:
        text = first.get("text")
        return str(text).strip() or None if text else None
    return f"{bounds} {unit}".strip()


def _range_type(reference_range: Mapping[str, Any]) -> str:
    """The code of a range's ``type`` (``normal``, ``treatment``...), ``""`` for none."""
    kind = reference_range.get("type")
    codings = kind.get("coding") if isinstance(kind, Mapping) else None
    if isinstance(codings, Sequence) and codings and isinstance(codings[0], Mapping):
        return str(codings[0].get("code") or "")
    return ""


def _bound(quantity: Any) -> str:
    if not isinstance(quantity, Mapping):
        return ""
    number = quantity.get("value")
    return _digits(number) if _is_number(number) else ""


def _bound_unit(quantity: Any) -> str | None:
    return _unit(quantity) if isinstance(quantity, Mapping) else None


def _patients(resources: Sequence[tuple[Any, str]]) -> dict[str, Resource]:
    """Patients by each way an Observation may refer to them (``Patient/id``, ``fullUrl``)."""
    found: dict[str, Resource] = {}
    for resource, full_url in resources:
        if isinstance(resource, Mapping) and resource.get("resourceType") == "Patient":
            if resource.get("id"):
                found[f"Patient/{resource['id']}"] = resource
            if full_url:
                found[full_url] = resource
    return found


def _context(patient: Resource | None, when: str | None) -> dict[str, Any]:
    """``sex`` (male or female only) and ``age`` in whole years at collection, where known."""
    if patient is None:
        return {"age": None, "sex": None}
    gender = patient.get("gender")
    sex = gender if gender in ("male", "female") else None
    return {"age": _age(patient.get("birthDate"), when), "sex": sex}


def _age(birth: Any, when: str | None) -> int | None:
    """Whole years from a full ``birthDate`` to the collection date; none if either is partial."""
    try:
        born = datetime.date.fromisoformat(str(birth))
        on = datetime.date.fromisoformat(str(when)[:10])
    except ValueError:
        return None
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return years if years >= 0 else None
