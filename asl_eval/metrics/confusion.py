"""Where the model goes wrong: the confusion matrix, the most confused pairs, the top losses.

Thin wrappers in torchmetrics' shape over reducers of the confusion counts
(:func:`confusion_frame`, :func:`most_confused_from_counts`), which
:func:`~asl_eval.metrics.evaluate` calls on the counts it computed once. Kept apart from
:mod:`.classification` so that neither module outgrows one screenful of jobs.

May import: numpy, pandas, :mod:`asl_eval.errors`, :mod:`asl_eval.predictions`,
:mod:`.validation`, :mod:`.counts`. Never torch or fastai.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from asl_eval.metrics.counts import (
    class_index,
    confusion_counts,
    safe_divide,
    warn_no_images,
    warn_undefined,
)
from asl_eval.metrics.validation import (
    ArrayLike,
    LabelsOrPredictions,
    Normalize,
    check_choice,
    check_count,
    check_predictions,
    encode_pair,
)
from asl_eval.predictions import Predictions

__all__ = ["confusion_matrix", "most_confused", "top_losses"]


def _normalised(
    counts: np.ndarray, classes: Sequence[Hashable], normalize: Normalize
) -> np.ndarray:
    if normalize == "true":
        support = counts.sum(axis=1, keepdims=True)
        warn_undefined(
            "the row-normalised confusion matrix",
            [c for c, s in zip(classes, support[:, 0], strict=True) if s == 0],
            "without images",
        )
        return safe_divide(counts, support)
    if normalize == "pred":
        predicted = counts.sum(axis=0, keepdims=True)
        warn_undefined(
            "the column-normalised confusion matrix",
            [c for c, s in zip(classes, predicted[0], strict=True) if s == 0],
            "never predicted",
        )
        return safe_divide(counts, predicted)
    total = counts.sum()
    if total == 0:
        warn_no_images("the normalised confusion matrix")
    return safe_divide(counts, np.asarray(total))


def confusion_frame(
    counts: np.ndarray, classes: Sequence[Hashable], *, normalize: Normalize | None = None
) -> pd.DataFrame:
    """Reduce confusion counts to the :func:`confusion_matrix` table."""
    values = counts if normalize is None else _normalised(counts, classes, normalize)
    return pd.DataFrame(
        values, index=class_index(classes, "actual"), columns=class_index(classes, "predicted")
    )


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
    check_choice("normalize", normalize, (None, "true", "pred", "all"))
    encoded = encode_pair(y_true, y_pred, classes)
    counts = confusion_counts(encoded.true, encoded.pred, encoded.n_classes)
    return confusion_frame(counts, encoded.classes, normalize=normalize)


def most_confused_from_counts(
    counts: np.ndarray, classes: Sequence[Hashable], *, min_count: int = 1
) -> pd.DataFrame:
    """Reduce confusion counts to the :func:`most_confused` table."""
    off_diagonal = counts.copy()
    np.fill_diagonal(off_diagonal, 0)
    actual, predicted = np.nonzero(off_diagonal >= min_count)
    found = off_diagonal[actual, predicted]
    order = np.lexsort((predicted, actual, -found))
    names = np.empty(len(classes), dtype=object)
    names[:] = list(classes)
    return pd.DataFrame(
        {
            "actual": names[actual[order]],
            "predicted": names[predicted[order]],
            "count": found[order].astype(np.int64),
        }
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
    min_count = check_count("min_count", min_count)
    encoded = encode_pair(y_true, y_pred, classes)
    counts = confusion_counts(encoded.true, encoded.pred, encoded.n_classes)
    return most_confused_from_counts(counts, encoded.classes, min_count=min_count)


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
    predictions = check_predictions(predictions, "top_losses (it reports image paths)")
    if k is not None:
        k = check_count("k", k, minimum=0)
    n = predictions.n_images
    table = pd.DataFrame(
        {
            "path": list(predictions.paths),
            "actual": predictions.labels_true,
            "predicted": predictions.labels_pred,
            "confidence": predictions.confidence,
            "p_true": predictions.y_proba[np.arange(n), predictions.y_true],
            "loss": predictions.loss,
        }
    )
    table = table.sort_values("loss", ascending=False, kind="stable").reset_index(drop=True)
    return table if k is None else table.head(k)
