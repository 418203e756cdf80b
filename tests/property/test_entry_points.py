"""Every public entry point answers any input with a valid result or a ``B12LabError``.

Never another exception type, never a result without a category, and in batch never a row lost
nor a row with both a category and an error. The same values give the same answer in every unit.

The tests at the end pin defects these properties found, now fixed.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import b12lab
from b12lab import Category, Censoring, Measurement, tables
from b12lab._core.policy import resolve
from b12lab._core.units import conversion_factor, parse_unit
from tests.strategies import (
    CANONICAL_RANGES,
    ROOT,
    SHIPPED_TABLE_FILES,
    broken_tables,
    canonical_values,
    contexts,
    magnitudes,
    result_texts,
    unit_texts,
    units,
    values,
)
from tests.strategies import tables as table_data

ANALYTES = sorted(b12lab.ANALYTES)
SHIPPED = list(tables.available())
CATEGORIES = {category.value for category in Category}


def _generated_table(data: dict[str, Any]) -> tables.Table:
    return tables.Table(model=tables.validate(data), sha256="0" * 64, origin="generated.toml")


def measurement_inputs(analyte: str) -> st.SearchStrategy[object]:
    """Anything ``measure`` may be given: texts, (value, unit) pairs, Quantities, junk."""
    return st.one_of(
        result_texts(analyte),
        st.tuples(values(), unit_texts()),
        st.tuples(values(), units(analyte)),
        st.tuples(result_texts(analyte), unit_texts()),
        st.builds(
            lambda v, u: b12lab.registry.Quantity(v, parse_unit(u)), values(), units(analyte)
        ),
        st.sampled_from([None, True, 3, 2.5, b"160 pg/mL", (1.0,), (1.0, 2.0), [1.0, "pmol/L"]]),
        st.builds(lambda v, u: (Fraction(v), u), st.integers(0, 10**6), units(analyte)),
        st.builds(
            lambda m: Measurement(analyte, m, b12lab.ANALYTES[analyte].canonical_unit),
            magnitudes(*CANONICAL_RANGES.get(analyte, (1.0, 1000.0))),
        ),
    )


def table_choices() -> st.SearchStrategy[object]:
    """What ``table=`` may be given: a shipped spec, a generated valid table, or junk."""
    return st.one_of(
        st.none(),
        st.sampled_from([*SHIPPED, "nice-ng239", " bsh-2014 ", "nice-ng239@9", "no-such"]),
        table_data().map(_generated_table),
        st.text(max_size=12),
        st.sampled_from([3, b"nice-ng239", "../reference_ranges/nice-ng239/1.toml"]),
    )


def _check_measurement(result: Measurement) -> None:
    assert isinstance(result, Measurement)
    assert math.isfinite(result.value), result
    assert result.value >= 0, result
    assert math.copysign(1.0, result.value) == 1.0, result  # no -0.0
    assert isinstance(result.unit, str)
    assert result.unit
    assert isinstance(result.censoring, Censoring)


@given(
    analyte=st.sampled_from([*ANALYTES, "B12", " vitamin b12 ", "gfr", "xyz", ""]),
    data=st.data(),
)
def test_measure_gives_a_measurement_or_a_b12lab_error(analyte: str, data: st.DataObject) -> None:
    known = analyte.strip().lower() in ANALYTES
    given_value = data.draw(measurement_inputs(analyte.strip().lower() if known else "b12"))
    try:
        result = b12lab.measure(given_value, analyte=analyte)  # type: ignore[arg-type]
    except b12lab.B12LabError:
        return
    _check_measurement(result)


@given(analyte=st.sampled_from(ANALYTES), data=st.data())
def test_normalize_gives_a_canonical_quantity_or_a_b12lab_error(
    analyte: str, data: st.DataObject
) -> None:
    given_value = data.draw(measurement_inputs(analyte))
    try:
        quantity = b12lab.normalize(given_value, analyte=analyte)  # type: ignore[arg-type]
    except b12lab.B12LabError:
        return
    assert not math.isnan(quantity.magnitude)
    assert quantity.magnitude >= 0
    canonical = parse_unit(b12lab.ANALYTES[analyte].canonical_unit)
    assert quantity.units == canonical


@st.composite
def patient_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for ``classify``: any markers, any context, any table."""
    kwargs: dict[str, Any] = {}
    for analyte in draw(st.sets(st.sampled_from(ANALYTES), max_size=4)):
        kwargs[analyte] = draw(measurement_inputs(analyte) | st.sampled_from(["n/a", "pending"]))
    kwargs |= draw(contexts())
    if draw(st.booleans()):
        kwargs["table"] = draw(table_choices())
    if draw(st.integers(0, 4)) == 0:
        kwargs["laboratory"] = draw(table_choices())
    return kwargs


