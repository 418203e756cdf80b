"""``b12lab tables ID``: a table as text (bands, rules, flags, laboratory) and as JSON."""

from __future__ import annotations

import doctest
import json
import re
from pathlib import Path
from typing import Any

import pytest

import b12lab
from b12lab._core.table_schema import Rule, TableModel
from b12lab._io import table_text as table_text_module
from b12lab._io.cli import main
from b12lab._io.table_text import WIDTH, conditions_text, table_text
from b12lab.tables import Table

SHIPPED = b12lab.tables.available()


def _stratum(conditions: str, edge: float, *, upper_inclusive: bool) -> str:
    """A TOML stratum of B12 with a ``low`` and a ``normal`` band meeting at ``edge`` pmol/L."""
    upper, lower = str(upper_inclusive).lower(), str(not upper_inclusive).lower()
    return f"""[[variables.b12.strata]]
{conditions}
source = "test"

[[variables.b12.strata.bands]]
label = "low"
interpretation = "L"
upper = {{ "pmol/L" = {edge} }}
upper_inclusive = {upper}
source = "test"

[[variables.b12.strata.bands]]
label = "normal"
interpretation = "N"
lower = {{ "pmol/L" = {edge} }}
lower_inclusive = {lower}
source = "test"
"""


STRATIFIED = (
    """
schema_version = 1
id = "stratified-test"
version = "2"
title = "A table whose B12 bands depend on sex, pregnancy and age"
kind = "laboratory"
status = "example"
effective = "2025"
population = "test patients"

[citation]
document = "Test document"
year = 2025

[variables.b12]
units = { "pmol/L" = 1 }

"""
    + _stratum('sex = "female"\npregnant = true', 90.5, upper_inclusive=False)
    + _stratum("age_min = 18\nage_max = 65", 148, upper_inclusive=True)
    + _stratum("", 150, upper_inclusive=False)
    + """
[[rules]]
id = "low"
when = { b12 = ["low"] }
category = "deficiency_likely"
reason = "Low."
source = "test"
"""
)


def _shown(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["tables", *args]) == 0
    out: str = capsys.readouterr().out
    return out


def _section(text: str, title: str) -> list[str]:
    """The lines of one section (blocks are separated by an empty line)."""
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0].startswith(title):
            return lines[1:]
    raise AssertionError(f"no section {title!r} in:\n{text}")


@pytest.mark.parametrize("spec", SHIPPED)
def test_rules_are_shown_numbered_in_evaluation_order(
    capsys: pytest.CaptureFixture[str], spec: str
) -> None:
    model = b12lab.tables.load(spec).model
    rules = _section(_shown(capsys, spec), "Rules")
    headings = [re.fullmatch(r"  (\d+)\. (\S+)", line) for line in rules]
    numbered = [(int(m[1]), m[2]) for m in headings if m]
    assert numbered == list(enumerate((rule.id for rule in model.rules), start=1))
    categories = [line.split()[1] for line in rules if line.strip().startswith("category:")]
    assert categories == [rule.category.value for rule in model.rules]


@pytest.mark.parametrize("spec", SHIPPED)
def test_every_band_flag_and_line_fits(capsys: pytest.CaptureFixture[str], spec: str) -> None:
    model = b12lab.tables.load(spec).model
    text = _shown(capsys, spec)
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    bands = _section(text, "Bands")
    for name, variable in model.variables.items():
        assert f"  {name} [{', '.join(variable.units)}]" in bands
    shown_labels = [
        line.split()[0] for line in bands if line.startswith("      ") and line[6] != " "
    ]
    assert shown_labels == [
        band.label
        for variable in model.variables.values()
        for stratum in variable.all_strata()
        for band in stratum.bands
    ]
    flags = [line[2:] for line in _section(text, "Flags") if re.fullmatch(r"  \S+", line)]
    assert flags == [flag.id for flag in model.flags]


def test_nice_ng239_rules_flags_and_laboratory_read_as_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _shown(capsys, "nice-ng239@1")
    rules = "\n".join(_section(text, "Rules"))
    assert (
        "  2. indeterminate-mma-raised\n"
        "     when:       b12 is indeterminate and mma is high, or holotc is indeterminate and mma "
        "is high\n"
        "     category:   deficiency_likely\n"
        "     reason:     Indeterminate total or active B12 with MMA above the laboratory's "
        "reference range:\n"
    ) in rules
    assert (
        "  7. mma-normal\n"
        "     when:       b12 is missing and holotc is missing and mma is normal and hcy is normal "
        "or missing\n"
    ) in rules
    assert "     source:     b12lab interval rule applied to the NG239 bands" in rules
    flags = "\n".join(_section(text, "Flags"))
    assert (
        "  markers_disagree\n"
        "     when:       b12 is deficient and holotc is unlikely,\n"
        "                 or b12 is unlikely and holotc is deficient,\n"
        "                 or b12 is deficient and mma is normal,\n"
        "                 or holotc is deficient and mma is normal\n"
        "     message:    The markers disagree."
    ) in flags
    assert "     when:       pregnant is true and b12 is deficient, indeterminate," in flags
    laboratory = _section(text, "Laboratory ranges")
    assert laboratory[0] == "  mma, hcy: from generic-us-lab@1 by default"
    bands = _section(text, "Bands")
    assert "      indeterminate   IND  >= 180 and <= 350 ng/L (>= 133 and <= 258 pmol/L)" in bands


