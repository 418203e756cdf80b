"""The schema of a reference-range table file, and the checks that make a table trustworthy.

A table is data: its bands (per variable, optionally stratified by sex, pregnancy and age), its
decision rules (first match wins), and its flags. Every number carries its source. The checks
here run at load, so a broken table fails with the file, field and problem named, never later.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from b12lab._core.analytes import ANALYTES
from b12lab._core.categories import Category, Interpretation
from b12lab._core.kidney import EQUATIONS, Equation
from b12lab._core.medicines import SEPARATORS, normal_name
from b12lab._core.units import conversion_factor
from b12lab.errors import B12LabError

__all__ = [
    "AGE_UNIT",
    "CONTEXT_LABELS",
    "SPECIAL_LABELS",
    "YES_NO_LABELS",
    "Band",
    "BySex",
    "Citation",
    "Derived",
    "EgfrEquation",
    "Flag",
    "Medicines",
    "Rule",
    "Stratum",
    "TableModel",
    "VariableBands",
]

AGE_UNIT = "year"
SPECIAL_LABELS = ("missing", "censored", "unbanded")
"""Labels every variable has besides its bands: no result; a censored result spanning several
bands; a result for which no stratum applies (for example, sex unknown for a sex-specific band)."""
YES_NO_LABELS = ("true", "false")
"""Labels of a yes/no context variable; a condition says ``{ pregnant = [true] }``."""
CONTEXT_LABELS: dict[str, tuple[str, ...]] = {
    "sex": ("female", "male"),
    "pregnant": YES_NO_LABELS,
    "nitrous_oxide": YES_NO_LABELS,
    "b12_replacement": YES_NO_LABELS,
    "risk_medicine": YES_NO_LABELS,
}
"""Context variables a condition may name, and their labels. ``risk_medicine`` is true where a
medicine given is on the risk list of the table that decides (see :class:`Medicines`)."""

Finite = Annotated[float, Field(allow_inf_nan=False)]
"""A number that is a number: NaN and infinity (``1e400`` in TOML) would switch a check off."""
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")]
VersionText = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)*$")]
Label = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[str, StringConstraints(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_Strict):
    document: Text
    year: int
    url: Text | None = None
    section: Text | None = None


class Band(_Strict):
    """One band of a variable, with its edges in every unit the source published them in."""

    label: Label
    interpretation: Interpretation
    lower: dict[str, Finite] | None = None
    lower_inclusive: bool | None = None
    upper: dict[str, Finite] | None = None
    upper_inclusive: bool | None = None
    wording: Text | None = Field(None, description="The source's own words for this band.")
    source: Text

    @model_validator(mode="after")
    def _closure_given(self) -> Self:
        for side in ("lower", "upper"):
            edge, inclusive = getattr(self, side), getattr(self, f"{side}_inclusive")
            if (edge is None) != (inclusive is None):
                raise ValueError(f"{side} and {side}_inclusive must be given together")
        return self


class Stratum(_Strict):
    """Bands that apply to part of the population; the first matching stratum is used."""

    name: Text | None = Field(None, description="Who the stratum is for, as results cite it.")
    sex: Literal["female", "male"] | None = None
    pregnant: bool | None = None
    age_min: Finite | None = Field(None, description="inclusive, years")
    age_max: Finite | None = Field(None, description="exclusive, years")
    bands: list[Band]
    source: Text


class Absolute(_Strict):
    """Plausibility limits: a value outside them is a data error, not a result."""

    lower: Finite | None = None
    upper: Finite | None = None
    unit: str
    source: Text


class VariableBands(_Strict):
    units: dict[str, int] = Field(
        description="Units the edges were published in, with their decimal places; the first "
        "is the primary unit."
    )
    bands: list[Band] | None = None
    strata: list[Stratum] | None = None
    absolute: Absolute | None = None
    note: Text | None = None

    def all_strata(self) -> list[Stratum]:
        if self.strata is not None:
            return self.strata
        assert self.bands is not None
        return [Stratum(bands=self.bands, source=self.bands[0].source)]


Condition = dict[str, list[str | bool]]


def _alternatives(value: Any) -> Any:
    """``when`` is one condition (all must hold) or a list of them (any may hold)."""
    return [value] if isinstance(value, dict) else value


class Rule(_Strict):
    id: Identifier
    when: Annotated[list[Condition], BeforeValidator(_alternatives), Field(min_length=1)]
    category: Category
    reason: Text
    source: Text


class Flag(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    when: Annotated[list[Condition], BeforeValidator(_alternatives), Field(min_length=1)]
    message: Text
    source: Text


class Laboratory(_Strict):
    """Variables a guideline leaves to the laboratory's own reference ranges."""

    default: Text
    provides: list[str]
    optional: list[str] = Field(
        default_factory=list,
        description="Provided variables a laboratory table may lack; rules then see no result.",
    )
    note: Text | None = None