@given(kwargs=patient_inputs())
def test_classify_gives_a_result_or_a_b12lab_error(kwargs: dict[str, Any]) -> None:
    try:
        result = b12lab.classify(**kwargs)
    except b12lab.B12LabError:
        return
    assert isinstance(result.category, Category)
    assert result.category.value in CATEGORIES
    assert result.rule is None or isinstance(result.rule, str)
    assert set(result.markers) <= set(kwargs)
    for marker in result.markers.values():
        assert marker.band is None or isinstance(marker.band, str)
        if marker.value is None:
            assert marker.note is not None
            assert marker.note.startswith("no result: ")
            continue
        assert not math.isnan(marker.value.magnitude)


def cells(analyte: str) -> st.SearchStrategy[object]:
    """What a data-frame cell may hold: laboratory text, bare numbers, empties and oddities."""
    return st.one_of(
        result_texts(analyte),
        values(),
        st.sampled_from([None, math.nan, "", "  ", "n/a", "pending", True, pd.NA]),
    )


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Small data frames of generated cells, with analyte, context and unit columns."""
    n = draw(st.integers(min_value=1, max_value=8))
    chosen = draw(st.sets(st.sampled_from(["b12", "holotc", "mma", "hcy", "folate"]), min_size=1))
    columns: dict[str, list[object]] = {}
    for analyte in sorted(chosen):
        columns[analyte] = draw(st.lists(cells(analyte), min_size=n, max_size=n))
    if draw(st.booleans()):
        columns["b12_unit"] = draw(st.lists(unit_texts() | st.none(), min_size=n, max_size=n))
    context = draw(st.lists(contexts(), min_size=n, max_size=n))
    for key in ("age", "sex", "pregnant", "nitrous_oxide", "b12_replacement"):
        if draw(st.booleans()):
            columns[key] = [row.get(key) for row in context]
    index = draw(
        st.sampled_from(
            [
                pd.RangeIndex(n),
                pd.Index(range(10, 10 + 3 * n, 3)),
                pd.Index([f"r{i}" for i in range(n)]),
                pd.Index([0] * n),
            ]
        )
    )
    return pd.DataFrame(columns, index=index)


@pytest.mark.filterwarnings("ignore::b12lab.errors.UnusedColumnWarning")
@given(
    df=frames(),
    table=st.none() | st.sampled_from(SHIPPED) | table_data().map(_generated_table),
    default_units=st.none() | st.fixed_dictionaries({}, optional={"b12": unit_texts()}),
)
def test_classify_frame_keeps_every_row_with_a_category_or_an_error(
    df: pd.DataFrame, table: object, default_units: dict[str, str] | None
) -> None:
    try:
        out = b12lab.classify_frame(df, table=table, units=default_units)  # type: ignore[arg-type]
    except b12lab.B12LabError:
        return
    assert len(out) == len(df)
    assert out.index.equals(df.index)
    category = out["b12lab_category"].astype(object)
    error = out["b12lab_error"].astype(object)
    assert not category.isna().any()
    assert not error.isna().any()
    assert set(category) <= CATEGORIES | {""}
    has_category, has_error = category != "", error != ""
    assert (has_category != has_error).all(), out[["b12lab_category", "b12lab_error"]]


def _edge_spans(spec: object, analyte: str) -> list[tuple[float, float]]:
    """Each edge in the canonical unit, as the span between its published twins."""
    variable = resolve(spec).variables.get(analyte)  # type: ignore[arg-type]
    if variable is None:
        return []
    factors = np.array([conversion_factor(analyte, unit) for unit in variable.units])
    edges = variable.edges * factors[None, :, None]  # [stratum, unit, edge]
    per_edge = edges.transpose(0, 2, 1).reshape(-1, edges.shape[1])
    return [(float(row.min()), float(row.max())) for row in per_edge]


def _near_an_edge(spec: object, analyte: str, value: float) -> bool:
    """Between published twins or float-close to an edge: where units may rightly disagree."""
    spans = _edge_spans(spec, analyte)
    return any(low * (1 - 1e-6) <= value <= high * (1 + 1e-6) for low, high in spans)


@given(
    table=st.sampled_from(SHIPPED) | table_data().map(_generated_table),
    b12=st.lists(canonical_values("b12"), min_size=1, max_size=10),
    data=st.data(),
)
def test_classify_frame_is_the_same_in_pmol_nmol_and_pg_per_ml(
    table: object, b12: list[float], data: st.DataObject
) -> None:
    """The same B12 values in pmol/L, nmol/L and pg/mL give the same bands and categories."""
    assume(not any(_near_an_edge(table, "b12", value) for value in b12))
    n = len(b12)
    context = {
        "age": data.draw(st.lists(st.floats(16, 100) | st.none(), min_size=n, max_size=n)),
        "sex": data.draw(
            st.lists(st.sampled_from(["female", "male", None]), min_size=n, max_size=n)
        ),
    }
    answers = []
    for unit in ("pmol/L", "nmol/L", "pg/mL"):
        factor = conversion_factor("b12", "pmol/L", unit)
        df = pd.DataFrame({"b12": [f"{value * factor!r} {unit}" for value in b12], **context})
        out = b12lab.classify_frame(df, table=table)  # type: ignore[arg-type]
        answers.append(out[["b12lab_category", "b12lab_b12_band", "b12lab_error"]].astype(str))
    pd.testing.assert_frame_equal(answers[0], answers[1])
    pd.testing.assert_frame_equal(answers[0], answers[2])


@given(data=table_data())
def test_generated_tables_are_valid(data: dict[str, Any]) -> None:
    model = tables.validate(data)
    assert model.id == data["id"]


def table_inputs() -> st.SearchStrategy[object]:
    """Parsed table data, valid, broken or random."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    randoms = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=10,
    )
    return table_data() | broken_tables().map(lambda case: case[1]) | randoms


