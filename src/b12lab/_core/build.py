"""The last stage: one result builder for one patient and for output columns.

Every text a result carries (marker notes, reasons, flags and the markers they rest on) is made
here, once per distinct combination of codes, and both :func:`result` (a typed
:class:`~b12lab.Result` for one row) and :func:`columns` (categorical columns for every row) take
it from the same functions, so ``classify`` and ``classify_frame`` say the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from b12lab._core import engine
from b12lab._core.analytes import ANALYTES
from b12lab._core.categories import Category, Censoring, Interpretation
from b12lab._core.cells import ParsedColumn
from b12lab._core.columns import PREFIX
from b12lab._core.derivation import Derivation
from b12lab._core.kidney import (
    AGE_BELOW_MINIMUM,
    AGE_MISSING,
    NO_CREATININE,
    SEX_MISSING,
    Equation,
)
from b12lab._core.measurements import Measurement
from b12lab._core.observations import comparison_basis
from b12lab._core.pipeline import Outcome
from b12lab._core.policy import Policy
from b12lab._core.reported_ranges import ReportedBands, band_map, not_used_note
from b12lab._core.results import Flag, MarkerResult, Reason, Result, TableRef
from b12lab._core.table_schema import CONTEXT_LABELS
from b12lab._core.units import conversion_factor, display_unit, quantity
from b12lab.tables import Table

__all__ = ["columns", "result"]

REASON_SEPARATOR = " | "
"""Between reasons in ``b12lab_reasons``."""
CENSORED_NOTE = "censored result spans more than one band"


# -- words shared by both builders ------------------------------------------------------------


def _unbanded_note(policy: Policy, analyte: str) -> str:
    return f"no band of {policy.suppliers[analyte].key} applies to this patient's context"


def _not_interpreted_note(policy: Policy) -> str:
    if policy.laboratory is None:
        return f"not interpreted: {policy.table.key} has no bands for it"
    return (
        f"not interpreted: neither {policy.table.key} nor {policy.laboratory.key} has bands for it"
    )


def _read_by_laboratory(policy: Policy, analyte: str) -> bool:
    """The laboratory table bands it for its own flags (low folate, renal impairment)."""
    return policy.lab_compiled is not None and analyte in policy.lab_compiled.variables


def _rule_reason(policy: Policy, rule_index: int) -> Reason:
    table = policy.table
    if rule_index == engine.NO_RULE:
        text = "No rule of the table applies to the results given: too few markers to decide."
        if _schema(policy) >= 2:
            text = f"No rule of {table.key} applies to the markers it reads, so it cannot decide."
        return Reason(rule=None, text=text, table=table.key, source=f"{table.key}: no rule matched")
    rule = policy.rules[rule_index]
    return Reason(rule=rule.id, text=rule.reason, table=table.key, source=rule.source)


def _schema(policy: Policy) -> int:
    return policy.table.model.schema_version


SPECIAL_RULES = {
    engine.CENSORED_AGREE: "censored-same-category",
    engine.CENSORED_SPLIT: "censored-uncertain",
    engine.CROSS_CHECKED: "cross-checked-marker",
}
"""Rule ids for decisions the core makes across a table's rules."""
_RULE_SHIFT = 4  # rule codes run from CROSS_CHECKED (-4)
_ENUMERATION_SOURCE = "b12lab interval rule: a censored result is read in every band it may lie in"


def _censored_reason(policy: Policy, analyte: str) -> Reason:
    supplier = policy.suppliers[analyte].key
    return Reason(
        rule=None,
        text=f"{ANALYTES[analyte].title}: the censored result spans more than one band of "
        f"{supplier}, so its band cannot be decided.",
        table=supplier,
        source="b12lab interval rule",
    )


def _enumerated_reason(policy: Policy, rule_index: int, possible: int) -> Reason:
    categories = [Category.from_rank(r).value for r in range(4) if possible >> r & 1]
    if rule_index == engine.CENSORED_AGREE:
        text = (
            "A censored result may lie in more than one band, and the rules give "
            f"{categories[0]} in every one of them."
        )
    else:
        text = (
            "A censored result may lie in bands for which the rules give "
            f"{' or '.join(categories)}; the least certain reading, deficiency_possible, is "
            "given. A result reported as a number would decide."
        )
    return Reason(
        rule=SPECIAL_RULES[rule_index],
        text=text,
        table=policy.table.key,
        source=_ENUMERATION_SOURCE,
    )


def _cross_reason(policy: Policy, analyte: str) -> Reason:
    reference = policy.cross_checks[analyte][0].key
    return Reason(
        rule=SPECIAL_RULES[engine.CROSS_CHECKED],
        text=f"{ANALYTES[analyte].title} is not read by {policy.table.key}, but {reference} reads "
        "the result as outside its normal band: the category is raised to deficiency_possible "
        "so that a marker the table cannot read never gives false reassurance.",
        table=policy.table.key,
        source=f"cross_check of {policy.table.key}: {reference}",
    )


@dataclass(frozen=True)
class _Why:
    """What a row's reasons depend on: its rule and the table rule under it, the categories a
    censored result allows, the censored results spanning bands, the cross-checked markers."""

    rule: int
    matched: int
    possible: int
    spanning: tuple[tuple[str, int, int], ...]
    cross: tuple[str, ...]


