"""Metrics for one or two evaluation sets: the source of every number in the report.

Pure functions over numpy arrays and pandas tables; scipy is imported only inside the few
functions that need it, so ``from asl_eval.metrics import per_class_accuracy`` is quick.

Conventions (scikit-learn's, with stricter bookkeeping):

- Data arguments are positional: ``y_true`` and ``y_pred`` are arrays of class labels (strings or
  any hashables) or integer indices into ``classes``; ``y_proba`` has one column per class, in
  ``classes`` order. Options are keyword-only.
- ``classes`` fixes the order of every table and keeps classes without images in it. When it is
  not given it is the sorted union of the labels seen (or ``0..n_columns-1`` for ``y_proba``).
  A label outside ``classes`` raises :class:`~asl_eval.errors.LabelError`; nothing is dropped.
- Every function also takes a :class:`~asl_eval.predictions.Predictions` as its first argument
  instead of arrays; the classes then come from it.
- An undefined value (the accuracy of a class with no images, the precision of a class never
  predicted) is NaN with a warning, never 0, and the class stays in the table.
- ``*_accuracy`` / ``*_score`` are higher-is-better, ``*_error`` / ``*_loss`` lower-is-better;
  :func:`brier_score` keeps its traditional name and is lower-is-better.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd

from asl_eval.errors import LabelError, ReportError, first_few
from asl_eval.predictions import PROBABILITY_FLOOR, Predictions

__all__ = [
    "AccuracyResult",
    "DomainGapSummary",
    "Evaluation",
    "McNemarResult",
    "accuracy_score",
    "accuracy_with_interval",
    "balanced_accuracy_score",
    "bootstrap_interval",
    "brier_score",
    "classification_table",
    "confidence_distribution",
    "confidence_histogram",
    "confusion_matrix",
    "domain_comparison",
    "domain_gap_summary",
    "error_rate",
    "evaluate",
    "expected_calibration_error",
    "holm_adjust",
    "log_loss",
    "macro_f1_score",
    "mcnemar_test",
    "most_confused",
    "paired_class_differences",
    "per_class_accuracy",
    "reliability_ece",
    "reliability_table",
    "top_k_accuracy",
    "top_losses",
    "wilson_interval",
    "wilson_intervals",
]

ArrayLike = Sequence[Hashable] | np.ndarray | pd.Series | pd.Index
LabelsOrPredictions = ArrayLike | Predictions
Normalize = Literal["true", "pred", "all"]

#: Probabilities are clipped to ``[EPS, 1]`` before taking logs (scikit-learn's choice).
EPS = PROBABILITY_FLOOR


# ------------------------------------------------------------------------------------------
# Validation: labels to class indices
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Encoded:
    """Labels resolved to indices into ``classes``."""

    true: np.ndarray
    pred: np.ndarray
    classes: tuple[Hashable, ...]


def _check_classes(classes: Sequence[Hashable]) -> tuple[Hashable, ...]:
    resolved = tuple(classes)
    if not resolved:
        raise LabelError("classes is empty: pass the model's classes, for example learn.dls.vocab.")
    seen: set[Hashable] = set()
    repeated = [c for c in resolved if c in seen or seen.add(c)]  # type: ignore[func-returns-value]
    if repeated:
        raise LabelError(
            f"classes must be unique; {len(repeated)} repeated: {first_few(repeated)}. "
            "Pass each class once, in the model's order."
        )
    return resolved


def _as_1d(values: ArrayLike, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ReportError(
            f"{what} must be one-dimensional (one label per image); got shape {array.shape}."
        )
    return array


def _infer_classes(*arrays: np.ndarray) -> tuple[Hashable, ...]:
    values = pd.unique(np.concatenate([a.astype(object) for a in arrays]))
    try:
        return tuple(sorted(values.tolist()))
    except TypeError as error:
        raise LabelError(
            f"cannot sort the labels {first_few(list(values))} to infer the class order; "
            "pass classes=... explicitly."
        ) from error


def _encode(values: np.ndarray, classes: tuple[Hashable, ...], what: str) -> np.ndarray:
    """Map labels (or integer indices) to indices into ``classes``."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    codes = pd.Index(list(classes), dtype=object).get_indexer(pd.Index(values, dtype=object))
    missing = codes < 0
    if not missing.any():
        return np.asarray(codes, dtype=np.int64)
    classes_hold_ints = any(
        isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes
    )
    if values.dtype.kind in "iu" and not classes_hold_ints:
        out_of_range = values[(values < 0) | (values >= len(classes))]
        if out_of_range.size:
            raise LabelError(
                f"{what} holds {out_of_range.size} class indices outside 0..{len(classes) - 1}: "
                f"{first_few(out_of_range.tolist())}. Pass labels or indices into classes."
            )
        return values.astype(np.int64)
    unknown = pd.unique(values[missing].astype(object)).tolist()
    raise LabelError(
        f"{int(missing.sum())} of {values.size} {what} labels are not among the "
        f"{len(classes)} classes: {first_few(unknown)}. Add them to classes or remove those images."
    )