@st.composite
def mutated_tables(draw: st.DrawFn) -> object:
    """A valid table with one value anywhere in it replaced by a random scalar."""
    data: Any = draw(table_data())
    path, node = [], data
    while isinstance(node, dict | list) and node and draw(st.integers(0, 4)):
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        node = node[key]
    if not path:
        return data
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = draw(
        st.none() | st.booleans() | values() | st.text(max_size=8) | st.just([]) | st.just({})
    )
    return data


@given(raw=table_inputs() | mutated_tables())
def test_validate_gives_a_model_or_a_table_error(raw: object) -> None:
    try:
        model = tables.validate(raw)
    except b12lab.TableValidationError:
        return
    assert model.variables


@given(
    spec=st.one_of(
        st.text(max_size=30),
        st.sampled_from(SHIPPED).map(lambda s: f" {s}\n"),
        st.sampled_from(SHIPPED).map(lambda s: s.replace("@", "@0")),
        st.from_regex(r"[a-z0-9-]{1,12}(@[0-9.]{1,6})?", fullmatch=True),
        st.sampled_from([None, 3, b"nice-ng239", "../SHA256SUMS", "nice-ng239/../bsh-2014"]),
    )
)
def test_load_gives_a_shipped_table_or_a_b12lab_error(spec: object) -> None:
    try:
        table = tables.load(spec)  # type: ignore[arg-type]
    except b12lab.B12LabError:
        return
    assert table.key in SHIPPED
    assert len(table.sha256) == 64


@given(
    name=st.sampled_from(SHIPPED_TABLE_FILES),
    cut=st.tuples(st.integers(0, 20_000), st.integers(0, 200)),
    insert=st.binary(max_size=20),
)
def test_load_file_gives_a_table_or_a_b12lab_error(
    name: str, cut: tuple[int, int], insert: bytes
) -> None:
    original = (ROOT / "reference_ranges" / name).read_bytes()
    start, length = cut
    content = original[:start] + insert + original[start + length :]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.toml"
        path.write_bytes(content)
        try:
            table = tables.load_file(path)
        except b12lab.B12LabError:
            return
    assert table.model.variables


# Defects found by the properties above, pinned until fixed. Each is a minimal reproducer.


def test_a_huge_integer_value_is_an_invalid_value() -> None:
    with pytest.raises(b12lab.InvalidValueError):
        b12lab.measure((10**400, "pmol/L"), analyte="b12")


def test_a_huge_integer_age_is_an_invalid_value() -> None:
    with pytest.raises(b12lab.InvalidValueError):
        b12lab.classify(b12="200 pmol/L", age=10**400)


def test_a_huge_integer_cell_is_a_row_error() -> None:
    df = pd.DataFrame({"b12": pd.Series([10**400, "200 pmol/L"], dtype=object)})
    out = b12lab.classify_frame(df, units={"b12": "pmol/L"})
    assert list(out["b12lab_category"].astype(str) != "") == [False, True]


def test_a_huge_integer_age_cell_is_a_row_error() -> None:
    df = pd.DataFrame({"b12": ["200 pmol/L"] * 2, "age": pd.Series([10**400, 40], dtype=object)})
    out = b12lab.classify_frame(df)
    assert list(out["b12lab_error"].astype(str) != "") == [True, False]


def test_classify_frame_refuses_an_infinite_age_like_classify() -> None:
    with pytest.raises(b12lab.InvalidValueError):
        b12lab.classify(b12="200 pmol/L", age=math.inf)
    out = b12lab.classify_frame(pd.DataFrame({"b12": ["200 pmol/L"], "age": [math.inf]}))
    assert out["b12lab_category"].astype(str).tolist() == [""]
    assert out["b12lab_error"].astype(str).str.startswith("invalid_value").all()


def test_an_overflowing_conversion_warns_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(b12lab.ImplausibleValueError):
            b12lab.classify(b12="1e308 mg/dL")


def test_an_exponent_tower_in_a_unit_is_refused_promptly() -> None:
    code = "import b12lab\ntry:\n    b12lab.measure('1 pmol/L^9^9^9', analyte='b12')\n"
    code += "except b12lab.B12LabError:\n    pass\n"
    try:
        subprocess.run([sys.executable, "-c", code], check=True, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("measure('1 pmol/L^9^9^9') ran for more than 5 s")
