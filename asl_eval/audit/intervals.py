"""An accuracy interval that counts each frame group once: a design-effect-adjusted Wilson
interval.

Near-duplicate frames are not independent evidence: 40 frames of one pose, all right, say about
as much as a handful of images. The interval here shrinks the sample to its *effective size*
before the Wilson interval (:func:`asl_eval.metrics.wilson_intervals`) is taken:

1. ``p`` is the accuracy over all ``N`` images, ``G`` the number of groups;
2. its cluster-robust variance (the CR1 "sandwich" estimator that statsmodels' OLS reports with
   ``cov_type="cluster"`` for a regression on a constant) is
   ``G / (G - 1) * sum_g (sum_{i in g} (y_i - p))**2 / N**2``;
3. the design effect is that variance over the binomial one, ``p (1 - p) / N``, clipped to
   ``[1, N]`` (grouping never adds information); where it is undefined (every image right or
   every image wrong, or a single group) it is the mean group size ``N / G``, the design effect
   of groups whose images always agree;
4. the interval is Wilson's with ``n = N / deff`` trials and ``p * n`` successes.

With every image its own group the design effect is ``N / (N - 1)`` (the ``G / (G - 1)``
small-sample factor), so the interval is Wilson's on ``N - 1`` trials: a hair wider than the
plain Wilson interval. A percentile bootstrap over
groups would give similar intervals at a few hundred times the cost and with Monte Carlo noise;
the closed form is exact, cheap and checked against statsmodels in ``tests/test_audit.py``.

Imports numpy and :mod:`asl_eval.metrics` (the Wilson interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asl_eval.errors import MetricError
from asl_eval.metrics import wilson_intervals

__all__ = ["ClusteredAccuracy", "cluster_robust_variance", "clustered_accuracy"]


@dataclass(frozen=True)
class ClusteredAccuracy:
    """An accuracy with its group-aware interval.

    Attributes
    ----------
    n, n_correct, n_groups
        Images, right ones, and groups among them.
    accuracy
        ``n_correct / n`` (NaN when ``n == 0``).
    design_effect
        How much the grouping inflates the variance (at least 1).
    n_effective
        ``n / design_effect``: the independent images the sample is worth.
    low, high
        The interval's bounds.
    """

    n: int
    n_correct: int
    n_groups: int
    accuracy: float
    design_effect: float
    n_effective: float
    low: float
    high: float


def cluster_robust_variance(correct: np.ndarray, groups: np.ndarray) -> float:
    """The CR1 cluster-robust variance of the mean of ``correct`` (NaN for fewer than 2 groups).

    >>> cluster_robust_variance(np.array([1, 1, 0, 0]), np.array([0, 0, 1, 1]))
    0.25
    """
    values = np.asarray(correct, dtype=np.float64)
    ids = np.unique(np.asarray(groups), return_inverse=True)[1]
    n, n_groups = len(values), int(ids.max()) + 1 if len(ids) else 0
    if n_groups < 2:
        return float("nan")
    residual_sums = np.bincount(ids, weights=values - values.mean(), minlength=n_groups)
    return float(n_groups / (n_groups - 1) * np.sum(residual_sums**2) / n**2)


def clustered_accuracy(
    correct: np.ndarray, groups: np.ndarray, *, confidence: float = 0.95
) -> ClusteredAccuracy:
    """Accuracy over images with a Wilson interval on the effective sample size.

    Parameters
    ----------
    correct
        Whether each image was classified right (bool or 0/1).
    groups
        Each image's group id (:func:`asl_eval.audit.groups.frame_groups`).
    confidence
        Coverage of the interval.

    Examples
    --------
    Ten groups of ten identical outcomes are worth about nine images, not a hundred (the
    ``G / (G - 1)`` correction costs one):

    >>> right = np.repeat([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], 10)
    >>> result = clustered_accuracy(right, np.repeat(np.arange(10), 10))
    >>> round(result.n_effective, 6), round(result.low, 3)
    (9.0, 0.474)
    """
    values = np.asarray(correct)
    if values.dtype != bool and not np.isin(values, [0, 1]).all():
        raise MetricError("correct must hold booleans or 0/1 values.")
    values = values.astype(np.float64)
    group_ids = np.asarray(groups)
    if len(values) != len(group_ids):
        raise MetricError(f"{len(values)} outcomes but {len(group_ids)} group ids.")
    n = len(values)
    n_groups = len(np.unique(group_ids))
    if n == 0:
        nan = float("nan")
        return ClusteredAccuracy(0, 0, 0, nan, nan, 0.0, nan, nan)
    accuracy = float(values.mean())
    binomial = accuracy * (1 - accuracy) / n
    robust = cluster_robust_variance(values, group_ids)
    undefined = binomial == 0 or not np.isfinite(robust)
    design_effect = float(np.clip(n / n_groups if undefined else robust / binomial, 1.0, n))
    n_effective = n / design_effect
    low, high = wilson_intervals(
        np.array([accuracy * n_effective]), np.array([n_effective]), confidence=confidence
    )
    return ClusteredAccuracy(
        n=n,
        n_correct=int(values.sum()),
        n_groups=n_groups,
        accuracy=accuracy,
        design_effect=design_effect,
        n_effective=n_effective,
        low=float(low[0]),
        high=float(high[0]),
    )
