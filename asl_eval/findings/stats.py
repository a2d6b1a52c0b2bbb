"""The few statistics the checks need beyond :mod:`asl_eval.metrics`: the interval of a
difference of two proportions, a mean's t-interval, the test of a concentrated confusion, the
smallest p-value Fisher's test can reach, and the conservative image count every score uses.

Every proportion's interval is the Wilson interval of :mod:`asl_eval.metrics` (the one the
report prints), so a finding's numbers equal its section's.

Imports numpy, scipy (inside the functions) and :mod:`asl_eval.metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from asl_eval.metrics import wilson_interval

__all__ = [
    "concentration_p_value",
    "conservative_images",
    "fisher_min_p_value",
    "mann_whitney",
    "mean_interval",
    "newcombe_difference",
]


def newcombe_difference(
    successes_1: int, n_1: int, successes_2: int, n_2: int
) -> tuple[float, float, float]:
    """``p1 - p2`` with Newcombe's hybrid score interval (his method 10), built from the two
    Wilson intervals; statsmodels' ``confint_proportions_2indep(method="newcomb")``.

    Returns ``(difference, low, high)``; NaN when either ``n`` is 0.

    >>> [round(x, 4) for x in newcombe_difference(19, 20, 3, 30)]
    [0.85, 0.607, 0.9273]
    """
    if n_1 == 0 or n_2 == 0:
        return math.nan, math.nan, math.nan
    p_1, p_2 = successes_1 / n_1, successes_2 / n_2
    low_1, high_1 = wilson_interval(successes_1, n_1)
    low_2, high_2 = wilson_interval(successes_2, n_2)
    difference = p_1 - p_2
    low = difference - math.sqrt((p_1 - low_1) ** 2 + (high_2 - p_2) ** 2)
    high = difference + math.sqrt((high_1 - p_1) ** 2 + (p_2 - low_2) ** 2)
    return difference, low, high


def mean_interval(values: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """The mean of ``values`` and its 95% Student-t interval; NaN bounds below two values.

    >>> [round(x, 4) for x in mean_interval([0.1, 0.2, 0.3, 0.4])]
    [0.25, 0.0446, 0.4554]
    """
    from scipy.stats import t

    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if data.size < 2:
        return mean, math.nan, math.nan
    half = float(t.ppf(0.975, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return mean, mean - half, mean + half


def concentration_p_value(top: int, errors: int, n_other: int) -> float:
    """P-value that a class's ``errors`` spread evenly over its ``n_other`` other classes
    would put ``top`` or more into the most frequent one.

    Under an even spread each other class gets ``Binomial(errors, 1/n_other)`` of them; the
    largest of the ``n_other`` counts reaches ``top`` with probability at most
    ``n_other * P[Binomial(errors, 1/n_other) >= top]`` (a union bound, so the test stays valid
    for the maximum, conservatively). 1 when there is no other class to prefer.

    >>> round(concentration_p_value(18, 20, 28), 12) < 1e-20
    True
    >>> concentration_p_value(2, 2, 1)
    1.0
    """
    from scipy.stats import binom

    if n_other <= 1 or errors <= 0 or top <= 0:
        return 1.0
    tail = float(binom.sf(top - 1, errors, 1.0 / n_other))
    return min(1.0, n_other * tail)


def fisher_min_p_value(n_1: int, n_2: int) -> float:
    """The smallest two-sided p-value Fisher's exact test can give two groups of ``n_1`` and
    ``n_2`` images: that of a drop from 100% to 0%. Above alpha, no drop could be detected.

    >>> fisher_min_p_value(1, 1)
    1.0
    >>> round(fisher_min_p_value(5, 5), 4)
    0.0079
    """
    from scipy.stats import fisher_exact

    if n_1 <= 0 or n_2 <= 0:
        return 1.0
    return float(fisher_exact([[n_1, 0], [0, n_2]]).pvalue)


def mann_whitney(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of ``first`` against ``second``: ``(auc, p_value)`` where
    ``auc = U / (n1 n2)`` is the probability that a value of ``first`` exceeds one of ``second``
    (ties count half); NaN when either is empty.

    >>> mann_whitney(np.array([0.9, 0.8]), np.array([0.1, 0.2]))[0]
    1.0
    """
    from scipy.stats import mannwhitneyu

    if first.size == 0 or second.size == 0:
        return math.nan, math.nan
    result = mannwhitneyu(first, second, alternative="two-sided")
    return float(result.statistic) / (first.size * second.size), float(result.pvalue)


def conservative_images(n_images: float, low: float) -> float:
    """The images an effect accounts for at the conservative end of its interval:
    ``n_images * low``, and 0 when the low end is at or below 0 or undefined.

    >>> conservative_images(30, 0.42), conservative_images(30, -0.1)
    (12.6, 0.0)
    """
    if not math.isfinite(low) or low <= 0 or n_images <= 0:
        return 0.0
    return float(n_images * low)
