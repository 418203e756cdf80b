"""FHIR R4 in and out: classify the laboratory's Observations, write derived Observations.

:func:`classify_bundle` reads a Bundle (of any type), a single Observation or NDJSON of
Observations, turns every Observation into a row of a long export and classifies it with
:func:`b12lab.classify_long`, so a Bundle and the same results as a long CSV get the same answer.
:func:`to_bundle` (and :func:`bundle_json`) write the result as a ``collection`` Bundle with one
derived Observation per group. The standard library's :mod:`json` reads and writes; values are
read as :class:`~decimal.Decimal` text, so no digit is lost.

What is read (LOINC codes in :data:`b12lab.ANALYTES`, statuses, units, times, Patients) is set
out in ``b12lab._io.fhir_reading``; the output's design in ``b12lab._io.fhir_writing``; both in
the how-to guide "FHIR R4 Bundles".

No Observation is dropped in silence. Each group (a subject's results within ``window`` of its
first) gets a row; an Observation b12lab cannot use makes its group an error naming it (status
not final, no value, a value that is not a quantity, no unit), an Observation that is not a
result (``cancelled``, ``entered-in-error``) or whose code b12lab does not read is listed in
``b12lab_set_aside``, and resources other than Observations and Patients are counted in a
:class:`b12lab.B12LabWarning`.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from b12lab import __version__
from b12lab._core.analytes import ANALYTES
from b12lab._core.columns import PREFIX
from b12lab._core.policy import resolve
from b12lab._io import fhir_reading, fhir_writing
from b12lab._io.fhir_writing import ANALYTE_SYSTEM, CATEGORY_SYSTEM, CODE_SYSTEM
from b12lab._io.long_format import _groups, _times, _window, classify_long
from b12lab.errors import B12LabWarning, InputFileError

if TYPE_CHECKING:
    from b12lab.tables import Table

__all__ = [
    "ANALYTE_SYSTEM",
    "CATEGORY_SYSTEM",
    "CODE_SYSTEM",
    "bundle_json",
    "classify_bundle",
    "read_observations",
    "to_bundle",
]


_LONG_ADVICE = "name the export's test codes with columns= (on the command line --map ANALYTE=CODE)"
_FHIR_ADVICE = "b12lab reads Observations by the LOINC codes listed in b12lab.ANALYTES"

Source = Mapping[str, Any] | str | bytes | Path
"""A Bundle or Observation (a mapping, or JSON text), NDJSON text, or a file (a ``Path``, or a
file name as ``str``)."""


def read_observations(bundle: Source) -> pd.DataFrame:
    """Every Observation of ``bundle`` as a row of a long export (not classified).

    Columns: ``subject``, ``effective`` (UTC where an offset was given), ``test`` (the LOINC
    code), ``value`` (with its comparator), ``unit``, ``reference_range`` (text), ``age``,
    ``sex`` (from a Patient in the input), ``observation`` (its reference), ``error`` and
    ``note`` (why it cannot be used, or was set aside).
    """
    return fhir_reading.read_observations(fhir_reading.load_resources(bundle)).frame


def classify_bundle(
    bundle: Source,
    *,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
    window: pd.Timedelta | str | None = None,
    explain: bool = False,
    use_reported_ranges: bool = False,
) -> pd.DataFrame:
    """Classify a Bundle's Observations; one row per group (subject, or subject and visit).

    Groups are formed as by :func:`b12lab.classify_long` with ``patient`` the subject and
    ``time`` the collection time: without ``window`` results group by identical time, with it
    (``"24h"``) by visit. The output is :func:`~b12lab.classify_long`'s (``subject``,
    ``b12lab_group_start``, ``b12lab_group_end``, one column per analyte, the ``b12lab_*``
    columns) and ``b12lab_effective`` and ``b12lab_effective_end`` (the group's first and last
    collection time as written), ``b12lab_derived_from`` (the references of the Observations
    read, space-separated), ``b12lab_set_aside`` (Observations not read, and why) and
    ``b12lab_method`` (b12lab's version and each table with its SHA-256 prefix) and
    ``b12lab_caveats`` (the tables' caveats, which hold for every result they read).

    With ``use_reported_ranges``, MMA and homocysteine are banded against each Observation's
    ``referenceRange`` (as ``classify_long`` does with a range column); an Observation with no
    range keeps the laboratory table's bands, said in its marker's note, and a range that
    cannot be read is an error of its group.

    Raises :class:`b12lab.InputFileError` if the input is not FHIR JSON or NDJSON, or if no
    Observation holds a result b12lab reads.
    """
    observations = fhir_reading.read_observations(fhir_reading.load_resources(bundle))
    _warn_skipped(observations.skipped)
    frame = observations.frame
    _require_results(frame)
    ids, first, last = _grouping(frame, window)
    out = classify_long(
        frame.drop(columns=["observation", "error", "note"]),
        patient="subject",
        time="effective",
        window=window,
        test="test",
        value="value",
        unit="unit",
        table=table,
        laboratory=laboratory,
        explain=explain,
        reference_range="reference_range" if use_reported_ranges else None,
        use_reported_ranges=use_reported_ranges,
        row_errors=frame["error"].to_numpy(dtype=object),
    )
    _check_groups(out, frame, first)
    errors = out[f"{PREFIX}error"].astype(str)
    out[f"{PREFIX}error"] = errors.str.replace(_LONG_ADVICE, _FHIR_ADVICE, regex=False)
    result = _with_sources(out, observations, ids, first, last, _method(table, laboratory))
    result[f"{PREFIX}caveats"] = _caveats(table, laboratory)
    result.attrs["observations"] = len(frame)  # for the command line's summary
    return result


def to_bundle(result: pd.DataFrame) -> dict[str, Any]:
    """A FHIR R4 ``collection`` Bundle of :func:`classify_bundle`'s result, one derived
    Observation per row (see the module docstring of ``b12lab._io.fhir_writing``)."""
    return fhir_writing.to_bundle(result)


def bundle_json(result: pd.DataFrame, *, indent: int | None = 2) -> str:
    """:func:`to_bundle` as JSON text."""
    return json.dumps(to_bundle(result), indent=indent, ensure_ascii=False)


def _warn_skipped(skipped: Counter[str]) -> None:
    if not skipped:
        return
    listed = ", ".join(f"{kind} ({count})" for kind, count in sorted(skipped.items()))
    warnings.warn(
        f"{sum(skipped.values())} resource(s) that are not Observations or Patients were not "
        f"read: {listed}",
        B12LabWarning,
        stacklevel=3,
    )


def _require_results(frame: pd.DataFrame) -> None:
    """At least one Observation with a test b12lab reads and a value (else classify_long could
    not tell what the input holds, and each group would only say so)."""
    known = frame["test"].isin([code for a in ANALYTES.values() for code in a.loinc])
    if (known & frame["value"].notna()).any():
        return
    codes = ", ".join(code for a in ANALYTES.values() for code in a.loinc)
    raise InputFileError(
        f"none of the {len(frame)} Observation(s) holds a result b12lab reads: "
        f"{int(known.sum())} with a LOINC code b12lab reads, none of them with a value; "
        f"b12lab reads the LOINC codes {codes}",
    )


def _grouping(
    frame: pd.DataFrame, window: pd.Timedelta | str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's group, and each group's first and last row, by classify_long's own rule."""
    failed = frame["error"].to_numpy(dtype=object) != ""
    times, _ = _times(frame, "effective", failed, ())
    return _groups(frame["subject"], times, _window("effective", window))


def _check_groups(out: pd.DataFrame, frame: pd.DataFrame, first: np.ndarray) -> None:
    """The groups found here are classify_long's, row for row (else a defect, not an answer)."""
    expected = frame["subject"].iloc[first].reset_index(drop=True)
    if len(out) != len(first) or not expected.equals(pd.Series(out["subject"], dtype=object)):
        raise RuntimeError("b12lab.fhir: groups differ from classify_long's; please report")


def _with_sources(
    out: pd.DataFrame,
    observations: fhir_reading.Observations,
    ids: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    method: str,
) -> pd.DataFrame:
    """The output with each group's times as written, its sources and what was set aside."""
    frame = observations.frame
    groups = len(first)
    derived: list[list[str]] = [[] for _ in range(groups)]
    notes: list[list[str]] = [[] for _ in range(groups)]
    unread: list[list[str]] = [[] for _ in range(groups)]
    columns = zip(
        ids.tolist(),
        frame["observation"].tolist(),
        frame["note"].tolist(),
        frame["error"].tolist(),
        frame["test"].tolist(),
        observations.codes,
        strict=True,
    )
    for group, reference, note, error, test, code in columns:
        if note:
            notes[group].append(str(note))
        elif error and code is None:
            continue  # an unreadable NDJSON line: its group's error names it
        elif code is None:
            unread[group].append(str(test).removeprefix("http://loinc.org|"))
        elif not str(reference).startswith(("resource ", "line ")):
            derived[group].append(str(reference))
    effective = observations.effective
    return out.assign(
        **{
            f"{PREFIX}effective": [effective[row] for row in first],
            f"{PREFIX}effective_end": [effective[row] for row in last],
            f"{PREFIX}derived_from": [" ".join(refs) for refs in derived],
            f"{PREFIX}set_aside": [
                _set_aside(notes[group], unread[group]) for group in range(groups)
            ],
            f"{PREFIX}method": method,
        }
    )


def _set_aside(notes: list[str], unread: list[str]) -> str:
    """Observations of a group that were not read, in words."""
    said = list(notes)
    if unread:
        codes = ", ".join(dict.fromkeys(code for code in unread if code.strip("|")))
        listed = f" ({codes})" if codes else ""
        said.append(f"{len(unread)} observation(s) with a test b12lab does not read{listed}")
    return "; ".join(said)


def _caveats(table: str | Table | None, laboratory: str | Table | None) -> str:
    """Each table's caveats, named by the table: they travel with every derived Observation,
    as they do with every :class:`b12lab.Result`."""
    policy = resolve(table, laboratory)
    used = [t for t in (policy.table, policy.laboratory) if t is not None]
    return " ".join(f"Caveat of {t.key}: {caveat}" for t in used for caveat in t.model.caveats)


def _method(table: str | Table | None, laboratory: str | Table | None) -> str:
    """b12lab's version and the tables with their SHA-256 prefixes, as ``method`` text."""
    policy = resolve(table, laboratory)
    used = [f"table {policy.table.key} (sha256 {policy.table.sha256[:12]})"]
    if policy.laboratory is not None:
        lab = policy.laboratory
        used.append(f"laboratory table {lab.key} (sha256 {lab.sha256[:12]})")
    return f"b12lab {__version__}: " + "; ".join(used)
