"""Distance to training in feature space: each image's mean cosine distance to its ``k``
nearest training images (:func:`knn_distance`, exact search), the training images' own
leave-one-out distances, accuracy by quantile bin of distance with Wilson intervals
(:func:`distance_bins`), and the one-sided Mann–Whitney test of whether misclassified images
lie further away than correct ones.

Layer: part of :mod:`asl_eval.audit.embeddings`; imports numpy, pandas, scipy and
scikit-learn (the last two inside the functions), :mod:`asl_eval.errors` and
:mod:`asl_eval.metrics` for the Wilson interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from asl_eval.errors import InputError
from asl_eval.metrics import wilson_interval

__all__ = ["DEFAULT_K", "distance_bins", "knn_distance"]

DEFAULT_K = 5
"""Training neighbours per image (distance and label agreement)."""

N_BINS = 4
"""Quantile bins of distance per set (fewer when a set is small)."""


def knn_distance(
    query: np.ndarray, reference: np.ndarray, *, k: int = DEFAULT_K
) -> tuple[np.ndarray, np.ndarray]:
    """Mean cosine distance of each query row to its ``k`` nearest reference rows, and their
    indices (nearest first; ``k`` is capped at the reference's size).

    Exact search (scikit-learn's brute-force ``NearestNeighbors``, which works through the
    query in chunks of bounded memory). A cosine distance is ``1 - cos``; an all-zero row is at
    distance 1 from everything.

    >>> reference = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> distance, index = knn_distance(np.array([[2.0, 0.0]]), reference, k=1)
    >>> distance.round(6).tolist(), index.tolist()
    ([0.0], [[0]])
    """
    from sklearn.neighbors import NearestNeighbors

    reference = np.asarray(reference, dtype=np.float64)
    query = np.asarray(query, dtype=np.float64)
    if len(reference) == 0:
        raise InputError("No training features to measure distances to.")
    n_neighbours = min(k, len(reference))
    if len(query) == 0:
        return np.zeros(0), np.zeros((0, n_neighbours), dtype=np.int64)
    search = NearestNeighbors(n_neighbors=n_neighbours, metric="cosine", algorithm="brute")
    distances, index = search.fit(reference).kneighbors(query)
    return np.asarray(distances.mean(axis=1)), np.asarray(index, dtype=np.int64)


def _leave_one_out_distance(reference: np.ndarray, k: int) -> np.ndarray:
    """Each reference row's mean cosine distance to its ``k`` nearest other rows."""
    from sklearn.neighbors import NearestNeighbors

    n_neighbours = min(k, len(reference) - 1)
    if n_neighbours < 1:
        return np.zeros(0)
    search = NearestNeighbors(n_neighbors=n_neighbours, metric="cosine", algorithm="brute")
    distances, _ = search.fit(reference).kneighbors()  # X=None: each row's own match left out
    return np.asarray(distances.mean(axis=1))


def distance_bins(
    distance: np.ndarray, correct: np.ndarray, *, n_bins: int = N_BINS, confidence: float = 0.95
) -> pd.DataFrame:
    """Accuracy by quantile bin of distance: ``bin`` (0 nearest), ``distance_low``,
    ``distance_high``, ``n_images``, ``n_correct``, ``accuracy`` and its Wilson interval
    (``accuracy_low``, ``accuracy_high``).

    Edges are the ``0, 1/n_bins, ..., 1`` quantiles of ``distance``; tied edges merge bins;
    each bin holds the distances in ``(low, high]`` (the first also its low end). At most
    ``len(distance) // 5`` bins, so no bin is a handful of images.

    >>> correct = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 1], bool)
    >>> distance_bins(np.arange(10.0), correct, n_bins=2)[["n_images", "n_correct"]].values.tolist()
    [[5, 5], [5, 1]]
    """
    distance = np.asarray(distance, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    columns = ["bin", "distance_low", "distance_high", "n_images", "n_correct", "accuracy"]
    columns += ["accuracy_low", "accuracy_high"]
    bins = min(n_bins, max(1, len(distance) // 5))
    if len(distance) == 0:
        return pd.DataFrame(columns=columns)
    edges = np.unique(np.quantile(distance, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, distance, side="left") - 1, 0, max(0, len(edges) - 2))
    rows = []
    for b in range(max(1, len(edges) - 1)):
        inside = which == b
        n, c = int(inside.sum()), int(correct[inside].sum())
        low, high = wilson_interval(c, n, confidence=confidence)
        rows.append(
            {
                "bin": b,
                "distance_low": float(edges[b]),
                "distance_high": float(edges[min(b + 1, len(edges) - 1)]),
                "n_images": n,
                "n_correct": c,
                "accuracy": c / n if n else math.nan,
                "accuracy_low": low,
                "accuracy_high": high,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _bin_index(distance: np.ndarray, table: pd.DataFrame) -> np.ndarray:
    edges = np.append(table["distance_low"].to_numpy(), table["distance_high"].to_numpy()[-1:])
    return np.clip(np.searchsorted(edges, distance, side="left") - 1, 0, max(0, len(table) - 1))


def _error_distance_test(distance: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """``(auc, p)``: how often a misclassified image lies further from training than a correct
    one (ties half), and the one-sided Mann–Whitney p-value; NaN without both kinds."""
    from scipy.stats import mannwhitneyu

    wrong, right = distance[~correct], distance[correct]
    if len(wrong) == 0 or len(right) == 0:
        return math.nan, math.nan
    test = mannwhitneyu(wrong, right, alternative="greater")
    return float(test.statistic) / (len(wrong) * len(right)), float(test.pvalue)
