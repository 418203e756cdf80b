"""The offline report: what it counts and draws, that it loads nothing, and what it never shows."""

from __future__ import annotations

import hashlib
import html
import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import b12lab
from b12lab import report, tables
from b12lab._io.cli import main
from b12lab._io.report_plots import inline_svg

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "patients.csv"
LONG = ROOT / "tests" / "fixtures" / "long" / "three_sites_latin1.csv"
OLD, NEW = "nice-ng239@1", "nice-ng239@2"
HOSTILE = "<script>alert(1)</script>"


class Page(HTMLParser):
    """Every tag's attributes, and the cells of each table row, by the section they are in."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: list[tuple[str, str, str | None]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self.section = ""
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(tag, name, value) for name, value in attrs]
        if tag == "section":
            self.section = dict(attrs).get("id") or ""
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.setdefault(self.section, []).append(self.row)
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)

    def counts(self, section: str) -> dict[str, int]:
        """First and second cell of each body row of a section's tables."""
        return {row[0]: int(row[1]) for row in self.rows.get(section, []) if row[1].isdigit()}


def _classified(path: Path = EXAMPLE, **options: object) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return b12lab.classify_frame(frame, **options)  # type: ignore[arg-type]


def _analyte_block(text: str, analyte: str) -> str:
    """The part of the page about one analyte: from its heading to the next one."""
    start = text.index(f'id="analyte-{analyte}"')
    following = re.search(
        r'<h3 id="analyte-|<section id="(?:transitions|record)"', text[start + 1 :]
    )
    return text[start : start + 1 + following.start()] if following else text[start:]


@pytest.fixture(scope="module")
def page() -> str:
    """The example's report, compared with the previous NICE table (matplotlib loads once)."""
    return report.html(EXAMPLE, table=NEW, against=OLD)


@pytest.fixture(scope="module")
def parsed(page: str) -> Page:
    return Page(page)


def test_a_page_that_needs_nothing_else(page: str, parsed: Page) -> None:
    assert page.startswith("<!DOCTYPE html>")
    linked = [
        (tag, name, value) for tag, name, value in parsed.attributes if name in ("src", "href")
    ]
    assert linked, "the contents links are there"
    assert all((value or "").startswith("#") for _, _, value in linked), linked
    for shut_out in ("<script", "@import", "url(http", "<link", "<img", "<iframe"):
        assert shut_out not in page.lower()
    assert set(re.findall(r"url\(.", page)) == {"url(#"}  # clip paths inside a figure
    assert "http" not in page  # not even a namespace URL or a table's citation


def test_figures_never_share_an_id_and_refer_only_to_their_own(page: str, parsed: Page) -> None:
    ids = [value for _, name, value in parsed.attributes if name == "id"]
    assert len(ids) == len(set(ids)) > 100
    referred = re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', page)
    assert {a or b for a, b in referred} <= set(ids)


def test_categories_are_counted_as_classify_frame_counts_them(parsed: Page) -> None:
    expected = Counter(str(c) for c in _classified(table=NEW)["b12lab_category"] if str(c))
    shown = parsed.counts("categories")
    assert {name: count for name, count in shown.items() if count} == dict(expected)
    assert shown["insufficient_data"] == 0  # every category is listed


def test_errors_are_counted_by_code(parsed: Page) -> None:
    errors = _classified(table=NEW)["b12lab_error"].astype(str)
    expected = Counter(text.partition(":")[0] for text in errors if text)
    assert parsed.counts("errors") == dict(expected)
    assert sum(expected.values()) == 3


def test_flags_are_counted_with_their_messages(page: str, parsed: Page) -> None:
    flags = _classified(table=NEW)["b12lab_flags"].astype(str)
    expected = Counter(flag for cell in flags for flag in cell.split(";") if flag)
    assert parsed.counts("flags") == dict(expected)
    message = next(f.message for f in tables.load(NEW).model.flags if f.id in expected)
    assert message in page.replace("&#x27;", "'")


