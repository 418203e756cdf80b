"""The vectorized core: band codes with censored-interval logic, rules and flags as masks.

Everything here takes and returns numpy arrays, one element per patient; one patient is an array
of length one. It imports neither pint, pydantic nor pandas, and holds no clinical number: the
edges, rules and flags arrive compiled from a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "CENSORED",
    "MISSING",
    "NO_RULE",
    "UNBANDED",
    "CompiledCondition",
    "CompiledTable",
    "CompiledVariable",
    "Context",
    "Decision",
    "Interval",
    "band_codes",
    "comparison_values",
    "decide",
    "edge_counts",
    "stratum_index",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int16]

MISSING = -1
CENSORED = -2
UNBANDED = -3
NO_RULE = -1
CENSORED_AGREE = -2
"""Rule code: a censored result's possible bands lead to one category by different rules."""
CENSORED_SPLIT = -3
"""Rule code: a censored result's possible bands lead to different categories."""
CROSS_CHECKED = -4
"""Rule code: the category was raised because a marker the table does not read is abnormal
under the table it is checked against."""
SPECIAL_CODES = {"missing": MISSING, "censored": CENSORED, "unbanded": UNBANDED}

GUARD_DECIMALS = 6
"""Digits kept beyond a table's published precision when comparing (:func:`comparison_values`)."""


@dataclass(frozen=True)
class Interval:
    """Results as intervals [lo, hi] in some unit; an exact result has lo == hi, both closed.

    ``<148`` is [0, 148) and ``>1476`` is (1476, inf). ``present`` is False where there is no
    result; the other arrays are then ignored.
    """

    lo: FloatArray
    hi: FloatArray
    lo_open: BoolArray
    hi_open: BoolArray
    present: BoolArray

    def __len__(self) -> int:
        return int(self.lo.shape[0])


@dataclass(frozen=True)
class Context:
    """Per-patient context. Codes: sex 0 female, 1 male; pregnant, nitrous_oxide,
    b12_replacement and risk_medicine 0 true, 1 false; -1 unknown. Age in years, NaN unknown."""

    sex: IntArray
    pregnant: IntArray
    nitrous_oxide: IntArray
    b12_replacement: IntArray
    risk_medicine: IntArray
    age: FloatArray


@dataclass(frozen=True)
class Stratum:
    sex: int  # -1: any
    pregnant: int  # -1: any
    age_min: float
    age_max: float


@dataclass(frozen=True)
class CompiledVariable:
    """A variable's bands: ``edges[stratum, unit, edge]`` in each published unit.

    ``edge_to_upper[stratum, edge]`` is True when a value exactly on the edge belongs to the band
    above it (the source says "less than" for the band below).
    """

    name: str
    labels: tuple[str, ...]
    interpretations: tuple[str, ...]
    units: tuple[str, ...]
    decimals: tuple[int, ...]
    edges: FloatArray
    edge_to_upper: BoolArray
    strata: tuple[Stratum, ...]


@dataclass(frozen=True)
class CompiledCondition:
    """Alternatives of allowed codes per variable.

    A row matches when, in any one alternative, every variable's code is allowed.
    """

    alternatives: tuple[tuple[tuple[str, tuple[int, ...]], ...], ...]


@dataclass(frozen=True)
class CompiledTable:
    """A table's variables, rules (with their category ranks) and flags, ready for the core.

    ``markers[i]`` says which analytes flag ``i`` rests on: an analyte holds where an
    alternative of the flag that names it holds with that analyte outside its normal band.
    """

    variables: Mapping[str, CompiledVariable]
    rules: tuple[CompiledCondition, ...]
    rule_ranks: tuple[int, ...]
    flags: tuple[CompiledCondition, ...]
    markers: tuple[tuple[tuple[str, CompiledCondition], ...], ...] = ()

    @property
    def marker_conditions(self) -> tuple[CompiledCondition, ...]:
        return tuple(condition for flag in self.markers for _, condition in flag)


@dataclass(frozen=True)
class Decision:
    """Per row: rule index (or NO_RULE), category rank, flag matrix and flag-marker matrix.

    ``markers`` has one column per (flag, analyte) pair of ``CompiledTable.markers``, in order.
    With ``combination``, the two matrices have a row per distinct combination of codes, and
    ``combination`` is each row's.
    """

    rule: IntArray
    rank: IntArray
    flags: BoolArray
    markers: BoolArray
    possible: IntArray
    """Bit ``r`` set where category rank ``r`` is possible (one bit unless results are censored)."""
    combination: npt.NDArray[np.intp] | None = None


