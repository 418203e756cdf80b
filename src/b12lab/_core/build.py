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
from b12lab._core.kidney import AGE_BELOW_MINIMUM, AGE_MISSING, SEX_MISSING, Equation
from b12lab._core.measurements import Measurement
from b12lab._core.observations import comparison_basis
from b12lab._core.pipeline import Outcome
from b12lab._core.policy import Policy
from b12lab._core.results import Flag, MarkerResult, Reason, Result, TableRef
from b12lab._core.table_schema import CONTEXT_LABELS
from b12lab._core.units import Quantity, display_unit, parse_unit
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
        return Reason(
            rule=None,
            text="No rule of the table applies to the results given: too few markers to decide.",
            table=table.key,
            source=f"{table.key}: no rule matched",
        )
    rule = policy.rules[rule_index]
    return Reason(rule=rule.id, text=rule.reason, table=table.key, source=rule.source)


def _censored_reason(policy: Policy, analyte: str) -> Reason:
    supplier = policy.suppliers[analyte].key
    return Reason(
        rule=None,
        text=f"{ANALYTES[analyte].title}: the censored result spans more than one band of "
        f"{supplier}, so its band cannot be decided.",
        table=supplier,
        source="b12lab interval rule",
    )


def _reasons(policy: Policy, rule_index: int, spanning: Sequence[str]) -> tuple[Reason, ...]:
    return (_rule_reason(policy, rule_index), *(_censored_reason(policy, a) for a in spanning))


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


def _marker_notes(outcome: Outcome, analyte: str) -> _Notes:
    column = outcome.parsed[analyte]
    if column.noted:
        distinct_codes, distinct_texts = pd.factorize(column.notes)
        texts = [str(t) for t in distinct_texts]
        codes = np.asarray(distinct_codes, dtype=np.intp)[column.rows]
    else:  # no cell states no result: every row starts with no note
        texts, codes = [""], np.zeros(outcome.n, dtype=np.intp)
    if "" not in texts:
        texts.append("")
    empty = texts.index("")
    codes = np.where(codes < 0, empty, codes)
    policy = outcome.policy
    present = column.observed.present
    if _banded(policy, analyte):
        band = _band_codes(outcome, analyte)
        texts += [CENSORED_NOTE, _unbanded_note(policy, analyte)]
        codes = np.where(band == engine.CENSORED, len(texts) - 2, codes)
        codes = np.where(present & (band == engine.UNBANDED), len(texts) - 1, codes)
    elif not _read_by_laboratory(policy, analyte):
        texts.append(_not_interpreted_note(policy))
        codes = np.where(present, len(texts) - 1, codes)
    return _Notes(np.where(outcome.errors.ok, codes, empty), texts)


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
        )
        if why & bit
    ]
    return f"eGFR not derived from creatinine ({equation.title}): {', '.join(parts)}"


def _spanning(outcome: Outcome) -> list[tuple[str, npt.NDArray[np.bool_]]]:
    return [
        (analyte, _band_codes(outcome, analyte) == engine.CENSORED)
        for analyte in outcome.parsed
        if _banded(outcome.policy, analyte)
    ]


# -- one patient ------------------------------------------------------------------------------


def result(outcome: Outcome, row: int = 0) -> Result:
    """The typed result of one row (which must have no error)."""
    policy, evaluation = outcome.policy, outcome.evaluation
    markers = {
        analyte: marker
        for analyte in outcome.parsed
        if (marker := _marker(outcome, analyte, row)) is not None
    }
    spanning = [a for a, spans in _spanning(outcome) if spans[row]]
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
        reasons=_reasons(policy, int(evaluation.rule[row]), spanning),
        table=table_ref(policy.table, policy.laboratory),
        notes=tuple(note.split("; ")) if note else (),
    )


def _rule_id(policy: Policy, index: int) -> str | None:
    return policy.rules[index].id if index != engine.NO_RULE else None


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
    band = interpretation = compared_in = table = source = None
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
    canonical = given.canonical()
    return MarkerResult(
        analyte=analyte,
        given=str(given),
        value=Quantity(canonical.value, parse_unit(ANALYTES[analyte].canonical_unit)),
        censoring=given.censoring,
        band=band,
        interpretation=interpretation,
        indeterminate_because_censored=spans,
        compared_in=compared_in,
        table=table,
        source=source,
        note=note_text,
        derived_from=_derived_from(outcome, row) if analyte == "egfr" else None,
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
    rule_ids = [r.id for r in policy.rules] + [""]  # NO_RULE (-1) is the last entry
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
    value = np.where(np.isinf(canonical.hi), canonical.lo, canonical.hi)
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
    new[f"{PREFIX}{analyte}_censoring"] = labelled(
        np.where(shown, column.rows, len(column.signs)), [*column.signs, ""]
    )
    if _banded(outcome.policy, analyte):
        new[f"{PREFIX}{analyte}_band"], new[f"{PREFIX}{analyte}_interpretation"] = _bands(
            outcome.policy, analyte, _band_codes(outcome, analyte), ok
        )
    notes = _marker_notes(outcome, analyte)
    new[f"{PREFIX}{analyte}_note"] = labelled(notes.codes, notes.texts)
    return new


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


def _reason_column(outcome: Outcome, ok: npt.NDArray[np.bool_]) -> pd.Categorical:
    spanning = _spanning(outcome)
    width = len(outcome.policy.rules) + 1  # the rule index, NO_RULE (-1) as the last
    keys = np.where(outcome.evaluation.rule < 0, width - 1, outcome.evaluation.rule).astype(
        np.int64
    )
    keys += width * bits([spans for _, spans in spanning], outcome.n)
    keys = np.where(ok, keys + 1, 0)  # 0: a row with an error

    def render(key: int) -> str:
        if key == 0:
            return ""
        rule, spans = (key - 1) % width, (key - 1) // width
        spanned = [a for i, (a, _) in enumerate(spanning) if spans >> i & 1]
        return _reason_text(
            _reasons(outcome.policy, engine.NO_RULE if rule == width - 1 else rule, spanned)
        )

    return per_key(keys, render)


def _flag_column(outcome: Outcome, ok: npt.NDArray[np.bool_]) -> pd.Categorical:
    flags = outcome.evaluation.flags
    keys = np.where(ok, bits([o.applies for o in flags], outcome.n), 0)
    return per_key(
        keys, lambda key: ";".join(o.flag.id for i, o in enumerate(flags) if key >> i & 1)
    )


def _flag_marker_column(outcome: Outcome, ok: npt.NDArray[np.bool_]) -> pd.Categorical:
    pairs = [
        (o.flag.id, name, holds & o.applies)
        for o in outcome.evaluation.flags
        for name, holds in o.markers
    ]
    keys = np.where(ok, bits([holds for _, _, holds in pairs], outcome.n), 0)

    def render(key: int) -> str:
        grouped: dict[str, list[str]] = {}
        for i, (flag, name, _) in enumerate(pairs):
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
