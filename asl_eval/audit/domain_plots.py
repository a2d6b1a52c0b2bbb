"""Figures of the ``"domains"`` analysis (:mod:`asl_eval.audit.domains`): how much each property
differs between the sets, a property's distribution per set, and accuracy by property bin.

Like :mod:`asl_eval.plots`, each function takes computed tables and an optional Axes and returns
the Axes; with ``ax=None`` it makes a new :class:`matplotlib.figure.Figure`, never touching
pyplot's global state.

Imports numpy, pandas and matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from asl_eval.audit.properties import PROPERTY_LABELS
from asl_eval.errors import ReportError

__all__ = ["plot_accuracy_by_bin", "plot_property_differences", "plot_property_distribution"]

_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
_MAX_HISTOGRAM_BINS = 30
_SMD_CAP = 3.0


def _text(name: object) -> str:
    """A set's name as matplotlib text (a ``$`` would start mathtext)."""
    return str(name).replace("$", r"\$")


def _need(table: pd.DataFrame, columns: Sequence[str], function: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ReportError(f"{function} needs the columns {missing}.")


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    return Figure(figsize=size, layout="constrained").subplots() if ax is None else ax


def plot_property_differences(
    differences: pd.DataFrame, *, ax: Axes | None = None, cap: float = _SMD_CAP
) -> Axes:
    """Cohen's d of every property, one bar per compared set; solid where the difference is
    significant after Holm, pale where not. Bars beyond ``±cap`` (and infinite ones, a property
    constant in both sets at different values) are cut at the cap and labelled with their value.

    Parameters
    ----------
    differences
        ``info["differences"]`` (columns ``set``, ``property``, ``smd``, ``significant``).
    ax
        Axes to draw on (default: a new figure's).
    cap
        Largest |d| drawn to scale.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(differences, ("set", "property", "smd", "significant"), "plot_property_differences")
    ax = _axes(ax, (6.5, 3.6))
    properties = list(dict.fromkeys(differences["property"].astype(str)))
    sets = list(dict.fromkeys(differences["set"].astype(str)))
    height = 0.8 / max(1, len(sets))
    for i, name in enumerate(sets):
        part = differences[differences["set"].astype(str) == name]
        values = dict(zip(part["property"].astype(str), part["smd"].astype(float), strict=True))
        flags = dict(
            zip(part["property"].astype(str), part["significant"].astype(bool), strict=True)
        )
        for j, prop in enumerate(properties):
            value = values.get(prop, math.nan)
            if math.isnan(value):
                continue
            shown = float(np.clip(value, -cap, cap))
            y = j + (i - (len(sets) - 1) / 2) * height
            significant = flags[prop]
            ax.barh(
                y,
                shown,
                height=height,
                # colour 0 is the in-domain set's in the other figures
                color=_COLOURS[(i + 1) % len(_COLOURS)],
                alpha=1.0 if significant else 0.35,
                label=_text(name) if j == 0 else None,
            )
            if abs(value) > cap:
                text = "∞" if math.isinf(value) else f"{value:.1f}"
                ax.text(shown, y, f" {'−' if value < 0 else ''}{text.lstrip('-')} ", va="center",
                        ha="left" if value > 0 else "right", fontsize="small")  # fmt: skip
    ax.set_yticks(range(len(properties)), [PROPERTY_LABELS.get(p, p) for p in properties])
    ax.invert_yaxis()
    ax.axvline(0.0, color="#555555", linewidth=0.8)
    ax.set_xlim(-cap * 1.25, cap * 1.25)
    ax.set_xlabel("standardized difference from the in-domain set (Cohen's d)")
    if sets:
        ax.legend(loc="lower right", fontsize="small", frameon=False, title="pale: not significant")
    return ax


def plot_property_distribution(items: pd.DataFrame, prop: str, *, ax: Axes | None = None) -> Axes:
    """The distribution of one property in each set: a density histogram per set over shared
    bins (at most 30, numpy's ``"auto"`` rule on the pooled values).

    Parameters
    ----------
    items
        The analysis' items (columns ``set``, ``status`` and ``prop``); excluded images are
        left out.
    prop
        A property name (:data:`asl_eval.audit.properties.PROPERTIES`).
    ax
        Axes to draw on (default: a new figure's).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _need(items, ("set", "status", prop), "plot_property_distribution")
    ax = _axes(ax, (4.2, 3.0))
    measured = items[items["status"] == "measured"]
    pooled = measured[prop].to_numpy(dtype=np.float64)
    pooled = pooled[np.isfinite(pooled)]
    if pooled.size:
        low, high = float(pooled.min()), float(pooled.max())
        if high <= low:
            low, high = low - 0.5, high + 0.5
        edges = np.histogram_bin_edges(pooled, bins="auto", range=(low, high))
        if edges.size - 1 > _MAX_HISTOGRAM_BINS:
            edges = np.linspace(low, high, _MAX_HISTOGRAM_BINS + 1)
        for i, (name, part) in enumerate(measured.groupby("set", sort=False)):
            values = part[prop].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            if not values.size:
                continue
            ax.hist(
                values,
                bins=edges.tolist(),
                density=True,
                histtype="step",
                linewidth=1.6,
                color=_COLOURS[i % len(_COLOURS)],
                label=f"{_text(name)} (n={values.size})",
            )
        ax.legend(loc="best", fontsize="small", frameon=False)
    ax.set_xlabel(PROPERTY_LABELS.get(prop, prop))
    ax.set_ylabel("density")
    return ax


def plot_accuracy_by_bin(bins: pd.DataFrame, prop: str, *, ax: Axes | None = None) -> Axes:
    """Accuracy of each set in each bin of one property, with 95% Wilson intervals.

    The bins are each set's own (about equal thirds of its images by default), so the x axis
    shows their rank (low to high); the legend gives each set's n.

    Parameters
    ----------
    bins
        ``info["bins"]`` (columns ``set``, ``property``, ``bin``, ``bin_label``, ``n``,
        ``accuracy``, ``accuracy_low``, ``accuracy_high``).
    prop
        The property to show.
    ax
        Axes to draw on (default: a new figure's).

    Returns
    -------
    matplotlib.axes.Axes
    """
    columns = ("set", "property", "bin", "bin_label", "n", "accuracy", "accuracy_low")
    _need(bins, (*columns, "accuracy_high"), "plot_accuracy_by_bin")
    ax = _axes(ax, (4.2, 3.0))
    rows = bins[bins["property"] == prop]
    sets = list(dict.fromkeys(rows["set"].astype(str)))
    offset = 0.25 / max(1, len(sets))
    labels: list[str] = []
    for i, name in enumerate(sets):
        part = rows[rows["set"].astype(str) == name].sort_values("bin")
        if len(part) > len(labels):
            labels = part["bin_label"].astype(str).tolist()
        x = part["bin"].to_numpy(dtype=np.float64) + (i - (len(sets) - 1) / 2) * offset
        accuracy = part["accuracy"].to_numpy(dtype=np.float64)
        below = np.clip(accuracy - part["accuracy_low"].to_numpy(dtype=np.float64), 0, None)
        above = np.clip(part["accuracy_high"].to_numpy(dtype=np.float64) - accuracy, 0, None)
        ax.errorbar(
            x,
            accuracy,
            yerr=np.vstack([below, above]),
            marker="o",
            capsize=3,
            color=_COLOURS[i % len(_COLOURS)],
            label=f"{_text(name)} (n={int(part['n'].sum())})",
        )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"{PROPERTY_LABELS.get(prop, prop)}: bin")
    ax.set_ylabel("accuracy (95% CI)")
    if sets:
        ax.legend(loc="lower right", fontsize="small", frameon=False)
    return ax