def comparison_values(values: FloatArray, factors: FloatArray | float, decimals: int) -> FloatArray:
    """Convert to the comparison unit and round to the published precision plus guard digits.

    Conversion factors carry floating-point noise of about 1e-16 relative, so 180 ng/L given as
    pg/mL can arrive as 179.99999999999997. Rounding to six decimals beyond what the table
    published removes that noise, and never moves a value by more than 5e-7 of a published step.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        converted = values * factors
        rounded = np.round(converted, decimals + GUARD_DECIMALS)
    # Rounding scales by 10**digits: a value near the float limit would overflow; keep it as is
    # (NaN and infinities round to themselves, so they are kept as they are too).
    return np.where(np.isfinite(rounded), rounded, converted)


def stratum_index(variable: CompiledVariable, context: Context) -> IntArray:
    """The first stratum that applies to each patient, or -1 where none does."""
    first = variable.strata[0] if variable.strata else None
    if first is not None and _applies_to_all(first):  # one stratum for everyone: no comparing
        return np.zeros(context.age.shape[0], dtype=np.int16)
    chosen = np.full(context.age.shape[0], -1, dtype=np.int16)
    for index, stratum in enumerate(variable.strata):
        applies = chosen == -1
        if stratum.sex != -1:
            applies &= context.sex == stratum.sex
        if stratum.pregnant != -1:
            applies &= context.pregnant == stratum.pregnant
        if np.isfinite(stratum.age_min) or np.isfinite(stratum.age_max):
            with np.errstate(invalid="ignore"):
                applies &= (context.age >= stratum.age_min) & (context.age < stratum.age_max)
        chosen[applies] = index
    return chosen


def _applies_to_all(stratum: Stratum) -> bool:
    return bool(
        stratum.sex == -1
        and stratum.pregnant == -1
        and not (np.isfinite(stratum.age_min) or np.isfinite(stratum.age_max))
    )


def band_codes(
    variable: CompiledVariable, interval: Interval, basis: IntArray, stratum: IntArray
) -> IntArray:
    """Band index per patient; CENSORED where the interval spans bands; MISSING; UNBANDED."""
    return band_range(variable, interval, basis, stratum)[0]


def band_range(
    variable: CompiledVariable, interval: Interval, basis: IntArray, stratum: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """Band codes, and the lowest and highest band each interval touches.

    ``basis`` says which published unit each row's interval is expressed in. A point counts the
    edges it lies above (on an edge: above it when the edge belongs to the upper band); an open
    interval end counts from just inside its end. The interval has one band when both ends agree,
    else its code is CENSORED and ``low``..``high`` are the bands it may lie in.
    """
    low, high = edge_counts(interval, _edges(variable, basis, stratum))
    exact = low is high
    codes = low.copy() if exact else np.where(low == high, low, CENSORED).astype(np.int16)
    codes[stratum < 0] = UNBANDED
    codes[~interval.present] = MISSING
    return codes, low, high


def _edges(
    variable: CompiledVariable, basis: IntArray, stratum: IntArray
) -> Iterator[tuple[FloatArray | np.float64, BoolArray | np.bool_]]:
    """Each edge and its closure, one at a time (ten million rows need no stack of edge
    arrays): scalars where every row shares a stratum and a unit, else per row."""
    count = variable.edges.shape[2]
    if variable.edges.shape[0] == 1:  # one stratum: the closures are the same for every row
        units = variable.edges[0]
        shared = units.shape[0] == 1 or not basis.size or bool((basis == basis[0]).all())
        unit = int(basis[0]) if shared and units.shape[0] > 1 and basis.size else 0
        for index in range(count):
            edge = units[unit, index] if shared else units[:, index][basis]
            yield edge, variable.edge_to_upper[0, index]
        return
    safe_stratum = np.where(stratum < 0, 0, stratum)
    for index in range(count):
        yield (
            variable.edges[safe_stratum, basis, index],
            variable.edge_to_upper[safe_stratum, index],
        )


def edge_counts(
    interval: Interval, edges: Iterable[tuple[FloatArray | np.float64, BoolArray | np.bool_]]
) -> tuple[IntArray, IntArray]:
    """How many edges each interval's lower and upper end lie past (the same array when every
    interval is a point): band indices, for ``(edge, to_upper)`` pairs given per row or as
    scalars.

    A point counts the edges it lies above (on an edge: above it when the edge belongs to the
    upper band); an open interval end counts from just inside its end.
    """
    points = interval.lo is interval.hi  # one array: no need to compare (NaNs are missing)
    exact = not (
        interval.lo_open.any()
        or interval.hi_open.any()
        or (not points and (interval.lo != interval.hi).any())
    )
    low = np.zeros(len(interval), dtype=np.int16)
    high = low if exact else np.zeros(len(interval), dtype=np.int16)
    with np.errstate(invalid="ignore"):
        for edge, upper in edges:
            low += _past(interval.lo, edge, upper, None if exact else interval.lo_open, above=True)
            if not exact:
                high += _past(interval.hi, edge, upper, interval.hi_open, above=False)
    return low, high


def _past(
    values: FloatArray,
    edge: FloatArray | np.float64,
    to_upper: BoolArray | np.bool_,
    open_end: BoolArray | None,
    *,
    above: bool,
) -> BoolArray:
    """Whether each value (or the point just inside its open end) lies past ``edge``.

    On the edge, a closed end belongs where the edge does; an open lower end lies just above the
    edge (past it), an open upper end just below (not past it).
    """
    if open_end is None and isinstance(to_upper, (bool, np.bool_)):  # one closure: one compare
        closed: BoolArray = values >= edge if to_upper else values > edge
        return closed
    on_edge = values == edge
    owner = to_upper if open_end is None else np.where(open_end, above, to_upper)
    past: BoolArray = (values > edge) | (on_edge & owner)
    return past


_SHIFT = 3  # special codes run from -3; shifted codes index lookup tables from 0


def _shifted(codes: Mapping[str, IntArray]) -> dict[str, npt.NDArray[np.intp]]:
    return {name: values.astype(np.intp) + _SHIFT for name, values in codes.items()}


def _matches(
    condition: CompiledCondition, shifted: Mapping[str, npt.NDArray[np.intp]], n: int
) -> BoolArray:
    """Lookup tables instead of ``isin``: codes are small integers."""
    matched = np.zeros(n, dtype=np.bool_)
    for alternative in condition.alternatives:
        mask = np.ones(n, dtype=np.bool_)
        for name, allowed in alternative:
            values = shifted[name]
            # The last slot stays False: codes past every allowed one are clipped onto it.
            lookup = np.zeros(max(*allowed, 0) + _SHIFT + 2, dtype=np.bool_)
            lookup[np.asarray(allowed, dtype=np.intp) + _SHIFT] = True
            mask &= lookup[np.minimum(values, lookup.shape[0] - 1)]
        matched |= mask
    return matched


MAX_COMBINATIONS = 1 << 22


def distinct_combinations(
    codes: Mapping[str, IntArray], names: Sequence[str], n: int
) -> tuple[dict[str, IntArray], npt.NDArray[np.intp], int]:
    """The distinct combinations of the named variables' codes, and each row's combination.

    Rules and flags depend on the codes alone, so they need evaluating once per combination
    present (a few hundred) rather than once per row. The codes are packed into one integer
    key per row; when the key space would grow past MAX_COMBINATIONS, the keys seen so far are
    renumbered densely, so the packing never overflows however many variables there are.
    """
    lows = [int(codes[name].min()) if n else 0 for name in names]
    highs = [int(codes[name].max()) if n else 0 for name in names]
    sizes = [high - low + 1 for low, high in zip(lows, highs, strict=True)]
    key = np.zeros(n, dtype=np.intp)
    stride = 1
    renumbered = False
    for name, low, size in zip(names, lows, sizes, strict=True):
        if size == 1:  # the same code in every row: it tells no combination apart
            continue
        if stride * size > MAX_COMBINATIONS:
            _, key = np.unique(key, return_inverse=True)
            key = key.reshape(-1).astype(np.intp)
            stride = int(key.max(initial=0)) + 1
            renumbered = True
        key += (codes[name].astype(np.intp) - low) * stride
        stride *= size
    if renumbered:
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        reduced = {name: codes[name][first] for name in names}
        return reduced, inverse.reshape(-1).astype(np.intp), int(first.shape[0])
    seen = np.flatnonzero(np.bincount(key, minlength=1)) if n else np.zeros(0, dtype=np.intp)
    position = np.zeros(stride, dtype=np.intp)
    position[seen] = np.arange(seen.shape[0])
    reduced = {}
    remainder = seen.copy()
    for name, low, size in zip(names, lows, sizes, strict=True):
        if size == 1:
            reduced[name] = np.full(seen.shape[0], low, dtype=np.int16)
            continue
        reduced[name] = (remainder % size + low).astype(np.int16)
        remainder //= size
    return reduced, position[key], int(seen.shape[0])


Spans = Mapping[str, tuple[IntArray, IntArray]]
"""Per censored variable: the lowest and highest band each row's interval touches."""