def _encode_pair(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None,
    classes: Sequence[Hashable] | None,
) -> _Encoded:
    if isinstance(y_true, Predictions):
        if y_pred is not None:
            raise ReportError(
                "got a Predictions and y_pred; pass either a Predictions alone or two arrays."
            )
        _check_same_classes(y_true, classes)
        return _Encoded(y_true.y_true, y_true.y_pred, tuple(y_true.classes))
    if y_pred is None:
        raise ReportError("y_pred is missing: pass y_true and y_pred, or a Predictions.")
    true = _as_1d(y_true, "y_true")
    pred = _as_1d(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ReportError(
            f"y_true and y_pred must have one entry per image; got {true.size} and {pred.size}."
        )
    resolved = _check_classes(classes) if classes is not None else _infer_classes(true, pred)
    return _Encoded(_encode(true, resolved, "y_true"), _encode(pred, resolved, "y_pred"), resolved)


@dataclass(frozen=True)
class _Probabilities:
    true: np.ndarray
    proba: np.ndarray
    classes: tuple[Hashable, ...]


def _encode_proba(
    y_true: LabelsOrPredictions,
    y_proba: np.ndarray | Sequence[Sequence[float]] | None,
    classes: Sequence[Hashable] | None,
) -> _Probabilities:
    if isinstance(y_true, Predictions):
        if y_proba is not None:
            raise ReportError(
                "got a Predictions and y_proba; pass either a Predictions alone or two arrays."
            )
        _check_same_classes(y_true, classes)
        return _Probabilities(y_true.y_true, y_true.y_proba, tuple(y_true.classes))
    if y_proba is None:
        raise ReportError("y_proba is missing: pass y_true and y_proba, or a Predictions.")
    true = _as_1d(y_true, "y_true")
    proba = np.asarray(y_proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != true.size:
        raise ReportError(
            f"y_proba must have shape (n_images, n_classes) with n_images = {true.size}; "
            f"got {proba.shape}."
        )
    resolved = _check_classes(classes) if classes is not None else tuple(range(proba.shape[1]))
    if proba.shape[1] != len(resolved):
        raise ReportError(
            f"y_proba has {proba.shape[1]} columns but there are {len(resolved)} classes; "
            "pass one column per class, in classes order."
        )
    if true.size:
        bad_rows = np.flatnonzero(
            ~np.isfinite(proba).all(axis=1)
            | (proba < 0).any(axis=1)
            | (proba > 1).any(axis=1)
            | ~np.isclose(proba.sum(axis=1), 1.0, atol=1e-3)
        )
        if bad_rows.size:
            raise ReportError(
                f"{bad_rows.size} of {true.size} rows of y_proba are not probabilities "
                f"(rows {first_few(bad_rows.tolist())}): each row must lie in [0, 1] and sum "
                "to one. Apply softmax to logits first."
            )
    return _Probabilities(_encode(true, resolved, "y_true"), proba, resolved)


def _check_same_classes(predictions: Predictions, classes: Sequence[Hashable] | None) -> None:
    if classes is not None and tuple(classes) != tuple(predictions.classes):
        raise ReportError(
            f"classes {first_few(list(classes))} differ from the Predictions' classes "
            f"{first_few(list(predictions.classes))}; leave classes out when passing a Predictions."
        )


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1; got {confidence}.")


def _warn_undefined(what: str, names: Sequence[Hashable], why: str) -> None:
    if len(names):
        warnings.warn(
            f"{what} is undefined (NaN) for {len(names)} class(es) {why}: {first_few(list(names))}",
            RuntimeWarning,
            stacklevel=3,
        )


def _class_index(classes: tuple[Hashable, ...]) -> pd.Index:
    return pd.Index(list(classes), dtype=object, name="class")


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


# ------------------------------------------------------------------------------------------
# Accuracy and intervals
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
    encoded = _encode_pair(y_true, y_pred, classes)
    if encoded.true.size == 0:
        warnings.warn("accuracy is undefined (NaN) for zero images", RuntimeWarning, stacklevel=2)
        return math.nan
    return float(np.mean(encoded.true == encoded.pred))


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


def wilson_intervals(
    successes: ArrayLike | int,
    n: ArrayLike | int,
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score intervals for many proportions at once.

    The Wilson interval stays inside [0, 1] and keeps its coverage near 0 and 1 and for small
    ``n``, where the normal approximation fails; it is statsmodels'
    ``proportion_confint(method="wilson")``.

    Parameters
    ----------
    successes, n
        Counts of successes and trials (broadcast together); ``0 <= successes <= n``.
    confidence
        Coverage of the interval, strictly between 0 and 1.

    Returns
    -------
    (low, high)
        Arrays of bounds; NaN where ``n == 0``.

    Examples
    --------
    With 30 images per class an accuracy of 0.5 is only known to about ±0.17:

    >>> low, high = wilson_intervals([15, 30], [30, 30])
    >>> low.round(3).tolist(), high.round(3).tolist()
    ([0.332, 0.886], [0.668, 1.0])
    """
    _check_confidence(confidence)
    k = np.asarray(successes, dtype=np.float64)
    total = np.asarray(n, dtype=np.float64)
    k, total = np.broadcast_arrays(k, total)
    if np.any(total < 0) or np.any(k < 0) or np.any(k > total) or not np.all(np.isfinite(k)):
        raise ValueError(
            "wilson_intervals needs 0 <= successes <= n with finite counts; "
            f"got successes={k.tolist()}, n={total.tolist()}."
        )
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    z2 = z * z
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / total
        denominator = 1.0 + z2 / total
        centre = (p + z2 / (2 * total)) / denominator
        half = z / denominator * np.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    low = np.where(total == 0, np.nan, low)
    high = np.where(total == 0, np.nan, high)
    # Make the bounds exact at the edges instead of off by rounding.
    low = np.where((k == 0) & (total > 0), 0.0, low)
    high = np.where((k == total) & (total > 0), 1.0, high)
    return low, high


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for one proportion ``successes / n``.

    Returns ``(nan, nan)`` when ``n == 0``. See :func:`wilson_intervals`.

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(539, 870)]
    [0.5868, 0.6512]
    """
    low, high = wilson_intervals(successes, n, confidence=confidence)
    return float(low), float(high)


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
    encoded = _encode_pair(y_true, y_pred, classes)
    n = int(encoded.true.size)
    correct = int(np.sum(encoded.true == encoded.pred))
    low, high = wilson_interval(correct, n, confidence=confidence)
    if n == 0:
        warnings.warn("accuracy is undefined (NaN) for zero images", RuntimeWarning, stacklevel=2)
    return AccuracyResult(correct / n if n else math.nan, correct, n, low, high, confidence)


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
    encoded = _encode_pair(y_true, y_pred, classes)
    k = len(encoded.classes)
    support = np.bincount(encoded.true, minlength=k)
    correct = np.bincount(encoded.true[encoded.true == encoded.pred], minlength=k)
    low, high = wilson_intervals(correct, support, confidence=confidence)
    _warn_undefined(
        "accuracy",
        [c for c, s in zip(encoded.classes, support, strict=True) if s == 0],
        "without images",
    )
    return pd.DataFrame(
        {
            "support": support.astype(np.int64),
            "correct": correct.astype(np.int64),
            "accuracy": _safe_divide(correct, support),
            "ci_low": low,
            "ci_high": high,
        },
        index=_class_index(encoded.classes),
    )


def _counts(encoded: _Encoded) -> np.ndarray:
    k = len(encoded.classes)
    flat = np.bincount(encoded.true * k + encoded.pred, minlength=k * k)
    return flat.reshape(k, k).astype(np.int64)


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
    >>> classification_table(["A", "A", "B", "C"], ["A", "B", "B", "A"], classes=["A", "B", "C"])
                  precision  recall        f1  support
    class
    A                   0.5     0.5  0.500000        2
    B                   0.5     1.0  0.666667        1
    C                   NaN     0.0  0.000000        1
    macro avg           0.5     0.5  0.388889        4
    weighted avg        0.5     0.5  0.416667        4
    """
    encoded = _encode_pair(y_true, y_pred, classes)
    counts = _counts(encoded)
    tp = np.diag(counts).astype(np.float64)
    predicted = counts.sum(axis=0)
    support = counts.sum(axis=1)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * tp, predicted + support)
    names = encoded.classes
    _warn_undefined(
        "precision", [c for c, n in zip(names, predicted, strict=True) if n == 0], "never predicted"
    )
    _warn_undefined(
        "recall", [c for c, n in zip(names, support, strict=True) if n == 0], "without images"
    )
    table = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=_class_index(names),
    )

    def weighted(values: np.ndarray) -> float:
        defined = ~np.isnan(values)
        weights = support[defined]
        if weights.sum() == 0:
            return math.nan
        return float(np.average(values[defined], weights=weights))

    def macro(values: np.ndarray) -> float:
        defined = values[~np.isnan(values)]
        return float(defined.mean()) if defined.size else math.nan

    averages = pd.DataFrame(
        {
            "precision": [macro(precision), weighted(precision)],
            "recall": [macro(recall), weighted(recall)],
            "f1": [macro(f1), weighted(f1)],
            "support": [int(support.sum())] * 2,
        },
        index=pd.Index(["macro avg", "weighted avg"], dtype=object, name="class"),
    )
    return pd.concat([table, averages])


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
    encoded = _encode_pair(y_true, y_pred, classes)
    counts = _counts(encoded)
    recall = _safe_divide(np.diag(counts), counts.sum(axis=1))
    defined = recall[~np.isnan(recall)]
    return float(defined.mean()) if defined.size else math.nan


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
    encoded = _encode_pair(y_true, y_pred, classes)
    counts = _counts(encoded)
    f1 = _safe_divide(2 * np.diag(counts), counts.sum(axis=0) + counts.sum(axis=1))
    defined = f1[~np.isnan(f1)]
    return float(defined.mean()) if defined.size else math.nan


def top_k_accuracy(
    y_true: LabelsOrPredictions,
    y_proba: np.ndarray | Sequence[Sequence[float]] | None = None,
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
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    data = _encode_proba(y_true, y_proba, classes)
    n = data.true.size
    if n == 0:
        warnings.warn(
            "top-k accuracy is undefined (NaN) for zero images", RuntimeWarning, stacklevel=2
        )
        return math.nan
    p_true = data.proba[np.arange(n), data.true][:, None]
    columns = np.arange(data.proba.shape[1])[None, :]
    rank = np.sum(
        (data.proba > p_true) | ((data.proba == p_true) & (columns < data.true[:, None])), axis=1
    )
    return float(np.mean(rank < k))


def confusion_matrix(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
    normalize: Normalize | None = None,
) -> pd.DataFrame:
    """Confusion matrix: rows are actual classes, columns predicted classes, in ``classes`` order.

    Parameters
    ----------
    normalize
        ``None`` for counts; ``"true"`` divides each row by its support (the diagonal is then
        per-class accuracy), ``"pred"`` each column by its predicted count, ``"all"`` by the
        number of images. A row or column with nothing to divide by is NaN with a warning
        (scikit-learn writes 0 there).

    Examples
    --------
    >>> confusion_matrix(["A", "A", "B"], ["A", "B", "B"], classes=["A", "B", "C"])
    predicted  A  B  C
    actual
    A          1  1  0
    B          0  1  0
    C          0  0  0
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all'; got {normalize!r}.")
    encoded = _encode_pair(y_true, y_pred, classes)
    counts = _counts(encoded)
    names = encoded.classes
    values: np.ndarray = counts
    if normalize == "true":
        support = counts.sum(axis=1, keepdims=True)
        _warn_undefined(
            "the row-normalised confusion matrix",
            [c for c, s in zip(names, support[:, 0], strict=True) if s == 0],
            "without images",
        )
        values = _safe_divide(counts, support)
    elif normalize == "pred":
        predicted = counts.sum(axis=0, keepdims=True)
        _warn_undefined(
            "the column-normalised confusion matrix",
            [c for c, s in zip(names, predicted[0], strict=True) if s == 0],
            "never predicted",
        )
        values = _safe_divide(counts, predicted)
    elif normalize == "all":
        total = counts.sum()
        if total == 0:
            warnings.warn(
                "the normalised confusion matrix is undefined (NaN) for zero images",
                RuntimeWarning,
                stacklevel=2,
            )
        values = _safe_divide(counts, np.asarray(total))
    return pd.DataFrame(
        values,
        index=pd.Index(list(names), dtype=object, name="actual"),
        columns=pd.Index(list(names), dtype=object, name="predicted"),
    )


def most_confused(
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
    min_count: int = 1,
) -> pd.DataFrame:
    """Off-diagonal cells of the confusion matrix with at least ``min_count`` images.

    Sorted by count (descending), then by actual and predicted class in ``classes`` order.

    Examples
    --------
    >>> most_confused(list("AAABBC"), list("BBCAAC"))
      actual predicted  count
    0      A         B      2
    1      B         A      2
    2      A         C      1
    """
    if isinstance(min_count, bool) or not isinstance(min_count, int | np.integer) or min_count < 1:
        raise ValueError(f"min_count must be a positive integer; got {min_count!r}.")
    encoded = _encode_pair(y_true, y_pred, classes)
    counts = _counts(encoded)
    np.fill_diagonal(counts, 0)
    actual, predicted = np.nonzero(counts >= min_count)
    found = counts[actual, predicted]
    order = np.lexsort((predicted, actual, -found))
    names = np.asarray((*encoded.classes, None), dtype=object)[:-1]
    return pd.DataFrame(
        {
            "actual": names[actual[order]],
            "predicted": names[predicted[order]],
            "count": found[order].astype(np.int64),
        }
    )


def top_losses(predictions: Predictions, k: int | None = 9) -> pd.DataFrame:
    """The ``k`` images with the highest loss (``-log p(true class)``), highest first.

    Parameters
    ----------
    predictions
        One evaluation set.
    k
        How many rows to return; ``None`` for all images.

    Returns
    -------
    DataFrame
        Columns ``path``, ``actual``, ``predicted``, ``confidence`` (probability of the predicted
        class), ``p_true`` (probability of the true class) and ``loss``.

    Examples
    --------
    >>> p = Predictions.from_labels(["A", "B"], np.array([[0.9, 0.1], [0.8, 0.2]]), ["A", "B"])
    >>> top_losses(p, k=1)[["path", "actual", "predicted", "p_true"]]
      path actual predicted  p_true
    0   #1      B         A     0.2
    """
    if not isinstance(predictions, Predictions):
        raise ReportError(
            f"top_losses needs a Predictions (it reports image paths); got "
            f"{type(predictions).__name__}."
        )
    if k is not None and (isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0):
        raise ValueError(f"k must be a non-negative integer or None; got {k!r}.")
    n = predictions.n_images
    p_true = predictions.y_proba[np.arange(n), predictions.y_true]
    loss = predictions.loss
    table = pd.DataFrame(
        {
            "path": list(predictions.paths),
            "actual": predictions.labels_true,
            "predicted": predictions.labels_pred,
            "confidence": predictions.confidence,
            "p_true": p_true,
            "loss": loss,
        }
    )
    table = table.sort_values("loss", ascending=False, kind="stable").reset_index(drop=True)
    return table if k is None else table.head(int(k))


# ------------------------------------------------------------------------------------------
# Bootstrap
# ------------------------------------------------------------------------------------------
def bootstrap_interval(
    metric_fn: Callable[..., float],
    y_true: LabelsOrPredictions,
    y_pred: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Seeded percentile bootstrap interval for any metric of ``(y_true, y_pred)``.

    Images are resampled with replacement (pairs kept together) ``n_resamples`` times;
    ``metric_fn(y_true_sample, y_pred_sample, classes=classes)`` is evaluated on each, with
    labels from ``classes``, and the interval is the central ``confidence`` share of the results.
    Use it for macro metrics (:func:`macro_f1_score`, :func:`balanced_accuracy_score`) that have
    no closed-form interval. It draws ``numpy.random.default_rng(seed).integers(0, n, (n_resamples,
    n))``, so it gives the same numbers as ``scipy.stats.bootstrap(..., method="percentile")``
    with the same generator.

    Returns
    -------
    (low, high)
        NaN when there are no images. Resamples where the metric is NaN are left out with a
        warning.

    Examples
    --------
    >>> y_true = list("AABBCC") * 5
    >>> y_pred = list("ABBBCA") * 5
    >>> low, high = bootstrap_interval(macro_f1_score, y_true, y_pred, n_resamples=200)
    >>> bool(low < macro_f1_score(y_true, y_pred) < high)
    True
    """
    _check_confidence(confidence)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer; got {n_resamples!r}.")
    encoded = _encode_pair(y_true, y_pred, classes)
    n = encoded.true.size
    if n == 0:
        warnings.warn(
            "a bootstrap interval is undefined (NaN) for zero images", RuntimeWarning, stacklevel=2
        )
        return math.nan, math.nan
    names = np.empty(len(encoded.classes), dtype=object)
    names[:] = list(encoded.classes)
    true_labels, pred_labels = names[encoded.true], names[encoded.pred]
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, n, (n_resamples, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = np.array(
            [
                metric_fn(true_labels[rows], pred_labels[rows], classes=encoded.classes)
                for rows in samples
            ],
            dtype=np.float64,
        )
    undefined = int(np.isnan(values).sum())
    if undefined == n_resamples:
        warnings.warn("the metric is NaN on every resample", RuntimeWarning, stacklevel=2)
        return math.nan, math.nan
    if undefined:
        warnings.warn(
            f"the metric is NaN on {undefined} of {n_resamples} resamples; they are left out",
            RuntimeWarning,
            stacklevel=2,
        )
    alpha = (1 - confidence) / 2
    low, high = np.nanpercentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


# ------------------------------------------------------------------------------------------
# Multiple testing and domain comparison
# ------------------------------------------------------------------------------------------
def holm_adjust(p_values: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down; controls the family-wise error rate).

    NaN entries are not part of the family and stay NaN.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03, np.nan]).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    out = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    m = defined.size
    if m == 0:
        return out
    order = defined[np.argsort(p[defined], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


def _fisher_p_values(
    table: np.ndarray, alternative: Literal["two-sided", "greater", "less"]
) -> np.ndarray:
    from scipy.stats import fisher_exact

    return np.array(
        [fisher_exact(cell, alternative=alternative).pvalue for cell in table], dtype=np.float64
    )


def domain_comparison(
    in_domain: Predictions,
    out_of_domain: Predictions,
    *,
    alpha: float = 0.05,
    alternative: Literal["two-sided", "greater"] = "two-sided",
) -> pd.DataFrame:
    """Per-class accuracy in and out of domain, the drop, and whether the drop is real.

    For each class with images in both sets, Fisher's exact test compares
    ``[[correct_in, wrong_in], [correct_out, wrong_out]]``; the p-values are Holm-adjusted across
    those classes, and ``significant`` is ``p_adjusted < alpha``. ``alternative="greater"``
    tests only for a drop (in-domain better).

    Returns
    -------
    DataFrame
        Indexed by class; columns ``support_in``, ``correct_in``, ``accuracy_in``,
        ``support_out``, ``correct_out``, ``accuracy_out``, ``drop`` (``accuracy_in -
        accuracy_out``; positive means worse out of domain), ``p_value``, ``p_adjusted``,
        ``significant``. Sorted by drop, largest first; classes without images in either set
        come last with NaN drop and p-values.

    Examples
    --------
    >>> classes = ["A", "B"]
    >>> inside = Predictions.from_labels(["A"] * 20 + ["B"] * 20, np.eye(2)[[0] * 20 + [1] * 20],
    ...                                  classes)
    >>> outside = Predictions.from_labels(["A"] * 20 + ["B"] * 20,
    ...                                   np.eye(2)[[1] * 15 + [0] * 5 + [1] * 20], classes)
    >>> domain_comparison(inside, outside)[["accuracy_in", "accuracy_out", "drop", "significant"]]
           accuracy_in  accuracy_out  drop  significant
    class
    A              1.0          0.25  0.75         True
    B              1.0          1.00  0.00        False
    """
    for name, value in (("in_domain", in_domain), ("out_of_domain", out_of_domain)):
        if not isinstance(value, Predictions):
            raise ReportError(f"{name} must be a Predictions; got {type(value).__name__}.")
    if tuple(in_domain.classes) != tuple(out_of_domain.classes):
        raise ReportError(
            "the two sets have different classes; evaluate both with the same model "
            f"({len(in_domain.classes)} vs {len(out_of_domain.classes)} classes)."
        )
    if alternative not in ("two-sided", "greater"):
        raise ValueError(f"alternative must be 'two-sided' or 'greater'; got {alternative!r}.")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1; got {alpha}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        inside = per_class_accuracy(in_domain)
        outside = per_class_accuracy(out_of_domain)
    compared = (inside["support"].to_numpy() > 0) & (outside["support"].to_numpy() > 0)
    _warn_undefined(
        "the domain drop",
        [c for c, ok in zip(inside.index, compared, strict=True) if not ok],
        "without images in both sets",
    )
    cells = np.stack(
        [
            inside["correct"].to_numpy(),
            (inside["support"] - inside["correct"]).to_numpy(),
            outside["correct"].to_numpy(),
            (outside["support"] - outside["correct"]).to_numpy(),
        ],
        axis=1,
    ).reshape(-1, 2, 2)
    p_values = np.full(len(inside), np.nan)
    if compared.any():
        p_values[compared] = _fisher_p_values(cells[compared], alternative)
    adjusted = holm_adjust(p_values)
    table = pd.DataFrame(
        {
            "support_in": inside["support"],
            "correct_in": inside["correct"],
            "accuracy_in": inside["accuracy"],
            "support_out": outside["support"],
            "correct_out": outside["correct"],
            "accuracy_out": outside["accuracy"],
            "drop": inside["accuracy"] - outside["accuracy"],
            "p_value": p_values,
            "p_adjusted": adjusted,
            "significant": np.nan_to_num(adjusted, nan=1.0) < alpha,
        },
        index=inside.index,
    )
    return table.sort_values("drop", ascending=False, kind="stable", na_position="last")


@dataclass(frozen=True)
class DomainGapSummary:
    """One-line summary of a :func:`domain_comparison` table."""

    n_classes: int
    n_compared: int
    n_significant_drops: int
    n_significant_gains: int
    accuracy_in: float
    accuracy_out: float
    drop: float
    worst_classes: tuple[Hashable, ...] = field(default=())


def domain_gap_summary(comparison: pd.DataFrame, *, n_worst: int = 5) -> DomainGapSummary:
    """Summarise a :func:`domain_comparison` table.

    Overall accuracies pool the images of all classes; ``worst_classes`` lists up to
    ``n_worst`` classes with a significant drop, largest drop first.

    Examples
    --------
    >>> table = pd.DataFrame({"support_in": [20, 20], "correct_in": [20, 20],
    ...     "support_out": [20, 20], "correct_out": [5, 20], "drop": [0.75, 0.0],
    ...     "significant": [True, False]}, index=pd.Index(["A", "B"], name="class"))
    >>> summary = domain_gap_summary(table)
    >>> summary.n_significant_drops, summary.accuracy_out, summary.worst_classes
    (1, 0.625, ('A',))
    """
    required = {"support_in", "correct_in", "support_out", "correct_out", "drop", "significant"}
    missing = sorted(required - set(comparison.columns))
    if missing:
        raise ReportError(
            f"not a domain_comparison table: missing columns {first_few(missing)}. "
            "Pass the result of domain_comparison()."
        )
    drop = comparison["drop"].to_numpy(dtype=np.float64)
    significant = comparison["significant"].to_numpy(dtype=bool)
    support_in = int(comparison["support_in"].sum())
    support_out = int(comparison["support_out"].sum())
    accuracy_in = int(comparison["correct_in"].sum()) / support_in if support_in else math.nan
    accuracy_out = int(comparison["correct_out"].sum()) / support_out if support_out else math.nan
    dropping = comparison[significant & (drop > 0)].sort_values("drop", ascending=False)
    return DomainGapSummary(
        n_classes=len(comparison),
        n_compared=int(np.sum(~np.isnan(drop))),
        n_significant_drops=int(np.sum(significant & (drop > 0))),
        n_significant_gains=int(np.sum(significant & (drop < 0))),
        accuracy_in=accuracy_in,
        accuracy_out=accuracy_out,
        drop=accuracy_in - accuracy_out,
        worst_classes=tuple(dropping.index[:n_worst]),
    )


# ------------------------------------------------------------------------------------------
# Calibration
# ------------------------------------------------------------------------------------------
def _check_bins(n_bins: int) -> None:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}.")


def _top_label(data: _Probabilities) -> tuple[np.ndarray, np.ndarray]:
    if data.true.size == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return data.proba.max(axis=1), data.proba.argmax(axis=1) == data.true


def reliability_table(
    y_true: LabelsOrPredictions,
    y_proba: np.ndarray | Sequence[Sequence[float]] | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
    n_bins: int = 15,
) -> pd.DataFrame:
    """Top-label confidence against accuracy in equal-width confidence bins.

    Bin ``i`` holds the images whose top probability lies in ``(lower, upper]`` (the first bin
    also holds 0). An empty bin has count 0 and NaN confidence and accuracy.

    Returns
    -------
    DataFrame
        One row per bin: ``bin``, ``lower``, ``upper``, ``count``, ``confidence`` (mean top
        probability), ``accuracy`` (share of those images predicted right), ``gap``
        (``confidence - accuracy``; positive means over-confident).

    Examples
    --------
    >>> proba = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]
    >>> reliability_table([0, 1, 1, 0], proba, n_bins=2)
       bin  lower  upper  count  confidence  accuracy   gap
    0    0    0.0    0.5      0         NaN       NaN   NaN
    1    1    0.5    1.0      4        0.75      0.75  0.00
    """
    _check_bins(n_bins)
    data = _encode_proba(y_true, y_proba, classes)
    confidence, correct = _top_label(data)
    edges, which = _confidence_bins(confidence, n_bins)
    count = np.bincount(which, minlength=n_bins)
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count.astype(np.int64),
            "confidence": _safe_divide(np.bincount(which, confidence, n_bins), count),
            "accuracy": _safe_divide(np.bincount(which, correct.astype(float), n_bins), count),
        }
    ).assign(gap=lambda t: t["confidence"] - t["accuracy"])


def expected_calibration_error(
    y_true: LabelsOrPredictions,
    y_proba: np.ndarray | Sequence[Sequence[float]] | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
    n_bins: int = 15,
) -> float:
    """Top-label expected calibration error (lower is better).

    ``ECE = sum over bins of (count / n) * |accuracy - confidence|`` with the equal-width bins of
    :func:`reliability_table`. 0 means the model's confidence matches its accuracy.

    Examples
    --------
    >>> proba = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]
    >>> round(expected_calibration_error([0, 1, 1, 0], proba, n_bins=2), 4)
    0.0
    >>> round(expected_calibration_error([0, 1, 1, 0], proba, n_bins=10), 4)
    0.4
    """
    table = reliability_table(y_true, y_proba, classes=classes, n_bins=n_bins)
    if int(table["count"].sum()) == 0:
        warnings.warn("ECE is undefined (NaN) for zero images", RuntimeWarning, stacklevel=2)
    return reliability_ece(table)


def reliability_ece(table: pd.DataFrame) -> float:
    """The expected calibration error of a :func:`reliability_table`: the mean of
    ``|accuracy - confidence|`` over its bins, weighted by their counts (NaN for no images)."""
    count = table["count"].to_numpy(dtype=np.float64)
    total = count.sum()
    if total == 0:
        return math.nan
    filled = count > 0
    gap = np.abs(table["accuracy"].to_numpy(dtype=np.float64) - table["confidence"].to_numpy())
    return float(np.sum(count[filled] / total * gap[filled]))


def _confidence_bins(confidence: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_bins`` equal-width bin edges on [0, 1] and each confidence's bin (right-closed,
    the first bin also takes 0)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    return edges, which


def confidence_distribution(
    y_true: LabelsOrPredictions,
    y_proba: np.ndarray | Sequence[Sequence[float]] | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Summary of the top-label confidence for correct and for wrong predictions.

    Returns
    -------
    DataFrame
        Indexed by ``outcome`` (``correct``, ``wrong``); columns ``count``, ``mean``, ``std``
        (sample), ``min``, ``q25``, ``median``, ``q75``, ``max``. A group with no images has
        count 0 and NaN statistics.

    Examples
    --------
    >>> proba = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]
    >>> confidence_distribution([0, 0, 0, 1], proba)[["count", "mean", "max"]]
             count  mean  max
    outcome
    correct      2  0.85  0.9
    wrong        2  0.65  0.7
    """
    data = _encode_proba(y_true, y_proba, classes)
    confidence, correct = _top_label(data)
    rows = []
    for values in (confidence[correct], confidence[~correct]):
        if values.size:
            q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
            std = float(np.std(values, ddof=1)) if values.size > 1 else math.nan
            rows.append(
                [values.size, values.mean(), std, values.min(), q25, median, q75, values.max()]
            )
        else:
            rows.append([0] + [math.nan] * 7)
    table = pd.DataFrame(
        rows,
        columns=["count", "mean", "std", "min", "q25", "median", "q75", "max"],
        index=pd.Index(["correct", "wrong"], dtype=object, name="outcome"),
    )
    return table.astype({"count": np.int64})


def confidence_histogram(
    y_true: LabelsOrPredictions,
    y_proba: np.ndarray | Sequence[Sequence[float]] | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
    n_bins: int = 10,
) -> pd.DataFrame:
    """Counts of correct and wrong predictions per top-label confidence bin.

    Uses the bins of :func:`reliability_table`; columns ``bin``, ``lower``, ``upper``,
    ``correct``, ``wrong``.

    Examples
    --------
    >>> proba = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]
    >>> confidence_histogram([0, 0, 0, 1], proba, n_bins=2)
       bin  lower  upper  correct  wrong
    0    0    0.0    0.5        0      0
    1    1    0.5    1.0        2      2
    """
    _check_bins(n_bins)
    data = _encode_proba(y_true, y_proba, classes)
    confidence, correct = _top_label(data)
    edges, which = _confidence_bins(confidence, n_bins)
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "correct": np.bincount(which[correct], minlength=n_bins).astype(np.int64),
            "wrong": np.bincount(which[~correct], minlength=n_bins).astype(np.int64),
        }
    )


