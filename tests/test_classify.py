"""One patient through the public API: categories, markers, flags, reasons, tables."""

from __future__ import annotations

import json

import pytest

import b12lab
from b12lab import Category

LIKELY, POSSIBLE, UNLIKELY, INSUFFICIENT = (
    Category.DEFICIENCY_LIKELY,
    Category.DEFICIENCY_POSSIBLE,
    Category.DEFICIENCY_UNLIKELY,
    Category.INSUFFICIENT_DATA,
)


def flag_ids(result: b12lab.Result) -> set[str]:
    return {flag.id for flag in result.flags}


def test_the_readme_example() -> None:
    r = b12lab.classify(
        b12="160 pg/mL",
        mma=(0.52, "µmol/L"),
        hcy="18.2 umol/L",
        age=72,
        sex="female",
        table="nice-ng239@1",
    )
    assert r.category is LIKELY
    assert r.rule == "confirmed-deficiency"
    b12 = r.markers["b12"]
    assert (b12.band, b12.interpretation, b12.table) == ("deficient", "L", "nice-ng239@1")
    assert round(b12.value.magnitude, 2) == 118.05
    assert str(b12.value.units) == "picomole / liter"
    assert (r.markers["mma"].band, r.markers["mma"].table) == ("high", "generic-us-lab@1")
    assert r.markers["hcy"].interpretation == "H"
    assert flag_ids(r) == {"older_age"}
    assert r.reasons[0].rule == "confirmed-deficiency"
    assert "180 ng/L" in r.reasons[0].text
    assert r.table.key == "nice-ng239@1"
    assert len(r.table.sha256) == 64
    assert r.table.laboratory is not None
    assert r.table.laboratory.key == "generic-us-lab@1"
    dumped = json.loads(r.model_dump_json())
    assert dumped["category"] == "deficiency_likely"
    assert dumped["markers"]["b12"]["value"]["unit"] == "pmol/L"


