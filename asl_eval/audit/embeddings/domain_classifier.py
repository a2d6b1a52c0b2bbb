"""The domain classifier AUC (:func:`domain_auc`): how well a standardized, strongly
regularized logistic regression tells one set's features from another's, scored out of fold
(``StratifiedKFold`` + ``cross_val_predict``), with a stratified percentile bootstrap interval
of those out-of-fold scores (it covers the resampling of images, not the refitting of the
folds, so it is somewhat too narrow for tiny sets).

Layer: part of :mod:`asl_eval.audit.embeddings`; imports numpy, scipy and scikit-learn (the
last two inside the functions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DomainAUC", "domain_auc"]

REGULARIZATION = 0.01
"""Inverse L2 strength of the domain classifier: strong, because features have hundreds of
dimensions and sets often only tens of images, and a classifier that memorises its folds
scatters the AUC of two halves of one set (0.4 to 0.6 at ``C=1`` on the tests' model)."""

N_BOOTSTRAP = 500
"""Bootstrap resamples of the domain AUC's interval."""


@dataclass(frozen=True)
class DomainAUC:
    """How separable two sets of features are (:func:`domain_auc`).

    ``scores`` are the out-of-fold probabilities of "second set" for the rows of
    ``np.vstack([a, b])``, ``y`` those rows' set (0 first, 1 second); ``auc`` is
    ``roc_auc_score(y, scores)``; ``low`` and ``high`` its bootstrap interval.
    """

    auc: float
    low: float
    high: float
    n_splits: int
    scores: np.ndarray
    y: np.ndarray


def domain_auc(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_splits: int = 5,
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
    confidence: float = 0.95,
) -> DomainAUC:
    """Cross-validated ROC AUC of a classifier that tells features ``a`` from features ``b``.

    A standardized logistic regression (L2 with ``C=`` :data:`REGULARIZATION`, balanced class
    weights) is fitted in
    ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)`` folds (fewer folds when the
    smaller set has fewer images); each image is scored by the model that did not see it. The
    interval is the percentile interval of ``n_bootstrap`` stratified bootstrap resamples of
    those out-of-fold scores. NaN when either set has fewer than two images.

    >>> rng = np.random.default_rng(0)
    >>> far = domain_auc(rng.normal(size=(40, 3)), rng.normal(3, 1, size=(40, 3)))
    >>> far.auc > 0.95
    True
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    y = np.concatenate([np.zeros(len(a), dtype=np.int64), np.ones(len(b), dtype=np.int64)])
    splits = min(n_splits, len(a), len(b))
    if splits < 2:
        nan = math.nan
        return DomainAUC(nan, nan, nan, 0, np.full(len(y), nan), y)
    x = np.vstack([a, b])
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=REGULARIZATION, class_weight="balanced", max_iter=5000),
    )
    folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    low, high = _bootstrap_interval(y, scores, n_bootstrap, confidence, seed)
    return DomainAUC(auc, low, high, splits, np.asarray(scores, dtype=np.float64), y)


def _rank_auc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` (resamples, shape ``(m, n)``) against the labels of
    the same shape, by the Mann–Whitney rank formula (ties as half)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=1)
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    rank_sum = (ranks * y).sum(axis=1)
    return np.asarray((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _bootstrap_interval(
    y: np.ndarray, scores: np.ndarray, n_bootstrap: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile interval of the AUC over stratified resamples (each set resampled within
    itself), in chunks so memory stays bounded; vectorized (scikit-learn's roc_auc_score
    scores one resample per call)."""
    if n_bootstrap < 1:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    negatives, positives = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    labels = np.concatenate([np.zeros(len(negatives)), np.ones(len(positives))])
    per_chunk = max(1, 2_000_000 // max(1, len(y)))
    values = []
    for start in range(0, n_bootstrap, per_chunk):
        m = min(per_chunk, n_bootstrap - start)
        rows = np.hstack(
            [
                rng.choice(negatives, size=(m, len(negatives))),
                rng.choice(positives, size=(m, len(positives))),
            ]
        )
        values.append(_rank_auc(np.broadcast_to(labels, rows.shape), scores[rows]))
    aucs = np.concatenate(values)
    tail = (1 - confidence) / 2
    return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))
