"""Comparing two tables on the same rows: the transition matrix, the changed rows, the command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import b12lab
from b12lab._io.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "patients.csv"
OLD, NEW = "nice-ng239@1", "nice-ng239@2"
LABELS = [
    "insufficient_data",
    "deficiency_unlikely",
    "deficiency_possible",
    "deficiency_likely",
    "error",
]
ANSWERS = ["category", "rule", "flags", "error"]


@pytest.fixture
def patients() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)


@pytest.fixture
def movers() -> pd.DataFrame:
    """Rows version 2 answers differently from version 1, and rows it answers alike."""
    return pd.DataFrame(
        {
            "id": ["same-censored", "nitrous-oxide", "too-low", "implausible", "normal"],
            "b12": ["<200 ng/L", "500 ng/L", "20 pmol/L", "300 nmol/L", "400 pmol/L"],
            "hcy": [None, "20 umol/L", None, None, None],
            "nitrous_oxide": [None, "yes", None, None, None],
        },
        index=[10, 11, 12, 13, 14],
    )


def test_the_matrix_counts_every_row_once(patients: pd.DataFrame) -> None:
    result = b12lab.diff(patients, table=OLD, against=NEW)
    assert (result.table, result.against) == (OLD, NEW)
    assert result.matrix.index.tolist() == LABELS
    assert result.matrix.columns.tolist() == LABELS
    assert (result.matrix.index.name, result.matrix.columns.name) == (OLD, NEW)
    assert all(dtype == np.int64 for dtype in result.matrix.dtypes)
    assert int(result.matrix.to_numpy().sum()) == len(patients)
    old = b12lab.classify_frame(patients, table=OLD)["b12lab_category"].astype(str)
    assert result.matrix.sum(axis=1).drop("error").tolist() == [
        int((old == label).sum()) for label in LABELS[:-1]
    ]


def test_rows_with_errors_count_as_error(patients: pd.DataFrame) -> None:
    result = b12lab.diff(patients, table=OLD, against=NEW)
    # P012 (no unit), P013 (nmol/L, implausible) and P014 (not a number) fail under both
    assert result.matrix.loc["error", "error"] == 3
    assert result.matrix.loc["error"].sum() == 3
    assert result.matrix["error"].sum() == 3


def test_version_two_moves_categories_only_where_it_reads_more(patients: pd.DataFrame) -> None:
    """NG239 version 2 reworded rules but, on the example file, changed no category."""
    result = b12lab.diff(patients, table=OLD, against=NEW)
    assert result.moved == 0
    counts = result.matrix.to_numpy()
    assert (counts == np.diag(np.diag(counts))).all()
    assert result.changed.empty


def test_a_changed_row_shows_both_answers(movers: pd.DataFrame) -> None:
    result = b12lab.diff(movers, table=OLD, against=NEW)
    assert result.changed.index.tolist() == [11, 12]
    expected_columns = [
        *movers.columns,
        *(f"a_{name}" for name in ANSWERS),
        *(f"b_{name}" for name in ANSWERS),
    ]
    assert result.changed.columns.tolist() == expected_columns
    nitrous = result.changed.loc[11]
    assert nitrous["id"] == "nitrous-oxide"
    assert (nitrous["a_category"], nitrous["b_category"]) == (
        "deficiency_possible",
        "deficiency_likely",
    )
    assert (nitrous["a_rule"], nitrous["b_rule"]) == (
        "metabolic-marker-raised",
        "nitrous-oxide-metabolic-raised",
    )
    assert "nitrous_oxide" in nitrous["b_flags"].split(";")
    too_low = result.changed.loc[12]
    assert (too_low["a_category"], too_low["a_error"]) == ("deficiency_likely", "")
    assert too_low["b_category"] == ""
    assert too_low["b_error"].startswith("implausible_value: b12: 20 pmol/L")
    assert result.matrix.loc["deficiency_possible", "deficiency_likely"] == 1
    assert result.matrix.loc["deficiency_likely", "error"] == 1
    assert result.moved == 2


def test_a_rule_or_error_message_alone_is_no_change(movers: pd.DataFrame) -> None:
    """``<200 ng/L`` changes rule, and ``300 nmol/L`` its message, but neither its outcome."""
    first = b12lab.classify_frame(movers, table=OLD)
    second = b12lab.classify_frame(movers, table=NEW)
    assert first.loc[10, "b12lab_rule"] != second.loc[10, "b12lab_rule"]
    assert first.loc[13, "b12lab_error"] != second.loc[13, "b12lab_error"]
    changed = b12lab.diff(movers, table=OLD, against=NEW).changed
    assert 10 not in changed.index
    assert 13 not in changed.index


def test_a_table_against_itself_changes_nothing(patients: pd.DataFrame) -> None:
    result = b12lab.diff(patients, table=NEW, against=NEW)
    counts = result.matrix.to_numpy()
    assert (counts == np.diag(np.diag(counts))).all()
    assert np.trace(counts) == len(patients)
    assert result.changed.empty
    assert result.moved == 0


def test_options_apply_to_both_sides() -> None:
    numbers = pd.DataFrame({"serum_cbl": ["160", "95"], "mma": ["0.52", "0.20"]})
    result = b12lab.diff(
        numbers,
        table=OLD,
        against=NEW,
        columns={"b12": "serum_cbl"},
        units={"b12": "pg/mL", "mma": "umol/L"},
    )
    assert result.matrix.loc["error"].sum() == 0
    assert result.matrix["error"].sum() == 0
    assert result.matrix.loc["deficiency_likely", "deficiency_likely"] == 2


def test_a_bare_id_is_reported_as_the_version_used(movers: pd.DataFrame) -> None:
    result = b12lab.diff(movers, table=OLD, against="nice-ng239")
    assert result.against == NEW


def test_an_unknown_table_fails_before_any_row(movers: pd.DataFrame) -> None:
    with pytest.raises(b12lab.TableNotFoundError):
        b12lab.diff(movers, table=OLD, against="nice-ng239@9")


def test_input_columns_named_like_an_answer_are_refused(movers: pd.DataFrame) -> None:
    with pytest.raises(b12lab.ColumnError, match="a_category"):
        b12lab.diff(movers.assign(a_category="x"), table=OLD, against=NEW)


def test_no_rows_give_an_empty_matrix(movers: pd.DataFrame) -> None:
    result = b12lab.diff(movers.iloc[:0], table=OLD, against=NEW)
    assert int(result.matrix.to_numpy().sum()) == 0
    assert result.matrix.shape == (5, 5)
    assert result.changed.empty


def test_the_command_prints_the_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(EXAMPLE), "--table", OLD, "--against", NEW]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"rows: {OLD}; columns: {NEW}"
    assert lines[1].split() == LABELS
    rows = {line.split()[0]: [int(n) for n in line.split()[1:]] for line in lines[2:7]}
    assert list(rows) == LABELS
    assert rows["deficiency_unlikely"] == [0, 4, 0, 0, 0]
    assert rows["deficiency_possible"] == [0, 0, 3, 0, 0]
    assert rows["deficiency_likely"] == [0, 0, 0, 4, 0]
    assert rows["error"] == [0, 0, 0, 0, 3]
    assert lines[7] == "14 rows, 0 changed category"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_command_writes_the_changed_rows(
    movers: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    source = tmp_path / "labs.csv"
    movers.to_csv(source, index=False)
    target = tmp_path / f"changed{suffix}"
    assert main(["diff", str(source), "--table", OLD, "--against", NEW, "-o", str(target)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "5 rows, 2 changed category"
    if suffix == ".csv":
        written = pd.read_csv(target, dtype=str, keep_default_na=False)
    else:
        written = pq.read_table(target).to_pandas()
    assert written["id"].tolist() == ["nitrous-oxide", "too-low"]
    assert written["a_category"].tolist() == ["deficiency_possible", "deficiency_likely"]
    assert written["b_category"].tolist() == ["deficiency_likely", ""]
    assert written["b_error"].iloc[1].startswith("line 4: implausible_value: b12: 20 pmol/L")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["labs.csv", target.name])


def test_the_command_writes_a_header_when_nothing_changed(tmp_path: Path) -> None:
    target = tmp_path / "changed.csv"
    assert main(["diff", str(EXAMPLE), "--table", NEW, "--against", NEW, "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8").splitlines() == [
        '"patient_id","b12","holotc","mma","hcy","folate","egfr (mL/min/1.73m2)","age","sex",'
        '"pregnant","a_category","a_rule","a_flags","a_error","b_category","b_rule","b_flags",'
        '"b_error"'
    ]


def test_the_command_passes_reading_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "labs.csv"
    source.write_text("cbl;mma\n160;0,52\n95;0,20\n", encoding="utf-8")
    options = ["--map", "b12=cbl", "--unit", "b12=pg/mL", "--unit", "mma=umol/L"]
    options += ["--delimiter", ";", "--decimal", ","]
    assert main(["diff", str(source), "--table", OLD, "--against", NEW, *options]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[5].split() == ["deficiency_likely", "0", "0", "0", "2", "0"]
    assert out[-1] == "2 rows, 0 changed category"


def test_an_unknown_table_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "changed.csv"
    args = ["diff", str(EXAMPLE), "--table", OLD, "--against", "nice-ng239@9", "-o", str(target)]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "no version '9'" in captured.err
    assert captured.out == ""
    assert not target.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["diff", str(EXAMPLE), "--table", OLD],  # --against is required
        ["diff", str(EXAMPLE), "--table", OLD, "--against", NEW, "-o", "-"],
        ["diff", str(EXAMPLE), "--table", OLD, "--against", NEW, "-o", "out.txt"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert "usage: b12lab diff" in capsys.readouterr().err


def test_a_missing_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.csv"
    assert main(["diff", str(missing), "--table", OLD, "--against", NEW]) == 2
    assert "No such file" in capsys.readouterr().err
