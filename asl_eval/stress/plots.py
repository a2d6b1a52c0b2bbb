"""The sweep's figures, for notebooks and the report: each function takes the computed tables,
draws on ``ax`` (a fresh figure's axes when None, never pyplot's global state) and returns it.

- :func:`plot_robustness_heatmap`: class × change, accuracy averaged over the severities swept;
- :func:`plot_severity_curves`: accuracy against severity, one line per change (clean at 0).

Layer: part of :mod:`asl_eval.stress`; imports numpy, pandas and matplotlib (torch-free).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from asl_eval.stress.catalogue import CATALOGUE, CLEAN

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["heatmap_matrix", "plot_robustness_heatmap", "plot_severity_curves"]


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained").add_subplot()


def _label(name: str) -> str:
    info = CATALOGUE.get(name)
    return (
        f"{name} (not label-preserving)" if info is not None and not info.label_preserving else name
    )


def heatmap_matrix(per_class: pd.DataFrame, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """Class × condition accuracy (rows: classes in order; columns: ``clean`` then each change
    in the sweep's order), each change's accuracy averaged over its severities ≥ 1."""
    order = list(classes) if classes is not None else list(per_class["class"].drop_duplicates())
    clean = per_class[per_class["corruption"] == CLEAN].set_index("class")["accuracy"]
    changed = per_class[(per_class["corruption"] != CLEAN) & (per_class["severity"] >= 1)]
    names = list(changed["corruption"].drop_duplicates())
    matrix = changed.pivot_table(
        index="class", columns="corruption", values="accuracy", aggfunc="mean", sort=False
    )
    matrix = matrix.reindex(index=order, columns=names)
    matrix.insert(0, CLEAN, clean.reindex(order))
    return matrix.astype(np.float64)


def plot_robustness_heatmap(
    per_class: pd.DataFrame,
    *,
    classes: Sequence[str] | None = None,
    ax: Axes | None = None,
    annotate: bool | None = None,
) -> Axes:
    """Accuracy per class (rows) under each change (columns, averaged over the severities
    swept), clean first; NaN (no image) left blank. ``annotate`` writes the percentages in the
    cells (default: when there are at most 30 × 16 cells)."""
    matrix = heatmap_matrix(per_class, classes)
    ax = _axes(ax, (0.5 * matrix.shape[1] + 2.5, 0.28 * matrix.shape[0] + 1.8))
    values = np.ma.masked_invalid(matrix.to_numpy())
    image = ax.imshow(values, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_xticklabels([_label(str(c)) for c in matrix.columns], rotation=45, ha="right")
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_yticklabels([str(c) for c in matrix.index])
    ax.set_xlabel("change (accuracy averaged over the severities swept)")
    ax.set_ylabel("true class")
    ax.figure.colorbar(image, ax=ax, label="accuracy", fraction=0.04)
    if annotate if annotate is not None else matrix.shape[0] <= 30 and matrix.shape[1] <= 16:
        cells = matrix.to_numpy(dtype=np.float64)
        for row in range(cells.shape[0]):
            for column in range(cells.shape[1]):
                value = float(cells[row, column])
                if np.isfinite(value):
                    ax.text(
                        column,
                        row,
                        f"{100 * value:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="black",
                    )
    ax.set_title("Accuracy per class under each change")
    return ax


def plot_severity_curves(conditions: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Accuracy (with its Wilson 95% interval as a band) against severity, one line per change,
    starting from the clean accuracy at severity 0; changes that are not label-preserving are
    dashed."""
    ax = _axes(ax, (6.5, 3.8))
    clean = conditions[conditions["corruption"] == CLEAN]
    clean_accuracy = float(clean["accuracy"].iloc[0]) if len(clean) else np.nan
    changed = conditions[conditions["corruption"] != CLEAN]
    for name, group in changed.groupby("corruption", sort=False):
        group = group.sort_values("severity")
        x = (
            [0, *group["severity"].tolist()]
            if 0 not in set(group["severity"])
            else list(group["severity"])
        )
        y = (
            [clean_accuracy, *group["accuracy"].tolist()]
            if len(x) > len(group)
            else list(group["accuracy"])
        )
        info = CATALOGUE.get(str(name))
        style = "--" if info is not None and not info.label_preserving else "-"
        (line,) = ax.plot(x, y, style, marker="o", markersize=3, label=_label(str(name)))
        ax.fill_between(
            group["severity"],
            group["accuracy_low"],
            group["accuracy_high"],
            color=line.get_color(),
            alpha=0.08,
        )
    ax.set_xlabel("severity (0 = unchanged)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(range(0, 6))
    ax.legend(fontsize=7, ncols=2, loc="lower left")
    ax.set_title("Accuracy against severity")
    return ax