def _reasons(policy: Policy, why: _Why) -> tuple[Reason, ...]:
    reasons = []
    if why.rule == engine.CROSS_CHECKED:
        reasons += [_cross_reason(policy, analyte) for analyte in why.cross]
    deciding = why.matched
    if deciding in (engine.CENSORED_AGREE, engine.CENSORED_SPLIT):
        reasons.append(_enumerated_reason(policy, deciding, why.possible))
    else:
        reasons.append(_rule_reason(policy, deciding))
    if _schema(policy) < 2:  # later tables quote each censored result with the row's results
        reasons += [_censored_reason(policy, analyte) for analyte, _, _ in why.spanning]
    return tuple(reasons)


def _why_parts(outcome: Outcome) -> list[tuple[str, npt.NDArray[np.int64], int]]:
    """The parts of :class:`_Why` as small integer columns (name, codes, number of codes)."""
    evaluation = outcome.evaluation
    width = len(outcome.policy.rules) + _RULE_SHIFT
    cross = evaluation.rule == engine.CROSS_CHECKED
    enumerated = np.isin(evaluation.matched, (engine.CENSORED_AGREE, engine.CENSORED_SPLIT))
    parts = [
        ("rule", evaluation.rule.astype(np.int64) + _RULE_SHIFT, width),
        ("matched", evaluation.matched.astype(np.int64) + _RULE_SHIFT, width),
        ("possible", np.where(enumerated, evaluation.possible, 0).astype(np.int64), 16),
    ]
    for analyte in outcome.parsed:
        if not _banded(outcome.policy, analyte):
            continue
        codes = _band_codes(outcome, analyte)
        spans = codes == engine.CENSORED
        size = len(outcome.policy.variables[analyte].labels)
        low, high = evaluation.namespace.spans.get(analyte, (codes, codes))
        code = np.where(spans, 1 + low.astype(np.int64) * size + high, 0)
        parts.append((f"span:{analyte}", code, 1 + size * size))
    for analyte, abnormal in evaluation.cross:
        parts.append((f"cross:{analyte}", (abnormal & cross).astype(np.int64), 2))
    return parts


def _why_keys(parts: list[tuple[str, npt.NDArray[np.int64], int]]) -> npt.NDArray[np.int64]:
    keys = np.zeros(parts[0][1].shape[0], dtype=np.int64)
    stride = 1
    for _, codes, size in parts:
        keys += codes * stride
        stride *= size
    return keys


