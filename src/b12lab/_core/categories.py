"""The shared vocabulary of results: categories, FHIR interpretation codes and censoring."""

from __future__ import annotations

import enum

__all__ = ["Category", "Censoring", "Interpretation"]


class Category(enum.StrEnum):
    """How strongly the results point to vitamin B12 deficiency, shared by every table.

    Ordered by the evidence of deficiency, so results from different tables compare:
    ``insufficient_data < deficiency_unlikely < deficiency_possible < deficiency_likely``.
    ``insufficient_data`` sorts lowest only so that categories sort; it is not "less deficient".
    """

    DEFICIENCY_LIKELY = "deficiency_likely"
    DEFICIENCY_POSSIBLE = "deficiency_possible"
    DEFICIENCY_UNLIKELY = "deficiency_unlikely"
    INSUFFICIENT_DATA = "insufficient_data"

    @property
    def rank(self) -> int:
        """Position on the ordinal scale: 0 (insufficient data) to 3 (deficiency likely)."""
        return _RANKS[self]

    @classmethod
    def from_rank(cls, rank: int) -> Category:
        return _BY_RANK[rank]

    def __lt__(self, other: str) -> bool:
        if not isinstance(other, Category):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: str) -> bool:
        if not isinstance(other, Category):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: str) -> bool:
        if not isinstance(other, Category):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: str) -> bool:
        if not isinstance(other, Category):
            return NotImplemented
        return self.rank >= other.rank


_RANKS = {
    Category.INSUFFICIENT_DATA: 0,
    Category.DEFICIENCY_UNLIKELY: 1,
    Category.DEFICIENCY_POSSIBLE: 2,
    Category.DEFICIENCY_LIKELY: 3,
}
_BY_RANK = {rank: category for category, rank in _RANKS.items()}


class Interpretation(enum.StrEnum):
    """HL7 FHIR v3 ObservationInterpretation codes used for marker bands.

    http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation
    """

    LOW = "L"
    CRITICAL_LOW = "LL"
    NORMAL = "N"
    HIGH = "H"
    CRITICAL_HIGH = "HH"
    ABNORMAL = "A"
    INDETERMINATE = "IND"


class Censoring(enum.StrEnum):
    """How a result relates to its number: exact, or only known to lie beyond it."""

    NONE = ""
    BELOW = "<"
    AT_OR_BELOW = "<="
    ABOVE = ">"
    AT_OR_ABOVE = ">="
