"""Closed-form confidence intervals for proportions (Wilson score intervals).

Accuracy overall and per class are proportions of counted images, so their intervals need no
resampling. The percentile bootstrap for metrics without a closed form (macro F1, balanced
accuracy) lives in :mod:`asl_eval.metrics.bootstrap`, above the metrics it resamples.

May import: numpy, the standard library, :mod:`asl_eval.errors`, :mod:`.validation`. Never torch
or fastai.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from asl_eval.errors import MetricError
from asl_eval.metrics.validation import ArrayLike, check_confidence

__all__ = ["wilson_interval", "wilson_intervals"]


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
    check_confidence(confidence)
    k = np.asarray(successes, dtype=np.float64)
    total = np.asarray(n, dtype=np.float64)
    k, total = np.broadcast_arrays(k, total)
    if np.any(total < 0) or np.any(k < 0) or np.any(k > total) or not np.all(np.isfinite(k)):
        raise MetricError(
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
