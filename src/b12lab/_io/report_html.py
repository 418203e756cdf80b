"""A report as one HTML page that needs nothing else: styles inline, figures inline SVG.

The page loads nothing (no script, font, image or style from elsewhere), so opening it sends
nothing anywhere. Every text put in the page is escaped: column names, file names, a user's
table wording and warnings are data, not markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from b12lab._io.diff import Diff
from b12lab._io.report_summary import Distribution, StratumEdges, Summary, number

__all__ = ["page"]

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #222; max-width: 64rem; margin: 2rem auto;
  padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #ccc; padding-bottom: 0.2rem;
  margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin-bottom: 0.3rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
caption { caption-side: top; text-align: left; color: #555; padding-bottom: 0.2rem; }
.note { color: #555; }
.edges { font-family: ui-monospace, monospace; font-size: 0.9rem; }
figure { margin: 0.4rem 0; }
figure svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
nav a { margin-right: 1rem; }
td.diag { background: #eef3ee; }
"""


def page(
    summary: Summary,
    figures: Mapping[str, str | None],
    record: Mapping[str, Any],
    comparison: Diff | None = None,
) -> str:
    """The whole page; ``figures`` holds each analyte's ``<svg>`` element (None: nothing to
    draw), and ``record`` the run record, shown as it would be written beside an output."""
    sections = [
        _overview(summary, record),
        _caveats(summary),
        _categories(summary),
        _errors(summary),
        _flags(summary),
        _distributions(summary, figures),
    ]
    if comparison is not None:
        sections.append(_transitions(comparison))
    sections.append(_record(record))
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>b12lab report: {escape(str(record['input']['name']))}</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _overview(summary: Summary, record: Mapping[str, Any]) -> str:
    tables = [_cited(record["table"])]
    if record.get("laboratory"):
        tables.append(f"laboratory table {_cited(record['laboratory'])}")
    failed = sum(summary.errors.values())
    links = [("caveats", "Caveats")] if summary.caveats else []
    links += [("categories", "Categories"), ("errors", "Errors"), ("flags", "Flags")]
    links += [("distributions", "Distributions")]
    if "against" in record.get("options", {}):
        links.append(("transitions", "Transitions"))
    links.append(("record", "Run record"))
    nav = " ".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in links)
    return (
        "<header>\n<h1>b12lab report</h1>\n"
        f"<p><strong>{escape(str(record['input']['name']))}</strong>: {summary.rows} rows, "
        f"{summary.rows - failed} classified, {failed} with errors; "
        f"classified under {', '.join(tables)}.</p>\n"
        '<p class="note">This report shows aggregates only: counts, distributions and flags. '
        "It holds no patient or specimen identifier and no row's values. b12lab supports, and "
        "does not replace, clinical judgement.</p>\n"
        f"{_warnings(record.get('warnings', []))}<nav>{nav}</nav>\n</header>"
    )


def _warnings(said: Sequence[str]) -> str:
    if not said:
        return ""
    items = "".join(f"<li>{escape(str(text))}</li>" for text in said)
    return f"<p>Warnings:</p>\n<ul>{items}</ul>\n"


def _cited(table: Mapping[str, Any]) -> str:
    return f"<code>{escape(str(table['key']))}</code>"


def _caveats(summary: Summary) -> str:
    """What the tables say about every result they read, such as a number not yet verified
    against its source: a reader of the counts must see it too."""
    if not summary.caveats:
        return ""
    parts = [
        f"<h3>{escape(key)}</h3>\n<ul>{''.join(f'<li>{escape(c)}</li>' for c in caveats)}</ul>"
        for key, caveats in summary.caveats.items()
    ]
    return _section("caveats", "Caveats of the tables", "\n".join(parts))


def _categories(summary: Summary) -> str:
    rows = [(name, count) for name, count in summary.categories.items()]
    return _section(
        "categories",
        "Categories",
        _count_table(["category", "rows", "share"], rows, summary.rows),
    )


def _errors(summary: Summary) -> str:
    if not summary.errors:
        return _section("errors", "Errors", "<p>No row has an error.</p>")
    note = (
        '<p class="note">Rows that could not be classified, by error code (see '
        "<code>b12lab.ErrorCode</code>); the messages are left out, as they may quote a "
        "row's values.</p>"
    )
    rows = list(summary.errors.items())
    table = _count_table(["error", "rows", "share"], rows, summary.rows)
    return _section("errors", "Errors", note + table)


def _flags(summary: Summary) -> str:
    if not summary.flags:
        return _section("flags", "Flags", "<p>No row carries a flag.</p>")
    body = "".join(
        f'<tr><td><code>{escape(flag)}</code></td><td class="n">{count}</td>'
        f"<td>{escape(summary.flag_messages.get(flag, ''))}</td></tr>\n"
        for flag, count in summary.flags.items()
    )
    table = (
        f'<table>\n<tr><th>flag</th><th class="n">rows</th><th>message</th></tr>\n{body}</table>'
    )
    note = '<p class="note">A row may carry several flags.</p>'
    return _section("flags", "Flags", note + table)


def _distributions(summary: Summary, figures: Mapping[str, str | None]) -> str:
    note = (
        '<p class="note">Exact results in each analyte\'s canonical unit; lines mark the band '
        "edges of the table that supplied the bands, one line style per stratum. Censored "
        "results (such as &lt;148) are counted but not drawn: only their limit is known.</p>"
    )
    parts = [_distribution(d, figures.get(d.analyte)) for d in summary.distributions]
    return _section("distributions", "Distributions", note + "\n".join(parts))


