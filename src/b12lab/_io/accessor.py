"""``df.b12lab.classify(...)``: the DataFrame accessor, registered when b12lab is imported."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from b12lab._core.frame import classify_frame
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
        return classify_frame(
            self._frame,
            columns=columns,
            units=units,
            table=table,
            laboratory=laboratory,
            explain=explain,
            decimal=decimal,
        )
