"""Several laboratory tables in one frame: a site column picks each row's laboratory table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import b12lab
import b12lab._core.frame
from b12lab import tables
from b12lab._core.frame import classify_frame
from b12lab._io.cli import main
from b12lab.tables import Table

ROOT = Path(__file__).resolve().parents[1]
STRATIFIED = ROOT / "tests" / "fixtures" / "tables" / "sex-stratified-lab.toml"
GENERIC = "generic-us-lab@2"


def _site_table(directory: Path) -> Path:
    """The fixture laboratory table with its MMA upper limit at 0.30 umol/L instead of 0.40."""
    text = STRATIFIED.read_text(encoding="utf-8")
    text = text.replace('id = "example-stratified-lab"', 'id = "site-a-lab"')
    path = directory / "site-a.toml"
    path.write_text(text.replace("0.40", "0.30"), encoding="utf-8")
    return path


@pytest.fixture
def site_a(tmp_path: Path) -> Table:
    return tables.load_file(_site_table(tmp_path))


def _frame(sites: list[object], index: list[int] | None = None) -> pd.DataFrame:
    n = len(sites)
    return pd.DataFrame(
        {
            "lab": sites,
            "b12": ["250 pmol/L"] * n,
            "mma": ["0.35 umol/L"] * n,
            "hcy": ["11 umol/L"] * n,
            "sex": ["male"] * n,
        },
        index=index,
    )


def test_the_same_mma_is_banded_by_each_rows_site(site_a: Table) -> None:
    df = _frame(["SITE-B", "SITE-A", "SITE-A", "SITE-B"], index=[40, 7, 19, 3])
    out = b12lab.classify_frame(
        df, laboratory={"SITE-A": site_a, "SITE-B": GENERIC}, laboratory_column="lab"
    )
    assert list(out.index) == [40, 7, 19, 3]
    assert list(out["lab"]) == ["SITE-B", "SITE-A", "SITE-A", "SITE-B"]
    assert list(out["b12lab_mma_band"]) == ["normal", "high", "high", "normal"]
    assert list(out["b12lab_laboratory"]) == [GENERIC, site_a.key, site_a.key, GENERIC]
    assert list(out["b12lab_category"]) == [
        "deficiency_possible",
        "deficiency_likely",
        "deficiency_likely",
        "deficiency_possible",
    ]
    assert (out["b12lab_error"] == "").all()


def test_unknown_or_missing_site_is_a_row_error(site_a: Table) -> None:
    df = _frame(["SITE-A", "SITE-Z", None, ""], index=[5, 6, 7, 8])
    out = b12lab.classify_frame(df, laboratory={"SITE-A": site_a}, laboratory_column="lab")
    assert list(out.index) == [5, 6, 7, 8]
    errors = list(out["b12lab_error"])
    assert errors[0] == ""
    assert errors[1].startswith("unknown_laboratory: site 'SITE-Z' in column 'lab'")
    assert "SITE-A" in errors[1]
    assert errors[2].startswith("unknown_laboratory: no site in column 'lab'")
    assert errors[3] == errors[2]
    assert list(out["b12lab_category"]) == ["deficiency_likely", "", "", ""]
    assert list(out["b12lab_laboratory"]) == [site_a.key, "", "", ""]
    assert out["b12lab_table"].nunique() == 1


def test_a_given_row_error_comes_before_the_unknown_site(site_a: Table) -> None:
    df = _frame(["SITE-Z", "SITE-Z"])
    out = b12lab.classify_frame(
        df,
        laboratory={"SITE-A": site_a},
        laboratory_column="lab",
        row_errors=["ragged_row: 3 fields, expected 5", ""],
    )
    assert out["b12lab_error"].iloc[0] == "ragged_row: 3 fields, expected 5"
    assert out["b12lab_error"].iloc[1].startswith("unknown_laboratory:")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_mixed_frame_equals_each_site_on_its_own(site_a: Table, seed: int) -> None:
    """Sites differ in their columns too (the fixture has no folate bands): union, in order."""
    rng = np.random.default_rng(seed)
    n = 60
    df = pd.DataFrame(
        {
            "lab": rng.choice(["SITE-A", "SITE-B"], n),
            "b12": [f"{v:.0f} pmol/L" for v in rng.uniform(80, 600, n)],
            "mma": [f"{v:.2f} umol/L" for v in rng.uniform(0.1, 0.8, n)],
            "hcy": [f"{v:.1f} umol/L" for v in rng.uniform(5, 20, n)],
            "folate": [f"{v:.1f} ng/mL" for v in rng.uniform(1, 20, n)],
            "sex": rng.choice(["male", "female", "x"], n),
        },
        index=rng.permutation(1000)[:n],
    )
    mapping = {"SITE-A": site_a, "SITE-B": GENERIC}
    mixed = b12lab.classify_frame(df, laboratory=mapping, laboratory_column="lab", explain=True)
    assert list(mixed.index) == list(df.index)
    for site, lab in mapping.items():
        rows = df[df["lab"] == site]
        alone = b12lab.classify_frame(rows, laboratory=lab, explain=True)
        part = mixed.loc[rows.index]
        for name in alone.columns:
            assert list(part[name].astype(object)) == list(alone[name].astype(object)), name
        for name in set(mixed.columns) - set(alone.columns):  # another site's columns: empty
            assert (part[name].astype(str) == "").all(), name
    assert "b12lab_folate_band" in mixed.columns
    assert "b12lab_folate_band" not in b12lab.classify_frame(df, laboratory=site_a).columns
    categorical = [c for c in mixed.columns if c.startswith("b12lab_") and c != "b12lab_reasons"]
    for name in categorical:
        assert mixed[name].dtype in (np.float64, "category"), name


def test_mapping_needs_a_column_and_the_column_must_exist(site_a: Table) -> None:
    df = _frame(["SITE-A"])
    with pytest.raises(b12lab.ColumnError, match="laboratory_column"):
        b12lab.classify_frame(df, laboratory={"SITE-A": site_a})
    with pytest.raises(b12lab.ColumnError, match="'site'") as caught:
        b12lab.classify_frame(df, laboratory={"SITE-A": site_a}, laboratory_column="site")
    assert caught.value.columns == ("site",)
    with pytest.raises(b12lab.ColumnError, match="not a mapping"):
        b12lab.classify_frame(df, laboratory=site_a, laboratory_column="lab")
    with pytest.raises(b12lab.TableNotFoundError):
        b12lab.classify_frame(df, laboratory={"SITE-A": "no-such-lab@1"}, laboratory_column="lab")


def test_cli_reads_one_laboratory_table_per_site(tmp_path: Path) -> None:
    table = _site_table(tmp_path)
    source = tmp_path / "in.csv"
    source.write_text(
        "lab,b12,mma,hcy,sex\n"
        "SITE-B,250 pmol/L,0.35 umol/L,11 umol/L,male\n"
        "SITE-A,250 pmol/L,0.35 umol/L,11 umol/L,male\n"
        "SITE-Q,250 pmol/L,0.35 umol/L,11 umol/L,male\n",
        encoding="utf-8",
    )
    output = tmp_path / "out.csv"
    code = main(
        [
            *("classify", str(source), "-o", str(output), "--laboratory-column", "lab"),
            *("--laboratory", f"SITE-A={table}", "--laboratory", f"SITE-B={GENERIC}"),
        ]
    )
    assert code == 0
    out = pd.read_csv(output, keep_default_na=False)
    assert list(out["b12lab_mma_band"]) == ["normal", "high", ""]
    assert list(out["b12lab_laboratory"]) == [GENERIC, "site-a-lab@1", ""]
    assert out["b12lab_error"].iloc[2].startswith("line 4: unknown_laboratory: site 'SITE-Q'")


def test_cli_refuses_repeated_laboratory_without_a_column(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("b12\n250 pmol/L\n", encoding="utf-8")
    code = main(["classify", str(source), "--laboratory", GENERIC, "--laboratory", GENERIC])
    assert code != 0


def test_parquet_blocks_with_sites_apart_share_one_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks hold one site each; the file's schema, rows and order are those of the whole."""
    blocks: list[set[str]] = []

    def counted(df: pd.DataFrame, **options: object) -> pd.DataFrame:
        blocks.append(set(df["lab"]))
        return classify_frame(df, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(b12lab._core.frame, "classify_frame", counted)
    table = _site_table(tmp_path)
    rows = ["lab,b12,mma,hcy,folate,sex"]
    sites = ["SITE-A"] * 2000 + ["SITE-B"] * 2000 + ["SITE-X"] * 1000 + ["SITE-A"] * 500
    rows += [f"{s},250 pmol/L,0.35 umol/L,11 umol/L,4 ng/mL,male" for s in sites]
    source = tmp_path / "in.csv"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    output = tmp_path / "out.parquet"
    code = main(
        [
            *("classify", str(source), "-o", str(output), "--chunk-bytes", "4096"),
            *("--laboratory-column", "lab", "--laboratory", f"SITE-A={table}"),
            *("--laboratory", f"SITE-B={GENERIC}"),
        ]
    )
    assert code == 0
    assert {"SITE-A"} in blocks
    assert {"SITE-B"} in blocks
    assert {"SITE-X"} in blocks
    out = pd.read_parquet(output)
    assert list(out["lab"]) == sites
    assert isinstance(out["b12lab_mma_band"].dtype, pd.CategoricalDtype)
    expected_band = {"SITE-A": "high", "SITE-B": "normal", "SITE-X": ""}
    assert list(out["b12lab_mma_band"]) == [expected_band[s] for s in sites]
    folate = out.groupby("lab", observed=True)["b12lab_folate_band"].agg(lambda c: set(c))
    assert folate["SITE-A"] == {""}  # the site's table has no folate bands
    assert folate["SITE-X"] == {""}
    assert "" not in folate["SITE-B"]
    assert (out["b12lab_error"].str.startswith("line") == (out["lab"] == "SITE-X")).all()


def test_dask_passes_the_mapping_to_each_partition(site_a: Table) -> None:
    dd = pytest.importorskip("dask.dataframe")
    import b12lab.dask

    df = _frame(["SITE-B", "SITE-A", "SITE-Z", "SITE-A"], index=[9, 8, 7, 6])
    mapping = {"SITE-A": site_a, "SITE-B": GENERIC}
    lazy = b12lab.dask.classify(
        dd.from_pandas(df, npartitions=2), laboratory=mapping, laboratory_column="lab"
    )
    out = lazy.compute().loc[df.index]  # from_pandas sorts by the index
    expected = b12lab.classify_frame(df, laboratory=mapping, laboratory_column="lab")
    assert list(out["b12lab_mma_band"]) == list(expected["b12lab_mma_band"])
    assert list(out["b12lab_laboratory"]) == [GENERIC, site_a.key, "", site_a.key]
