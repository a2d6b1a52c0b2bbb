"""Accuracy, per-class accuracy, precision/recall/F1 and top-k accuracy.

Each public function is a thin wrapper in torchmetrics' shape: validate the options, encode the
data (:mod:`.validation`), count once (:mod:`.counts`), reduce. The reducers
(``*_table`` / ``*_result`` functions taking counts) are what :func:`~asl_eval.metrics.evaluate`
calls directly on the counts it computed once.

May import: numpy, pandas, :mod:`asl_eval.errors`, :mod:`asl_eval.predictions`,
:mod:`.validation`, :mod:`.counts`, :mod:`.intervals`. Never torch or fastai.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from asl_eval.metrics.counts import (
    accuracy_from_counts,
    balanced_accuracy_from_counts,
    class_index,
    confusion_counts,
    f1_from_counts,
    macro_f1_from_counts,
    precision_from_counts,
    recall_from_counts,
    warn_no_images,
    warn_undefined,
)
from asl_eval.metrics.intervals import wilson_intervals
from asl_eval.metrics.validation import (
    ArrayLike,
    Encoded,
    LabelsOrPredictions,
    ProbaLike,
    check_count,
    encode_pair,
    encode_proba,
)

__all__ = [
    "AccuracyResult",
    "accuracy_score",
    "accuracy_with_interval",
    "balanced_accuracy_score",
    "classification_table",
    "error_rate",
    "macro_f1_score",
    "per_class_accuracy",
    "top_k_accuracy",
]


def _counts(encoded: Encoded) -> np.ndarray:
    return confusion_counts(encoded.true, encoded.pred, encoded.n_classes)


# ------------------------------------------------------------------------------------------
# Accuracy
# ------------------------------------------------------------------------------------------
def accuracy_score(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> float:
    """Fraction of images whose predicted class is the true class (higher is better).

    Parameters
    ----------
    y_true, y_pred
        True and predicted labels, or a :class:`~asl_eval.predictions.Predictions` alone.
    classes
        The model's classes; labels outside them raise :class:`~asl_eval.errors.LabelError`.

    Returns
    -------
    float
        Accuracy in [0, 1]; NaN with a warning when there are no images.

    Examples
    --------
    >>> accuracy_score(["A", "B", "B", "C"], ["A", "B", "C", "C"])
    0.75
    """
    counts = _counts(encode_pair(y_true, y_pred, classes))
    if counts.sum() == 0:
        warn_no_images("accuracy")
    return float(accuracy_from_counts(counts))


def error_rate(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> float:
    """Fraction of images predicted wrongly, ``1 - accuracy`` (lower is better).

    Examples
    --------
    >>> error_rate(["A", "B", "B", "C"], ["A", "B", "C", "C"])
    0.25
    """
    return 1.0 - accuracy_score(y_true, y_pred, classes=classes)


@dataclass(frozen=True)
class AccuracyResult:
    """Overall accuracy with its counts and Wilson interval."""

    accuracy: float
    correct: int
    n: int
    ci_low: float
    ci_high: float
    confidence: float = 0.95

    @property
    def error_rate(self) -> float:
        return 1.0 - self.accuracy


def accuracy_result(counts: np.ndarray, *, confidence: float) -> AccuracyResult:
    """Reduce confusion counts to an :class:`AccuracyResult` (warns for zero images)."""
    n = int(counts.sum())
    correct = int(np.trace(counts))
    (low,), (high,) = wilson_intervals([correct], [n], confidence=confidence)
    if n == 0:
        warn_no_images("accuracy")
    accuracy = correct / n if n else math.nan
    return AccuracyResult(accuracy, correct, n, float(low), float(high), confidence)


def accuracy_with_interval(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
) -> AccuracyResult:
    """Overall accuracy, its counts and its Wilson interval.

    Examples
    --------
    >>> result = accuracy_with_interval(["A"] * 10, ["A"] * 7 + ["B"] * 3, classes=["A", "B"])
    >>> result.accuracy, result.correct, result.n, round(result.ci_low, 3)
    (0.7, 7, 10, 0.397)
    """
    counts = _counts(encode_pair(y_true, y_pred, classes))
    return accuracy_result(counts, confidence=confidence)


def per_class_table(
    counts: np.ndarray, classes: Sequence[Hashable], *, confidence: float
) -> pd.DataFrame:
    """Reduce confusion counts to the :func:`per_class_accuracy` table."""
    support = counts.sum(axis=1)
    correct = np.diagonal(counts).copy()
    low, high = wilson_intervals(correct, support, confidence=confidence)
    warn_undefined(
        "accuracy",
        [c for c, s in zip(classes, support, strict=True) if s == 0],
        "without images",
    )
    return pd.DataFrame(
        {
            "support": support.astype(np.int64),
            "correct": correct.astype(np.int64),
            "accuracy": recall_from_counts(counts),
            "ci_low": low,
            "ci_high": high,
        },
        index=class_index(classes),
    )


def per_class_accuracy(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Accuracy of each class (its recall), with support, correct count and Wilson interval.

    This is the tutorial's ``category_corrects`` tally in one call.

    Returns
    -------
    DataFrame
        Indexed by class in ``classes`` order; columns ``support``, ``correct``, ``accuracy``,
        ``ci_low``, ``ci_high``. Classes without images keep their row with NaN accuracy and a
        warning.

    Examples
    --------
    >>> per_class_accuracy(["A", "A", "B", "B"], ["A", "B", "B", "B"], classes=["A", "B"])
           support  correct  accuracy    ci_low   ci_high
    class
    A            2        1       0.5  0.094531  0.905469
    B            2        2       1.0  0.342380  1.000000
    """
    encoded = encode_pair(y_true, y_pred, classes)
    return per_class_table(_counts(encoded), encoded.classes, confidence=confidence)


