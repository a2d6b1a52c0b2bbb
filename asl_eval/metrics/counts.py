"""Statistics computed once from encoded data, and the reductions shared by several metrics.

The third step of every metric (torchmetrics' shape): from an
:class:`~asl_eval.metrics.validation.Encoded` set compute the confusion counts (or the top-label
confidence) once; the reducers here and in the metric modules turn those counts into numbers.
The count reducers accept leading batch axes, so the bootstrap evaluates a thousand resamples
in one call with the very same arithmetic as a single table.

Also the two helpers every reducer shares: division that gives NaN (not 0, not a warning from
numpy) where the denominator is 0, and the RuntimeWarning that names the classes concerned.

May import: numpy, pandas, :mod:`asl_eval.errors`, :mod:`.validation`. Never torch or fastai.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from asl_eval.errors import first_few
from asl_eval.metrics.validation import Encoded

__all__ = [
    "accuracy_from_counts",
    "balanced_accuracy_from_counts",
    "class_index",
    "confusion_counts",
    "f1_from_counts",
    "macro_f1_from_counts",
    "mean_of_defined",
    "precision_from_counts",
    "recall_from_counts",
    "safe_divide",
    "top_label",
    "warn_no_images",
    "warn_runtime",
    "warn_undefined",
]


def confusion_counts(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``counts[..., i, j]`` = images of class ``i`` predicted as ``j``.

    ``true`` and ``pred`` are class indices of shape ``(..., n_images)``; leading axes (a batch
    of bootstrap resamples) become leading axes of the result.

    >>> confusion_counts(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    true = np.asarray(true, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    batch_shape = true.shape[:-1]
    n_batches = math.prod(batch_shape)
    cells = n_classes * n_classes
    offsets = (np.arange(n_batches, dtype=np.int64) * cells).reshape((*batch_shape, 1))
    flat = np.bincount((offsets + true * n_classes + pred).ravel(), minlength=n_batches * cells)
    return flat.reshape((*batch_shape, n_classes, n_classes)).astype(np.int64)


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with NaN where the denominator is 0 (no numpy warning)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def mean_of_defined(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the non-NaN values; NaN where none is defined."""
    defined = ~np.isnan(values)
    return safe_divide(np.where(defined, values, 0.0).sum(axis=-1), defined.sum(axis=-1))


def accuracy_from_counts(counts: np.ndarray) -> np.ndarray:
    """Share of the images on the diagonal."""
    return safe_divide(np.trace(counts, axis1=-2, axis2=-1), counts.sum(axis=(-2, -1)))


def recall_from_counts(counts: np.ndarray) -> np.ndarray:
    """Per class: right / images of the class (NaN for a class without images)."""
    return safe_divide(np.diagonal(counts, axis1=-2, axis2=-1), counts.sum(axis=-1))


def precision_from_counts(counts: np.ndarray) -> np.ndarray:
    """Per class: right / images predicted as the class (NaN for a class never predicted)."""
    return safe_divide(np.diagonal(counts, axis1=-2, axis2=-1), counts.sum(axis=-2))


def f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """Per class ``2 tp / (2 tp + fp + fn)`` (NaN for a class neither present nor predicted)."""
    tp = np.diagonal(counts, axis1=-2, axis2=-1)
    return safe_divide(2 * tp, counts.sum(axis=-2) + counts.sum(axis=-1))


def balanced_accuracy_from_counts(counts: np.ndarray) -> np.ndarray:
    """Mean recall over the classes with images."""
    return mean_of_defined(recall_from_counts(counts))


def macro_f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """Mean F1 over the classes present or predicted."""
    return mean_of_defined(f1_from_counts(counts))


def top_label(encoded: Encoded) -> tuple[np.ndarray, np.ndarray]:
    """Top-label confidence of each image and whether that label is right."""
    if encoded.proba is None or encoded.n_images == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return encoded.proba.max(axis=1), encoded.pred == encoded.true


def class_index(classes: Sequence[Hashable], name: str = "class") -> pd.Index:
    """The classes as a named object index, the index of every per-class table."""
    return pd.Index(list(classes), dtype=object, name=name)


def _stack_level_outside_package() -> int:
    """``stacklevel`` of the first caller outside ``asl_eval.metrics`` (pandas'
    ``find_stack_level`` does the same), so a warning points at the user's line whether it is
    raised by a public function or by a reducer inside ``evaluate``."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("asl_eval.metrics"):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def warn_runtime(message: str) -> None:
    """Raise a RuntimeWarning about an undefined value, pointing at the caller's line."""
    warnings.warn(message, RuntimeWarning, stacklevel=_stack_level_outside_package())


def warn_undefined(what: str, names: Sequence[Hashable], why: str) -> None:
    """Warn that ``what`` is NaN for the classes ``names`` (nothing when there are none)."""
    if len(names):
        warn_runtime(
            f"{what} is undefined (NaN) for {len(names)} class(es) {why}: {first_few(list(names))}"
        )


def warn_no_images(what: str) -> None:
    """Warn that ``what`` is NaN because there are no images."""
    warn_runtime(f"{what} is undefined (NaN) for zero images")
