"""A report's figures: each analyte's distribution with the table's band edges, as inline SVG.

matplotlib is optional (the ``report`` extra) and is imported only here, when a report is made.
Figures are drawn on a :class:`~matplotlib.figure.Figure` with the SVG canvas: no pyplot, no
backend chosen for the whole process, nothing left open. Text stays text (``svg.fonttype =
none``) so the page is small and searchable, and the SVG is cut down to what a page needs: no
XML prolog, no metadata, no namespace URLs, and no reference to anything outside the figure.

A censored result (``<148``) is not drawn: only its limit is known. The report says how many
there are.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from b12lab._core.analytes import ANALYTES
from b12lab._core.units import dimension_kind
from b12lab._io.report_summary import Distribution, number
from b12lab.errors import MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["INSTALL_HINT", "distribution_svg", "require_matplotlib"]

INSTALL_HINT = "pip install 'b12lab[report]'"
"""How to get the optional figures' library."""
_BARS = "#8c8c8c"
_STRATA = (("#b2182b", "-"), ("#2166ac", "--"), ("#1b7837", ":"), ("#762a83", "-."))
"""Colour and line style of each stratum's edges, in the table's order."""
_BINS = 30
_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # text as text, in the page's font; no glyph paths
    "text.parse_math": False,  # a $ in a table's wording is a dollar sign
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_HREF = re.compile(r"""\s(?:xlink:)?(?:href|src)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""")
_NAMESPACE = re.compile(r"""\sxmlns(?::\w+)?\s*=\s*"[^"]*\"""")


def require_matplotlib() -> None:
    """Raise :class:`~b12lab.errors.MissingDependencyError` if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends import backend_svg  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "a report draws its figures with matplotlib, which is not installed; "
            f"install it with: {INSTALL_HINT}",
            package="matplotlib",
            extra="report",
        ) from exc


def distribution_svg(distribution: Distribution) -> str | None:
    """The histogram of an analyte's exact results with the band edges of each stratum, as an
    ``<svg>`` element; None when there is no exact result to draw."""
    if not len(distribution.values):
        return None
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with _style(distribution.analyte):
        figure = Figure(figsize=(7.2, 2.9), layout="constrained")
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        _histogram(axes, distribution)
        _edges(axes, distribution)
        axes.set_xlabel(f"{distribution.title} [{distribution.unit}]")
        axes.set_ylabel("results")
        text = io.StringIO()
        figure.savefig(text, format="svg", metadata={"Date": None, "Creator": None})
    return inline_svg(text.getvalue(), prefix=f"figure-{distribution.analyte}")


@contextmanager
def _style(salt: str) -> Iterator[None]:
    """The report's style while one figure is drawn and saved; a fixed ``svg.hashsalt`` makes
    the element ids repeatable (matplotlib draws a random one otherwise)."""
    from matplotlib import rc_context

    style: dict[Any, Any] = {**_STYLE, "svg.hashsalt": f"b12lab-{salt}"}
    with rc_context(style):
        yield


def _histogram(axes: Axes, distribution: Distribution) -> None:
    values = distribution.values
    points = np.concatenate([values, [e for s in distribution.strata for e in s.edges]])
    log = _log_scale(distribution.analyte, points)
    low, high = _limits(points, log=log)
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    bins = np.geomspace(low, high, _BINS + 1) if log else np.linspace(low, high, _BINS + 1)
    axes.hist(values, bins=bins.tolist(), color=_BARS, edgecolor="white", linewidth=0.5)
    if log:  # ticks at 1, 2 and 5 times a power of ten, written as plain numbers
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlim(low, high)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))


def _log_scale(analyte: str, points: npt.NDArray[np.float64]) -> bool:
    """A concentration spans decades and is skewed: log, if every point is above zero."""
    kind = dimension_kind(ANALYTES[analyte].canonical_unit)
    return kind in ("substance", "mass") and bool((points > 0).all())


def _limits(points: npt.NDArray[np.float64], *, log: bool) -> tuple[float, float]:
    """The span of the values and edges, with a margin so that none sits on the frame."""
    low, high = float(points.min()), float(points.max())
    if log:
        return low / 1.4, high * 1.4
    margin = (high - low) * 0.08 or max(abs(high) * 0.1, 1.0)
    return low - margin, high + margin


def _edges(axes: Axes, distribution: Distribution) -> None:
    """Each stratum's edges as lines labelled with their value; the first stratum's band labels
    above the plot, between its edges."""
    many = len(distribution.strata) > 1
    for index, stratum in enumerate(distribution.strata):
        colour, style = _STRATA[index % len(_STRATA)]
        for position, edge in enumerate(stratum.edges):
            axes.axvline(
                edge,
                color=colour,
                linestyle=style,
                linewidth=1.3,
                label=stratum.name if position == 0 and many else "_nolegend_",
            )
            axes.annotate(
                number(edge),
                xy=(edge, 1.0 - 0.09 * index),
                xycoords=("data", "axes fraction"),
                xytext=(3, -2),
                textcoords="offset points",
                va="top",
                fontsize=8,
                color=colour,
            )
    if distribution.strata:
        _band_labels(axes, distribution.strata[0].edges, distribution.strata[0].labels)
    if many:
        axes.legend(  # beside the plot, where it hides no bar
            title="band edges by stratum",
            fontsize=8,
            title_fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
        )


def _band_labels(axes: Axes, edges: tuple[float, ...], labels: tuple[str, ...]) -> None:
    low, high = axes.get_xlim()
    bounds = [low, *edges, high]
    log = axes.get_xscale() == "log"
    for label, (left, right) in zip(labels, itertools.pairwise(bounds), strict=True):
        if not low <= left < right <= high:
            continue  # an edge outside the drawn span (never, the span includes the edges)
        middle = float(np.sqrt(left * right)) if log else (left + right) / 2
        axes.annotate(
            label,
            xy=(middle, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            color="#555555",
            style="italic",
        )


def inline_svg(document: str, *, prefix: str) -> str:
    """An SVG document as an element to put in an HTML page: from ``<svg`` on, without its
    metadata and namespace declarations (HTML gives inline SVG its namespace), with only
    in-figure references (``#id``; any other ``href`` or ``src`` is removed), and with every id
    and reference to one prefixed, so that figures on one page never share an id."""
    start = document.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")  # pragma: no cover - matplotlib wrote it
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", document[start:], flags=re.DOTALL)
    svg = _NAMESPACE.sub("", svg)
    svg = _HREF.sub(_internal_only, svg)
    svg = re.sub(r'(\sid=")', rf"\g<1>{prefix}-", svg)
    svg = re.sub(r'(\s(?:xlink:)?href=["\']#)', rf"\g<1>{prefix}-", svg)
    return re.sub(r"url\(#", f"url(#{prefix}-", svg)


def _internal_only(match: re.Match[str]) -> str:
    target = match["dq"] if match["dq"] is not None else match["sq"]
    return match[0] if target.startswith("#") else ""