def brier_score(
    y_true: LabelsOrPredictions,
    y_proba: np.ndarray | Sequence[Sequence[float]] | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> float:
    """Multiclass Brier score (lower is better; a loss despite the traditional name).

    ``mean over images of sum over classes of (p_ic - y_ic)^2`` with ``y_ic`` the one-hot true
    class: Brier's original definition, in [0, 2]. It equals scikit-learn's
    ``brier_score_loss(y_true, y_proba, labels=classes, scale_by_half=False)``. For two classes
    it is twice scikit-learn's default binary ``brier_score_loss(y_true, p_positive)``, which
    scores only the positive column (range [0, 1]).

    Examples
    --------
    >>> brier_score([0, 1], [[0.8, 0.2], [0.4, 0.6]])
    0.2
    """
    data = _encode_proba(y_true, y_proba, classes)
    n = data.true.size
    if n == 0:
        warnings.warn(
            "the Brier score is undefined (NaN) for zero images", RuntimeWarning, stacklevel=2
        )
        return math.nan
    onehot = np.zeros_like(data.proba)
    onehot[np.arange(n), data.true] = 1.0
    return float(np.mean(np.sum((data.proba - onehot) ** 2, axis=1)))


def log_loss(
    y_true: LabelsOrPredictions,
    y_proba: np.ndarray | Sequence[Sequence[float]] | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> float:
    """Mean cross-entropy ``-log p(true class)`` in nats (lower is better).

    Probabilities are clipped to ``[EPS, 1]`` (machine epsilon), so a confident mistake costs
    about 36 nats rather than infinity. Equals scikit-learn's ``log_loss(y_true, y_proba,
    labels=classes)`` for probabilities above that floor.

    Examples
    --------
    >>> round(log_loss([0, 1], [[0.8, 0.2], [0.4, 0.6]]), 4)
    0.367
    """
    data = _encode_proba(y_true, y_proba, classes)
    n = data.true.size
    if n == 0:
        warnings.warn(
            "the log loss is undefined (NaN) for zero images", RuntimeWarning, stacklevel=2
        )
        return math.nan
    p_true = data.proba[np.arange(n), data.true]
    return float(np.mean(-np.log(np.clip(p_true, EPS, 1.0))))


# ------------------------------------------------------------------------------------------
# Paired comparison of two models on the same images
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test of two models on the same images.

    ``b`` counts images model A got right and model B wrong, ``c`` the reverse; ``statistic``
    is ``min(b, c)`` (statsmodels' convention for the exact test); ``p_value`` is the two-sided
    binomial p-value of ``b`` out of ``b + c`` at 1/2.
    """

    statistic: float
    b: int
    c: int
    p_value: float
    n: int
    accuracy_a: float
    accuracy_b: float

    @property
    def difference(self) -> float:
        """``accuracy_b - accuracy_a``."""
        return self.accuracy_b - self.accuracy_a


def _exact_mcnemar_p(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    from scipy.special import bdtr

    b = np.asarray(b, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    total = b + c
    with np.errstate(invalid="ignore"):
        tail = bdtr(np.minimum(b, c), np.maximum(total, 1), 0.5)
    return np.where(total == 0, 1.0, np.minimum(1.0, 2.0 * tail))


def _encode_three(
    y_true: LabelsOrPredictions | Predictions,
    pred_a: ArrayLike | Predictions | None,
    pred_b: ArrayLike | None,
    classes: Sequence[Hashable] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[Hashable, ...]]:
    if isinstance(y_true, Predictions):
        if not isinstance(pred_a, Predictions) or pred_b is not None:
            raise ReportError(
                "pass two Predictions of the same images (model A, model B), or y_true, "
                "pred_a and pred_b as arrays."
            )
        a, b = y_true, pred_a
        _check_same_classes(a, classes)
        if a.classes != b.classes:
            raise ReportError(
                "the two Predictions have different classes; compare models "
                "trained on the same classes."
            )
        if a.paths != b.paths or not np.array_equal(a.y_true, b.y_true):
            raise ReportError(
                "the two Predictions are not of the same images in the same order; a paired "
                "test needs both models' predictions for each image."
            )
        return a.y_true, a.y_pred, b.y_pred, tuple(a.classes)
    if pred_a is None or pred_b is None:
        raise ReportError("pass y_true, pred_a and pred_b as arrays, or two Predictions.")
    if isinstance(pred_a, Predictions):
        raise ReportError("pass y_true, pred_a and pred_b as arrays, or two Predictions.")
    true = _as_1d(y_true, "y_true")
    first = _as_1d(pred_a, "pred_a")
    second = _as_1d(pred_b, "pred_b")
    if not true.shape == first.shape == second.shape:
        raise ReportError(
            f"y_true, pred_a and pred_b must have one entry per image; got {true.size}, "
            f"{first.size} and {second.size}."
        )
    resolved = (
        _check_classes(classes) if classes is not None else _infer_classes(true, first, second)
    )
    return (
        _encode(true, resolved, "y_true"),
        _encode(first, resolved, "pred_a"),
        _encode(second, resolved, "pred_b"),
        resolved,
    )


def mcnemar_test(
    y_true: LabelsOrPredictions,
    pred_a: ArrayLike | Predictions | None = None,
    pred_b: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> McNemarResult:
    """Exact McNemar test: do two models differ in accuracy on the same images?

    Call as ``mcnemar_test(y_true, pred_a, pred_b)`` or ``mcnemar_test(predictions_a,
    predictions_b)``. Only discordant images count: ``b`` (A right, B wrong) and ``c`` (A wrong,
    B right); under equal accuracy ``b ~ Binomial(b + c, 1/2)``. With no discordant images the
    p-value is 1.

    Examples
    --------
    >>> y = ["A"] * 10
    >>> result = mcnemar_test(y, ["A"] * 9 + ["B"], ["A"] * 2 + ["B"] * 8, classes=["A", "B"])
    >>> result.b, result.c, round(result.p_value, 4)
    (7, 0, 0.0156)
    """
    true, first, second, _ = _encode_three(y_true, pred_a, pred_b, classes)
    right_a, right_b = first == true, second == true
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    n = int(true.size)
    return McNemarResult(
        statistic=float(min(b, c)),
        b=b,
        c=c,
        p_value=float(_exact_mcnemar_p(np.array(b), np.array(c))),
        n=n,
        accuracy_a=float(right_a.mean()) if n else math.nan,
        accuracy_b=float(right_b.mean()) if n else math.nan,
    )


def paired_class_differences(
    y_true: LabelsOrPredictions,
    pred_a: ArrayLike | Predictions | None = None,
    pred_b: ArrayLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Per-class accuracy of two models on the same images, with an exact McNemar test each.

    Returns
    -------
    DataFrame
        Indexed by class in ``classes`` order; columns ``support``, ``accuracy_a``,
        ``accuracy_b``, ``difference`` (``accuracy_b - accuracy_a``), ``only_a`` (right by A
        only), ``only_b`` (right by B only), ``p_value``, ``p_adjusted`` (Holm across classes
        with images). Classes without images have NaN accuracies and p-values.

    Examples
    --------
    >>> table = paired_class_differences(list("AABB"), list("AABA"), list("ABBB"))
    >>> table[["accuracy_a", "accuracy_b", "difference", "only_a", "only_b"]]
           accuracy_a  accuracy_b  difference  only_a  only_b
    class
    A             1.0         0.5        -0.5       1       0
    B             0.5         1.0         0.5       0       1
    """
    true, first, second, names = _encode_three(y_true, pred_a, pred_b, classes)
    k = len(names)
    support = np.bincount(true, minlength=k)
    right_a, right_b = first == true, second == true
    correct_a = np.bincount(true[right_a], minlength=k)
    correct_b = np.bincount(true[right_b], minlength=k)
    only_a = np.bincount(true[right_a & ~right_b], minlength=k)
    only_b = np.bincount(true[~right_a & right_b], minlength=k)
    _warn_undefined(
        "the paired difference",
        [c for c, s in zip(names, support, strict=True) if s == 0],
        "without images",
    )
    p_values = np.where(support > 0, _exact_mcnemar_p(only_a, only_b), np.nan)
    accuracy_a = _safe_divide(correct_a, support)
    accuracy_b = _safe_divide(correct_b, support)
    return pd.DataFrame(
        {
            "support": support.astype(np.int64),
            "accuracy_a": accuracy_a,
            "accuracy_b": accuracy_b,
            "difference": accuracy_b - accuracy_a,
            "only_a": only_a.astype(np.int64),
            "only_b": only_b.astype(np.int64),
            "p_value": p_values,
            "p_adjusted": holm_adjust(p_values),
        },
        index=_class_index(names),
    )


# ------------------------------------------------------------------------------------------
# Everything for one set
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """Every metric of one evaluation set; shows as a rich table in Jupyter."""

    name: str
    classes: tuple[str, ...]
    overall: AccuracyResult
    per_class: pd.DataFrame
    classification: pd.DataFrame
    confusion: pd.DataFrame
    confused_pairs: pd.DataFrame
    losses: pd.DataFrame
    reliability: pd.DataFrame
    confidence: pd.DataFrame
    top_k: int
    top_k_accuracy: float
    ece: float
    brier: float
    log_loss: float
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    balanced_accuracy: float

    def summary(self) -> dict[str, float | int | str]:
        """The headline numbers as plain Python values (JSON-ready; NaN stays NaN)."""
        return {
            "name": self.name,
            "n_images": self.overall.n,
            "n_classes": len(self.classes),
            "accuracy": self.overall.accuracy,
            "accuracy_ci_low": self.overall.ci_low,
            "accuracy_ci_high": self.overall.ci_high,
            "error_rate": self.overall.error_rate,
            f"top_{self.top_k}_accuracy": self.top_k_accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
            "macro_f1_ci_low": self.macro_f1_ci[0],
            "macro_f1_ci_high": self.macro_f1_ci[1],
            "expected_calibration_error": self.ece,
            "brier_score": self.brier,
            "log_loss": self.log_loss,
        }

    def _repr_html_(self) -> str:
        summary = self.summary()
        rows = "".join(
            f"<tr><th>{html.escape(str(key))}</th><td>{_format_value(value)}</td></tr>"
            for key, value in summary.items()
        )
        per_class = self.per_class.to_html(float_format=lambda x: f"{x:.3f}", na_rep="NaN")
        confused = self.confused_pairs.head(10).to_html(index=False)
        return (
            f"<div><h4>Evaluation of {html.escape(self.name)}</h4>"
            f"<table>{rows}</table>"
            f"<h5>Per-class accuracy ({self.overall.confidence:.0%} Wilson intervals)</h5>"
            f"{per_class}<h5>Most confused pairs</h5>{confused}</div>"
        )

    def __repr__(self) -> str:
        o = self.overall
        return (
            f"Evaluation({self.name!r}: accuracy {o.accuracy:.4f} "
            f"[{o.ci_low:.4f}, {o.ci_high:.4f}] on {o.n} images, {len(self.classes)} classes)"
        )


def _format_value(value: object) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


def evaluate(
    predictions: Predictions,
    *,
    confidence: float = 0.95,
    n_bins: int = 15,
    top_k: int = 5,
    n_top_losses: int | None = 9,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Evaluation:
    """Compute every metric of one evaluation set.

    ``n_top_losses`` rows of :func:`top_losses` are kept (``None``: every image).

    Warnings about undefined values (classes without images) are raised once here.

    Examples
    --------
    >>> p = Predictions.from_labels(["A", "B", "B"], np.array([[0.9, 0.1], [0.3, 0.7],
    ...                             [0.6, 0.4]]), ["A", "B"])
    >>> ev = evaluate(p, n_resamples=50)
    >>> ev.overall.correct, ev.per_class["accuracy"].tolist()
    (2, [1.0, 0.5])
    """
    if not isinstance(predictions, Predictions):
        raise ReportError(f"evaluate needs a Predictions; got {type(predictions).__name__}.")
    k = min(top_k, len(predictions.classes))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluation = _evaluate(
            predictions, confidence, n_bins, top_k, k, n_top_losses, n_resamples, seed
        )
    for message in dict.fromkeys(str(w.message) for w in caught):
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return evaluation


def _evaluate(
    predictions: Predictions,
    confidence: float,
    n_bins: int,
    top_k: int,
    k: int,
    n_top_losses: int | None,
    n_resamples: int,
    seed: int,
) -> Evaluation:
    return Evaluation(
        name=predictions.name,
        classes=tuple(predictions.classes),
        overall=accuracy_with_interval(predictions, confidence=confidence),
        per_class=per_class_accuracy(predictions, confidence=confidence),
        classification=classification_table(predictions),
        confusion=confusion_matrix(predictions),
        confused_pairs=most_confused(predictions),
        losses=top_losses(predictions, k=n_top_losses),
        reliability=reliability_table(predictions, n_bins=n_bins),
        confidence=confidence_distribution(predictions),
        top_k=top_k,
        top_k_accuracy=top_k_accuracy(predictions, k=k),
        ece=expected_calibration_error(predictions, n_bins=n_bins),
        brier=brier_score(predictions),
        log_loss=log_loss(predictions),
        macro_f1=macro_f1_score(predictions),
        macro_f1_ci=bootstrap_interval(
            macro_f1_score,
            predictions,
            n_resamples=n_resamples,
            seed=seed,
            confidence=confidence,
        ),
        balanced_accuracy=balanced_accuracy_score(predictions),
    )
