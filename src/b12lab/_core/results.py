"""The typed result of a classification: category, markers, flags, reasons, and the table cited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from pydantic import BaseModel, ConfigDict, PlainValidator, field_serializer

from b12lab._core.analytes import ANALYTES
from b12lab._core.categories import Category, Censoring, Interpretation

__all__ = ["Flag", "MarkerResult", "Reason", "Result", "TableRef"]


def _quantity(value: object) -> object:
    """Accept a pint Quantity only; pint is imported when a value is checked, not before."""
    import pint

    if not isinstance(value, pint.Quantity):
        raise ValueError(f"expected a pint Quantity, got {type(value).__name__}")
    return value


if TYPE_CHECKING:
    import pint

    Quantity: TypeAlias = pint.Quantity[float]
else:
    # The same check as a pint.Quantity field, without importing pint with this module (the
    # batch path builds no Result and never needs pint).
    Quantity: TypeAlias = Annotated[Any, PlainValidator(_quantity)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)


class TableRef(_Frozen):
    """Which table decided, pinned by version and the SHA-256 of its file."""

    id: str
    version: str
    sha256: str
    status: str
    citation: str
    url: str | None
    caveats: tuple[str, ...]
    laboratory: TableRef | None = None

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"


class MarkerResult(_Frozen):
    """One analyte: its value in the canonical unit, its band, and where the band came from.

    ``value`` is the reported number converted to the canonical unit; for a censored result it is
    the bound, and ``censoring`` says on which side the true value lies. A cell that states there
    is no result (``"hemolysed"``) gives a marker with no value and a ``note`` saying so. ``note``
    also says why a result has no band: a censored result spanning bands, no band for the
    patient's context, or a table that does not interpret this analyte. ``derived_from`` is set
    when the result was not given but derived (eGFR from creatinine, age and sex, where the
    table asks for it): the equation, its inputs and the table whose constants were used.
    ``reference_range`` is set when the result was banded against the reference range reported
    with it rather than the table's edges: that range, as quoted in the reasons.
    """

    analyte: str
    given: str
    value: Quantity | None
    censoring: Censoring
    band: str | None
    interpretation: Interpretation | None
    indeterminate_because_censored: bool
    compared_in: str | None
    table: str | None
    source: str | None
    note: str | None = None
    derived_from: str | None = None
    reference_range: str | None = None

    @field_serializer("value")
    def _value_json(self, value: Quantity | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {"value": float(value.magnitude), "unit": ANALYTES[self.analyte].canonical_unit}


class Flag(_Frozen):
    """A caveat that changes how to read the result."""

    id: str
    message: str
    markers: tuple[str, ...]
    table: str
    source: str


class Reason(_Frozen):
    """A plain-language step of the explanation, with the rule and table that make it."""

    rule: str | None
    text: str
    table: str
    source: str


class Result(_Frozen):
    """The interpretation of one patient's results.

    b12lab supports, and does not replace, clinical judgement.
    """

    category: Category
    rule: str | None
    markers: dict[str, MarkerResult]
    flags: tuple[Flag, ...]
    reasons: tuple[Reason, ...]
    table: TableRef
    notes: tuple[str, ...] = ()

    @property
    def functional(self) -> bool:
        """True when a raised metabolic marker points to functional B12 deficiency."""
        return any(flag.id == "functional_deficiency" for flag in self.flags)
