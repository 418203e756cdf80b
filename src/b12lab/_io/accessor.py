"""``df.b12lab.classify(...)``: the DataFrame accessor.

Importing this module registers the accessor; b12lab imports it as soon as pandas is loaded (see
:mod:`b12lab._io.pandas_hook`). It imports nothing of b12lab's own until ``classify`` is called,
so registering costs nothing beyond pandas itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from b12lab._core.numerals import Decimal
    from b12lab.tables import Table

__all__ = ["B12LabAccessor"]


@pd.api.extensions.register_dataframe_accessor("b12lab")
class B12LabAccessor:
    """Adds ``b12lab_*`` result columns to a copy of the frame; see :func:`classify_frame`."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def classify(
        self,
        *,
        columns: Mapping[str, str] | None = None,
        units: Mapping[str, str] | None = None,
        table: str | Table | None = None,
        laboratory: str | Table | None = None,
        explain: bool = False,
        decimal: Decimal = ".",
    ) -> pd.DataFrame:
        from b12lab._core.frame import classify_frame

        return classify_frame(
            self._frame,
            columns=columns,
            units=units,
            table=table,
            laboratory=laboratory,
            explain=explain,
            decimal=decimal,
        )