def _medicine_name(name: str) -> str:
    if name != normal_name(name) or not name or any(c in SEPARATORS for c in name):
        raise ValueError(
            f"{name!r} is not a medicine name as b12lab compares them: lower case, single "
            f"spaces, no leading or trailing space, none of {SEPARATORS.strip()!r}"
        )
    return name


MedicineName = Annotated[str, AfterValidator(_medicine_name)]


class Medicines(_Strict):
    """Medicines a guideline names as risk factors for B12 deficiency (schema 2).

    A given medicine counts when its name, or the name an alias points to, is in ``risk``; the
    context variable ``risk_medicine`` is then true.
    """

    risk: list[MedicineName] = Field(
        min_length=1,
        description="Names as they are compared: lower case, single spaces; often a class "
        "('proton pump inhibitor').",
    )
    aliases: dict[MedicineName, MedicineName] = Field(
        default_factory=dict,
        description="Other names -> the name in risk they stand for ('ppi' -> "
        "'proton pump inhibitor').",
    )
    source: Text

    @model_validator(mode="after")
    def _aliases_point_to_the_list(self) -> Self:
        if len(set(self.risk)) != len(self.risk):
            raise ValueError("risk names a medicine more than once")
        for alias, name in self.aliases.items():
            if name not in self.risk:
                raise ValueError(f"alias {alias!r} points to {name!r}, which is not in risk")
            if alias in self.risk:
                raise ValueError(f"alias {alias!r} is itself in risk; give it once")
        return self


TableSpec = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]@[0-9]+(\.[0-9]+)*$")
]


class BySex(_Strict):
    female: Finite
    male: Finite


class EgfrEquation(_Strict):
    """The constants of an eGFR equation from serum creatinine; its form is code.

    ``equation`` names a form b12lab implements (:data:`b12lab._core.kidney.EQUATIONS`); the
    numbers are the source's, for creatinine in ``creatinine_unit``.
    """

    equation: Text = Field(description=f"one of: {', '.join(EQUATIONS)}")
    creatinine_unit: Text = Field(description="the creatinine unit the constants expect")
    numerator: Positive
    kappa: BySex = Field(description="creatinine at which the exponent changes, by sex")
    alpha: BySex = Field(description="exponent of min(Scr/kappa, 1), by sex")
    exponent_above_kappa: Finite = Field(description="exponent of max(Scr/kappa, 1)")
    age_base: Positive = Field(description="raised to the age in years")
    female_factor: Positive
    min_age: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        description="years; no eGFR is derived below it"
    )
    source: Text

    @model_validator(mode="after")
    def _implemented(self) -> Self:
        if self.equation not in EQUATIONS:
            raise ValueError(
                f"equation {self.equation!r} is not one b12lab implements; "
                f"use one of: {', '.join(EQUATIONS)}"
            )
        try:
            conversion_factor("creatinine", self.creatinine_unit)
        except B12LabError as exc:
            raise ValueError(f"creatinine_unit: {exc}") from None
        if self.kappa.female <= 0 or self.kappa.male <= 0:
            raise ValueError("kappa must be above zero for both sexes")
        return self

    def compiled(self, table: str) -> Equation:
        """The constants for the core, with the table (``id@version``) that gave them."""
        return Equation(
            name=self.equation,
            creatinine_unit=self.creatinine_unit,
            numerator=self.numerator,
            kappa=(self.kappa.female, self.kappa.male),
            alpha=(self.alpha.female, self.alpha.male),
            exponent_above_kappa=self.exponent_above_kappa,
            age_base=self.age_base,
            female_factor=self.female_factor,
            min_age=self.min_age,
            table=table,
            source=self.source,
        )


