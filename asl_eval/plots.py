"""Figures for the metrics of :mod:`asl_eval.metrics` (matplotlib and seaborn; imports the
metrics and the errors only, never torch or fastai).

Each ``plot_*`` function takes a table that a metric function computed and an optional Axes,
draws on it and returns it. With ``ax=None`` a new :class:`matplotlib.figure.Figure` is made
(``ax.figure.savefig(...)`` writes it); global pyplot state is never touched, so these work in
scripts, servers and notebooks alike (in Jupyter, display ``ax.figure``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from asl_eval.errors import ReportError, first_few
from asl_eval.metrics import reliability_ece

__all__ = [
    "literal",
    "plot_confidence_histogram",
    "plot_confusion_matrix",
    "plot_domain_gap",
    "plot_per_class_accuracy",
    "plot_reliability_diagram",
]

#: Colour-blind-safe colours (Okabe-Ito) for up to eight sets side by side.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def literal(text: object) -> str:
    """``text`` as matplotlib should show it: every ``$`` escaped, so a class or set name that
    contains dollars is drawn as written instead of being parsed as math (where an unbalanced
    or invalid expression fails the whole figure).

    >>> print(literal("$x$ 5$"))
    \\$x\\$ 5\\$
    """
    return str(text).replace("$", r"\$")


def _new_axes(width: float, height: float) -> Axes:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure.add_subplot()


def _require_columns(table: pd.DataFrame, columns: tuple[str, ...], produced_by: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ReportError(f"expected a DataFrame from {produced_by}(); got {type(table).__name__}.")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ReportError(
            f"the table lacks column(s) {first_few(missing)} that {produced_by}() produces; "
            f"pass the result of {produced_by}()."
        )


def _per_class_tables(
    table: pd.DataFrame | Mapping[str, pd.DataFrame],
) -> dict[str, pd.DataFrame]:
    """The tables to draw, checked: per_class_accuracy() columns, the same classes in each."""
    tables = dict(table) if isinstance(table, Mapping) else {"": table}
    if not tables:
        raise ReportError("no per-class tables to plot; pass at least one.")
    columns = ("accuracy", "ci_low", "ci_high")
    for frame in tables.values():
        _require_columns(frame, columns, "per_class_accuracy")
    classes = list(next(iter(tables.values())).index)
    for name, frame in tables.items():
        if list(frame.index) != classes:
            raise ReportError(
                f"table {name!r} has different classes from the first table; compare sets "
                "evaluated with the same model."
            )
    return tables


def plot_per_class_accuracy(
    table: pd.DataFrame | Mapping[str, pd.DataFrame],
    ax: Axes | None = None,
    *,
    title: str | None = None,
) -> Axes:
    """Bars of per-class accuracy with Wilson-interval whiskers.

    Parameters
    ----------
    table
        A :func:`~asl_eval.metrics.per_class_accuracy` table, or a mapping of set name to such
        tables (all with the same classes) to draw side by side, in mapping order.
    ax
        Axes to draw on; a new figure when ``None``.
    title
        Axes title.

    Returns
    -------
    Axes
        One :class:`~matplotlib.container.BarContainer` per set among ``ax.containers``, in
        order, each with its ``errorbar``; a class without images has a NaN-height (invisible)
        bar.
    """
    tables = _per_class_tables(table)
    classes = list(next(iter(tables.values())).index)
    n_sets, n_classes = len(tables), len(classes)
    if ax is None:
        ax = _new_axes(max(6.0, 0.28 * n_classes * (1 + 0.5 * (n_sets - 1)) + 1.5), 4.0)
    width = 0.8 / n_sets
    positions = np.arange(n_classes)
    for i, (name, frame) in enumerate(tables.items()):
        accuracy = frame["accuracy"].to_numpy(dtype=np.float64)
        whiskers = np.vstack(
            [
                accuracy - frame["ci_low"].to_numpy(dtype=np.float64),
                frame["ci_high"].to_numpy(dtype=np.float64) - accuracy,
            ]
        )
        ax.bar(
            positions + (i - (n_sets - 1) / 2) * width,
            accuracy,
            width=width,
            yerr=np.nan_to_num(whiskers, nan=0.0),
            color=PALETTE[i % len(PALETTE)],
            ecolor="#333333",
            capsize=min(3.0, 20.0 / n_classes + 1),
            error_kw={"linewidth": 0.8},
            label=literal(name) if name else None,
        )
    ax.set_xticks(positions, [literal(c) for c in classes], rotation=90 if n_classes > 12 else 0)
    ax.set_xlim(-0.6, n_classes - 0.4)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("accuracy (whiskers: Wilson interval)")
    ax.set_xlabel("class")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if n_sets > 1:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=min(n_sets, 4), frameon=False)
    if title:
        ax.set_title(literal(title), loc="left")
    return ax


def _cell_labels(values: np.ndarray, *, is_count: bool) -> np.ndarray:
    """Cell annotations: counts as integers, shares with two decimals, zeros and NaN blank."""
    labels = np.full(values.shape, "", dtype=object)
    shown = np.isfinite(values) & (values != 0)
    labels[shown] = [f"{v:.0f}" if is_count else f"{v:.2f}" for v in values[shown]]
    return labels


def plot_confusion_matrix(
    matrix: pd.DataFrame,
    ax: Axes | None = None,
    *,
    annotate: bool | None = None,
    cmap: str = "Blues",
    title: str | None = None,
) -> Axes:
    """Heatmap of a :func:`~asl_eval.metrics.confusion_matrix`, readable at 29 classes.

    Every class is labelled on both axes; cells are annotated with their count (or with two
    decimals for a normalised matrix), leaving zeros blank so the mistakes stand out. NaN cells
    (rows or columns with nothing to normalise by) stay empty.

    Parameters
    ----------
    matrix
        Rows actual, columns predicted; integer counts are written as integers, anything else
        with two decimals.
    annotate
        Write the numbers in the cells; by default when there are at most 30 classes.
    cmap
        Matplotlib colour map name.
    """
    import seaborn as sns

    if not isinstance(matrix, pd.DataFrame) or matrix.shape[0] != matrix.shape[1]:
        raise ReportError(
            "expected a square DataFrame from confusion_matrix() (rows actual, columns "
            f"predicted); got {type(matrix).__name__} of shape {getattr(matrix, 'shape', '?')}."
        )
    values = matrix.to_numpy(dtype=np.float64)
    n_classes = len(matrix)
    if ax is None:
        side = max(4.5, 0.36 * n_classes + 2.0)
        ax = _new_axes(side + 1.0, side)
    if annotate is None:
        annotate = n_classes <= 30
    # confusion_matrix() returns integers for counts and floats when normalised.
    is_count = all(dtype.kind in "iu" for dtype in matrix.dtypes)
    labels = _cell_labels(values, is_count=is_count)
    font_size = 10 if n_classes <= 12 else (8 if n_classes <= 20 else 6.5)
    sns.heatmap(
        matrix.astype(np.float64),
        ax=ax,
        cmap=cmap,
        annot=labels if annotate else False,
        fmt="",
        annot_kws={"fontsize": font_size},
        square=True,
        linewidths=0.4,
        linecolor="#dddddd",
        xticklabels=[literal(c) for c in matrix.columns],
        yticklabels=[literal(c) for c in matrix.index],
        vmin=0.0,
        cbar_kws={"label": "images" if is_count else "share", "shrink": 0.8},
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.tick_params(axis="both", labelsize=font_size + 1)
    ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(axis="y", labelrotation=0)
    if title:
        ax.set_title(literal(title))
    return ax


def plot_reliability_diagram(
    table: pd.DataFrame,
    ax: Axes | None = None,
    *,
    title: str | None = None,
) -> Axes:
    """Reliability diagram of a :func:`~asl_eval.metrics.reliability_table`.

    Bars show the accuracy in each confidence bin (``ax.containers[0]``); hatched bars
    (``ax.containers[1]``) span the gap from accuracy to the mean confidence; the dashed
    diagonal is perfect calibration. Empty bins have no bar. The legend states the ECE computed
    from the table.
    """
    _require_columns(
        table, ("lower", "upper", "count", "confidence", "accuracy"), "reliability_table"
    )
    if ax is None:
        ax = _new_axes(5.0, 5.0)
    lower = table["lower"].to_numpy(dtype=np.float64)
    width = table["upper"].to_numpy(dtype=np.float64) - lower
    accuracy = table["accuracy"].to_numpy(dtype=np.float64)
    confidence = table["confidence"].to_numpy(dtype=np.float64)
    ece = reliability_ece(table)
    ax.bar(
        lower,
        accuracy,
        width=width,
        align="edge",
        color=PALETTE[0],
        edgecolor="white",
        label="accuracy",
    )
    ax.bar(
        lower,
        confidence - accuracy,
        bottom=accuracy,
        width=width,
        align="edge",
        color="none",
        edgecolor=PALETTE[5],
        hatch="//",
        linewidth=0.8,
        label=f"gap to confidence (ECE {ece:.3f})",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="#555555", linewidth=1, label="calibrated")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("confidence (top predicted probability)")
    ax.set_ylabel("accuracy")
    ax.set_aspect("equal")
    ax.legend(loc="upper left")
    if title:
        ax.set_title(literal(title))
    return ax


def plot_domain_gap(
    comparison: pd.DataFrame,
    ax: Axes | None = None,
    *,
    title: str | None = None,
) -> Axes:
    """Dumbbell chart of a :func:`~asl_eval.metrics.domain_comparison`: per class, in-domain
    and out-of-domain accuracy joined by a line, in the table's order (largest drop on top).

    ``ax.collections[1]`` holds the in-domain points and ``ax.collections[2]`` the
    out-of-domain points, at ``(accuracy, row)``; classes whose drop is significant after Holm
    correction are marked with ``*`` in their label. Classes without images in either set have
    no points.
    """
    _require_columns(
        comparison, ("accuracy_in", "accuracy_out", "significant"), "domain_comparison"
    )
    n_classes = len(comparison)
    if ax is None:
        ax = _new_axes(6.0, max(3.0, 0.25 * n_classes + 1.2))
    rows = np.arange(n_classes)
    inside = comparison["accuracy_in"].to_numpy(dtype=np.float64)
    outside = comparison["accuracy_out"].to_numpy(dtype=np.float64)
    significant = comparison["significant"].to_numpy(dtype=bool)
    ax.hlines(
        rows, np.fmin(inside, outside), np.fmax(inside, outside), color="#999999", linewidth=1.5
    )
    ax.scatter(inside, rows, color=PALETTE[0], zorder=3, label="in domain")
    ax.scatter(outside, rows, color=PALETTE[5], zorder=3, label="out of domain")
    labels = [
        f"{literal(name)} *" if sig else literal(name)
        for name, sig in zip(comparison.index, significant, strict=True)
    ]
    ax.set_yticks(rows, labels)
    for tick, sig in zip(ax.get_yticklabels(), significant, strict=True):
        if sig:
            tick.set_fontweight("bold")
    ax.set_ylim(n_classes - 0.5, -0.5)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("accuracy")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=2,
        frameon=False,
        title="* significant change (Fisher, Holm)",
    )
    if title:
        ax.set_title(literal(title), loc="left")
    return ax


def plot_confidence_histogram(
    histogram: pd.DataFrame,
    ax: Axes | None = None,
    *,
    title: str | None = None,
) -> Axes:
    """Stacked histogram of a :func:`~asl_eval.metrics.confidence_histogram`: correct
    predictions (``ax.containers[0]``) below wrong ones (``ax.containers[1]``) per confidence
    bin."""
    _require_columns(histogram, ("lower", "upper", "correct", "wrong"), "confidence_histogram")
    if ax is None:
        ax = _new_axes(5.5, 3.5)
    lower = histogram["lower"].to_numpy(dtype=np.float64)
    width = histogram["upper"].to_numpy(dtype=np.float64) - lower
    correct = histogram["correct"].to_numpy(dtype=np.float64)
    wrong = histogram["wrong"].to_numpy(dtype=np.float64)
    ax.bar(
        lower,
        correct,
        width=width,
        align="edge",
        color=PALETTE[2],
        edgecolor="white",
        label="correct",
    )
    ax.bar(
        lower,
        wrong,
        bottom=correct,
        width=width,
        align="edge",
        color=PALETTE[5],
        edgecolor="white",
        label="wrong",
    )
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("confidence (top predicted probability)")
    ax.set_ylabel("images")
    ax.legend(loc="upper left")
    if title:
        ax.set_title(literal(title))
    return ax
