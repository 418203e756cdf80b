"""Dask: the same answer as classify_frame, partition by partition, in or out of process."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import b12lab  # noqa: E402  (after the skips: without Dask there is nothing to test)
import b12lab._core.policy  # noqa: E402
from b12lab._core.columns import PREFIX  # noqa: E402
from b12lab._core.frame import classify_frame  # noqa: E402
from b12lab.dask import classify  # noqa: E402
from tests.strategies import context_flagged_table_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAB_TABLE = ROOT / "tests" / "fixtures" / "tables" / "sex-stratified-lab.toml"


def patients() -> pd.DataFrame:
    """Results as laboratories send them, with the problems real exports have."""
    return pd.DataFrame(
        {
            "id": [f"p{i:02d}" for i in range(12)],
            "b12": [
                "160 pg/mL",
                "<100 ng/L",
                "bad",
                None,
                "400 pmol/L",
                "250 pmol/L",
                ">2000 pg/mL",
                "180 pmol/L",
                "",
                "300 ng/L",
                "160 kg",
                "95 pmol/L",
            ],
            "mma": [
                "0.52 µmol/L",
                "0.30 umol/L",
                None,
                "0.45 umol/L",
                "0.20 umol/L",
                "400 nmol/L",
                None,
                "0.41 umol/L",
                "0.60 umol/L",
                "x",
                "0.25 umol/L",
                "<0.10 umol/L",
            ],
            "hcy": [
                "18.2 umol/L",
                "11 umol/L",
                None,
                "11 umol/L",
                "9 umol/L",
                "12 umol/L",
                None,
                "10 umol/L",
                "25 umol/L",
                None,
                "8 umol/L",
                "11 umol/L",
            ],
            "age": [72, 34, None, 45, 80, 29, 61, 90, 55, 40, 50, 67],
            "sex": ["female", "male", "F", None, "m", "female", "x", "male", "F", "M", None, "f"],
        },
        # A shuffled index: rows must come back in their order, with their labels.
        index=[31, 4, 17, 8, 22, 1, 40, 13, 9, 27, 3, 50],
    )


def new_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in frame.columns if str(name).startswith(PREFIX)]


def check_same_as_pandas(got: pd.DataFrame, ddf: Any, pdf: pd.DataFrame, **options: Any) -> None:
    """The result equals classify_frame on the partitions' data and on the original frame.

    Dask's ``from_pandas`` turns pandas ``str`` columns into ``string`` columns, so the input
    columns are compared with what Dask holds; the b12lab columns with the pure-pandas answer.
    A categorical column's categories are the union over partitions, in the order Dask met them:
    the same set as in pandas (the dtypes compare equal), not necessarily the same order.
    """
    in_dask = classify_frame(ddf.compute(), **options)
    pd.testing.assert_frame_equal(got, in_dask, check_categorical=False)
    assert categories(got) == categories(in_dask)
    expected = classify_frame(pdf, **options)
    pd.testing.assert_frame_equal(
        got[new_columns(got)], expected[new_columns(expected)], check_categorical=False
    )
    assert categories(got) == categories(expected)


def kinds(dtypes: pd.Series) -> pd.Series:
    """Dtypes, with every categorical as "category": Dask declares their categories unknown."""
    return dtypes.map(lambda d: "category" if isinstance(d, pd.CategoricalDtype) else d)


def categories(frame: pd.DataFrame) -> dict[str, set[str]]:
    """Each categorical column's categories, as a set.

    Where partitions hold different categories, Dask's union re-infers the categories' own dtype
    (``str`` under pandas 3, where classify_frame gives ``object``); the values are the same.
    """
    return {
        str(name): set(frame[name].cat.categories)
        for name in frame.columns
        if isinstance(frame[name].dtype, pd.CategoricalDtype)
    }


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """Two single-threaded worker processes: tasks and tables are pickled to reach them."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as connected,
    ):
        yield connected


@pytest.mark.parametrize("npartitions", [1, 3, 7])
def test_equals_classify_frame(npartitions: int) -> None:
    pdf = patients()
    ddf = dd.from_pandas(pdf, npartitions=npartitions, sort=False)
    got = classify(ddf).compute(scheduler="sync")
    assert list(got.index) == list(pdf.index)
    check_same_as_pandas(got, ddf, pdf)


@pytest.mark.parametrize("npartitions", [1, 3, 7])
def test_meta_dtypes_equal_computed_dtypes(npartitions: int) -> None:
    pdf = patients()
    ddf = dd.from_pandas(pdf, npartitions=npartitions, sort=False)
    result = classify(ddf)
    computed = result.compute(scheduler="sync")
    pd.testing.assert_series_equal(kinds(result.dtypes), kinds(computed.dtypes))
    expected = classify_frame(ddf.compute())
    pd.testing.assert_series_equal(kinds(computed.dtypes), kinds(expected.dtypes))
    assert categories(computed) == categories(expected)


