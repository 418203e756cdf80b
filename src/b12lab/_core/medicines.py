"""Medicines a patient takes: names read from a cell, and checked against a table's risk list.

A cell holds names separated by ``;``, ``,``, ``|`` or line breaks (``"metformin; omeprazole"``),
or is a list, tuple or set of such texts. Names are compared in lower case with runs of spaces
made one. Which names count as risk factors for B12 deficiency is data, never code: a table's
``[medicines]`` section lists them, with aliases (``"ppi"`` for ``"proton pump inhibitor"``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from b12lab.errors import InvalidValueError

if TYPE_CHECKING:
    from b12lab.tables import Table

__all__ = ["NONE_WORDS", "SEPARATORS", "RiskList", "medicine_names", "normal_name"]

SEPARATORS = ";,|\n\r"
"""Characters that separate medicine names in one cell."""
NONE_WORDS = frozenset({"none", "nil"})
"""A cell holding only one of these says the patient takes no medicines."""
_SPLIT = re.compile(f"[{re.escape(SEPARATORS)}]")

Names = tuple[str, ...]


def normal_name(text: str) -> str:
    """A name as it is compared: lower case, trimmed, runs of white space made one space."""
    return " ".join(text.lower().split())


def medicine_names(cell: object) -> Names | None:
    """The distinct names a cell gives, in order; ``()`` for "none"; None when it gives none.

    Raises :class:`~b12lab.errors.InvalidValueError` for a cell that is neither text nor a
    list, tuple or set of texts.
    """
    if isinstance(cell, str):
        texts: list[str] = [cell]
    elif isinstance(cell, list | tuple | set | frozenset) and all(
        isinstance(item, str) for item in cell
    ):
        texts = sorted(cell) if isinstance(cell, set | frozenset) else list(cell)
    else:
        raise _refused(cell)
    pieces = (normal_name(piece) for text in texts for piece in _SPLIT.split(text))
    names = tuple(dict.fromkeys(piece for piece in pieces if piece))
    if not names:
        return None
    return () if len(names) == 1 and names[0] in NONE_WORDS else names


def _refused(cell: object) -> InvalidValueError:
    shown = repr(cell.item() if isinstance(cell, np.generic) else cell)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return InvalidValueError(
        f"medicines: {shown} is not understood; give the names as text separated by ';' "
        '("metformin; omeprazole") or as a list of texts, or leave it out',
        analyte="medicines",
        value=shown,
    )


@dataclass(frozen=True)
class RiskList:
    """The medicines a table names as risk factors, as the table that decides gives them.

    ``table`` is that table's ``id@version``; ``names`` is None when neither the policy's table
    nor its laboratory table has a ``[medicines]`` section (``table`` is then the policy's).
    """

    table: str
    names: tuple[str, ...] | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, *tables: Table | None) -> RiskList:
        """The list of the first table that has one; else an empty list of the first table."""
        for table in tables:
            section = table.model.medicines if table is not None else None
            if table is not None and section is not None:
                return cls(table.key, tuple(section.risk), dict(section.aliases))
        first = tables[0]
        assert first is not None
        return cls(first.key)

    def judge(self, names: Names | None) -> tuple[bool | None, str]:
        """Whether any name is on the list (None: not given, or not read), and the note."""
        if names is None:
            return None, ""
        if self.names is None:
            return None, f"medicines not read by {self.table}" if names else ""
        read = dict.fromkeys(self.aliases.get(name, name) for name in names)
        listed = [name for name in read if name in self.names]
        others = [name for name in names if self.aliases.get(name, name) not in self.names]
        notes = []
        if listed:
            notes.append(f"risk medicines: {', '.join(listed)}")
        if others:
            notes.append(
                f"medicines not on the risk list of {self.table}: {', '.join(others)} (where "
                f"one belongs to a listed class, give the class, e.g. {self.example!r})"
            )
        return bool(listed), "; ".join(notes)

    @property
    def example(self) -> str:
        """A listed name to show: the first one with an alias (a class), else the first."""
        assert self.names is not None
        return next(iter(self.aliases.values()), self.names[0])