def test_each_analyte_has_its_figure_and_its_band_counts(page: str) -> None:
    result = _classified(table=NEW)
    for analyte in ("b12", "holotc", "mma", "hcy", "folate", "egfr"):
        block = _analyte_block(page, analyte)
        exact = (
            result[f"b12lab_{analyte}_censoring"].astype(str).eq("")
            & result[f"b12lab_{analyte}"].notna()
        )
        assert block.count("<svg") == 1, analyte
        assert f"{int(exact.sum())} exact" in block
        bands = Counter(str(b) for b in result[f"b12lab_{analyte}_band"] if str(b))
        shown = {row[0]: int(row[1]) for row in Page(block).rows.get("", []) if row[1].isdigit()}
        assert {k: v for k, v in shown.items() if v} == dict(bands), analyte


def test_band_edges_are_drawn_and_listed(page: str) -> None:
    b12 = _analyte_block(page, "b12")
    svg = b12[b12.index("<svg") : b12.index("</svg>")]
    assert re.search(r">133<", svg)
    assert re.search(r">258<", svg)
    assert ">deficient<" in svg
    assert ">unlikely<" in svg
    assert "deficient &lt; 133 ≤ indeterminate ≤ 258 &lt; unlikely [pmol/L]" in b12
    mma = _analyte_block(page, "mma")
    assert "age 65 and over" in mma[mma.index("<svg") :]  # each stratum in the legend
    assert ">0.46<" in mma
    assert ">0.4<" in mma
    assert "age 65 and over: <span" in mma
    assert "normal ≤ 0.46 &lt; high [µmol/L]" in mma


def test_edges_published_in_another_unit_are_converted() -> None:
    frame = pd.DataFrame({"b12": ["160 pg/mL", "500 pg/mL"]})
    text = report.html(frame, table="generic-us-lab@2")
    # generic-us-lab@2 publishes B12 in ng/L only: 150 ng/L is 110.7 pmol/L
    assert "deficient &lt; 111 (150 ng/L) ≤ low" in text
    assert re.search(r">111<", _analyte_block(text, "b12"))


def test_censored_results_are_counted_not_drawn(page: str) -> None:
    result = _classified(table=NEW)
    signs = Counter(str(s) for s in result["b12lab_b12_censoring"] if str(s))
    assert signs == {"<": 2, ">": 1}
    assert "3 censored (2 &lt;, 1 &gt;), not drawn" in _analyte_block(page, "b12")


def test_the_run_record_names_tables_version_and_input(page: str) -> None:
    for key in (NEW, "generic-us-lab@2", OLD):
        assert tables.load(key).sha256 in page
    assert hashlib.sha256(EXAMPLE.read_bytes()).hexdigest() in page
    assert f'"b12lab_version": "{b12lab.__version__}"' in page.replace("&quot;", '"')


def test_every_caveat_of_the_tables_used_is_shown(page: str) -> None:
    for key in (NEW, "generic-us-lab@2"):
        caveats = tables.load(key).model.caveats
        assert caveats
        for caveat in caveats:
            assert html.escape(str(caveat)) in page, (key, caveat)
    assert "could not be verified in the guideline text" in page


def test_the_transition_matrix_is_diffs(parsed: Page) -> None:
    expected = b12lab.diff(
        pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False), table=NEW, against=OLD
    ).matrix
    rows = parsed.rows["transitions"]
    assert rows[0][1:] == expected.columns.tolist()
    shown = {row[0]: [int(cell) for cell in row[1:]] for row in rows[1:]}
    assert shown == {label: expected.loc[label].tolist() for label in expected.index}


def test_no_identifier_or_value_of_a_row_is_shown(page: str) -> None:
    for row in pd.read_csv(EXAMPLE, dtype=str).itertuples(index=False):
        assert row.patient_id not in page
    assert "pg/mL" not in page  # the results as given, and the error messages quoting them
    assert "300 nmol/L" not in page


