"""Suspicious labels: each evaluated image's distance to training and its ``k`` nearest
training images' labels, one row per image with features. A misclassified image is flagged
when it was predicted with confidence at least :data:`HIGH_CONFIDENCE`, more than half of its
neighbours carry the predicted class, and it lies no further from training than the
:data:`IN_DISTRIBUTION_QUANTILE` quantile of the training images' own (leave-one-out)
distances: the model and the training data agree, only the file's label does not (a possible
label or file error, not a domain shift).

Layer: part of :mod:`asl_eval.audit.embeddings`; imports numpy, pandas and the package's
:mod:`~asl_eval.audit.embeddings.tables` and :mod:`~asl_eval.audit.embeddings.distance`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from asl_eval.audit.embeddings.distance import knn_distance
from asl_eval.audit.embeddings.tables import EmbeddedSet, FeatureTable

__all__ = ["HIGH_CONFIDENCE", "IN_DISTRIBUTION_QUANTILE"]

HIGH_CONFIDENCE = 0.9
"""Confidence from which a misclassified image can be a suspicious label."""

IN_DISTRIBUTION_QUANTILE = 0.95
"""A suspicious label must lie no further from training than this quantile of the training
images' own leave-one-out distances."""


def _set_rows(
    embedded: EmbeddedSet,
    reference: FeatureTable,
    k: int,
    high_confidence: float,
    distance_bound: float,
) -> pd.DataFrame:
    """One row per evaluated image that has features."""
    predictions, usable = embedded.predictions, embedded.usable
    distance, index = knn_distance(embedded.features[usable], reference.features, k=k)
    labels = np.asarray(reference.labels, dtype=object)[index]
    y_true = predictions.labels_true[usable]
    y_pred = predictions.labels_pred[usable]
    agree_pred = (labels == y_pred[:, None]).mean(axis=1)
    agree_true = (labels == y_true[:, None]).mean(axis=1)
    confidence = predictions.confidence[usable]
    correct = y_true == y_pred
    suspicious = (
        ~correct
        & (confidence >= high_confidence)
        & (agree_pred > 0.5)
        & (distance <= distance_bound)
    )
    paths = np.asarray(predictions.paths, dtype=object)[usable]
    relpaths = np.asarray(predictions.relpaths or predictions.paths, dtype=object)[usable]
    return pd.DataFrame(
        {
            "set": predictions.name,
            "path": paths.astype(str),
            "relpath": relpaths.astype(str),
            "y_true": y_true.astype(str),
            "y_pred": y_pred.astype(str),
            "confidence": confidence,
            "correct": correct,
            "knn_distance": distance,
            "nearest_train": [reference.paths[i] for i in index[:, 0]],
            "neighbour_labels": [" ".join(map(str, row)) for row in labels],
            "neighbours_agree_pred": agree_pred,
            "neighbours_agree_true": agree_true,
            "suspicious": suspicious,
        }
    )