# ------------------------------------------------------------------------------------------
# Precision, recall, F1
# ------------------------------------------------------------------------------------------
def _weighted_mean(values: np.ndarray, support: np.ndarray) -> float:
    defined = ~np.isnan(values)
    weights = support[defined]
    if weights.sum() == 0:
        return math.nan
    return float(np.average(values[defined], weights=weights))


def _macro_mean(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan


def classification_from_counts(counts: np.ndarray, classes: Sequence[Hashable]) -> pd.DataFrame:
    """Reduce confusion counts to the :func:`classification_table`."""
    predicted, support = counts.sum(axis=0), counts.sum(axis=1)
    precision = precision_from_counts(counts)
    recall = recall_from_counts(counts)
    f1 = f1_from_counts(counts)
    warn_undefined(
        "precision",
        [c for c, n in zip(classes, predicted, strict=True) if n == 0],
        "never predicted",
    )
    warn_undefined(
        "recall", [c for c, n in zip(classes, support, strict=True) if n == 0], "without images"
    )
    table = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=class_index(classes),
    )
    averages = pd.DataFrame(
        {
            name: [_macro_mean(values), _weighted_mean(values, support)]
            for name, values in (("precision", precision), ("recall", recall), ("f1", f1))
        }
        | {"support": [int(support.sum())] * 2},
        index=class_index(["macro avg", "weighted avg"]),
    )
    return pd.concat([table, averages])


def classification_table(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, plus macro and weighted averages.

    Precision is NaN (with a warning) for a class never predicted, recall for a class without
    images, and F1 for a class neither present nor predicted; F1 is ``2 tp / (2 tp + fp + fn)``.
    The ``macro avg`` row is the unweighted mean over classes where the value is defined; the
    ``weighted avg`` row weights by support. This equals scikit-learn's
    ``precision_recall_fscore_support(labels=classes, zero_division=np.nan)``.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     table = classification_table(["A", "A", "B", "C"], ["A", "B", "B", "A"],
    ...                                  classes=["A", "B", "C"])
    >>> table
                  precision  recall        f1  support
    class
    A                   0.5     0.5  0.500000        2
    B                   0.5     1.0  0.666667        1
    C                   NaN     0.0  0.000000        1
    macro avg           0.5     0.5  0.388889        4
    weighted avg        0.5     0.5  0.416667        4
    >>> [str(w.message) for w in caught]
    ['precision is undefined (NaN) for 1 class(es) never predicted: C']
    """
    encoded = encode_pair(y_true, y_pred, classes)
    return classification_from_counts(_counts(encoded), encoded.classes)


def balanced_accuracy_score(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> float:
    """Mean of per-class accuracies (macro recall) over classes with images (higher is better).

    Examples
    --------
    >>> balanced_accuracy_score(["A", "A", "A", "B"], ["A", "A", "A", "A"])
    0.5
    """
    return float(balanced_accuracy_from_counts(_counts(encode_pair(y_true, y_pred, classes))))


def macro_f1_score(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> float:
    """Unweighted mean F1 over classes present or predicted (higher is better).

    Examples
    --------
    >>> round(macro_f1_score(["A", "A", "B", "C"], ["A", "B", "B", "A"], classes=list("ABC")), 4)
    0.3889
    """
    return float(macro_f1_from_counts(_counts(encode_pair(y_true, y_pred, classes))))


# ------------------------------------------------------------------------------------------
# Top-k
# ------------------------------------------------------------------------------------------
def top_k_from_proba(encoded: Encoded, k: int) -> float:
    """Reduce encoded probabilities to the top-``k`` accuracy (warns for zero images)."""
    n = encoded.n_images
    if n == 0 or encoded.proba is None:
        warn_no_images("top-k accuracy")
        return math.nan
    proba, true = encoded.proba, encoded.true
    p_true = proba[np.arange(n), true][:, None]
    columns = np.arange(proba.shape[1])[None, :]
    rank = np.sum((proba > p_true) | ((proba == p_true) & (columns < true[:, None])), axis=1)
    return float(np.mean(rank < k))


def top_k_accuracy(
    y_true: LabelsOrPredictions,
    y_proba: ProbaLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
    k: int = 5,
) -> float:
    """Fraction of images whose true class is among the ``k`` most probable (higher is better).

    Ties are broken in favour of the lower class index, as ``argmax`` does, so ``k=1`` equals
    :func:`accuracy_score` of the argmax predictions. ``k >= n_classes`` gives 1.

    Examples
    --------
    >>> proba = [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]
    >>> top_k_accuracy([0, 2, 1], proba, k=1), top_k_accuracy([0, 2, 1], proba, k=2)
    (0.3333333333333333, 0.6666666666666666)
    """
    k = check_count("k", k)
    return top_k_from_proba(encode_proba(y_true, y_proba, classes), k)