def test_empty_partitions_keep_the_declared_dtypes() -> None:
    # pandas gives an empty column of strings dtype object, a filled one dtype str.
    ddf = dd.from_pandas(patients(), npartitions=3, sort=False)
    result = classify(ddf[ddf["age"] > 200])
    computed = result.compute(scheduler="sync")
    assert len(computed) == 0
    pd.testing.assert_series_equal(kinds(result.dtypes), kinds(computed.dtypes))


def test_runs_out_of_process(client: object) -> None:
    pdf = patients()
    ddf = dd.from_pandas(pdf, npartitions=4, sort=False)
    got = classify(ddf, table="bsh-2014").compute()
    check_same_as_pandas(got, ddf, pdf, table="bsh-2014")
    assert set(got["b12lab_table"]) == {"bsh-2014@2"}


def test_own_laboratory_table_out_of_process(client: object) -> None:
    pdf = patients()
    ddf = dd.from_pandas(pdf, npartitions=3, sort=False)
    lab = b12lab.tables.load_file(LAB_TABLE)
    got = classify(ddf, laboratory=lab).compute()
    check_same_as_pandas(got, ddf, pdf, laboratory=lab)
    assert set(got["b12lab_hcy_band"]) >= {"normal", "high"}


def test_table_travels_with_the_graph(client: object, tmp_path: Path) -> None:
    # Loaded once on the client: the workers never read the file, so deleting it is harmless.
    copy = tmp_path / "lab.toml"
    shutil.copy(LAB_TABLE, copy)
    lab = b12lab.tables.load_file(copy)
    result = classify(dd.from_pandas(patients(), npartitions=2), laboratory=lab)
    copy.unlink()
    got = result.compute()
    assert set(got["b12lab_table"]) == {b12lab.tables.load("nice-ng239").key}
    assert set(got["b12lab_laboratory"]) == {lab.key}
    assert got["b12lab_hcy_band"].ne("").any()


def test_context_fields_reach_a_table_loaded_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "context-test.toml"
    path.write_text(context_flagged_table_text(), encoding="utf-8")
    table = b12lab.tables.load_file(path)
    pdf = patients().assign(
        N2O=["yes", "no", None, "Y", "unknown", "maybe", 1, 0, True, False, "", "n"],
        b12_treatment=["no", "yes", None, None, "?", "no", 0, 1, False, True, None, "N"],
    )
    ddf = dd.from_pandas(pdf, npartitions=3, sort=False)
    got = classify(ddf, table=table).compute(scheduler="sync")
    check_same_as_pandas(got, ddf, pdf, table=table)
    assert list(got["b12lab_flags"].str.contains("nitrous_oxide_use")) == [
        True, False, False, True, False, False, True, False, True, False, False, False
    ]  # fmt: skip
    assert got["b12lab_error"].iloc[5].startswith("invalid_value: nitrous_oxide: 'maybe'")


def test_partitions_never_look_a_table_up(monkeypatch: pytest.MonkeyPatch) -> None:
    result = classify(dd.from_pandas(patients(), npartitions=3), table="nice-ng239")

    def refuse(spec: str) -> None:
        raise AssertionError(f"a partition looked up table {spec!r}")

    monkeypatch.setattr(b12lab._core.policy, "load", refuse)
    got = result.compute(scheduler="sync")
    assert set(got["b12lab_table"]) == {"nice-ng239@2"}


def test_written_to_parquet_and_read_back(tmp_path: Path) -> None:
    pdf = patients().reset_index(drop=True)
    classify(dd.from_pandas(pdf, npartitions=3)).to_parquet(tmp_path, write_index=False)
    back = pd.read_parquet(tmp_path)
    expected = classify_frame(pdf)
    columns = new_columns(expected)
    # Parquet has its own column types; the values must survive the round trip.
    pd.testing.assert_frame_equal(back[columns].astype(object), expected[columns].astype(object))


def test_problems_are_raised_before_computing() -> None:
    ddf = dd.from_pandas(patients(), npartitions=2)
    with pytest.raises(b12lab.TableNotFoundError, match="no-such-table"):
        classify(ddf, table="no-such-table")
    with pytest.raises(b12lab.ColumnError, match="nope"):
        classify(ddf, columns={"b12": "nope"})
    with pytest.raises(TypeError, match="classify_frame"):
        classify(patients())


def test_missing_dask_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)
    with pytest.raises(ImportError, match=r"pip install 'b12lab\[dask\]'"):
        classify(dd.from_pandas(patients(), npartitions=1))