def decide_and_flag(
    table: CompiledTable,
    codes: Mapping[str, IntArray],
    n: int,
    spans: Spans | None = None,
    *,
    uncertain_rank: int = 0,
) -> Decision:
    """Rules per row, and flags and flag markers per distinct combination of codes with each
    row's combination; all computed once per combination.

    With ``spans``, a censored result is evaluated in every band it may lie in: the rows of one
    result agree on a rule (that rule), or on a category (CENSORED_AGREE), or else take
    ``uncertain_rank`` (CENSORED_SPLIT). A flag holds only where it holds in every band.
    """
    conditions = (*table.rules, *table.flags)
    names = sorted({name for c in conditions for a in c.alternatives for name, _ in a})
    spanned = sorted(name for name in (spans or {}) if name in names)
    keyed = dict(codes)
    for name in spanned:
        assert spans is not None
        censored = codes[name] == CENSORED
        low, high = spans[name]
        keyed[f"{name}:low"] = np.where(censored, low, 0).astype(np.int16)
        keyed[f"{name}:high"] = np.where(censored, high, 0).astype(np.int16)
    key_names = names + [f"{name}:{end}" for name in spanned for end in ("low", "high")]
    reduced, row_to_combination, size = distinct_combinations(keyed, key_names, n)
    if spanned:
        decision = _enumerated(table, reduced, size, spanned, uncertain_rank)
    else:
        decision = _decision(table, reduced, size)
    return Decision(
        decision.rule[row_to_combination],
        decision.rank[row_to_combination],
        decision.flags,
        decision.markers,
        decision.possible[row_to_combination],
        row_to_combination,
    )


