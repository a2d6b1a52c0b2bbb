"""Accuracy by property bin, and each property's weakest segment: the binned half of the
``"domains"`` analysis (:mod:`asl_eval.audit.domains`).

- **Accuracy by bin**: per set and property, the set's images in ``bins`` bins of about equal
  size by that property (the set's own quantiles, :func:`bin_thresholds`: cuts near ranks
  ``n/bins, 2n/bins, …``, moved to where the value changes so equal values share a bin; a
  constant property has one bin), each with its value range, accuracy and Wilson interval
  (:func:`asl_eval.metrics.wilson_interval`).
- **Segments**: per set and property, the weakest bin (lowest accuracy; ties: the first)
  against the set's other images, with both Wilson intervals and whether they are disjoint.

Imports numpy, pandas, :mod:`asl_eval.errors`, :mod:`asl_eval.metrics` and the property names
of :mod:`asl_eval.audit.properties`; never torch, never an image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from asl_eval.audit.properties import PROPERTIES
from asl_eval.errors import MetricError
from asl_eval.metrics import wilson_interval

__all__ = [
    "SEGMENT_COLUMNS",
    "accuracy_by_bin",
    "bin_labels",
    "bin_thresholds",
    "bins_and_segments",
]


def bin_thresholds(values: ArrayLike, bins: int) -> NDArray[np.float64]:
    """Where the bins of about equal size start: the values that open bins 2, 3, ….

    The finite values are sorted and cut near ranks ``n/bins, 2n/bins, …``, each cut moved to
    the nearest place where the value changes, so equal values always share a bin; cuts that
    meet are merged. A value ``v`` lies in bin ``searchsorted(thresholds, v, side="right")``.

    >>> bin_thresholds([1, 2, 3, 4, 5, 6], 3).tolist()
    [3.0, 5.0]
    >>> bin_thresholds([0, 0, 0, 0, 0, 0, 0, 7, 8, 9], 3).tolist()
    [7.0]
    >>> bin_thresholds([5, 5, 5], 3).tolist()
    []
    """
    data = np.sort(np.asarray(values, dtype=np.float64).ravel())
    data = data[np.isfinite(data)]
    changes = np.flatnonzero(data[1:] != data[:-1]) + 1  # first index of each new value
    if changes.size == 0:
        return np.zeros(0)
    targets = data.size * np.arange(1, bins) / bins
    nearest = changes[np.abs(changes[None, :] - targets[:, None]).argmin(axis=1)]
    return np.asarray(data[np.unique(nearest)], dtype=np.float64)


def _assign(values: NDArray[np.float64], thresholds: NDArray[np.float64]) -> NDArray[np.int64]:
    """Each value's bin index (-1 for non-finite values)."""
    index = np.searchsorted(thresholds, values, side="right").astype(np.int64)
    index[~np.isfinite(values)] = -1
    return index


def bin_labels(n_bins: int) -> tuple[str, ...]:
    """Names of ``n_bins`` bins from the lowest values up.

    >>> bin_labels(3), bin_labels(1), bin_labels(4)[0]
    (('low', 'middle', 'high'), ('all',), 'bin 1 of 4')
    """
    named = {1: ("all",), 2: ("low", "high"), 3: ("low", "middle", "high")}
    return named.get(n_bins, tuple(f"bin {i + 1} of {n_bins}" for i in range(n_bins)))