def test_second_versions_say_how_they_are_read(capsys: pytest.CaptureFixture[str]) -> None:
    text = _shown(capsys, "generic-us-lab")
    reading = "\n".join(_section(text, "Reading"))
    assert "read in every band it may lie in" in reading
    assert "holotc is not read by this table" in reading
    assert "numerator 142; kappa 0.7 female, 0.9 male; alpha -0.241 female" in reading
    assert "    stratum 1 of 2: age >= 65 (age 65 and over)" in text
    assert "Caveats" in text
    nice = _shown(capsys, "nice-ng239")
    assert "folate, egfr: optional" in nice


def test_a_laboratory_table_has_no_laboratory_section(capsys: pytest.CaptureFixture[str]) -> None:
    text = _shown(capsys, "generic-us-lab@1")
    assert "Laboratory ranges" not in text
    assert "    plausible:  <= 25279.45 pmol/L; a value outside is a data error" in text
    assert "      normal          N    <= 0.40 nmol/mL" in text


def test_conditions_text() -> None:
    assert conditions_text([{"b12": ["deficient"]}, {"holotc": ["deficient"]}]) == (
        "b12 is deficient, or holotc is deficient"
    )
    assert conditions_text([{"b12": ["indeterminate"], "mma": ["high"]}]) == (
        "b12 is indeterminate and mma is high"
    )
    assert conditions_text([{"pregnant": [False], "b12": ["a", "b", "c"]}]) == (
        "pregnant is false and b12 is a, b or c"
    )
    failures, _ = doctest.testmod(table_text_module)
    assert failures == 0


def test_strata_show_each_with_its_conditions_and_bands(tmp_path: Path) -> None:
    path = tmp_path / "stratified.toml"
    path.write_text(STRATIFIED, encoding="utf-8")
    table = b12lab.tables.load_file(path)
    bands = _section(table_text(table), "Bands")
    assert bands == [
        "  b12 [pmol/L]",
        "    stratum 1 of 3: sex is female and pregnant",
        "      low             L    < 90.5 pmol/L",
        "      normal          N    >= 90.5 pmol/L",
        "    stratum 2 of 3: age >= 18 and age < 65",
        "      low             L    <= 148.0 pmol/L",
        "      normal          N    > 148.0 pmol/L",
        "    stratum 3 of 3: everyone",
        "      low             L    < 150.0 pmol/L",
        "      normal          N    >= 150.0 pmol/L",
    ]


def test_fields_the_text_does_not_know_are_passed_over() -> None:
    """A newer schema may add optional fields; the text shows what it knows and does not fail."""

    class NewerRule(Rule):
        priority: int | None = None

    class NewerTable(TableModel):
        reviewed: str | None = None

    table = b12lab.tables.load("nice-ng239")
    data: dict[str, Any] = table.model.model_dump()
    rules = [NewerRule(**rule.model_dump(), priority=1) for rule in table.model.rules]
    newer = NewerTable.model_validate({**data, "reviewed": "2025-01"}).model_copy(
        update={"rules": rules}
    )
    assert newer.reviewed == "2025-01"
    assert isinstance(newer.rules[0], NewerRule)
    assert newer.rules[0].priority == 1
    shown = table_text(Table(model=newer, sha256=table.sha256, origin=table.origin))
    assert shown == table_text(table)


@pytest.mark.parametrize("spec", SHIPPED)
def test_json_round_trips_to_the_same_table(capsys: pytest.CaptureFixture[str], spec: str) -> None:
    table = b12lab.tables.load(spec)
    document = json.loads(_shown(capsys, spec, "--json"))
    assert document["key"] == table.key == spec
    assert document["sha256"] == table.sha256
    model = TableModel.model_validate(document["table"])
    assert model == table.model
    assert [rule["id"] for rule in document["table"]["rules"]] == [r.id for r in table.model.rules]
    for name, variable in table.model.variables.items():
        shown = document["table"]["variables"][name]
        strata = shown["strata"] or [{"bands": shown["bands"]}]
        bands = [band for stratum in strata for band in stratum["bands"]]
        expected = [band for stratum in variable.all_strata() for band in stratum.bands]
        assert [band["label"] for band in bands] == [b.label for b in expected]
        assert [band["upper"] for band in bands] == [b.upper for b in expected]


def test_an_unknown_table_exits_2_naming_the_shipped_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for args in (["tables", "no-such-table"], ["tables", "no-such-table", "--json"]):
        assert main(args) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == (
            f"b12lab: error: no shipped table 'no-such-table'; available: {', '.join(SHIPPED)}\n"
        )


def test_json_needs_a_table_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tables", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--json needs a table id" in captured.err