def test_hostile_text_is_escaped(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "b12": ["160 pg/mL", HOSTILE],
            f"b12 note {HOSTILE}": ["x", "y"],  # looks like a result column: warned about
        }
    )
    path = tmp_path / "<b>odd&.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(b12lab.UnusedColumnWarning):
        text = report.html(path, columns={"b12": "b12"})
    assert "<script" not in text
    assert "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the warning, escaped
    assert "&lt;b&gt;odd&amp;.csv" in text


def test_rows_that_all_fail_still_give_a_report() -> None:
    frame = pd.DataFrame({"b12": ["160", "abc", "300 nmol/L"]})
    text = report.html(frame)
    parsed = Page(text)
    assert parsed.counts("errors") == {
        "unknown_unit": 1,
        "invalid_value": 1,
        "implausible_value": 1,
    }
    assert set(parsed.counts("categories").values()) == {0}
    assert "<svg" not in text
    assert "No results." in _analyte_block(text, "b12")


def test_an_analyte_without_any_result_says_so() -> None:
    frame = pd.DataFrame({"b12": ["160 pg/mL", "400 pmol/L"], "mma": [None, None]})
    text = report.html(frame)
    assert _analyte_block(text, "b12").count("<svg") == 1
    mma = _analyte_block(text, "mma")
    assert "No results." in mma
    assert "<svg" not in mma
    assert "normal ≤ 0.4 &lt; high" in mma  # the bands are still listed


def test_an_empty_frame_gives_a_report() -> None:
    text = report.html(pd.DataFrame({"b12": pd.Series([], dtype=object)}))
    assert ": 0 rows, 0 classified, 0 with errors" in text
    assert "No row has an error." in text


def test_the_same_rows_give_the_same_page() -> None:
    frame = pd.DataFrame({"b12": ["160 pg/mL", "400 pmol/L", "<100 pg/mL"]})
    assert report.html(frame) == report.html(frame)


def test_write_returns_the_path(tmp_path: Path) -> None:
    frame = pd.DataFrame({"b12": ["160 pg/mL"]})
    out = report.write(frame, tmp_path / "report.html")
    assert out == tmp_path / "report.html"
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "not a file" in out.read_text(encoding="utf-8")  # a frame has no input sha256
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


def test_only_references_inside_a_figure_are_kept() -> None:
    svg = (
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
        'xmlns:xlink="http://www.w3.org/1999/xlink"><metadata>x</metadata>'
        '<image xlink:href="https://cdn.example/x.png"/><use xlink:href="#m1"/>'
        "<a href='http://example.org'>a</a></svg>"
    )
    cleaned = inline_svg(svg, prefix="f")
    assert cleaned.startswith("<svg")
    assert "http" not in cleaned
    assert "metadata" not in cleaned
    assert 'xlink:href="#f-m1"' in cleaned


def test_without_matplotlib_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(b12lab.MissingDependencyError, match=re.escape("b12lab[report]")) as caught:
        report.html(pd.DataFrame({"b12": ["160 pg/mL"]}))
    assert isinstance(caught.value, ImportError)


def test_cli_without_matplotlib_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "report.html"
    assert main(["report", str(EXAMPLE), "-o", str(out)]) == 2
    assert "pip install 'b12lab[report]'" in capsys.readouterr().err
    assert not out.exists()


def test_cli_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(EXAMPLE), "-o", str(out), "--against", OLD]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert 'id="transitions"' in text
    assert OLD in text
    assert hashlib.sha256(EXAMPLE.read_bytes()).hexdigest() in text
    err = capsys.readouterr().err
    assert "14 rows in, 14 rows out, 3 with errors" in err
    assert f"report written to {out}" in err


def test_cli_long_export(tmp_path: Path) -> None:
    out = tmp_path / "visits.html"
    options = ["--long", "--encoding", "latin-1", "--test", "LOINC", "--time", "Collected"]
    options += ["--time-format", "%m/%d/%Y %H:%M", "--time-format", "%d.%m.%Y %H:%M"]
    options += ["--time-format", "ISO8601", "--window", "24h"]
    assert main(["report", str(LONG), "-o", str(out), *options]) == 0
    parsed = Page(out.read_text(encoding="utf-8"))
    assert parsed.counts("errors")["duplicate_result"] == 2
    assert sum(parsed.counts("categories").values()) == 12


