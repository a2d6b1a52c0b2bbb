"""Near-duplicate matching of one query set (validation or test images) against the training
images, and thumbnails of the closest pairs for the report's gallery.

A query image is a *near-duplicate* of its nearest training image when the files are identical
(same SHA-256), or when both its pHash and its dHash distances are within the thresholds of the
training image's class (:mod:`asl_eval.audit.thresholds`).

Imports numpy, pandas, Pillow and the audit's hash, neighbour and threshold modules.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from asl_eval.audit.hashes import HashTable
from asl_eval.audit.neighbours import exact_matches, nearest_neighbours
from asl_eval.audit.thresholds import Calibration
from asl_eval.errors import UnreadableImage
from asl_eval.inputs import load_rgb

__all__ = ["MATCH_COLUMNS", "match_near_duplicates", "thumbnail_png"]

MATCH_COLUMNS = (
    "set",
    "path",
    "relpath",
    "sha256",
    "label",
    "nearest_train",
    "nearest_label",
    "phash_distance",
    "dhash_distance",
    "phash_threshold",
    "dhash_threshold",
    "exact_duplicate",
    "near_duplicate",
)
"""The columns of :func:`match_near_duplicates`' table (``nearest_train`` is the training
image's path relative to the training folder)."""


def match_near_duplicates(
    query: HashTable, train: HashTable, calibration: Calibration
) -> tuple[pd.DataFrame, np.ndarray]:
    """Each query image's nearest training image, its distances and the verdict.

    Parameters
    ----------
    query
        The validation or test images.
    train
        The training images (the reference).
    calibration
        The thresholds (:func:`asl_eval.audit.thresholds.calibrate_thresholds`).

    Returns
    -------
    (table, train_index)
        One row per query image with :data:`MATCH_COLUMNS`, and the index of each row's
        nearest training image in ``train`` (-1 when the training set is empty). An exact copy
        is always the nearest image.
    """
    found = nearest_neighbours(query.phash, query.dhash, train.phash, train.dhash)
    exact = exact_matches(query.sha256, train.sha256)
    index = np.where(exact >= 0, exact, found.index)
    rows = np.arange(len(query))
    phash_distance = found.phash_distance.astype(np.int64)
    dhash_distance = found.dhash_distance.astype(np.int64)
    phash_distance[exact >= 0] = 0
    dhash_distance[exact >= 0] = 0
    nearest_label = [train.labels[i] if i >= 0 else "" for i in index.tolist()]
    phash_threshold, dhash_threshold = calibration.thresholds_for(nearest_label)
    near = (index >= 0) & (phash_distance <= phash_threshold) & (dhash_distance <= dhash_threshold)
    table = pd.DataFrame(
        {
            "set": [query.name] * len(query),
            "path": list(query.paths),
            "relpath": list(query.relpaths),
            "sha256": list(query.sha256),
            "label": list(query.labels),
            "nearest_train": [train.relpaths[i] if i >= 0 else "" for i in index.tolist()],
            "nearest_label": nearest_label,
            "phash_distance": phash_distance,
            "dhash_distance": dhash_distance,
            "phash_threshold": phash_threshold,
            "dhash_threshold": dhash_threshold,
            "exact_duplicate": exact >= 0,
            "near_duplicate": near | (exact >= 0),
        },
        index=rows,
    )
    return table, index


def thumbnail_png(path: str, *, size: int = 96) -> bytes | None:
    """A PNG thumbnail (at most ``size`` pixels a side) of an image; None when it no longer
    decodes."""
    try:
        image = load_rgb(path)
    except UnreadableImage:
        return None
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