class Derived(_Strict):
    """Variables b12lab derives from others where a row does not give them."""

    egfr: EgfrEquation | None = None


class TableModel(_Strict):
    """A reference table.

    From ``schema_version`` 2, a censored result is evaluated in every band it may lie in (so
    rules never name the ``censored`` label), and ``cross_check`` names, for markers the table
    does not read, the table whose bands keep such a marker from being ignored in silence.
    """

    schema_version: Literal[1, 2] = 1
    id: Identifier
    version: VersionText
    title: Text
    kind: Literal["guideline", "laboratory"]
    status: Literal["current", "superseded", "example"]
    effective: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$")]
    population: Text
    citation: Citation
    caveats: list[Text] = []
    laboratory: Laboratory | None = None
    variables: dict[str, VariableBands]
    rules: list[Rule] = []
    flags: list[Flag] = []
    cross_check: dict[str, TableSpec] = Field(
        default_factory=dict,
        description="Analyte -> 'id@version' of a shipped table that bands it, for analytes "
        "this table (and its laboratory table) does not read.",
    )

    derived: Derived | None = None
    medicines: Medicines | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.schema_version < 2 and self.cross_check:
            raise ValueError("cross_check needs schema_version = 2")
        if self.schema_version < 2 and self.medicines is not None:
            raise ValueError("medicines needs schema_version = 2")
        for analyte in self.cross_check:
            if analyte not in ANALYTES or analyte in self.variables:
                raise ValueError(
                    f"cross_check names {analyte!r}, which is not an analyte this table leaves "
                    "unread"
                )
        if self.schema_version >= 2:
            _refuse_censored_label(self)
        for name, variable in self.variables.items():
            try:
                _check_variable(name, variable)
            except ValueError as exc:
                detail = str(exc).removeprefix(f"{name}: ")
                raise ValueError(f"variables.{name}: {detail}") from exc
        deferred: set[str] = set()
        if self.laboratory is not None:
            deferred = set(self.laboratory.provides)
            extra = set(self.laboratory.optional) - deferred
            if extra:
                raise ValueError(f"laboratory.optional names {sorted(extra)}, not provided")
            overlap = deferred & set(self.variables)
            if overlap:
                raise ValueError(
                    f"laboratory.provides names {sorted(overlap)}, which this table defines itself"
                )
        check_references(self, self.labels(), deferred=deferred)
        derives = self.derived is not None and self.derived.egfr is not None
        if derives and "egfr" not in self.variables and "egfr" not in deferred:
            raise ValueError(
                "derived.egfr: the table has no bands for egfr; add [variables.egfr]"
                + (" or list egfr in laboratory.provides" if self.laboratory else "")
            )
        return self

    def labels(self) -> dict[str, tuple[str, ...]]:
        """The band labels of every variable this table defines, plus the context variables."""
        own = {
            name: tuple(band.label for band in variable.all_strata()[0].bands)
            for name, variable in self.variables.items()
        }
        return {**CONTEXT_LABELS, **own}


def _refuse_censored_label(table: TableModel) -> None:
    """From schema 2 a censored result takes the bands it may lie in; the label never matches."""
    for kind, items in (("rules", table.rules), ("flags", table.flags)):
        for item in items:
            for alternative in item.when:
                if any("censored" in map(str, wanted) for wanted in alternative.values()):
                    raise ValueError(
                        f"{kind} {item.id!r} names the 'censored' label; from schema_version 2 "
                        "a censored result is evaluated in each band it may lie in"
                    )


def check_references(
    table: TableModel, labels: dict[str, tuple[str, ...]], *, deferred: set[str] | None = None
) -> None:
    """Every rule and flag must name known variables and labels.

    ``deferred`` variables come from a laboratory table; they are checked when the two meet.
    """
    for kind, items in (("rules", table.rules), ("flags", table.flags)):
        for item in items:
            pairs = [pair for alternative in item.when for pair in alternative.items()]
            for variable, wanted in pairs:
                if deferred and variable in deferred and variable not in labels:
                    continue
                if variable not in labels:
                    raise ValueError(
                        f"{kind} {item.id!r} uses variable {variable!r}, which has no bands; "
                        f"known: {', '.join(sorted(labels))}"
                    )
                specials = set(SPECIAL_LABELS) - (
                    {"censored"} if table.schema_version >= 2 else set()
                )
                known = set(labels[variable]) | specials
                unknown = [w for w in wanted if str(w).lower() not in known]
                if unknown or not wanted:
                    raise ValueError(
                        f"{kind} {item.id!r}: {variable} has no band {unknown or '(empty list)'}; "
                        f"known: {', '.join(sorted(known))}"
                    )