def _enumerated(
    table: CompiledTable,
    codes: Mapping[str, IntArray],
    n: int,
    spanned: Sequence[str],
    uncertain_rank: int,
) -> Decision:
    """Decide each row once per band combination its censored results allow, then reduce."""
    widths = np.ones(n, dtype=np.intp)
    for name in spanned:
        censored = codes[name] == CENSORED
        span = codes[f"{name}:high"].astype(np.intp) - codes[f"{name}:low"] + 1
        widths *= np.where(censored, span, 1)
    origin = np.repeat(np.arange(n, dtype=np.intp), widths)
    starts = np.zeros(n, dtype=np.intp)
    np.cumsum(widths[:-1], out=starts[1:])
    offset = np.arange(origin.shape[0], dtype=np.intp) - starts[origin]
    expanded = {name: values[origin] for name, values in codes.items()}
    for name in spanned:
        censored = expanded[name] == CENSORED
        low = expanded[f"{name}:low"].astype(np.intp)
        span = np.where(censored, expanded[f"{name}:high"] - low + 1, 1)
        expanded[name] = np.where(censored, low + offset % span, expanded[name]).astype(np.int16)
        offset //= span
    each = _decision(table, expanded, origin.shape[0])
    if n == 0:
        return each
    low_rule = np.minimum.reduceat(each.rule, starts)
    high_rule = np.maximum.reduceat(each.rule, starts)
    low_rank = np.minimum.reduceat(each.rank, starts)
    high_rank = np.maximum.reduceat(each.rank, starts)
    agree = low_rank == high_rank
    rule = np.where(
        low_rule == high_rule, low_rule, np.where(agree, CENSORED_AGREE, CENSORED_SPLIT)
    ).astype(np.int16)
    rank = np.where(agree, low_rank, uncertain_rank).astype(np.int16)
    possible = np.bitwise_or.reduceat(np.left_shift(1, each.rank).astype(np.int16), starts)
    flags = np.logical_and.reduceat(each.flags, starts, axis=0)
    markers = np.logical_and.reduceat(each.markers, starts, axis=0)
    return Decision(rule, rank, flags, markers, possible.astype(np.int16))


def _decision(table: CompiledTable, codes: Mapping[str, IntArray], n: int) -> Decision:
    rule, rank = decide(table, codes, n)
    flags = _condition_matrix(table.flags, codes, n)
    markers = _condition_matrix(table.marker_conditions, codes, n)
    return Decision(rule, rank, flags, markers, np.left_shift(1, rank).astype(np.int16))


def decide(
    table: CompiledTable, codes: Mapping[str, IntArray], n: int
) -> tuple[IntArray, IntArray]:
    """Apply the rules in order, first match wins: (rule index or NO_RULE, category rank)."""
    chosen = np.full(n, NO_RULE, dtype=np.int16)
    shifted = _shifted(codes)
    for index, rule in enumerate(table.rules):
        hit = (chosen == NO_RULE) & _matches(rule, shifted, n)
        chosen[hit] = index
    ranks = np.asarray((*table.rule_ranks, 0), dtype=np.int16)
    return chosen, ranks[chosen]


def _condition_matrix(
    conditions: Sequence[CompiledCondition], codes: Mapping[str, IntArray], n: int
) -> BoolArray:
    matrix = np.zeros((n, len(conditions)), dtype=np.bool_)
    shifted = _shifted(codes)
    for index, condition in enumerate(conditions):
        matrix[:, index] = _matches(condition, shifted, n)
    return matrix
