"""Figures and thumbnails for the report, drawn while the context is built and kept as
``data:`` URIs (the report is one file).

Imports :mod:`asl_eval.plots` (matplotlib, lazily: only when a figure is drawn), the metrics'
result types and image loading from :mod:`asl_eval.inputs`.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from asl_eval.errors import UnreadableImage
from asl_eval.inputs import load_rgb
from asl_eval.report.data import ComparisonRow, ConfusedPair, SetFigures, Thumb
from asl_eval.report.tables import confused_pairs_by_loss

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
    "plot_class_accuracy_points",
    "plot_class_drops",
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
    ordered = confused_pairs_by_loss(evaluation.confused_pairs, losses)
    pairs = []
    for pair in ordered.head(n_pairs).to_dict(orient="records"):
        actual, predicted = str(pair["actual"]), str(pair["predicted"])
        examples = losses[(losses["actual"] == actual) & (losses["predicted"] == predicted)]
        thumbs = _thumbs(examples, limit=n_examples, size=thumb_size, locate=locate)
        pairs.append(ConfusedPair(actual, predicted, int(pair["count"]), thumbs, pair["loss"]))
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


#: A class whose 95% interval is wider than this is drawn faded: too few images to tell.
WIDE_INTERVAL = 0.5


def plot_class_accuracy_points(tables: Mapping[str, pd.DataFrame], ax: Axes) -> Axes:
    """Per-class accuracy of every set side by side: a point per class and set with its
    Wilson interval, the point's area proportional to the class's images, and classes whose
    interval is wider than :data:`WIDE_INTERVAL` drawn hollow and faded, so a class of one
    image (at 0% or 100%) does not stand out like a class of thirty.

    ``ax.collections`` holds one scatter per set, in order (sizes in ``get_sizes()``).
    """
    from asl_eval.plots import PALETTE, literal

    classes = list(next(iter(tables.values())).index)
    n_sets, positions = len(tables), np.arange(len(classes))
    largest = max(float(t["support"].max()) for t in tables.values()) or 1.0
    step = 0.8 / max(n_sets, 1)
    for i, (name, frame) in enumerate(tables.items()):
        x = positions + (i - (n_sets - 1) / 2) * step
        accuracy = frame["accuracy"].to_numpy(dtype=np.float64)
        low = frame["ci_low"].to_numpy(dtype=np.float64)
        high = frame["ci_high"].to_numpy(dtype=np.float64)
        support = frame["support"].to_numpy(dtype=np.float64)
        wide = ~((high - low) <= WIDE_INTERVAL)
        colour = PALETTE[i % len(PALETTE)]
        ax.vlines(x, low, high, color=colour, linewidth=1.0, alpha=0.45)
        sizes = 4.0 + 60.0 * support / largest
        faces = [("none" if w else colour) for w in wide]
        ax.scatter(
            x,
            accuracy,
            s=sizes,
            facecolors=faces,
            edgecolors=colour,
            linewidths=1.0,
            zorder=3,
            label=literal(name),
        )
    ax.set_xticks(positions, [literal(c) for c in classes], rotation=90 if len(classes) > 12 else 0)
    ax.set_xlim(-0.6, len(classes) - 0.4)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("accuracy (lines: 95% Wilson interval)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=min(n_sets, 4),
        frameon=False,
        title=f"area: images; hollow: interval wider than {100 * WIDE_INTERVAL:.0f} points",
    )
    return ax


def per_class_chart(per_class: Mapping[str, pd.DataFrame], n_classes: int) -> str:
    """Per-class accuracy for every set (name -> per-class table) side by side, as points
    sized by the class's images with Wilson intervals (:func:`plot_class_accuracy_points`)."""
    width = max(8.0, 0.3 * n_classes * max(1.0, 0.6 * len(per_class)) + 2)
    tables = dict(per_class)
    return draw(lambda ax: plot_class_accuracy_points(tables, ax), size=(min(width, 14.0), 4.2))


def _drop_order(rows: Sequence[ComparisonRow]) -> list[ComparisonRow]:
    """Classes with images in both sets, the surest drop first: by the lower end of the drop's
    interval (then the drop, then the model's order)."""
    tested = [r for r in rows if math.isfinite(r.drop_low)]
    return sorted(tested, key=lambda r: (-r.drop_low, -r.drop, r.position))


def plot_class_drops(
    rows: Sequence[ComparisonRow], ax: Axes, *, in_domain: str = "", out_of_domain: str = ""
) -> Axes:
    """Per-class drop of one comparison with its 95% Newcombe interval, sorted by the lower
    end of that interval (the surest drops on top), each label giving the class's images in
    both sets. Classes too small to show a drop on their own are grey, so a one-image class
    with a 100-point drop sits low and faded instead of on top.

    ``ax.collections[-1]`` holds the points at ``(drop, row)``, top row first.
    """
    from asl_eval.plots import PALETTE, literal

    shown = _drop_order(rows)
    positions = np.arange(len(shown))
    drops = np.array([r.drop for r in shown], dtype=np.float64)
    colours = [
        PALETTE[5] if r.significant_drop else ("#bbbbbb" if r.too_few else PALETTE[0])
        for r in shown
    ]
    ax.axvline(0.0, color="#777777", linewidth=0.8)
    ax.hlines(positions, [r.drop_low for r in shown], [r.drop_high for r in shown], colors=colours)
    ax.scatter(drops, positions, c=colours, zorder=3, s=18)
    labels = [
        f"{literal(r.name)} ({r.inside.support}/{r.outside.support})"
        + (" *" if r.significant_drop else "")
        for r in shown
    ]
    ax.set_yticks(positions, labels)
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.set_xlim(-1.02, 1.02)
    ax.set_xlabel(
        f"accuracy drop from {literal(in_domain)} to {literal(out_of_domain)} (lines: 95% interval)"
    )
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(
        "labels: class (images in / out); * significant (Fisher, Holm); grey: too few to tell",
        loc="left",
        fontsize="small",
    )
    return ax


def domain_gap_chart(
    rows: Sequence[ComparisonRow], in_domain: str = "", out_of_domain: str = ""
) -> str:
    """The per-class drop of one comparison (:func:`plot_class_drops`) as a ``data:`` URI."""
    height = max(3.0, 0.22 * len(rows) + 1.4)
    return draw(
        lambda ax: plot_class_drops(rows, ax, in_domain=in_domain, out_of_domain=out_of_domain),
        size=(6.5, height),
    )
