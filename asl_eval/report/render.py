"""Rendering the report context to one self-contained HTML page.

Jinja2 runs with autoescape on and ``StrictUndefined``, set outright: every file name, label and
path is text in the page, never markup. The only strings marked safe are ``data:`` URIs this
module made itself, and they are checked to be base64 before they reach the template.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from asl_eval.report.context import Comparison, ReportContext, SetResult
from asl_eval.report.figures import data_uri, draw, thumbnail_data_uri
from asl_eval.report.formatting import fmt_interval, fmt_number, fmt_percent, fmt_pvalue

_DATA_URI = re.compile(r"^data:image/(png|jpeg);base64,[A-Za-z0-9+/=]*$")


def sort_key(value: float | None) -> str:
    """A ``data-sort`` attribute value; NaN sorts first."""
    if value is None or not math.isfinite(value):
        return "-1"
    return f"{value:.6f}"


def data_uri_attr(uri: str | None) -> str:
    """Pass a data URI made by this package; anything else becomes an empty string."""
    return uri if uri is not None and _DATA_URI.match(uri) else ""


def png_uri(payload: bytes) -> str:
    """PNG bytes made by this package (Grad-CAM images) as a data URI."""
    if not isinstance(payload, bytes | bytearray) or not payload.startswith(b"\x89PNG"):
        return ""
    return data_uri(bytes(payload), "image/png")


def make_environment() -> Environment:
    """The one Jinja2 environment: autoescape always on, undefined names are errors."""
    environment = Environment(
        loader=PackageLoader("asl_eval.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        percent=fmt_percent,
        interval=fmt_interval,
        number=fmt_number,
        pvalue=fmt_pvalue,
        sortkey=sort_key,
        data_uri=data_uri_attr,
        png_uri=png_uri,
    )
    return environment


@dataclass(frozen=True)
class Thumb:
    """One image in a gallery: its thumbnail and caption fields."""

    uri: str | None
    name: str
    path: str
    actual: str
    predicted: str
    confidence: float
    p_true: float


@dataclass(frozen=True)
class SetFigures:
    """Figures and galleries of one set."""

    confusion: str
    reliability: str
    gallery: tuple[Thumb, ...]
    confused_pairs: tuple[tuple[str, str, int, tuple[Thumb, ...]], ...]


def _thumbs_for(frame: pd.DataFrame, *, limit: int, size: int) -> tuple[Thumb, ...]:
    """Thumbnails for the first ``limit`` rows of a :func:`metrics.top_losses` table."""
    return tuple(
        Thumb(
            uri=thumbnail_data_uri(str(row["path"]), size=size),
            name=Path(str(row["path"])).name,
            path=str(row["path"]),
            actual=str(row["actual"]),
            predicted=str(row["predicted"]),
            confidence=float(row["confidence"]),
            p_true=float(row["p_true"]),
        )
        for row in frame.head(limit).to_dict(orient="records")
    )


def set_figures(
    result: SetResult,
    context: ReportContext,
    *,
    n_gallery: int = 24,
    n_pairs: int = 8,
    n_pair_examples: int = 3,
    thumb_size: int = 96,
) -> SetFigures:
    """Draw the confusion matrix and reliability diagram, and pick the gallery thumbnails."""
    from asl_eval import plots

    n_classes = len(context.classes)
    side = max(4.0, 0.28 * n_classes + 1.5)
    confusion = draw(
        lambda ax: plots.plot_confusion_matrix(result.confusion, ax=ax), size=(side, side * 0.85)
    )
    reliability = draw(
        lambda ax: plots.plot_reliability_diagram(result.reliability, ax=ax), size=(4.2, 3.6)
    )
    losses = result.losses
    gallery = _thumbs_for(
        losses[losses["actual"] != losses["predicted"]], limit=n_gallery, size=thumb_size
    )
    pairs = []
    for pair in result.most_confused.head(n_pairs).to_dict(orient="records"):
        actual, predicted = str(pair["actual"]), str(pair["predicted"])
        examples = losses[(losses["actual"] == actual) & (losses["predicted"] == predicted)]
        thumbs = _thumbs_for(examples, limit=n_pair_examples, size=thumb_size)
        pairs.append((actual, predicted, int(pair["count"]), thumbs))
    return SetFigures(confusion, reliability, gallery, tuple(pairs))


def per_class_chart(context: ReportContext) -> str:
    """Per-class accuracy bars for every set side by side, with Wilson whiskers."""
    from asl_eval import plots

    tables = {result.name: result.per_class for result in context.sets}
    width = max(8.0, 0.32 * len(context.classes) * max(1, len(tables)) + 2)
    return draw(
        lambda ax: plots.plot_per_class_accuracy(tables, ax=ax), size=(min(width, 18.0), 4.2)
    )


def domain_gap_chart(comparison: Comparison) -> str:
    """Per-class drop from in-domain to one out-of-domain set."""
    from asl_eval import plots

    height = max(3.0, 0.24 * len(comparison.table) + 1.2)
    return draw(lambda ax: plots.plot_domain_gap(comparison.table, ax=ax), size=(7.0, height))


def uncertainty_note(context: ReportContext) -> str:
    """How wide a per-class interval is at the typical class size of the test sets."""
    from asl_eval import metrics

    supports = [
        int(result.per_class["support"].median())
        for result in context.sets
        if result.role == "test" and len(result.per_class)
    ] or [int(result.per_class["support"].median()) for result in context.sets]
    n = max(supports) if supports else 0
    if n <= 0:
        return ""
    half = n // 2
    low, high = metrics.wilson_interval(half, n)
    return (
        f"With about {n} images per class, a class with {half} of {n} right "
        f"({100 * half / n:.0f}%) has a 95% Wilson interval of {100 * low:.0f}–{100 * high:.0f}% "
        f"(about ±{50 * (high - low):.0f} points): differences between classes smaller than "
        "that are not evidence of anything."
    )


def render_html(context: ReportContext, *, n_gallery: int = 24, thumb_size: int = 96) -> str:
    """The whole report as one HTML string."""
    environment = make_environment()
    figures = {
        result.name: set_figures(result, context, n_gallery=n_gallery, thumb_size=thumb_size)
        for result in context.sets
    }
    template = environment.get_template("report.html.j2")
    return template.render(
        context=context,
        figures=figures,
        per_class_chart=per_class_chart(context),
        gap_charts={c.out_of_domain: domain_gap_chart(c) for c in context.comparisons},
        uncertainty=uncertainty_note(context),
    )
