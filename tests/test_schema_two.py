"""The second table schema: what a table author may and may not write, and what it does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import b12lab
from b12lab import tables
from tests.strategies import shipped_table_data


def _invalid(data: dict[str, Any], match: str) -> None:
    with pytest.raises(b12lab.TableValidationError, match=match):
        tables.validate(data)


def test_rules_may_not_name_the_censored_label() -> None:
    data = shipped_table_data("nice-ng239/2.toml")
    data["rules"].append(
        {
            "id": "old-style",
            "when": {"b12": ["censored"]},
            "category": "deficiency_possible",
            "reason": "r",
            "source": "s",
        }
    )
    _invalid(data, "censored")


def test_the_first_schema_still_may() -> None:
    assert tables.validate(shipped_table_data("nice-ng239/1.toml")).schema_version == 1


def test_cross_check_needs_the_second_schema_and_an_unread_analyte() -> None:
    first = shipped_table_data("generic-us-lab/1.toml")
    first["cross_check"] = {"holotc": "nice-ng239@2"}
    _invalid(first, "schema_version = 2")
    second = shipped_table_data("generic-us-lab/2.toml")
    second["cross_check"] = {"b12": "nice-ng239@2"}
    _invalid(second, "not an analyte this table leaves")
    second["cross_check"] = {"holotc": "not a spec"}
    _invalid(second, "cross_check")


def test_cross_check_against_a_table_without_the_bands_is_refused() -> None:
    data = shipped_table_data("generic-us-lab/2.toml")
    data["cross_check"] = {"holotc": "bsh-2014@2"}
    table = tables.Table(model=tables.validate(data), sha256="0" * 64, origin="t.toml")
    with pytest.raises(b12lab.TableValidationError, match="has no bands for it"):
        b12lab.classify(holotc="20 pmol/L", table=table)


def test_optional_laboratory_variables_must_be_provided() -> None:
    data = shipped_table_data("nice-ng239/2.toml")
    data["laboratory"]["optional"] = ["folate", "creatinine"]
    _invalid(data, "laboratory.optional")


def test_a_laboratory_without_the_optional_variables_is_accepted(tmp_path: Any) -> None:
    lab = copy.deepcopy(shipped_table_data("generic-us-lab/2.toml"))
    for name in ("folate", "egfr"):
        del lab["variables"][name]
    lab["flags"] = [
        f for f in lab["flags"] if "folate" not in str(f["when"]) and "egfr" not in str(f["when"])
    ]
    lab["rules"] = [r for r in lab["rules"] if "folate" not in str(r["when"])]
    del lab["derived"]
    lab["id"] = "no-folate-lab"
    table = tables.Table(model=tables.validate(lab), sha256="0" * 64, origin="lab.toml")
    result = b12lab.classify(
        b12="500 ng/L", hcy="25 umol/L", mma="0.2 umol/L", folate="3 nmol/L", laboratory=table
    )
    assert result.rule == "hcy-raised"  # the folate pattern needs folate bands
    assert "marker_not_interpreted" in {flag.id for flag in result.flags}
    assert result.markers["folate"].band is None


def test_strata_names_reach_the_reasons() -> None:
    old = b12lab.classify(b12="500 ng/L", mma="0.43 umol/L", age=70)
    young = b12lab.classify(b12="500 ng/L", mma="0.43 umol/L", age=40)
    assert "interval for age 65 and over" in old.reasons[-1].text
    assert "interval for adults under 65 or age not given" in young.reasons[-1].text
    assert old.markers["mma"].band == "normal"
    assert young.markers["mma"].band == "high"
