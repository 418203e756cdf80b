"""Reading results as laboratories write them, censored ones included."""

from __future__ import annotations

import math
import pickle

import pytest

import b12lab
from b12lab import Censoring


@pytest.mark.parametrize(
    ("given", "value", "unit", "censoring"),
    [
        ("160 pg/mL", 160.0, "pg/mL", Censoring.NONE),
        ("  160pg/mL ", 160.0, "pg/mL", Censoring.NONE),
        ("+160 pg/mL", 160.0, "pg/mL", Censoring.NONE),
        ("1.6e2 pg/mL", 160.0, "pg/mL", Censoring.NONE),
        ("<50 pg/mL", 50.0, "pg/mL", Censoring.BELOW),
        ("< 50 pg/mL", 50.0, "pg/mL", Censoring.BELOW),
        ("<=50 pg/mL", 50.0, "pg/mL", Censoring.AT_OR_BELOW),
        ("≤50 pg/mL", 50.0, "pg/mL", Censoring.AT_OR_BELOW),
        ("> 1476 pmol/L", 1476.0, "pmol/L", Censoring.ABOVE),
        (">=1476 pmol/L", 1476.0, "pmol/L", Censoring.AT_OR_ABOVE),
        ("≥1476 pmol/L", 1476.0, "pmol/L", Censoring.AT_OR_ABOVE),
        (("<50", "pg/mL"), 50.0, "pg/mL", Censoring.BELOW),
        ((0.52, "µmol/L"), 0.52, "µmol/L", Censoring.NONE),
        ((0, "pmol/L"), 0.0, "pmol/L", Censoring.NONE),
    ],
)
def test_measure_reads_values_units_and_censoring(
    given: object, value: float, unit: str, censoring: Censoring
) -> None:
    measured = b12lab.measure(given, analyte="b12")  # type: ignore[arg-type]
    assert (measured.value, measured.unit, measured.censoring) == (value, unit, censoring)


def test_measure_accepts_a_quantity() -> None:
    quantity = b12lab.registry.Quantity(0.52, "umol/L")
    measured = b12lab.measure(quantity, analyte="mma")
    assert math.isclose(b12lab.normalize(measured, analyte="mma").magnitude, 0.52)


def test_negative_zero_becomes_zero() -> None:
    measured = b12lab.measure((-0.0, "pmol/L"), analyte="b12")
    assert math.copysign(1.0, measured.value) == 1.0


def test_censoring_survives_conversion() -> None:
    measured = b12lab.measure(">2000 pg/mL", analyte="b12").canonical()
    assert measured.censoring is Censoring.ABOVE
    assert round(measured.value) == 1476
    assert str(measured) == ">1475.61 pmol/L"


def test_normalize_refuses_to_drop_censoring() -> None:
    with pytest.raises(b12lab.MeasurementError, match="censored"):
        b12lab.normalize("<148 pmol/L", analyte="b12")


@pytest.mark.parametrize(
    "given",
    [
        "abc",
        "",
        "-5 pmol/L",
        (float("nan"), "pmol/L"),
        (float("inf"), "pmol/L"),
        (-1, "pmol/L"),
        (True, "pmol/L"),
        ("x", "pmol/L"),
        (1, 2),
        [160, "pmol/L"],
        float("nan"),
        None.__class__,
    ],
)
def test_bad_values_raise_measurement_errors(given: object) -> None:
    with pytest.raises(b12lab.MeasurementError) as caught:
        b12lab.measure(given, analyte="b12")  # type: ignore[arg-type]
    assert "b12" in str(caught.value)


def test_errors_pickle_with_their_fields() -> None:
    with pytest.raises(b12lab.DimensionError) as caught:
        b12lab.measure("1 kg", analyte="hcy")
    clone = pickle.loads(pickle.dumps(caught.value))
    assert type(clone) is b12lab.DimensionError
    assert str(clone) == str(caught.value)
    assert clone.analyte == "hcy"
    assert clone.code == "wrong_dimension"
