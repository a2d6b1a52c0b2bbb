"""Near-duplicate confirmation by features: the leakage audit's candidate pairs
(:func:`candidate_pairs`: a query image flagged ``near_duplicate`` and its nearest training
image) are confirmed when their features' cosine similarity (:func:`cosine_similarity_rows`)
reaches the :data:`CONFIRM_QUANTILE` quantile of the similarities between different training
images of the training image's class (:func:`same_class_similarity`), and at least
:data:`CONFIRM_SIMILARITY`: calibrated per class like the hash thresholds.

Layer: part of :mod:`asl_eval.audit.embeddings`; imports numpy, pandas,
:mod:`asl_eval.analysis`, :mod:`asl_eval.errors` and the package's
:mod:`~asl_eval.audit.embeddings.tables`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.audit.embeddings.tables import FeatureTable
from asl_eval.errors import MetricError

__all__ = [
    "CONFIRM_QUANTILE",
    "CONFIRM_SIMILARITY",
    "PairFeatures",
    "candidate_pairs",
    "cosine_similarity_rows",
    "same_class_similarity",
]

CONFIRM_SIMILARITY = 0.95
"""The lowest cosine similarity of the features at which a candidate near-duplicate pair is
confirmed (the floor of the calibrated threshold, :data:`CONFIRM_QUANTILE`)."""

CONFIRM_QUANTILE = 0.99
"""A candidate pair is confirmed when its similarity reaches this quantile of the similarities
between different training images of its class (at least :data:`CONFIRM_SIMILARITY`):
calibrated per class like the hash thresholds, because a model that gathers a class into a
tight cluster makes every same-class pair look alike."""

MAX_SIMILARITY_ROWS = 1000
"""Images per class whose pairwise similarities calibrate the near-duplicate threshold at most
(a seeded sample beyond that)."""


@dataclass(frozen=True)
class PairFeatures:
    """The leakage audit's candidate pairs (:func:`candidate_pairs`) with both images'
    features (rows NaN where a file could not be read)."""

    table: pd.DataFrame
    query: np.ndarray
    train: np.ndarray


def candidate_pairs(leakage: AnalysisResult, train_dir: str | Path) -> pd.DataFrame:
    """The leakage audit's flagged images and their nearest training images: ``set``,
    ``path``, ``nearest_train`` (relative to the training folder), ``train_path`` (under
    ``train_dir``), ``nearest_label``, ``phash_distance``, ``dhash_distance``,
    ``exact_duplicate``."""
    if leakage.name != "leakage":
        raise MetricError(f"expected the 'leakage' analysis; got {leakage.name!r}.")
    items = leakage.items
    flagged = items[items["near_duplicate"].astype(bool) & (items["nearest_train"] != "")]
    table = flagged[
        [
            "set",
            "path",
            "nearest_train",
            "nearest_label",
            "phash_distance",
            "dhash_distance",
            "exact_duplicate",
        ]
    ].reset_index(drop=True)
    table.insert(3, "train_path", [str(Path(train_dir) / r) for r in table["nearest_train"]])
    return table


def cosine_similarity_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b`` (NaN where either row
    is missing or all zero).

    >>> a = np.array([[1.0, 0.0], [1.0, 1.0]])
    >>> cosine_similarity_rows(a, np.array([[2.0, 0.0], [0.0, 1.0]])).round(4).tolist()
    [1.0, 0.7071]
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.einsum("ij,ij->i", a, b) / norms
    return np.where(norms > 0, similarity, np.nan)


def same_class_similarity(reference: FeatureTable, quantile: float) -> dict[str, float]:
    """Per class, the ``quantile`` of the cosine similarities between different training
    images of that class (``""``: over the pairs of every class together); classes with fewer
    than two images are left out.

    >>> rows = np.array([[1.0, 0], [1, 1], [0, 1]])
    >>> table = FeatureTable("t", ("a", "b", "c"), ("A", "A", "B"), rows)
    >>> {k: round(v, 4) for k, v in same_class_similarity(table, 0.5).items()}
    {'A': 0.7071, '': 0.7071}
    """
    labels = np.asarray(reference.labels, dtype=object)
    unit = reference.features / np.maximum(
        np.linalg.norm(reference.features, axis=1, keepdims=True), 1e-12
    )
    result: dict[str, float] = {}
    pooled = []
    for label in sorted(set(reference.labels)):
        rows = unit[labels == label]
        if len(rows) < 2:
            continue
        if len(rows) > MAX_SIMILARITY_ROWS:
            # bounded memory with --embedding-samples in the thousands: the quantile of the
            # pairs among a seeded sample of the class's images (about 500,000 pairs)
            keep = np.random.default_rng(0).choice(len(rows), MAX_SIMILARITY_ROWS, replace=False)
            rows = rows[np.sort(keep)]
        values = (rows @ rows.T)[np.triu_indices(len(rows), 1)]
        result[str(label)] = float(np.quantile(values, quantile))
        pooled.append(values)
    if pooled:
        result[""] = float(np.quantile(np.concatenate(pooled), quantile))
    return result


def _pairs_table(
    pairs: PairFeatures | None, floor: float, calibration: Mapping[str, float]
) -> pd.DataFrame:
    columns = ["set", "path", "nearest_train", "train_path", "nearest_label", "phash_distance"]
    columns += ["dhash_distance", "exact_duplicate", "similarity", "confirm_threshold"]
    columns += ["confirmed"]
    if pairs is None or len(pairs.table) == 0:
        return pd.DataFrame(columns=columns)
    table = pairs.table.reset_index(drop=True).copy()
    similarity = cosine_similarity_rows(pairs.query, pairs.train)
    if "nearest_label" not in table:
        table["nearest_label"] = ""
    labels = table["nearest_label"]
    pooled = calibration.get("", floor)
    table["similarity"] = similarity
    table["confirm_threshold"] = [
        max(floor, calibration.get(str(label), pooled)) for label in labels
    ]
    table["confirmed"] = np.nan_to_num(similarity, nan=-np.inf) >= table["confirm_threshold"]
    return table[columns]