def _distribution(distribution: Distribution, svg: str | None) -> str:
    name = escape(distribution.analyte)
    heading = f'<h3 id="analyte-{name}">{escape(distribution.title)} ({name})</h3>'
    counts = f"<p>{_result_counts(distribution)}</p>"
    figure = f"<figure>{svg}</figure>" if svg is not None else ""
    edges = _edges(distribution)
    bands = _count_table(
        ["band", "rows"], list(distribution.bands.items()), None, caption="Rows per band"
    )
    return "\n".join([heading, counts, figure, edges, bands if distribution.bands else ""])


def _result_counts(distribution: Distribution) -> str:
    if not distribution.results:
        return "No results."
    text = f"{distribution.results} results, {len(distribution.values)} exact"
    if distribution.censored:
        signs = ", ".join(
            f"{count} {escape(sign)}" for sign, count in sorted(distribution.censored.items())
        )
        text += f"; {sum(distribution.censored.values())} censored ({signs}), not drawn"
    return text + "."


def _edges(distribution: Distribution) -> str:
    if distribution.supplier is None:
        return '<p class="note">The table has no bands for this analyte.</p>'
    lines = "".join(
        f'<li>{escape(stratum.name)}: <span class="edges">'
        f"{_edge_text(stratum, distribution.unit)}</span></li>"
        for stratum in distribution.strata
    )
    said = f"<p>Bands from <code>{escape(distribution.supplier)}</code>:</p>\n<ul>{lines}</ul>"
    if distribution.reported:
        said += (
            f'\n<p class="note">{distribution.reported} row(s) were banded against the '
            "reference range the laboratory reported with the result, not these edges.</p>"
        )
    return said


def _edge_text(stratum: StratumEdges, unit: str) -> str:
    """``deficient &lt; 133 ≤ indeterminate ≤ 258 &lt; unlikely pmol/L``: which side each edge
    belongs to, and the edge as published where the table gave another unit."""
    parts = [escape(stratum.labels[0])]
    for edge, published, below, label in zip(
        stratum.edges, stratum.published, stratum.closed_below, stratum.labels[1:], strict=True
    ):
        left, right = ("≤", "&lt;") if below else ("&lt;", "≤")
        shown = number(edge) + (f" ({escape(published)})" if published else "")
        parts.append(f"{left} {shown} {right} {escape(label)}")
    return " ".join(parts) + f" [{escape(unit)}]"


def _transitions(comparison: Diff) -> str:
    matrix = comparison.matrix
    labels = [str(label) for label in matrix.columns]
    head = "".join(f'<th class="n">{escape(label)}</th>' for label in labels)
    body = []
    for row_label, row in zip(matrix.index, matrix.to_numpy(), strict=True):
        cells = "".join(
            f'<td class="n{" diag" * (str(row_label) == col)}">{int(count)}</td>'
            for col, count in zip(labels, row, strict=True)
        )
        body.append(f"<tr><th>{escape(str(row_label))}</th>{cells}</tr>")
    table = (
        f"<table>\n<caption>rows: <code>{escape(comparison.table)}</code>; columns: "
        f"<code>{escape(comparison.against)}</code></caption>\n"
        f"<tr><th></th>{head}</tr>\n" + "\n".join(body) + "\n</table>"
    )
    note = (
        f"<p>{comparison.moved} of {int(matrix.to_numpy().sum())} rows change category (or "
        "error) from one table to the other; the rows themselves are not listed here "
        "(<code>b12lab diff -o</code> writes them).</p>"
    )
    return _section("transitions", "Transitions between tables", note + table)


def _record(record: Mapping[str, Any]) -> str:
    facts = [
        ("b12lab version", escape(str(record["b12lab_version"]))),
        ("table", _table_fact(record["table"])),
    ]
    if record.get("laboratory"):
        facts.append(("laboratory table", _table_fact(record["laboratory"])))
    against = record.get("options", {}).get("against")
    if against:
        facts.append(("compared with", _table_fact(against)))
    sha = record["input"]["sha256"]
    facts.append(("input", escape(str(record["input"]["name"]))))
    facts.append(("input sha256", f"<code>{escape(sha)}</code>" if sha else "not a file"))
    listed = "".join(f"<dt>{name}</dt><dd>{value}</dd>\n" for name, value in facts)
    text = escape(json.dumps(record, indent=2, ensure_ascii=False))
    return _section(
        "record",
        "Run record",
        f'<dl>\n{listed}</dl>\n<p class="note">The whole record, as '
        f"<code>b12lab classify</code> writes it beside an output:</p>\n<pre>{text}</pre>",
    )


def _table_fact(table: Mapping[str, Any]) -> str:
    path = f" from {escape(str(table['path']))}" if table.get("path") else ""
    sha = f"<code>{escape(str(table['sha256']))}</code>"
    return f"<code>{escape(str(table['key']))}</code> sha256 {sha}{path}"


def _count_table(
    headings: Sequence[str],
    rows: Iterable[tuple[str, int]],
    total: int | None,
    *,
    caption: str | None = None,
) -> str:
    """Label, count and (with ``total``) share of the total, one row each."""
    numeric = ' class="n"'
    head = "".join(
        f"<th{numeric if index else ''}>{escape(text)}</th>" for index, text in enumerate(headings)
    )
    body = []
    for label, count in rows:
        share = f'<td class="n">{_share(count, total)}</td>' if total is not None else ""
        cells = f'<td><code>{escape(label)}</code></td><td class="n">{count}</td>{share}'
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}\n<tr>{head}</tr>\n" + "\n".join(body) + "\n</table>"


def _share(count: int, total: int | None) -> str:
    return f"{100 * count / total:.1f} %" if total else "–"


def _section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}">\n<h2>{escape(title)}</h2>\n{content}\n</section>'
