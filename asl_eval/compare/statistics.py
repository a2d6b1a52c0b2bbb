"""The numbers behind a comparison of two models on the same images.

- :func:`paired_difference_interval`: Newcombe's hybrid score interval for the difference of
  two paired proportions (his method 10), built from the two Wilson intervals.
- :func:`mcnemar_power`: the power of the exact McNemar test at a given size against a given
  drop in accuracy.
- :func:`rejection_threshold`: the critical value of the exact two-sided McNemar test.

The exact McNemar test itself, its per-class version and the Holm adjustment are
:func:`asl_eval.metrics.mcnemar_test`, :func:`asl_eval.metrics.paired_class_differences` and
:func:`asl_eval.metrics.holm_adjust`.

May import: numpy, scipy (inside the functions), :mod:`asl_eval.errors`,
:mod:`asl_eval.metrics`. Never torch or fastai.
"""

from __future__ import annotations

import math

import numpy as np

from asl_eval.errors import MetricError
from asl_eval.metrics import wilson_interval

__all__ = ["mcnemar_power", "paired_difference_interval", "rejection_threshold"]


def _check_counts(both: int, only_base: int, only_new: int, neither: int) -> int:
    counts = (both, only_base, only_new, neither)
    if any(c < 0 or int(c) != c for c in counts):
        raise MetricError(f"paired counts must be non-negative integers; got {counts}.")
    return int(sum(counts))


def paired_difference_interval(
    both: int,
    only_base: int,
    only_new: int,
    neither: int,
    *,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Interval for ``accuracy_new - accuracy_base`` from the paired 2x2 table.

    Newcombe's hybrid score interval for paired proportions (Newcombe 1998, *Statistics in
    Medicine* 17:2635-2650, method 10): with the Wilson intervals ``(l1, u1)`` of the base
    accuracy ``p1`` and ``(l2, u2)`` of the new accuracy ``p2``, and the phi correlation
    ``phi = (both*neither - only_base*only_new) / sqrt(r1 w1 r2 w2)`` of the two models'
    right/wrong outcomes (0 when a margin is empty),

    ``low  = d - sqrt((p2 - l2)^2 - 2 phi (p2 - l2)(u1 - p1) + (u1 - p1)^2)``
    ``high = d + sqrt((u2 - p2)^2 - 2 phi (u2 - p2)(p1 - l1) + (p1 - l1)^2)``

    where ``d = p2 - p1``. It needs no resampling, stays inside [-1, 1] and keeps its
    coverage near 0 and 1, where the Wald interval fails.

    Parameters
    ----------
    both, only_base, only_new, neither
        Images both models got right, only the base model, only the new model, neither.
    confidence
        Coverage, strictly between 0 and 1.

    Returns
    -------
    (low, high)
        NaN, NaN when there are no images.

    Examples
    --------
    >>> [round(x, 4) for x in paired_difference_interval(80, 10, 2, 8)]
    [-0.1531, -0.0132]
    """
    n = _check_counts(both, only_base, only_new, neither)
    if n == 0:
        return math.nan, math.nan
    right_base, right_new = both + only_base, both + only_new
    p1, p2 = right_base / n, right_new / n
    l1, u1 = wilson_interval(right_base, n, confidence=confidence)
    l2, u2 = wilson_interval(right_new, n, confidence=confidence)
    margins = float(right_base) * (n - right_base) * right_new * (n - right_new)
    phi = (both * neither - only_base * only_new) / math.sqrt(margins) if margins > 0 else 0.0
    difference = p2 - p1
    below = (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2
    above = (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2
    low = difference - math.sqrt(max(below, 0.0))
    high = difference + math.sqrt(max(above, 0.0))
    return max(low, -1.0), min(high, 1.0)


def rejection_threshold(n_discordant: np.ndarray | int, alpha: float) -> np.ndarray:
    """The largest ``k`` with ``2 * P(X <= k) < alpha`` for ``X ~ Binomial(D, 1/2)``, per ``D``.

    The exact two-sided McNemar test rejects at level ``alpha`` exactly when the smaller of the
    two discordant counts is at most this ``k``; ``-1`` means it cannot reject at that ``D``.

    Examples
    --------
    >>> rejection_threshold(np.array([5, 6, 20]), 0.05).tolist()
    [-1, 0, 5]
    """
    from scipy.special import bdtr
    from scipy.stats import binom

    total = np.atleast_1d(np.asarray(n_discordant, dtype=np.int64))
    k = np.nan_to_num(binom.ppf(alpha / 2, total, 0.5), nan=0.0).astype(np.int64) - 1
    # ppf works in floating point: step k to the exact boundary of 2 * P(X <= k) < alpha.
    for _ in range(3):
        too_high = (k >= 0) & (2 * bdtr(np.maximum(k, 0), total, 0.5) >= alpha)
        k = np.where(too_high, k - 1, k)
        can_rise = (k + 1 < total) & (2 * bdtr(k + 1, total, 0.5) < alpha)
        k = np.where(can_rise, k + 1, k)
    return np.where(total > 0, k, -1)


def mcnemar_power(n: int, *, drop: float, discordance: float, alpha: float = 0.05) -> float:
    """Power of the exact two-sided McNemar test at level ``alpha`` on ``n`` paired images,
    when the new model's accuracy is lower than the base model's by ``drop``.

    Each image is discordant with probability ``discordance`` (``psi``): right by the base
    model only with probability ``(psi + drop) / 2``, by the new model only with
    ``(psi - drop) / 2``. The number of discordant images is ``D ~ Binomial(n, psi)`` and, given
    ``D``, the base-only count is ``Binomial(D, (psi + drop) / (2 psi))``, so

    ``power = sum_D P(D) [F(k_D; D, q) + F(k_D; D, 1 - q)]``

    with ``q = (psi + drop) / (2 psi)``, ``F`` the binomial distribution function and ``k_D``
    the test's :func:`rejection_threshold` (the two rejection tails never overlap).

    Parameters
    ----------
    n
        Paired images.
    drop
        True accuracy drop, in ``(0, 1]``.
    discordance
        Probability that the two models disagree on an image; at least ``drop``.
    alpha
        Level of the test.

    Examples
    --------
    With 1% of the images discordant, all of them regressions, 1000 images detect a 1% drop
    almost always; 300 almost never:

    >>> round(mcnemar_power(1000, drop=0.01, discordance=0.01), 3)
    0.934
    >>> round(mcnemar_power(300, drop=0.01, discordance=0.01), 3)
    0.083
    """
    from scipy.special import bdtr
    from scipy.stats import binom

    if not 0 < drop <= 1 or not drop <= discordance <= 1 or not 0 < alpha < 1:
        raise MetricError(
            "mcnemar_power needs 0 < drop <= discordance <= 1 and 0 < alpha < 1; got "
            f"drop={drop}, discordance={discordance}, alpha={alpha}."
        )
    if n <= 0:
        return 0.0
    low = int(binom.ppf(1e-12, n, discordance))
    high = int(binom.isf(1e-12, n, discordance)) + 1
    totals = np.arange(max(low - 1, 0), min(high, n) + 1)
    weights = binom.pmf(totals, n, discordance)
    k = rejection_threshold(totals, alpha)
    q = (discordance + drop) / (2 * discordance)
    safe_k = np.maximum(k, 0)
    reject = np.where(k >= 0, bdtr(safe_k, totals, q) + bdtr(safe_k, totals, 1 - q), 0.0)
    return float(min(1.0, np.sum(weights * reject)))