def _check_variable(name: str, variable: VariableBands) -> None:
    if name != "age" and name not in ANALYTES:
        raise ValueError(f"variable {name!r} is not an analyte; known: age, {', '.join(ANALYTES)}")
    if (variable.bands is None) == (variable.strata is None):
        raise ValueError(f"{name}: give either bands or strata, not both or neither")
    if not variable.units:
        raise ValueError(f"{name}: units is empty")
    for unit in variable.units:
        _check_unit(name, unit)
    strata = variable.all_strata()
    first_labels = [band.label for band in strata[0].bands]
    for index, stratum in enumerate(strata):
        labels = [band.label for band in stratum.bands]
        if labels != first_labels:
            raise ValueError(
                f"{name}: stratum {index} has bands {labels}; every stratum must have the same "
                f"labels in the same order ({first_labels})"
            )
        _check_bands(name, stratum.bands, variable.units)
    if variable.absolute is not None:
        _check_unit(name, variable.absolute.unit)
        low, high = variable.absolute.lower, variable.absolute.upper
        if low is not None and high is not None and not low < high:
            raise ValueError(f"{name}: absolute.lower must be below absolute.upper")


def _check_unit(name: str, unit: str) -> None:
    if name == "age":
        if unit != AGE_UNIT:
            raise ValueError(f"age: unit must be {AGE_UNIT!r}, not {unit!r}")
        return
    try:
        conversion_factor(name, unit)
    except B12LabError as exc:
        raise ValueError(str(exc)) from None


def _check_bands(name: str, bands: list[Band], units: dict[str, int]) -> None:
    if not bands:
        raise ValueError(f"{name}: at least one band is needed")
    if len({band.label for band in bands}) != len(bands):
        raise ValueError(f"{name}: band labels must be unique")
    if bands[0].lower is not None:
        raise ValueError(f"{name}: the first band must have no lower edge (it starts at zero)")
    if bands[-1].upper is not None:
        raise ValueError(f"{name}: the last band must have no upper edge (it is open above)")
    for below, above in itertools.pairwise(bands):
        where = f"{name}: bands {below.label!r} and {above.label!r}"
        if below.upper is None or above.lower is None:
            raise ValueError(f"{where} must share an edge (upper of one, lower of the next)")
        if below.upper != above.lower:
            raise ValueError(f"{where} are not contiguous: {below.upper} != {above.lower}")
        if below.upper_inclusive == above.lower_inclusive:
            raise ValueError(f"{where}: exactly one of them must include the shared edge")
    edges = [band.upper for band in bands[:-1]]
    for unit, decimals in units.items():
        values = []
        for edge in edges:
            assert edge is not None
            if set(edge) != set(units):
                raise ValueError(f"{name}: an edge gives units {sorted(edge)}, not {sorted(units)}")
            values.append(edge[unit])
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ValueError(f"{name}: edges must be finite and not negative")
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ValueError(f"{name}: edges in {unit} must increase strictly: {values}")
        if decimals < 0:
            raise ValueError(f"{name}: decimals for {unit} must be zero or more")
    _check_twins(name, edges, units)


def _check_twins(name: str, edges: list[dict[str, float] | None], units: dict[str, int]) -> None:
    """Published twins (180 ng/L and 133 pmol/L) must agree at the published precision."""
    primary, *others = units
    if name == "age":
        return
    for unit in others:
        factor = conversion_factor(name, primary, unit)
        for edge in edges:
            assert edge is not None
            expected = round(edge[primary] * factor, units[unit])
            if not math.isclose(expected, edge[unit], rel_tol=0, abs_tol=1e-9):
                raise ValueError(
                    f"{name}: edge {edge[primary]} {primary} converts to {expected} {unit} at "
                    f"{units[unit]} decimals, but the table says {edge[unit]} {unit}"
                )


def describe_error(error: dict[str, Any]) -> str:
    """One line per pydantic error: the field's dotted path and the problem."""
    location = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message
