"""Whether the model's confidence can be trusted: reliability, ECE, Brier score, log loss.

All of these look at the probabilities. The top-label statistics (each image's highest
probability and whether that class is right) are computed once by
:func:`~asl_eval.metrics.counts.top_label`; the reducers here (``*_from_top_label``,
``*_from_proba``) turn them into tables and numbers, and :func:`~asl_eval.metrics.evaluate`
calls them directly.

May import: numpy, pandas, :mod:`asl_eval.errors`, :mod:`asl_eval.predictions`,
:mod:`.validation`, :mod:`.counts`. Never torch or fastai.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from asl_eval.metrics.counts import safe_divide, top_label, warn_no_images
from asl_eval.metrics.validation import (
    Encoded,
    LabelsOrPredictions,
    ProbaLike,
    check_count,
    encode_proba,
)
from asl_eval.predictions import PROBABILITY_FLOOR

__all__ = [
    "EPS",
    "brier_score",
    "confidence_distribution",
    "confidence_histogram",
    "expected_calibration_error",
    "log_loss",
    "reliability_ece",
    "reliability_table",
]

#: Probabilities are clipped to ``[EPS, 1]`` before taking logs (scikit-learn's choice).
EPS = PROBABILITY_FLOOR


def _confidence_bins(confidence: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_bins`` equal-width bin edges on [0, 1] and each confidence's bin (right-closed,
    the first bin also takes 0)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    return edges, which


def reliability_from_top_label(
    confidence: np.ndarray, correct: np.ndarray, *, n_bins: int
) -> pd.DataFrame:
    """Reduce top-label statistics to the :func:`reliability_table`."""
    edges, which = _confidence_bins(confidence, n_bins)
    count = np.bincount(which, minlength=n_bins)
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count.astype(np.int64),
            "confidence": safe_divide(np.bincount(which, confidence, n_bins), count),
            "accuracy": safe_divide(np.bincount(which, correct.astype(float), n_bins), count),
        }
    ).assign(gap=lambda t: t["confidence"] - t["accuracy"])


def reliability_table(
    y_true: LabelsOrPredictions,
    y_proba: ProbaLike | None = None,
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
    n_bins = check_count("n_bins", n_bins)
    confidence, correct = top_label(encode_proba(y_true, y_proba, classes))
    return reliability_from_top_label(confidence, correct, n_bins=n_bins)


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


def expected_calibration_error(
    y_true: LabelsOrPredictions,
    y_proba: ProbaLike | None = None,
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
        warn_no_images("ECE")
    return reliability_ece(table)


def distribution_from_top_label(confidence: np.ndarray, correct: np.ndarray) -> pd.DataFrame:
    """Reduce top-label statistics to the :func:`confidence_distribution` table."""
    outcome = pd.CategoricalIndex(np.where(correct, "correct", "wrong"), ["correct", "wrong"])
    described = (
        pd.Series(confidence, dtype=np.float64)
        .groupby(outcome, observed=False)
        .describe()
        .reindex(pd.Index(["correct", "wrong"], dtype=object, name="outcome"))
        .rename(columns={"25%": "q25", "50%": "median", "75%": "q75"})
    )
    described["count"] = described["count"].fillna(0).astype(np.int64)
    return described[["count", "mean", "std", "min", "q25", "median", "q75", "max"]]


def confidence_distribution(
    y_true: LabelsOrPredictions,
    y_proba: ProbaLike | None = None,
    *,
    classes: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Summary of the top-label confidence for correct and for wrong predictions.

    ``Series.groupby(outcome).describe()``, with the quartiles renamed.

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
    confidence, correct = top_label(encode_proba(y_true, y_proba, classes))
    return distribution_from_top_label(confidence, correct)


def confidence_histogram(
    y_true: LabelsOrPredictions,
    y_proba: ProbaLike | None = None,
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
    n_bins = check_count("n_bins", n_bins)
    confidence, correct = top_label(encode_proba(y_true, y_proba, classes))
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


def brier_from_proba(encoded: Encoded) -> float:
    """Reduce encoded probabilities to the :func:`brier_score` (warns for zero images)."""
    n = encoded.n_images
    if n == 0 or encoded.proba is None:
        warn_no_images("the Brier score")
        return math.nan
    onehot = np.zeros_like(encoded.proba)
    onehot[np.arange(n), encoded.true] = 1.0
    return float(np.mean(np.sum((encoded.proba - onehot) ** 2, axis=1)))


def brier_score(
    y_true: LabelsOrPredictions,
    y_proba: ProbaLike | None = None,
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
    return brier_from_proba(encode_proba(y_true, y_proba, classes))


def log_loss_from_proba(encoded: Encoded) -> float:
    """Reduce encoded probabilities to the :func:`log_loss` (warns for zero images)."""
    n = encoded.n_images
    if n == 0 or encoded.proba is None:
        warn_no_images("the log loss")
        return math.nan
    p_true = encoded.proba[np.arange(n), encoded.true]
    return float(np.mean(-np.log(np.clip(p_true, EPS, 1.0))))


def log_loss(
    y_true: LabelsOrPredictions,
    y_proba: ProbaLike | None = None,
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
    return log_loss_from_proba(encode_proba(y_true, y_proba, classes))
