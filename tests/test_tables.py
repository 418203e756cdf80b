"""Shipped tables: found by id, verified by hash, validated by schema, cited line by line."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest

import b12lab
from b12lab import tables
from b12lab._core.table_schema import TableModel

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = tables.available()


def test_available_lists_every_manifest_entry() -> None:
    manifest = (ROOT / "reference_ranges" / "SHA256SUMS").read_text().split("\n")
    names = sorted(
        line.split()[1].removesuffix(".toml").replace("/", "@") for line in manifest if line
    )
    assert sorted(SHIPPED) == names
    assert {"nice-ng239@1", "bsh-2014@1", "generic-us-lab@1"} <= set(SHIPPED)


def test_released_files_match_their_checksums() -> None:
    """A released table never changes: a new threshold is a new version file."""
    for line in (ROOT / "reference_ranges" / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        data = (ROOT / "reference_ranges" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} changed after release"


def test_every_table_file_is_in_the_manifest() -> None:
    listed = {
        line.split()[1]
        for line in (ROOT / "reference_ranges" / "SHA256SUMS").read_text().splitlines()
    }
    on_disk = {
        str(p.relative_to(ROOT / "reference_ranges"))
        for p in (ROOT / "reference_ranges").glob("*/*.toml")
    }
    assert on_disk == listed


@pytest.mark.parametrize("spec", SHIPPED)
def test_shipped_table_loads_and_reports_its_hash(spec: str) -> None:
    table = tables.load(spec)
    assert table.key == spec
    file = ROOT / "reference_ranges" / table.id / f"{table.version}.toml"
    assert table.sha256 == hashlib.sha256(file.read_bytes()).hexdigest()


@pytest.mark.parametrize("spec", SHIPPED)
def test_every_number_has_a_source(spec: str) -> None:
    model = tables.load(spec).model
    assert model.citation.document
    assert model.citation.year
    for name, variable in model.variables.items():
        for stratum in variable.all_strata():
            assert stratum.source
            for band in stratum.bands:
                assert band.source.strip(), f"{spec} {name} {band.label} has no source"
        if variable.absolute is not None:
            assert variable.absolute.source.strip()
    for item in [*model.rules, *model.flags]:
        assert item.source.strip()


@pytest.mark.parametrize("spec", SHIPPED)
def test_shipped_table_policy_compiles(spec: str) -> None:
    result = b12lab.classify(table=spec)
    assert result.category is b12lab.Category.INSUFFICIENT_DATA
    assert result.table.key == spec


def test_default_is_nice_and_newest_version() -> None:
    assert tables.load().key == "nice-ng239@2"
    assert tables.load("nice-ng239").key == "nice-ng239@2"
    assert tables.load("nice-ng239@1").key == "nice-ng239@1"


@pytest.mark.parametrize(
    "spec",
    [
        "../nice-ng239",
        "nice-ng239/1",
        "/etc/passwd",
        "nice-ng239@1.toml",
        "NICE",
        "nice-ng239@",
        "",
    ],
)
def test_load_refuses_anything_but_a_table_id(spec: str) -> None:
    with pytest.raises(b12lab.TableNotFoundError):
        tables.load(spec)


def test_unknown_id_and_version_list_what_exists() -> None:
    with pytest.raises(b12lab.TableNotFoundError, match="nice-ng239@1"):
        tables.load("who-2008")
    with pytest.raises(b12lab.TableNotFoundError, match="available: 1"):
        tables.load("nice-ng239@7")


def test_a_tampered_release_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    tables._load_shipped.cache_clear()
    manifest = dict(tables._manifest())
    manifest[("nice-ng239", "1")] = "0" * 64
    monkeypatch.setattr(tables, "_manifest", lambda: manifest)
    with pytest.raises(b12lab.TableIntegrityError, match="checksum"):
        tables._load_shipped("nice-ng239", "1")
    tables._load_shipped.cache_clear()


def test_load_file_reads_a_user_table(tmp_path: Path) -> None:
    source = (ROOT / "reference_ranges" / "generic-us-lab" / "1.toml").read_text()
    path = tmp_path / "my-lab.toml"
    path.write_text(source.replace('id = "generic-us-lab"', 'id = "my-lab"'))
    table = tables.load_file(path)
    assert table.key == "my-lab@1"
    result = b12lab.classify(mma="0.5 umol/L", b12="300 pmol/L", laboratory=table)
    assert result.table.laboratory is not None
    assert result.table.laboratory.id == "my-lab"
    assert result.markers["mma"].table == "my-lab@1"


def test_load_file_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(b12lab.TableNotFoundError):
        tables.load_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"id = [unclosed")
    with pytest.raises(b12lab.TableValidationError, match=r"bad\.toml"):
        tables.load_file(bad)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(b12lab.TableValidationError):
        tables.load_file(bad)


def test_validation_errors_name_file_field_and_problem(tmp_path: Path) -> None:
    data = (ROOT / "reference_ranges" / "nice-ng239" / "1.toml").read_text()
    path = tmp_path / "broken.toml"
    path.write_text(
        data.replace(
            'upper = { "ng/L" = 350, "pmol/L" = 258 }', 'upper = { "ng/L" = 350, "pmol/L" = 300 }'
        )
    )
    with pytest.raises(b12lab.TableValidationError) as caught:
        tables.load_file(path)
    message = str(caught.value)
    assert "broken.toml" in message
    assert "variables.b12" in message
    assert "258" in message


FIXTURES = ROOT / "tests" / "fixtures" / "tables"


def test_guideline_refuses_a_laboratory_without_the_needed_bands() -> None:
    lab = tables.load_file(FIXTURES / "nbt-2022.toml")
    for table in ("nice-ng239@1", "nice-ng239@2"):  # it has no MMA or homocysteine bands
        with pytest.raises(b12lab.TableValidationError, match=r"nbt-severn-b12@2022\.11"):
            b12lab.classify(b12="300 pmol/L", table=table, laboratory=lab)


def test_a_laboratory_table_classifies_on_its_own() -> None:
    lab = tables.load_file(FIXTURES / "nbt-2022.toml")
    assert b12lab.classify(b12="99 ng/L", table=lab).category is b12lab.Category.DEFICIENCY_LIKELY
    assert (
        b12lab.classify(b12="250 ng/L", table=lab).category is b12lab.Category.DEFICIENCY_POSSIBLE
    )
    assert (
        b12lab.classify(b12="251 ng/L", table=lab).category is b12lab.Category.DEFICIENCY_UNLIKELY
    )


@pytest.mark.parametrize(
    ("sex", "hcy", "band"),
    [
        ("male", "11 umol/L", "normal"),
        ("male", "12 umol/L", "high"),
        ("female", "11 umol/L", "high"),
        ("female", "9.9 umol/L", "normal"),
        (None, "11 umol/L", None),
    ],
)
def test_strata_choose_bands_by_sex(sex: str | None, hcy: str, band: str | None) -> None:
    lab = tables.load_file(FIXTURES / "sex-stratified-lab.toml")
    result = b12lab.classify(b12="300 pmol/L", hcy=hcy, sex=sex, laboratory=lab)
    assert result.markers["hcy"].band == band


def test_laboratory_table_takes_no_laboratory() -> None:
    with pytest.raises(b12lab.TableValidationError, match="takes no laboratory"):
        b12lab.classify(b12="300 pmol/L", table="generic-us-lab", laboratory="generic-us-lab")


def test_json_schema_is_exported_and_current() -> None:
    schema = tables.json_schema()
    assert schema["title"] == "TableModel"
    committed = ROOT / "docs" / "reference" / "table.schema.json"
    assert json.loads(committed.read_text()) == json.loads(tables.schema_text()), (
        "regenerate docs/reference/table.schema.json with b12lab.tables.schema_text()"
    )


def test_schema_accepts_every_shipped_file() -> None:
    for path in (ROOT / "reference_ranges").glob("*/*.toml"):
        TableModel.model_validate(tomllib.loads(path.read_text()))


@pytest.mark.parametrize("number", ["nan", "inf", "1e400", "-inf"])
def test_limits_and_edges_must_be_finite(tmp_path: Path, number: str) -> None:
    text = (ROOT / "reference_ranges" / "generic-us-lab" / "1.toml").read_text(encoding="utf-8")
    broken = re.sub(
        r"(\[variables\.b12\.absolute\][^\[]*?upper = )[0-9.]+", rf"\g<1>{number}", text
    )
    assert broken != text
    path = tmp_path / "lab.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(b12lab.TableValidationError, match="upper"):
        b12lab.tables.load_file(path)


def test_a_deeply_nested_file_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(b12lab.TableValidationError, match=r"nested too deeply|not a valid TOML"):
        b12lab.tables.load_file(path)
