"""The leakage audit's figure: how far each query image is from its nearest training image,
against how far apart unrelated training images of one class are, with the threshold marked.

Like :mod:`asl_eval.plots`, the function takes computed tables and an optional Axes and returns
the Axes; with ``ax=None`` it makes a new :class:`matplotlib.figure.Figure`, never touching
pyplot's global state.

Imports numpy, pandas and matplotlib.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from asl_eval.audit.hashes import HASH_BITS
from asl_eval.errors import ReportError

__all__ = ["plot_distance_distribution"]

_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
_REFERENCE = "#999999"


def _shares(distances: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.clip(distances, 0, HASH_BITS), minlength=HASH_BITS + 1)
    return counts / max(1, counts.sum())


def plot_distance_distribution(
    items: pd.DataFrame,
    calibration_counts: pd.DataFrame,
    thresholds: pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Share of images at each pHash distance to their nearest training image, per set, over
    the same-class training pairs the thresholds were calibrated on.

    Parameters
    ----------
    items
        The leakage table (columns ``set`` and ``phash_distance``; rows without a training
        neighbour, distance above 64, are left out).
    calibration_counts
        Columns ``distance`` and ``phash_pairs`` (``info["calibration_counts"]``).
    thresholds
        Column ``phash_threshold``, one row per class (``info["thresholds"]``): one line where
        every class has the same threshold, else a band from the smallest to the largest and a
        line at the median.
    ax
        Axes to draw on (default: a new figure's).

    Returns
    -------
    matplotlib.axes.Axes
    """
    for table, columns in (
        (items, ("set", "phash_distance")),
        (calibration_counts, ("distance", "phash_pairs")),
        (thresholds, ("phash_threshold",)),
    ):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ReportError(f"plot_distance_distribution needs the columns {missing}.")
    if ax is None:
        ax = Figure(figsize=(6.5, 3.4), layout="constrained").subplots()
    pairs = calibration_counts["phash_pairs"].to_numpy(dtype=np.float64)
    if pairs.sum() > 0:
        ax.fill_between(
            calibration_counts["distance"],
            pairs / pairs.sum(),
            step="mid",
            color=_REFERENCE,
            alpha=0.35,
            label="same-class training pairs",
        )
    x = np.arange(HASH_BITS + 1)
    for i, (name, part) in enumerate(items.groupby("set", sort=False)):
        distances = part["phash_distance"].to_numpy(dtype=np.int64)
        distances = distances[distances <= HASH_BITS]
        label = str(name).replace("$", r"\$") + " → nearest training image"
        ax.step(x, _shares(distances), where="mid", color=_COLOURS[i % 6], label=label)
    _mark_thresholds(ax, thresholds["phash_threshold"].to_numpy(dtype=np.float64))
    ax.set_xlim(-0.5, HASH_BITS + 0.5)
    ax.set_xlabel("pHash Hamming distance (bits of 64)")
    ax.set_ylabel("share of images / pairs")
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return ax


def _mark_thresholds(ax: Axes, values: np.ndarray) -> None:
    """A line at the threshold (flagged: at or left of it), or a band over the per-class ones."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return
    low, high, middle = values.min(), values.max(), float(np.median(values))
    if low == high:
        ax.axvline(low + 0.5, color="#D55E00", linestyle="--", label=f"threshold (≤ {low:g})")
        return
    ax.axvspan(low + 0.5, high + 0.5, color="#D55E00", alpha=0.12, label="per-class thresholds")
    ax.axvline(middle + 0.5, color="#D55E00", linestyle="--", label=f"median (≤ {middle:g})")
