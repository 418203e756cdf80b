"""Column names: which column holds which analyte or context, and its unit if the header says.

One vocabulary for every tabular way in (data frames, CSV and Parquet files, Dask), so a header
means the same everywhere. A header names an analyte by any alias (``Vitamin B12``), optionally
with a unit in brackets (``B12 (pg/mL)``) or as a suffix (``vitamin_b12_pmol_l``, ``hcy_umol``).
A column that looks like a result but is not read is reported, never ignored in silence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from b12lab._core.analytes import ANALYTES, get_analyte
from b12lab.errors import ColumnError

__all__ = [
    "CONTEXT_COLUMNS",
    "PREFIX",
    "UNIT_COLUMN_SUFFIXES",
    "ColumnPlan",
    "bare_name",
    "describe_headers",
    "header_unit",
    "looks_like_result",
    "plan_columns",
    "recognise",
]

PREFIX = "b12lab_"
"""Every output column b12lab adds starts with this."""

CONTEXT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "age": ("age", "age_years", "age years", "age (years)", "age_y"),
    "sex": ("sex", "gender"),
    "pregnant": ("pregnant", "pregnancy"),
    "nitrous_oxide": ("nitrous_oxide", "n2o", "nitrous oxide"),
    "b12_replacement": ("b12_replacement", "b12 replacement", "b12_treatment"),
    "medicines": ("medicines", "medications", "drugs", "current medicines"),
}
"""Context names and the (lower-case) headers that stand for them."""

UNIT_COLUMN_SUFFIXES = ("_unit", " unit", "_units", " units", ".unit")
"""A column named like an analyte's column plus one of these holds that analyte's units."""

_BRACKETED = re.compile(r"^\s*(?P<name>.*?)\s*[\(\[]\s*(?P<unit>[^\)\]]+?)\s*[\)\]]\s*$")
_SUFFIXED = re.compile(
    r"^(?P<name>.+?)[\s_.-]+(?P<amount>[pnuµμm]?(?:mol|g))"
    r"(?:[\s_./-]+(?:per[\s_.-]+)?(?P<volume>[mdµμu]?l))?$",
    re.IGNORECASE,
)
_RESULT_WORDS = re.compile(
    r"b12|cobalamin|holo|methylmalon|\bmma|homocyst|\bhcy|\bthcy|folate|folic|creatinin|gfr",
    re.IGNORECASE,
)


def header_unit(header: str) -> str | None:
    """The unit a header states: ``B12 (pg/mL)`` → ``pg/mL``, ``b12_pmol_l`` → ``pmol/L``."""
    bracketed = _BRACKETED.match(header)
    if bracketed:
        return bracketed["unit"]
    suffixed = _SUFFIXED.match(header.strip())
    if suffixed and suffixed["volume"] and _recognised_name(suffixed["name"]) is not None:
        return f"{suffixed['amount']}/{suffixed['volume'][:-1]}L"
    return None


def bare_name(header: str) -> str:
    """A header without its unit, in lower case: ``B12 (pg/mL)`` and ``b12_pg_ml`` are ``b12``."""
    bracketed = _BRACKETED.match(header)
    if bracketed:
        return bracketed["name"].strip().lower()
    suffixed = _SUFFIXED.match(header.strip())
    if suffixed and _recognised_name(suffixed["name"]) is not None:
        return _spaced(suffixed["name"])
    return header.strip().lower()


def _spaced(name: str) -> str:
    return re.sub(r"[\s_.-]+", " ", name.strip().lower())


def _recognised_name(name: str) -> str | None:
    lowered = name.strip().lower()
    return _lookup(lowered) or _lookup(_spaced(lowered))


def _lookup(name: str) -> str | None:
    for key, aliases in CONTEXT_COLUMNS.items():
        if name in aliases:
            return key
    for analyte in ANALYTES.values():
        if name == analyte.name or name in analyte.aliases:
            return analyte.name
    return None


def recognise(name: str) -> str | None:
    """The analyte or context a bare, lower-case column name stands for, if any."""
    return _recognised_name(name)


def looks_like_result(header: str) -> bool:
    """Whether a header mentions an analyte, so that leaving it unread deserves a word."""
    return _RESULT_WORDS.search(header) is not None


@dataclass(frozen=True)
class ColumnPlan:
    """Where each analyte and context value is: column, unit from the header, unit column."""

    found: Mapping[str, str]
    header_units: Mapping[str, str | None]
    unit_columns: Mapping[str, str]
    unused: tuple[str, ...] = field(default=())


def plan_columns(headers: Sequence[object], mapping: Mapping[str, str]) -> ColumnPlan:
    """Decide which column holds what. ``mapping`` (name → column) wins over recognition.

    Two columns that both stand for one analyte or context are refused: b12lab never picks one
    in silence.
    """
    names = [str(h) for h in headers]
    by_text = dict(zip(names, headers, strict=True))
    found: dict[str, str] = {}
    unit_columns: dict[str, str] = {}
    for name, column in mapping.items():
        if column not in by_text:
            raise ColumnError(
                f"column {column!r} for {name} is not in the data ({describe_headers(names)})",
                column=column,
            )
        if name.endswith("_unit"):
            unit_columns[get_analyte(name.removesuffix("_unit")).name] = column
        else:
            found[name if name in CONTEXT_COLUMNS else get_analyte(name).name] = column
    claimed = set(found.values()) | set(unit_columns.values())
    recognised: dict[str, list[str]] = {}
    for header in names:
        key = recognise(bare_name(header))
        if key is not None and key not in found and header not in claimed:
            recognised.setdefault(key, []).append(header)
    for key, columns in recognised.items():
        if len(columns) > 1:
            raise ColumnError(
                f"columns {_listed(columns)} all stand for {key}; keep one, or choose one "
                f"with a mapping ({key}=COLUMN; on the command line --map {key}=COLUMN)",
                column=columns[0],
                columns=tuple(columns),
            )
        found[key] = columns[0]
    lowered = {h.strip().lower(): h for h in names}
    for analyte, column in found.items():
        if analyte in CONTEXT_COLUMNS or analyte in unit_columns:
            continue
        for suffix in UNIT_COLUMN_SUFFIXES:
            candidate = lowered.get(f"{column.strip().lower()}{suffix}")
            if candidate is not None:
                unit_columns[analyte] = candidate
                break
    used = set(found.values()) | set(unit_columns.values())
    unused = tuple(h for h in names if h not in used and _unused_result(h))
    return ColumnPlan(
        found=found,
        header_units={a: header_unit(c) for a, c in found.items()},
        unit_columns=unit_columns,
        unused=unused,
    )


def describe_headers(headers: Sequence[object]) -> str:
    """What the header holds, without repeating cells that may be a patient's data.

    A file without a header line has a patient's identifier, name or results where the header
    should be, so messages name only the columns that read as analytes or context.
    """
    names = [str(h) for h in headers]
    known = [n for n in names if recognise(bare_name(n)) is not None]
    shown = f": {', '.join(known)}" if known else ""
    return f"{len(names)} column(s), {len(known)} named like an analyte or context{shown}"


def _unused_result(header: str) -> bool:
    return not header.startswith(PREFIX) and looks_like_result(header)


def _listed(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names) or "(none)"