def test_cli_long_export_with_reported_ranges_says_so(tmp_path: Path) -> None:
    export = tmp_path / "ranges.csv"
    export.write_text(
        "patient,test,value,unit,reference_range\n"
        "1,13964-2,0.45,umol/L,0-0.50\n"  # normal against its own range, high in the table
        "2,13964-2,0.45,umol/L,0-0.40\n"
        "3,13964-2,0.45,umol/L,\n",
        encoding="utf-8",
    )
    out = tmp_path / "ranges.html"
    assert main(["report", str(export), "-o", str(out), "--long", "--reported-ranges"]) == 0
    text = html.unescape(out.read_text(encoding="utf-8"))
    assert "2 row(s) were banded against the reference range the laboratory reported" in text
    assert '"reported_ranges": {\n    "column": "found by name",\n    "analytes": [' in text


def test_cli_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("patient_id,b12,mma\n", encoding="utf-8")
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    assert ": 0 rows, 0 classified, 0 with errors" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["missing.csv"], "No such file"),
        (["EXAMPLE", "--table", "no-such-table"], "no-such-table"),
        (["EXAMPLE", "--against", "nice-ng239@9"], "nice-ng239"),
        (["EXAMPLE", "--long", "--against", OLD], "long export"),
        (["EMPTY"], "the file is empty"),
    ],
)
def test_cli_bad_input_is_one_clear_message(
    arguments: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    named = {"EXAMPLE": str(EXAMPLE), "EMPTY": str(empty), "missing.csv": str(tmp_path / "x")}
    out = tmp_path / "report.html"
    argv = ["report", *(named.get(a, a) for a in arguments), "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("b12lab: error:")
    assert said in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_fhir_input_and_a_missing_folder_are_named_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}')
    assert main(["report", str(bundle), "-o", str(tmp_path / "report.html")]) == 2
    err = capsys.readouterr().err
    assert "a report reads a CSV or Parquet file; FHIR" in err  # not "no analyte column found"
    missing = tmp_path / "no-such-folder" / "report.html"
    assert main(["report", str(EXAMPLE), "-o", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith(f"No such file or directory: {missing}")  # not a temporary name


def test_a_laboratory_file_with_markup_in_its_wording(tmp_path: Path) -> None:
    """A table file is the user's text too: a stratum's name and a band's edges come through
    escaped, and a $ is a dollar sign, not mathematics."""
    source = (ROOT / "tests" / "fixtures" / "tables" / "sex-stratified-lab.toml").read_text(
        encoding="utf-8"
    )
    odd = f"{HOSTILE} $x$ & men"
    lab = tmp_path / "lab.toml"
    lab.write_text(
        source.replace('sex = "male"\n', f'sex = "male"\nname = "{odd}"\n', 1), encoding="utf-8"
    )
    data = tmp_path / "labs.csv"
    data.write_text("b12,hcy,sex\n160 pg/mL,14 umol/L,male\n400 pmol/L,9 umol/L,female\n")
    out = tmp_path / "report.html"
    assert main(["report", str(data), "-o", str(out), "--laboratory", str(lab)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "<script" not in text
    hcy = _analyte_block(text, "hcy")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; $x$ &amp; men"
    assert f"{escaped}: <span" in hcy  # the bands listed under the stratum's name
    assert escaped in hcy[hcy.index("<svg") :]  # and in the figure's legend, as text
    assert "stratum 2 of 2" in hcy  # a stratum without a name is named by its place
    assert f"from {lab}" in text  # the record names the laboratory table's file


def test_cli_report_to_standard_output(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["report", str(EXAMPLE), "-o", "-"]) == 0
    captured = capfdbinary.readouterr()
    assert captured.out.startswith(b"<!DOCTYPE html>")
    assert b"report written to standard output" in captured.err


def test_data_that_is_neither_a_frame_nor_a_path() -> None:
    with pytest.raises(TypeError, match="to_pandas"):
        report.html([{"b12": "160 pg/mL"}])  # type: ignore[arg-type]
