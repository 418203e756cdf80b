"""Classify one patient: the one-row case of the pipeline that classifies ten million."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from b12lab._core import build
from b12lab._core.analytes import get_analyte
from b12lab._core.measurements import MeasurementInput
from b12lab._core.pipeline import Inputs, ResultColumn, run
from b12lab._core.policy import resolve
from b12lab._core.results import Result
from b12lab.tables import Table

__all__ = ["classify"]


def classify(
    *,
    b12: MeasurementInput | None = None,
    mma: MeasurementInput | None = None,
    hcy: MeasurementInput | None = None,
    holotc: MeasurementInput | None = None,
    folate: MeasurementInput | None = None,
    creatinine: MeasurementInput | None = None,
    egfr: MeasurementInput | None = None,
    age: float | str | None = None,
    sex: str | None = None,
    pregnant: bool | str | None = None,
    nitrous_oxide: bool | str | None = None,
    b12_replacement: bool | str | None = None,
    medicines: str | Collection[str] | None = None,
    table: str | Table | None = None,
    laboratory: str | Table | None = None,
    reference_ranges: Mapping[str, str | None] | None = None,
) -> Result:
    """Interpret one patient's B12 results against a versioned reference table.

    Values are strings (``"160 pg/mL"``, ``"<148 pmol/L"``, ``"hemolysed"``), ``(value, unit)``
    pairs or pint Quantities of any registry. ``age``, ``sex`` and ``pregnant`` are read as in a
    data frame (``72`` or ``"72"``; ``"F"``; ``True`` or ``"yes"``), and so are the yes/no fields
    ``nitrous_oxide`` (recreational nitrous oxide use) and ``b12_replacement`` (B12 injections or
    tablets started before the sample was taken); ``"unknown"`` is read as not given, with a note.
    ``medicines`` names the medicines the patient takes, in one text (``"metformin; omeprazole"``,
    separated by ``;``, ``,``, ``|`` or line breaks) or as a list, tuple or set of texts; where one
    is on the risk list of the table (``[medicines]``, with aliases such as ``"ppi"``), the context
    variable ``risk_medicine`` is true, and the notes name the medicines on the list and those not.
    ``table`` is a table id, ``id@version`` or a loaded table (default: NICE NG239); ``laboratory``
    replaces the guideline's default laboratory table for MMA and homocysteine. Bad input raises a
    :class:`~b12lab.errors.B12LabError` subclass naming the analyte and value; the first error is
    the one ``classify_frame`` reports for the row.

    ``reference_ranges`` gives the reference range the laboratory reported with a result
    (``{"mma": "0.00-0.40 umol/L"}``): MMA and homocysteine, whose bands the guideline takes
    from the laboratory, are then banded against it instead of the laboratory table, and the
    marker's ``reference_range`` says so (None: no range reported, banded by the table with a
    note, as in a frame). A guideline's own bands (NICE's B12) are not replaced:
    the marker's note says the range was not used. An unreadable range raises
    :class:`~b12lab.errors.InvalidValueError`.
    """
    policy = resolve(table, laboratory)
    given = {"b12": b12, "holotc": holotc, "mma": mma, "hcy": hcy, "folate": folate}
    given |= {"creatinine": creatinine, "egfr": egfr}
    inputs = Inputs(
        n=1,
        results={name: ResultColumn([value]) for name, value in given.items() if value is not None},
        age=[age],
        sex=[sex],
        pregnant=[pregnant],
        nitrous_oxide=[nitrous_oxide],
        b12_replacement=[b12_replacement],
        medicines=[medicines],
        reference_ranges={
            get_analyte(name).name: [text] for name, text in (reference_ranges or {}).items()
        },
    )
    outcome = run(inputs, policy)
    code = int(outcome.errors.codes[0])
    if code >= 0:
        error = outcome.errors.errors[code]
        assert not isinstance(error, str)  # only files bring known row errors
        raise error
    return build.result(outcome)