def accuracy_by_bin(
    values: ArrayLike, correct: ArrayLike, *, bins: int = 3
) -> tuple[pd.DataFrame, NDArray[np.int64]]:
    """Quantile bins of ``values`` with the accuracy of ``correct`` in each.

    Returns the table (columns ``bin``, ``bin_label``, ``lower``, ``upper``, ``n``,
    ``n_correct``, ``accuracy``, ``accuracy_low``, ``accuracy_high``) and each value's bin index
    (-1 for a non-finite value).

    >>> table, index = accuracy_by_bin([1, 2, 3, 4, 5, 6], [0, 0, 1, 1, 1, 1], bins=3)
    >>> table["accuracy"].tolist(), index.tolist()
    ([0.0, 1.0, 1.0], [0, 0, 1, 1, 2, 2])
    """
    data = np.asarray(values, dtype=np.float64)
    hits = np.asarray(correct, dtype=bool)
    if data.shape != hits.shape:
        raise MetricError(f"{data.size} values but {hits.size} correct flags: one per image.")
    if bins < 1:
        raise MetricError(f"bins must be at least 1; got {bins}.")
    thresholds = bin_thresholds(data, bins)
    index = _assign(data, thresholds)
    n_bins = thresholds.size + 1 if np.isfinite(data).any() else 0
    labels = bin_labels(n_bins) if n_bins else ()
    rows = []
    for b in range(n_bins):
        members = index == b
        n, n_correct = int(members.sum()), int(hits[members].sum())
        low, high = wilson_interval(n_correct, n)
        rows.append(
            {
                "bin": b,
                "bin_label": labels[b],
                "lower": float(data[members].min()),
                "upper": float(data[members].max()),
                "n": n,
                "n_correct": n_correct,
                "accuracy": n_correct / n,
                "accuracy_low": low,
                "accuracy_high": high,
            }
        )
    columns = [
        "bin", "bin_label", "lower", "upper", "n", "n_correct", "accuracy", "accuracy_low",
        "accuracy_high",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns), index


def _segment(
    name: str, prop: str, table: pd.DataFrame, n_total: int, c_total: int
) -> dict[str, object]:
    if len(table) < 2:
        return {}
    weakest = table.iloc[int(np.argmin(table["accuracy"].to_numpy(dtype=np.float64)))]
    n, c = int(weakest["n"]), int(weakest["n_correct"])
    rest_n, rest_c = n_total - n, c_total - c
    rest_low, rest_high = wilson_interval(rest_c, rest_n)
    return {
        "set": name,
        "property": prop,
        "bin": int(weakest["bin"]),
        "bin_label": str(weakest["bin_label"]),
        "lower": float(weakest["lower"]),
        "upper": float(weakest["upper"]),
        "n": n,
        "n_correct": c,
        "accuracy": float(weakest["accuracy"]),
        "accuracy_low": float(weakest["accuracy_low"]),
        "accuracy_high": float(weakest["accuracy_high"]),
        "rest_n": rest_n,
        "rest_correct": rest_c,
        "rest_accuracy": rest_c / rest_n if rest_n else math.nan,
        "rest_accuracy_low": rest_low,
        "rest_accuracy_high": rest_high,
        "separated": bool(float(weakest["accuracy_high"]) < rest_low),
    }


SEGMENT_COLUMNS = [
    "set", "property", "bin", "bin_label", "lower", "upper", "n", "n_correct", "accuracy",
    "accuracy_low", "accuracy_high", "rest_n", "rest_correct", "rest_accuracy",
    "rest_accuracy_low", "rest_accuracy_high", "separated",
]  # fmt: skip


def bins_and_segments(
    items: pd.DataFrame, sets: Sequence[str], bins: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, NDArray[np.int64]]]:
    """The accuracy-by-bin table, the weakest segments and each image's bin per property."""
    tables, segments = [], []
    assigned = {prop: np.full(len(items), -1, dtype=np.int64) for prop in PROPERTIES}
    measured_mask = (items["status"] == "measured").to_numpy()
    for name in sets:
        rows = np.flatnonzero(measured_mask & (items["set"] == name).to_numpy())
        correct = items["correct"].to_numpy(dtype=bool)[rows]
        for prop in PROPERTIES:
            table, index = accuracy_by_bin(
                items[prop].to_numpy(dtype=np.float64)[rows], correct, bins=bins
            )
            assigned[prop][rows] = index
            table.insert(0, "set", name)
            table.insert(1, "property", prop)
            tables.append(table)
            binned = index >= 0  # images whose property is not finite are in no bin
            segment = _segment(name, prop, table, int(binned.sum()), int(correct[binned].sum()))
            if segment:
                segments.append(segment)
    frame = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return frame, pd.DataFrame(segments, columns=SEGMENT_COLUMNS), assigned