def _why(outcome: Outcome, parts: list[tuple[str, npt.NDArray[np.int64], int]], key: int) -> _Why:
    decoded = {}
    for name, _, size in parts:
        decoded[name] = key % size
        key //= size
    spanning = []
    for name, code in decoded.items():
        if name.startswith("span:") and code:
            analyte = name.removeprefix("span:")
            size = len(outcome.policy.variables[analyte].labels)
            spanning.append((analyte, (code - 1) // size, (code - 1) % size))
    return _Why(
        rule=decoded["rule"] - _RULE_SHIFT,
        matched=decoded["matched"] - _RULE_SHIFT,
        possible=decoded["possible"],
        spanning=tuple(spanning),
        cross=tuple(
            n.removeprefix("cross:") for n, c in decoded.items() if n[:6] == "cross:" and c
        ),
    )


def _reason_text(reasons: Sequence[Reason]) -> str:
    return REASON_SEPARATOR.join(f"{r.text} [{r.source}]" for r in reasons)


def _flag_markers_text(flags: Sequence[tuple[str, Sequence[str]]]) -> str:
    return "; ".join(f"{flag}: {', '.join(markers)}" for flag, markers in flags if markers)


def _banded(policy: Policy, analyte: str) -> bool:
    return analyte in policy.variables


def _band_codes(outcome: Outcome, analyte: str) -> npt.NDArray[np.int16]:
    return outcome.evaluation.namespace.codes[analyte]


@dataclass(frozen=True)
class _Notes:
    """Per row, an index into ``texts`` ("" first): the note of each analyte's marker."""

    codes: npt.NDArray[np.intp]
    texts: list[str]


def _marker_notes(
    outcome: Outcome, analyte: str, ok: npt.NDArray[np.bool_] | None = None
) -> _Notes:
    column = outcome.parsed[analyte]
    if column.noted:
        distinct_codes, distinct_texts = pd.factorize(column.notes)
        texts = [str(t) for t in distinct_texts]
        if "" not in texts:
            texts.append("")
        empty = texts.index("")
        per_cell = np.where(distinct_codes < 0, empty, distinct_codes).astype(np.intp)
        codes: npt.NDArray[np.intp] = per_cell[column.rows]
    else:  # no cell states no result: every row starts with no note
        texts, empty, codes = [""], 0, np.zeros(outcome.n, dtype=np.intp)
    policy = outcome.policy
    present = column.observed.present
    if _banded(policy, analyte):
        band = _band_codes(outcome, analyte)
        texts += [CENSORED_NOTE, _unbanded_note(policy, analyte)]
        codes[band == engine.CENSORED] = len(texts) - 2
        codes[present & (band == engine.UNBANDED)] = len(texts) - 1
    elif not _read_by_laboratory(policy, analyte):
        texts.append(_not_interpreted_note(policy))
        codes[present] = len(texts) - 1
    if analyte in outcome.ranges:
        codes = _range_note(outcome, analyte, codes, texts)
    codes[~(outcome.errors.ok if ok is None else ok)] = empty
    return _Notes(codes, texts)


def _range_note(
    outcome: Outcome, analyte: str, codes: npt.NDArray[np.intp], texts: list[str]
) -> npt.NDArray[np.intp]:
    """Notes of the reported ranges, after any other note: a range not used, or (where ranges
    are used) a result banded by the table because no range was reported with it."""
    policy = outcome.policy
    present = outcome.parsed[analyte].observed.present
    given = outcome.ranges[analyte].given
    if band_map(policy, analyte) is None:
        return _noted(codes, texts, present & given, not_used_note(policy, analyte))
    note = (
        f"no reference range reported with the result; banded against "
        f"{policy.suppliers[analyte].key}"
    )
    return _noted(codes, texts, present & ~given, note)


def _noted(
    codes: npt.NDArray[np.intp], texts: list[str], where: npt.NDArray[np.bool_], note: str
) -> npt.NDArray[np.intp]:
    """``note`` added to the rows ``where``, after the note they have (once per distinct
    note); ``texts`` grows by the combined notes."""
    if not where.any():
        return codes
    remap = np.arange(len(texts), dtype=np.intp)
    for code in np.unique(codes[where]):
        base = texts[int(code)]
        texts.append(f"{base}; {note}" if base else note)
        remap[int(code)] = len(texts) - 1
    return np.where(where, remap[codes], codes)


# -- the row's own results, as reasons quote them -------------------------------------------


def _cited(policy: Policy) -> dict[str, npt.NDArray[np.bool_]]:
    """Per analyte, indexed by rule code + _RULE_SHIFT: whether that rule names it, so that a
    missing result is quoted as "not measured"."""
    width = len(policy.rules) + _RULE_SHIFT
    cited = {a: np.zeros(width, dtype=np.bool_) for a in ANALYTES if _banded(policy, a)}
    for index, rule in enumerate(policy.rules):
        for analyte in {name for alternative in rule.when for name in alternative}:
            if analyte in cited:
                cited[analyte][index + _RULE_SHIFT] = True
    return cited


def _relation(policy: Policy, analyte: str, stratum: int, code: int, basis: int) -> str:
    """A band's extent in the unit the result was compared in: "below 133 pmol/L"."""
    variable = policy.bands[analyte]
    band = variable.all_strata()[stratum].bands[code]
    unit = list(variable.units)[basis]
    decimals = variable.units[unit]
    shown = display_unit(unit)

    def edge(values: dict[str, float] | None) -> str:
        assert values is not None
        return f"{values[unit]:.{decimals}f}"

    if band.lower is None and band.upper is not None:
        return f"{'at or below' if band.upper_inclusive else 'below'} {edge(band.upper)} {shown}"
    if band.upper is None and band.lower is not None:
        return f"{'at or above' if band.lower_inclusive else 'above'} {edge(band.lower)} {shown}"
    return f"{edge(band.lower)} to {edge(band.upper)} {shown}"


def _band_words(
    policy: Policy, analyte: str, code: int, stratum: int, basis: int, low: int, high: int
) -> str:
    """What a result's band is, after the result itself: " is in the deficient band (...)"."""
    variable = policy.variables[analyte]
    if code == engine.UNBANDED:
        return f": no band of {policy.suppliers[analyte].key} applies"
    if code == engine.CENSORED:
        labels = variable.labels[low : high + 1]
        bands = f"{', '.join(labels[:-1])} or {labels[-1]}"
        return f" may lie in the {bands} band of {policy.suppliers[analyte].key}"
    text = (
        f" is in the {variable.labels[code]} band "
        f"({_relation(policy, analyte, stratum, code, basis)})"
    )
    name = policy.bands[analyte].all_strata()[stratum].name
    return f"{text}, interval for {name}" if name else text


_SIDES = ("below", "within", "above")


def _reported_words(
    policy: Policy,
    analyte: str,
    reported: ReportedBands,
    row: int,
    bands: tuple[int, int, int],
) -> str:
    """A result's band against the range reported with it: " is in the high band (above the
    reported reference range 0.00-0.40 µmol/L)"; ``bands`` is the row's code, lowest and
    highest band."""
    variable = policy.variables[analyte]
    first, last = int(reported.position_low[row]), int(reported.position_high[row])
    sides = _SIDES[first : last + 1]
    where = sides[0] if len(sides) == 1 else f"{', '.join(sides[:-1])} or {sides[-1]}"
    relation = f"{where} the reported reference range {reported.texts[reported.key[row]]}"
    if first == 0 and not reported.below_band:
        relation += f"; {policy.suppliers[analyte].key} has no band below its normal band"
    code, low, high = bands
    if code == engine.CENSORED:
        labels = variable.labels[low : high + 1]
        return f" may lie in the {', '.join(labels[:-1])} or {labels[-1]} band ({relation})"
    return f" is in the {variable.labels[code]} band ({relation})"


def _given_texts(
    outcome: Outcome, analyte: str, variable: engine.CompiledVariable | None = None
) -> tuple[npt.NDArray[np.object_], engine.IntArray]:
    """Per distinct cell: the result as reported (with its value in the unit it was compared
    in, when that differs), and the index of that unit; formatted as arrays, not cell by cell."""
    column = outcome.parsed[analyte]
    observed = column.observed
    variable = variable or outcome.policy.variables[analyte]
    interval = observed.interval
    size = len(interval)
    texts = np.full(size, "", dtype=object)
    bases = np.zeros(size, dtype=np.int16)
    present = interval.present
    if not present.any():
        return texts, bases
    signs = np.asarray(column.signs[:size], dtype=object)
    below = (signs == Censoring.BELOW.value) | (signs == Censoring.AT_OR_BELOW.value)
    value = np.where(below, interval.hi, interval.lo)
    for code, unit in enumerate(observed.units):
        cells = present & (observed.unit_codes == code)
        if not cells.any():
            continue
        basis = comparison_basis(unit, variable.units)
        bases[cells] = basis
        shown = display_unit(unit)
        text = signs[cells] + _formatted("%g", value[cells]) + f" {shown}"
        compared_unit = display_unit(variable.units[basis])
        if compared_unit != shown:
            factor = conversion_factor(analyte, unit, variable.units[basis])
            converted = _formatted("%.4g", value[cells] * factor)
            text = text + " (= " + converted + f" {compared_unit})"
        texts[cells] = text
    return texts, bases


def _formatted(template: str, values: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
    formatted: npt.NDArray[np.object_] = np.char.mod(template, values).astype(object)
    return formatted


def _evidence(outcome: Outcome) -> npt.NDArray[np.object_] | None:
    """Per row, the results its deciding rule rests on, in words ("" for none); None for tables
    before schema 2, whose reasons quote no results.

    Every result read is quoted (earlier rules not matching is part of every reason); a missing
    one only where the deciding rule names it. The words are built from small per-cell and
    per-band pieces joined as arrays, so a file of a million distinct values stays fast.
    """
    policy, evaluation = outcome.policy, outcome.evaluation
    if _schema(policy) < 2:
        return None
    cited = _cited(policy)
    deciding = evaluation.matched.astype(np.intp) + _RULE_SHIFT
    joined = np.full(outcome.n, "", dtype=object)
    for analyte, rules in cited.items():
        title = ANALYTES[analyte].title
        if analyte in outcome.parsed:
            column = outcome.parsed[analyte]
            present = column.observed.present
            given, bases = _given_texts(outcome, analyte)
            cells = column.rows
        else:
            present = np.zeros(outcome.n, dtype=np.bool_)
            given, bases = np.array([""], dtype=object), np.zeros(1, dtype=np.int16)
            cells = np.zeros(outcome.n, dtype=np.intp)
        missing = ~present & rules[deciding]
        if not (present.any() or missing.any()):
            continue
        codes = _band_codes(outcome, analyte).astype(np.int64)
        spans = evaluation.namespace.spans.get(analyte)
        low, high = spans if spans is not None else (codes, codes)
        strata = evaluation.namespace.strata[analyte].astype(np.int64)
        derived = np.zeros(outcome.n, dtype=np.int64)
        if analyte == "egfr" and outcome.derivation is not None:
            derived = outcome.derivation.derived.astype(np.int64)
        basis = bases[cells].astype(np.int64)
        reported = evaluation.namespace.reported.get(analyte)
        ranged = [np.zeros(outcome.n, dtype=np.int64)] * 3
        if reported is not None:
            ranged = [
                reported.key.astype(np.int64) + 1,
                reported.position_low.astype(np.int64),
                reported.position_high.astype(np.int64),
            ]
        parts = np.stack(
            [
                codes + 3,
                strata + 1,
                basis,
                low.astype(np.int64) + 1,
                high.astype(np.int64) + 1,
                *ranged,
            ]
        )
        keys = np.zeros(outcome.n, dtype=np.int64)
        for row in parts:  # each part is small: pack them into one key
            keys = keys * (int(row.max(initial=0)) + 1) + row
        _, inverse = np.unique(keys[present], return_inverse=True)
        first = np.flatnonzero(present)[
            np.unique(np.asarray(inverse).reshape(-1), return_index=True)[1]
        ]
        tails = np.array(
            [
                _reported_words(
                    policy, analyte, reported, int(r), (int(codes[r]), int(low[r]), int(high[r]))
                )
                if reported is not None and reported.used[r]
                else _band_words(
                    policy,
                    analyte,
                    int(codes[r]),
                    int(strata[r]),
                    int(basis[r]),
                    int(low[r]),
                    int(high[r]),
                )
                for r in first
            ],
            dtype=object,
        )
        statement = np.full(outcome.n, "", dtype=object)
        statement[missing] = f"{title} not measured"
        names = np.where(derived[present] == 1, f"{title} derived from creatinine ", f"{title} ")
        statement[present] = (
            names.astype(object) + given[cells[present]] + tails[np.asarray(inverse).reshape(-1)]
        )
        joined = np.where(
            joined == "", statement, np.where(statement == "", joined, joined + "; " + statement)
        )
    for statement in _cross_statements(outcome):
        joined = np.where(
            joined == "", statement, np.where(statement == "", joined, joined + "; " + statement)
        )
    return joined


def _cross_statements(outcome: Outcome) -> list[npt.NDArray[np.object_]]:
    """Markers the table does not read, quoted with the band of the table they are checked
    against, so the row's reasons show the result that raised (or did not raise) its category."""
    policy = outcome.policy
    found = []
    for analyte, (reference, variable) in policy.cross_checks.items():
        if analyte not in outcome.parsed:
            continue
        column = outcome.parsed[analyte]
        present = column.observed.present
        if not present.any():
            continue
        given, _ = _given_texts(outcome, analyte, variable)
        codes, low, high = outcome.evaluation.cross_codes[analyte]
        labels = [*variable.labels, "", "", ""]
        head = f"{ANALYTES[analyte].title} "
        tail_of = np.array(
            [
                f" is not read by {policy.table.key}; {reference.key} reads it in its {label} band"
                for label in variable.labels
            ]
            + [""] * 3,
            dtype=object,
        )
        index = np.where(codes >= 0, codes, len(variable.labels) - codes - 1)
        statement = np.full(outcome.n, "", dtype=object)
        statement[present] = head + given[column.rows[present]] + tail_of[index[present]]
        spans = present & (codes == engine.CENSORED)
        if spans.any():
            size = len(variable.labels)
            words = np.array(
                [
                    f" is not read by {policy.table.key}; in {reference.key} it may lie in the "
                    f"{labels[lo]} to {labels[hi]} bands"
                    for lo in range(size)
                    for hi in range(size)
                ],
                dtype=object,
            )
            pair = low[spans].astype(np.intp) * size + high[spans]
            statement[spans] = head + given[column.rows[spans]] + words[pair]
        found.append(statement)
    return found


def _evidence_reason(policy: Policy, text: str, *, reported: bool = False) -> Reason:
    """The row's results in words; ``reported`` where some were banded against the reference
    range reported with them."""
    tables = policy.table.key + (f" and {policy.laboratory.key}" if policy.laboratory else "")
    ranges = " and the reference ranges reported with them" if reported else ""
    return Reason(
        rule=None,
        text=f"Results: {text}.",
        table=policy.table.key,
        source=f"the row's results against the bands of {tables}{ranges}",
    )


def _reported_rows(outcome: Outcome) -> npt.NDArray[np.bool_]:
    """Rows some result of which was banded against the range reported with it."""
    used = np.zeros(outcome.n, dtype=np.bool_)
    for reported in outcome.evaluation.namespace.reported.values():
        used |= reported.used
    return used


def _derived_from(outcome: Outcome, row: int) -> str | None:
    """How a derived eGFR was derived: the equation, its inputs, and whose constants."""
    derivation = outcome.derivation
    if derivation is None or not derivation.derived[row]:
        return None
    creatinine = outcome.parsed["creatinine"]
    given = _given(creatinine, int(creatinine.rows[row]))
    context = outcome.context.context
    sex = CONTEXT_LABELS["sex"][int(context.sex[row])]
    equation = derivation.equation
    return (
        f"{equation.title} from serum creatinine {given}, age {float(context.age[row]):g}, "
        f"{sex}; constants from {equation.table} ({equation.source})"
    )


def _withheld_note(equation: Equation, why: int) -> str:
    """Why no eGFR was derived from a row's creatinine ("" when nothing was withheld)."""
    if not why:
        return ""
    parts = [
        text
        for bit, text in (
            (AGE_MISSING, "age not given"),
            (AGE_BELOW_MINIMUM, f"age under {equation.min_age:g} years"),
            (SEX_MISSING, "sex not given"),
            (NO_CREATININE, "creatinine is not above zero"),
        )
        if why & bit
    ]
    return f"eGFR not derived from creatinine ({equation.title}): {', '.join(parts)}"


# -- one patient ------------------------------------------------------------------------------


def result(outcome: Outcome, row: int = 0) -> Result:
    """The typed result of one row (which must have no error)."""
    policy, evaluation = outcome.policy, outcome.evaluation
    markers = {
        analyte: marker
        for analyte in outcome.parsed
        if (marker := _marker(outcome, analyte, row)) is not None
    }
    parts = _why_parts(outcome)
    why = _why(outcome, parts, int(_why_keys([(n, c[row : row + 1], k) for n, c, k in parts])[0]))
    flags = tuple(
        Flag(
            id=o.flag.id,
            message=o.flag.message,
            markers=o.markers_at(row),
            table=o.table.key,
            source=o.flag.source,
        )
        for o in evaluation.flags
        if o.applies[row]
    )
    note = outcome.context.note(row)
    if outcome.derivation is not None:
        withheld = _withheld_note(
            outcome.derivation.equation, int(outcome.derivation.withheld[row])
        )
        note = "; ".join(text for text in (note, withheld) if text)
    return Result(
        category=Category.from_rank(int(evaluation.rank[row])),
        rule=_rule_id(policy, int(evaluation.rule[row])),
        markers=markers,
        flags=flags,
        reasons=_reasons(policy, why) + _row_evidence(outcome, row),
        table=table_ref(policy.table, policy.laboratory),
        notes=tuple(note.split("; ")) if note else (),
    )


def _row_evidence(outcome: Outcome, row: int) -> tuple[Reason, ...]:
    evidence = _evidence(outcome)
    if evidence is None or not evidence[row]:
        return ()
    reported = bool(_reported_rows(outcome)[row])
    return (_evidence_reason(outcome.policy, str(evidence[row]), reported=reported),)


def _rule_id(policy: Policy, index: int) -> str | None:
    return policy.rules[index].id if index >= 0 else SPECIAL_RULES.get(index)


def _marker(outcome: Outcome, analyte: str, row: int) -> MarkerResult | None:
    column = outcome.parsed[analyte]
    cell = int(column.rows[row])
    note = _marker_notes(outcome, analyte)
    note_text = note.texts[int(note.codes[row])] or None
    given = _given(column, cell)
    if given is None:
        if note_text is None:
            return None
        return MarkerResult(
            analyte=analyte,
            given=str(column.notes[cell]).removeprefix("no result: "),
            value=None,
            censoring=Censoring.NONE,
            band=None,
            interpretation=None,
            indeterminate_because_censored=False,
            compared_in=None,
            table=None,
            source=None,
            note=note_text,
        )
    policy = outcome.policy
    band = interpretation = compared_in = table = source = reference_range = None
    spans = False
    if _banded(policy, analyte):
        variable = policy.variables[analyte]
        code = int(_band_codes(outcome, analyte)[row])
        spans = code == engine.CENSORED
        table = policy.suppliers[analyte].key
        compared_in = display_unit(variable.units[comparison_basis(given.unit, variable.units)])
        if code >= 0:
            band = variable.labels[code]
            interpretation = Interpretation(variable.interpretations[code])
            stratum = int(outcome.evaluation.namespace.strata[analyte][row])
            source = policy.bands[analyte].all_strata()[stratum].bands[code].source
        elif spans:
            interpretation = Interpretation.INDETERMINATE
        reported = outcome.evaluation.namespace.reported.get(analyte)
        if reported is not None and reported.used[row]:
            reference_range = reported.texts[int(reported.key[row])]
            compared_in = reported.units[int(reported.key[row])]
            source = f"reference range reported with the result: {reference_range}"
    canonical = given.canonical()
    return MarkerResult(
        analyte=analyte,
        given=str(given),
        value=quantity(canonical.value, ANALYTES[analyte].canonical_unit),
        censoring=given.censoring,
        band=band,
        interpretation=interpretation,
        indeterminate_because_censored=spans,
        compared_in=compared_in,
        table=table,
        source=source,
        note=note_text,
        derived_from=_derived_from(outcome, row) if analyte == "egfr" else None,
        reference_range=reference_range,
    )


def _given(column: ParsedColumn, cell: int) -> Measurement | None:
    """The result of a distinct cell as it was reported, or None when it has none."""
    observed = column.observed
    interval = observed.interval
    if not interval.present[cell]:
        return None
    sign = Censoring(str(column.signs[cell]))
    below = sign in (Censoring.BELOW, Censoring.AT_OR_BELOW)
    value = float(interval.hi[cell] if below else interval.lo[cell])
    unit = observed.units[int(observed.unit_codes[cell])]
    return Measurement(observed.analyte, value, unit, sign)


def table_ref(table: Table, laboratory: Table | None) -> TableRef:
    """A table pinned by id, version and SHA-256, with its citation."""
    citation = table.model.citation
    text = f"{citation.document} ({citation.year})"
    if citation.section:
        text += f", {citation.section}"
    return TableRef(
        id=table.id,
        version=table.version,
        sha256=table.sha256,
        status=table.model.status,
        citation=text,
        url=citation.url,
        caveats=tuple(table.model.caveats),
        laboratory=table_ref(laboratory, None) if laboratory is not None else None,
    )


# -- output columns ---------------------------------------------------------------------------


def columns(outcome: Outcome, *, explain: bool) -> dict[str, object]:
    """The ``b12lab_*`` output columns, categorical where values repeat."""
    ok = outcome.errors.ok
    policy, evaluation = outcome.policy, outcome.evaluation
    new: dict[str, object] = {}
    for analyte, column in outcome.parsed.items():
        new |= _marker_columns(outcome, analyte, column, ok)
    categories = [Category.from_rank(r).value for r in range(4)]
    new[f"{PREFIX}category"] = labelled(np.where(ok, evaluation.rank, 4), [*categories, ""])
    rule_ids = [r.id for r in policy.rules]
    if _schema(policy) >= 2:  # codes from CROSS_CHECKED (-4) to CENSORED_AGREE (-2)
        rule_ids += [SPECIAL_RULES[code] for code in sorted(SPECIAL_RULES)]
    rule_ids.append("")  # NO_RULE (-1) is the last entry
    new[f"{PREFIX}rule"] = labelled(np.where(ok, evaluation.rule, -1), rule_ids)
    if explain:
        new[f"{PREFIX}reasons"] = _reason_column(outcome, ok)
    new[f"{PREFIX}flags"] = _flag_column(outcome, ok)
    new[f"{PREFIX}flag_markers"] = _flag_marker_column(outcome, ok)
    new[f"{PREFIX}notes"] = _context_notes(outcome, ok)
    same = np.zeros(outcome.n, dtype=np.int8)
    new[f"{PREFIX}table"] = from_codes(same, [policy.table.key])
    laboratory = policy.laboratory.key if policy.laboratory is not None else ""
    new[f"{PREFIX}laboratory"] = from_codes(same, [laboratory])
    codes, messages = outcome.errors.codes, outcome.errors
    texts = ["", *(messages.message(k) for k in range(len(messages.errors)))]
    new[f"{PREFIX}error"] = labelled(codes + 1, texts)
    return new


def _context_notes(outcome: Outcome, ok: npt.NDArray[np.bool_]) -> pd.Categorical:
    notes = outcome.context.notes
    derivation = outcome.derivation
    if derivation is not None and derivation.withheld.any():
        return _notes_with_withheld(notes, derivation, ok)
    if notes is None:
        return from_codes(np.zeros(outcome.n, dtype=np.int8), [""])
    codes, texts = pd.factorize(np.where(ok, notes, ""))
    return from_codes(codes, [str(t) for t in texts])


def _notes_with_withheld(
    notes: npt.NDArray[np.object_] | None, derivation: Derivation, ok: npt.NDArray[np.bool_]
) -> pd.Categorical:
    """Context notes, then why no eGFR was derived: one key per row, one text per key."""
    codes: npt.NDArray[np.intp] = np.zeros(len(ok), dtype=np.intp)
    texts = [""]
    if notes is not None:
        factorized, distinct = pd.factorize(notes)
        codes, texts = np.asarray(factorized, dtype=np.intp), [str(t) for t in distinct]
    width = len(texts)
    keys = np.where(ok, derivation.withheld.astype(np.int64) * width + codes + 1, 0)

    def render(key: int) -> str:
        if key == 0:  # a row with an error
            return ""
        why, code = divmod(key - 1, width)
        withheld = _withheld_note(derivation.equation, why)
        return "; ".join(text for text in (texts[code], withheld) if text)

    return per_key(keys, render)


def _marker_columns(
    outcome: Outcome, analyte: str, column: ParsedColumn, ok: npt.NDArray[np.bool_]
) -> dict[str, object]:
    observed = column.observed
    canonical = observed.canonical()
    points = canonical.lo is canonical.hi
    value = canonical.lo if points else np.where(np.isinf(canonical.hi), canonical.lo, canonical.hi)
    value = np.where(canonical.present, value, np.nan)
    shown = observed.present
    misplaced = outcome.errors.from_reader
    if misplaced.any():  # a ragged line's cells may sit in the wrong columns: show none
        shown = shown & ~misplaced
    new: dict[str, object] = {
        f"{PREFIX}{analyte}": np.where(shown, observed.per_row(value), np.nan)
    }
    if analyte == "egfr" and outcome.derivation is not None:
        new[f"{PREFIX}egfr_derived"] = outcome.derivation.derived & shown
    new[f"{PREFIX}{analyte}_censoring"] = _censoring(column, shown)
    if _banded(outcome.policy, analyte):
        new[f"{PREFIX}{analyte}_band"], new[f"{PREFIX}{analyte}_interpretation"] = _bands(
            outcome.policy, analyte, _band_codes(outcome, analyte), ok
        )
    notes = _marker_notes(outcome, analyte, ok)
    new[f"{PREFIX}{analyte}_note"] = labelled(notes.codes, notes.texts)
    if analyte in outcome.ranges:
        new[f"{PREFIX}{analyte}_range_source"] = _range_source(outcome, analyte, shown & ok)
    return new


def _censoring(column: ParsedColumn, shown: npt.NDArray[np.bool_]) -> pd.Categorical:
    """Each shown row's censoring sign ("" elsewhere); the signs are factorized per cell (a
    column read row by row has a cell per row, so no list of them is built)."""
    if not column.signed:  # every row's sign is ""
        return from_codes(np.zeros(len(shown), dtype=np.int32), [""])
    size = len(column.signs)
    codes, signs = pd.factorize(column.signs)
    categories = [str(sign) for sign in signs]
    if "" not in categories:
        categories.append("")
    lookup = np.empty(size + 1, dtype=np.int32)
    lookup[:size] = codes
    lookup[size] = categories.index("")
    return from_codes(lookup[np.where(shown, column.rows, size)], categories)


def _range_source(outcome: Outcome, analyte: str, shown: npt.NDArray[np.bool_]) -> pd.Categorical:
    """Per row: ``reported`` where the result was banded against the range reported with it,
    ``table`` where by the table's edges, ``""`` where it has no band."""
    source = np.where(shown & _banded(outcome.policy, analyte), 1, 2)
    reported = outcome.evaluation.namespace.reported.get(analyte)
    if reported is not None:
        source = np.where(shown & reported.used, 0, source)
    return labelled(source, ["reported", "table", ""])


def _bands(
    policy: Policy, analyte: str, codes: npt.NDArray[np.int16], ok: npt.NDArray[np.bool_]
) -> tuple[pd.Categorical, pd.Categorical]:
    """Band labels and FHIR codes per row; a censored result spanning bands has no band, IND."""
    variable = policy.variables[analyte]
    size = len(variable.labels)
    # Special codes -1 (missing), -2 (censored), -3 (unbanded) index the padding after the labels.
    index = np.where(ok, np.where(codes >= 0, codes, size - codes - 1), size)
    labels = [*variable.labels, "", "", ""]
    interpretations = [*variable.interpretations, "", Interpretation.INDETERMINATE.value, ""]
    return labelled(index, labels), labelled(index, interpretations)


def _reason_column(
    outcome: Outcome, ok: npt.NDArray[np.bool_]
) -> pd.Categorical | npt.NDArray[np.object_]:
    parts = _why_parts(outcome)
    keys = np.where(ok, _why_keys(parts) + 1, 0)  # 0: a row with an error

    def render(key: int) -> str:
        if key == 0:
            return ""
        return _reason_text(_reasons(outcome.policy, _why(outcome, parts, key - 1)))

    reasons = per_key(keys, render)
    evidence = _evidence(outcome)
    if evidence is None:
        return reasons
    quoted = ok & (evidence != "")
    if not quoted.any():
        return reasons
    texts = np.asarray(reasons, dtype=object)
    used = _reported_rows(outcome)
    for reported in (False, True):
        rows = quoted & (used == reported)
        if not rows.any():
            continue
        reason = _evidence_reason(outcome.policy, "\0", reported=reported)
        before, after = _reason_text([reason]).split("\0")
        texts[rows] = texts[rows] + (REASON_SEPARATOR + before) + evidence[rows] + after
    return texts  # quoting each row's values makes most texts distinct: no categories


def _flag_column(outcome: Outcome, ok: npt.NDArray[np.bool_]) -> pd.Categorical:
    flags = outcome.evaluation.flags
    keys = np.where(ok, _packed([(o.holds, o.combination) for o in flags], outcome.n), 0)
    return per_key(
        keys, lambda key: ";".join(o.flag.id for i, o in enumerate(flags) if key >> i & 1)
    )


def _flag_marker_column(outcome: Outcome, ok: npt.NDArray[np.bool_]) -> pd.Categorical:
    pairs = [
        (o.flag.id, name, holds & o.holds, o.combination)
        for o in outcome.evaluation.flags
        for name, holds in o.marker_holds
    ]
    keys = np.where(ok, _packed([(holds, rows) for _, _, holds, rows in pairs], outcome.n), 0)

    def render(key: int) -> str:
        grouped: dict[str, list[str]] = {}
        for i, (flag, name, _, _) in enumerate(pairs):
            if key >> i & 1:
                grouped.setdefault(flag, []).append(name)
        return _flag_markers_text(list(grouped.items()))

    return per_key(keys, render)


def flag_markers_text(flags: Sequence[Flag]) -> str:
    """``b12lab_flag_markers`` for a typed result's flags (the frame's words, for comparison)."""
    return _flag_markers_text([(f.id, f.markers) for f in flags])


def reasons_text(reasons: Sequence[Reason]) -> str:
    """``b12lab_reasons`` for a typed result's reasons (the frame's words, for comparison)."""
    return _reason_text(reasons)


# -- categorical helpers ----------------------------------------------------------------------


def bits(masks: Sequence[npt.NDArray[np.bool_]], n: int) -> npt.NDArray[np.int64]:
    """Boolean columns packed into one integer per row (at most 62 columns)."""
    if len(masks) > 62:
        raise ValueError("more than 62 flags or markers cannot be packed")
    packed = np.zeros(n, dtype=np.int64)
    for position, mask in enumerate(masks):
        packed |= mask.astype(np.int64) << position
    return packed


def _packed(
    columns: Sequence[tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp] | None]], n: int
) -> npt.NDArray[np.int64]:
    """:func:`bits` for columns given per row (index None) or per combination of band codes
    with each row's combination: those are packed per combination, then gathered once."""
    if len(columns) > 62:
        raise ValueError("more than 62 flags or markers cannot be packed")
    packed = np.zeros(n, dtype=np.int64)
    grouped: dict[int, tuple[npt.NDArray[np.intp], list[tuple[int, npt.NDArray[np.bool_]]]]] = {}
    for position, (mask, rows) in enumerate(columns):
        if rows is None:
            packed |= mask.astype(np.int64) << position
        else:
            grouped.setdefault(id(rows), (rows, []))[1].append((position, mask))
    for rows, masks in grouped.values():
        small = np.zeros(masks[0][1].shape[0], dtype=np.int64)
        for position, mask in masks:
            small |= mask.astype(np.int64) << position
        packed |= small[rows]
    return packed


def per_key(keys: npt.NDArray[np.int64], render: Callable[[int], str]) -> pd.Categorical:
    """A text per row that depends only on its integer key, rendered once per distinct key."""
    dense = keys.size >= 1 << 16 and int(keys.max()) < 1 << 24
    distinct, codes = _dense_unique(keys) if dense else np.unique(keys, return_inverse=True)
    texts = [render(int(key)) for key in distinct]
    return labelled(np.asarray(codes).reshape(-1), texts or [""])


def _dense_unique(
    keys: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """``np.unique`` with ``return_inverse`` for small non-negative keys, without sorting."""
    seen = np.flatnonzero(np.bincount(keys))
    position = np.zeros(int(seen[-1]) + 1, dtype=np.intp)
    position[seen] = np.arange(seen.shape[0])
    return seen.astype(np.int64), position[keys]


def labelled(index: npt.NDArray[np.integer], values: list[str]) -> pd.Categorical:
    """``values[index]`` as a categorical: repeated values share one category."""
    lookup, categories = pd.factorize(np.asarray(values, dtype=object))
    return from_codes(np.asarray(lookup, dtype=np.int32)[index], [str(c) for c in categories])


def from_codes(codes: npt.NDArray[np.integer], categories: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object))
