"""Figures and thumbnails for the report, drawn while the context is built and kept as
``data:`` URIs (the report is one file).

Imports :mod:`asl_eval.plots` (matplotlib, lazily: only when a figure is drawn), the metrics'
result types and image loading from :mod:`asl_eval.inputs`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from asl_eval.errors import UnreadableImage
from asl_eval.inputs import load_rgb
from asl_eval.report.data import ConfusedPair, SetFigures, Thumb

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from asl_eval.metrics import Evaluation

__all__ = [
    "data_uri",
    "domain_gap_chart",
    "draw",
    "figure_data_uri",
    "per_class_chart",
    "set_figures",
    "thumbnail_data_uri",
]


def data_uri(payload: bytes, mime: str) -> str:
    """A base64 ``data:`` URI.

    >>> data_uri(b"hi", "text/plain")
    'data:text/plain;base64,aGk='
    """
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def figure_data_uri(figure: Figure, *, dpi: int = 80) -> str:
    """Render a matplotlib figure to PNG (no timestamp or software metadata)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return data_uri(buffer.getvalue(), "image/png")


def draw(plot: Callable[[Axes], object], *, size: tuple[float, float], dpi: int = 80) -> str:
    """Make a fresh figure (no pyplot state), let ``plot`` draw on its axes, return the URI."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    plot(figure.add_subplot())
    return figure_data_uri(figure, dpi=dpi)


def thumbnail_data_uri(path: str | Path, *, size: int = 96, quality: int = 70) -> str | None:
    """A small JPEG of an image file, or None when the file cannot be read any more."""
    try:
        image = load_rgb(path)
    except (UnreadableImage, OSError):
        return None
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return data_uri(buffer.getvalue(), "image/jpeg")


Locate = Callable[[str], str]
"""Where the file a report shows under one path really is (the same path unless the report's
paths are redacted)."""


def _thumbs(
    frame: pd.DataFrame, *, limit: int, size: int, locate: Locate | None
) -> tuple[Thumb, ...]:
    """Thumbnails for the first ``limit`` rows of a :func:`metrics.top_losses` table (none
    when ``locate`` is None: images are left out)."""
    return tuple(
        Thumb(
            uri=None if locate is None else thumbnail_data_uri(locate(str(row["path"])), size=size),
            name=Path(str(row["path"])).name,
            path=str(row["path"]),
            actual=str(row["actual"]),
            predicted=str(row["predicted"]),
            confidence=float(row["confidence"]),
            p_true=float(row["p_true"]),
        )
        for row in frame.head(limit).to_dict(orient="records")
    )


def _confused_pairs(
    evaluation: Evaluation,
    *,
    n_pairs: int,
    n_examples: int,
    thumb_size: int,
    locate: Locate | None,
) -> tuple[ConfusedPair, ...]:
    losses = evaluation.losses
    pairs = []
    for pair in evaluation.confused_pairs.head(n_pairs).to_dict(orient="records"):
        actual, predicted = str(pair["actual"]), str(pair["predicted"])
        examples = losses[(losses["actual"] == actual) & (losses["predicted"] == predicted)]
        thumbs = _thumbs(examples, limit=n_examples, size=thumb_size, locate=locate)
        pairs.append(ConfusedPair(actual, predicted, int(pair["count"]), thumbs))
    return tuple(pairs)


def set_figures(
    evaluation: Evaluation,
    *,
    n_gallery: int = 24,
    n_pairs: int = 8,
    n_pair_examples: int = 3,
    thumb_size: int = 96,
    locate: Locate | None = str,
) -> SetFigures:
    """Draw the confusion matrix and reliability diagram of one set, and make the thumbnails
    of its highest-loss misclassified images and most confused pairs.

    ``locate`` maps a path of the evaluation to the file to read (default: the path itself);
    None leaves every thumbnail out (``--no-images``: the gallery lists the images without
    them)."""
    from asl_eval import plots

    side = max(4.0, 0.28 * len(evaluation.classes) + 1.5)
    confusion = draw(
        lambda ax: plots.plot_confusion_matrix(evaluation.confusion, ax=ax),
        size=(side, side * 0.85),
    )
    reliability = draw(
        lambda ax: plots.plot_reliability_diagram(evaluation.reliability, ax=ax),
        size=(4.2, 3.6),
    )
    losses = evaluation.losses
    wrong = losses[losses["actual"] != losses["predicted"]]
    return SetFigures(
        confusion=confusion,
        reliability=reliability,
        gallery=_thumbs(wrong, limit=n_gallery, size=thumb_size, locate=locate),
        confused_pairs=_confused_pairs(
            evaluation,
            n_pairs=n_pairs,
            n_examples=n_pair_examples,
            thumb_size=thumb_size,
            locate=locate,
        ),
    )


def per_class_chart(per_class: Mapping[str, pd.DataFrame], n_classes: int) -> str:
    """Per-class accuracy bars for every set (name -> per-class table) side by side, with
    Wilson whiskers."""
    from asl_eval import plots

    width = max(8.0, 0.32 * n_classes * max(1, len(per_class)) + 2)
    tables = dict(per_class)
    return draw(
        lambda ax: plots.plot_per_class_accuracy(tables, ax=ax), size=(min(width, 18.0), 4.2)
    )


def domain_gap_chart(table: pd.DataFrame) -> str:
    """Per-class drop from in-domain to one out-of-domain set (a
    :func:`metrics.domain_comparison` table)."""
    from asl_eval import plots

    height = max(3.0, 0.24 * len(table) + 1.2)
    return draw(lambda ax: plots.plot_domain_gap(table, ax=ax), size=(7.0, height))