@pytest.mark.parametrize(
    ("kwargs", "category", "rule"),
    [
        ({"b12": "179 ng/L"}, LIKELY, "confirmed-deficiency"),
        ({"b12": "180 ng/L"}, POSSIBLE, "indeterminate"),
        ({"b12": "350 ng/L"}, POSSIBLE, "indeterminate"),
        ({"b12": "351 ng/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"b12": "132 pmol/L"}, LIKELY, "confirmed-deficiency"),
        ({"b12": "133 pmol/L"}, POSSIBLE, "indeterminate"),
        ({"b12": "259 pmol/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"holotc": "24 pmol/L"}, LIKELY, "confirmed-deficiency"),
        ({"holotc": "70 pmol/L"}, POSSIBLE, "indeterminate"),
        ({"holotc": "71 pmol/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"b12": "250 ng/L", "mma": "0.5 umol/L"}, LIKELY, "indeterminate-mma-raised"),
        ({"b12": "250 ng/L", "mma": "0.3 umol/L"}, POSSIBLE, "indeterminate"),
        ({"b12": "500 ng/L", "mma": "0.5 umol/L"}, POSSIBLE, "metabolic-marker-raised"),
        ({"b12": "500 ng/L", "hcy": "30 umol/L"}, POSSIBLE, "metabolic-marker-raised"),
        ({"b12": "500 ng/L", "mma": "0.3 umol/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"mma": "0.3 umol/L"}, UNLIKELY, "mma-normal"),
        ({"mma": "0.5 umol/L"}, POSSIBLE, "metabolic-marker-raised"),
        ({"hcy": "10 umol/L"}, INSUFFICIENT, None),
        ({}, INSUFFICIENT, None),
        ({"b12": "<100 ng/L"}, LIKELY, "confirmed-deficiency"),
        ({"b12": "<200 ng/L"}, POSSIBLE, "censored-spans-bands"),
        ({"b12": ">400 ng/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"b12": ">1476 pmol/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"b12": "≤180 ng/L"}, POSSIBLE, "censored-spans-bands"),
        ({"b12": "<180 ng/L"}, LIKELY, "confirmed-deficiency"),
    ],
)
def test_nice_ng239_version_1(kwargs: dict[str, str], category: Category, rule: str | None) -> None:
    result = b12lab.classify(**kwargs, table="nice-ng239@1")  # type: ignore[arg-type]
    assert (result.category, result.rule) == (category, rule)


@pytest.mark.parametrize(
    ("kwargs", "category", "rule"),
    [
        ({"b12": "179 ng/L"}, LIKELY, "confirmed-deficiency"),
        ({"b12": "180 ng/L"}, POSSIBLE, "indeterminate-mma-not-measured"),
        ({"b12": "350 ng/L"}, POSSIBLE, "indeterminate-mma-not-measured"),
        ({"b12": "351 ng/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"b12": "132 pmol/L"}, LIKELY, "confirmed-deficiency"),
        ({"b12": "133 pmol/L"}, POSSIBLE, "indeterminate-mma-not-measured"),
        ({"b12": "259 pmol/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"holotc": "24 pmol/L"}, LIKELY, "confirmed-deficiency"),
        ({"holotc": "25 pmol/L"}, POSSIBLE, "indeterminate-mma-not-measured"),
        ({"holotc": "70 pmol/L"}, POSSIBLE, "indeterminate-mma-not-measured"),
        ({"holotc": "71 pmol/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"b12": "250 ng/L", "mma": "0.5 umol/L"}, LIKELY, "indeterminate-mma-raised"),
        ({"b12": "250 ng/L", "mma": "0.3 umol/L"}, POSSIBLE, "indeterminate-mma-normal"),
        ({"b12": "500 ng/L", "mma": "0.5 umol/L"}, POSSIBLE, "mma-raised"),
        ({"b12": "500 ng/L", "hcy": "30 umol/L"}, POSSIBLE, "hcy-raised"),
        ({"b12": "500 ng/L", "mma": "0.3 umol/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"mma": "0.3 umol/L"}, UNLIKELY, "mma-normal"),
        ({"mma": "0.5 umol/L"}, POSSIBLE, "mma-raised"),
        ({"hcy": "10 umol/L"}, INSUFFICIENT, None),
        ({}, INSUFFICIENT, None),
        ({"b12": "<100 ng/L"}, LIKELY, "confirmed-deficiency"),
        ({"b12": "<200 ng/L"}, POSSIBLE, "censored-uncertain"),
        ({"b12": "<200 ng/L", "mma": "0.8 umol/L"}, LIKELY, "censored-same-category"),
        ({"b12": ">300 ng/L"}, POSSIBLE, "censored-uncertain"),
        ({"b12": ">400 ng/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"b12": ">1476 pmol/L"}, UNLIKELY, "deficiency-unlikely"),
        ({"b12": "≤180 ng/L"}, POSSIBLE, "censored-uncertain"),
        ({"b12": "<180 ng/L"}, LIKELY, "confirmed-deficiency"),
        ({"b12": "≥180 ng/L", "mma": "0.2 umol/L"}, POSSIBLE, "censored-uncertain"),
    ],
)
def test_nice_ng239(kwargs: dict[str, str], category: Category, rule: str | None) -> None:
    result = b12lab.classify(**kwargs)  # type: ignore[arg-type]
    assert result.table.key == "nice-ng239@2"
    assert (result.category, result.rule) == (category, rule)


def test_nice_twins_compare_each_unit_with_its_published_edge() -> None:
    """NICE publishes 180 ng/L with the rounded twin 133 pmol/L; each unit meets its own number."""
    assert b12lab.classify(b12="132.9 pmol/L").markers["b12"].band == "deficient"
    assert b12lab.classify(b12="180.1 ng/L").markers["b12"].band == "indeterminate"  # 132.9 pmol/L
    assert b12lab.classify(b12="0.1329 nmol/L").markers["b12"].compared_in == "pmol/L"
    assert b12lab.classify(b12="0.18 ng/mL").markers["b12"].band == "indeterminate"


def test_censored_marker_says_why_it_is_indeterminate() -> None:
    result = b12lab.classify(b12="<200 ng/L", table="nice-ng239@1")
    marker = result.markers["b12"]
    assert marker.band is None
    assert marker.indeterminate_because_censored
    assert marker.interpretation == "IND"
    assert marker.note == "censored result spans more than one band"
    assert any("spans more than one band" in reason.text for reason in result.reasons)


def test_functional_deficiency_names_its_markers() -> None:
    result = b12lab.classify(b12="400 pmol/L", mma="0.6 umol/L", hcy="25 umol/L")
    assert result.functional
    (flag,) = [f for f in result.flags if f.id == "functional_deficiency"]
    assert flag.markers == ("mma",)  # homocysteine counts only where MMA was not measured
    old = b12lab.classify(b12="400 pmol/L", mma="0.6 umol/L", hcy="25 umol/L", table="nice-ng239@1")
    assert [f.markers for f in old.flags if f.id == "functional_deficiency"] == [("hcy", "mma")]
    assert not b12lab.classify(b12="400 pmol/L", mma="0.2 umol/L").functional


def test_confounder_flags_and_their_sources() -> None:
    result = b12lab.classify(
        b12="1000 pmol/L",
        mma="0.5 umol/L",
        folate="3 ng/mL",
        egfr="40 mL/min/1.73m2",
        age=80,
        pregnant=True,
    )
    assert {
        "renal_impairment",
        "low_folate",
        "older_age",
        "high_b12",
        "pregnancy_total_b12",
    } <= flag_ids(result)
    for flag in result.flags:
        assert flag.source
        assert flag.message
        assert flag.table


def test_markers_disagree() -> None:
    result = b12lab.classify(b12="100 ng/L", holotc="90 pmol/L")
    assert result.category is LIKELY
    assert "markers_disagree" in flag_ids(result)


def test_pregnancy_flag_only_without_active_b12() -> None:
    assert "pregnancy_total_b12" in flag_ids(b12lab.classify(b12="300 ng/L", pregnant=True))
    assert "pregnancy_total_b12" not in flag_ids(
        b12lab.classify(b12="300 ng/L", holotc="80 pmol/L", pregnant=True)
    )
    assert "pregnancy_total_b12" not in flag_ids(b12lab.classify(b12="300 ng/L", pregnant=False))


def test_no_flags_for_an_unremarkable_adult() -> None:
    result = b12lab.classify(
        b12="500 ng/L", mma="0.2 umol/L", hcy="9 umol/L", age=40, egfr="90 mL/min/1.73m2"
    )
    assert result.flags == ()
    assert result.category is UNLIKELY


@pytest.mark.parametrize(
    ("table", "kwargs", "category"),
    [
        ("bsh-2014", {"b12": "147 pmol/L"}, LIKELY),
        ("bsh-2014", {"b12": "148 pmol/L"}, UNLIKELY),
        ("bsh-2014", {"b12": "199 ng/L"}, LIKELY),
        ("bsh-2014", {"b12": "200 ng/L"}, UNLIKELY),
        ("bsh-2014", {"b12": "140 pmol/L", "mma": "0.2 umol/L"}, POSSIBLE),
        ("bsh-2014", {"b12": "300 pmol/L", "mma": "0.6 umol/L"}, POSSIBLE),
        ("generic-us-lab", {"b12": "149 ng/L"}, LIKELY),
        ("generic-us-lab", {"b12": "300 ng/L"}, POSSIBLE),
        ("generic-us-lab", {"b12": "300 ng/L", "mma": "0.41 umol/L"}, LIKELY),
        ("generic-us-lab", {"b12": "300 ng/L", "mma": "0.40 umol/L"}, UNLIKELY),
        ("generic-us-lab", {"b12": "401 ng/L"}, UNLIKELY),
    ],
)
def test_other_tables(table: str, kwargs: dict[str, str], category: Category) -> None:
    assert b12lab.classify(table=table, **kwargs).category is category  # type: ignore[arg-type]


def test_superseded_table_says_so() -> None:
    result = b12lab.classify(b12="300 pmol/L", table="bsh-2014@1")
    assert result.table.status == "superseded"
    assert any("NG239" in caveat for caveat in result.table.caveats)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"b12": "300 nmol/L"}, b12lab.ImplausibleValueError, ["b12", "300 nmol/L", "unit"]),
        ({"hcy": "600 umol/L"}, b12lab.ImplausibleValueError, ["hcy", "600"]),
        ({"b12": ">30000 pmol/L"}, b12lab.ImplausibleValueError, ["b12"]),
        ({"hcy": "15 kg"}, b12lab.DimensionError, ["hcy", "kg"]),
        ({"age": -1}, b12lab.InvalidValueError, ["age"]),
        ({"age": "old"}, b12lab.InvalidValueError, ["age"]),
        ({"sex": "q"}, b12lab.InvalidValueError, ["sex", "female"]),
        ({"pregnant": "maybe"}, b12lab.InvalidValueError, ["pregnant", "yes"]),
        ({"pregnant": True, "sex": "M"}, b12lab.ConflictingContextError, ["pregnant", "male"]),
        ({"table": "../etc"}, b12lab.TableNotFoundError, ["load_file"]),
    ],
)
def test_bad_input_raises_one_clear_typed_error(
    kwargs: dict[str, object], error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as caught:
        b12lab.classify(**kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, b12lab.B12LabError)
    assert all(word in str(caught.value) for word in words)


def test_below_measuring_range_is_not_implausible() -> None:
    result = b12lab.classify(b12="<30000 pmol/L")
    assert result.markers["b12"].indeterminate_because_censored


def test_categories_are_ordinal() -> None:
    assert INSUFFICIENT < UNLIKELY < POSSIBLE < LIKELY
    assert sorted([LIKELY, INSUFFICIENT, POSSIBLE, UNLIKELY]) == [
        INSUFFICIENT,
        UNLIKELY,
        POSSIBLE,
        LIKELY,
    ]
    assert Category.from_rank(LIKELY.rank) is LIKELY
    assert LIKELY == "deficiency_likely"
