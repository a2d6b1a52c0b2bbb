"""The embedding analysis's inputs: the training sample's features (:class:`FeatureTable`) and
an evaluated set's predictions with the features of its images (:class:`EmbeddedSet`), each
checked when built (one finite row per training image; one row per evaluated image, NaN where
the features could not be computed and a ledger entry saying why).

Layer: part of :mod:`asl_eval.audit.embeddings`; imports numpy, :mod:`asl_eval.errors` and
:mod:`asl_eval.predictions` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asl_eval.errors import MetricError
from asl_eval.predictions import LedgerEntry, Predictions

__all__ = ["EmbeddedSet", "FeatureTable"]


@dataclass(frozen=True)
class FeatureTable:
    """Features of labelled images that are not evaluated (the training sample).

    Attributes
    ----------
    name
        The table's name (``"train"``).
    paths
        One path per row of ``features``.
    labels
        Each image's class.
    features
        Shape ``(n, d)``, finite.
    entries
        Files set aside (unreadable), with their reasons.
    """

    name: str
    paths: tuple[str, ...]
    labels: tuple[str, ...]
    features: np.ndarray
    entries: tuple[LedgerEntry, ...] = field(default=())

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float64)
        n = len(self.paths)
        if features.ndim != 2 or len(features) != n or len(self.labels) != n:
            raise MetricError(
                f"feature table {self.name!r}: {len(self.paths)} paths, {len(self.labels)} "
                f"labels and features of shape {features.shape}; one row per path needed."
            )
        if not np.isfinite(features).all():
            raise MetricError(f"feature table {self.name!r} holds non-finite features.")
        object.__setattr__(self, "features", features)

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class EmbeddedSet:
    """An evaluated set's predictions and the features of its images.

    ``features`` has one row per evaluated image (``predictions.paths``); the row of an image
    whose features could not be computed is NaN, and ``entries`` says why.
    """

    predictions: Predictions
    features: np.ndarray
    entries: tuple[LedgerEntry, ...] = field(default=())

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float64)
        if features.ndim != 2 or len(features) != self.predictions.n_images:
            raise MetricError(
                f"set {self.predictions.name!r}: {self.predictions.n_images} images but "
                f"features of shape {features.shape}; one row per evaluated image needed."
            )
        missing = int((~np.isfinite(features).all(axis=1)).sum())
        if missing != len(self.entries):
            raise MetricError(
                f"set {self.predictions.name!r}: {missing} images lack features but "
                f"{len(self.entries)} are recorded as excluded; give a reason for each."
            )
        object.__setattr__(self, "features", features)

    @property
    def name(self) -> str:
        return self.predictions.name

    @property
    def usable(self) -> np.ndarray:
        """Which rows have features."""
        return np.asarray(np.isfinite(self.features).all(axis=1))
