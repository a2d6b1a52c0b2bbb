"""Is a difference real? Two sets (domain gap) or two models (McNemar), with Holm adjustment.

- :func:`domain_comparison` / :func:`domain_gap_summary`: per-class accuracy in and out of
  domain, Fisher's exact test per class, Holm-adjusted across classes.
- :func:`mcnemar_test` / :func:`paired_class_differences`: two models on the same images, exact
  McNemar tests overall and per class.
- :func:`holm_adjust`: the step-down adjustment both use.

The per-class counts come from the confusion counts of each set, computed once per set.

May import: numpy, pandas, scipy (``scipy.stats`` / ``scipy.special`` inside the functions that
test, to keep ``import asl_eval.metrics`` quick), :mod:`asl_eval.errors`,
:mod:`asl_eval.predictions`, :mod:`.validation`, :mod:`.counts`. Never torch or fastai.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from asl_eval.errors import MetricError, first_few
from asl_eval.metrics.counts import (
    class_index,
    confusion_counts,
    safe_divide,
    warn_undefined,
)
from asl_eval.metrics.validation import (
    ArrayLike,
    LabelsOrPredictions,
    check_choice,
    check_confidence,
    check_predictions,
    encode_paired,
    encode_predictions,
)
from asl_eval.predictions import Predictions

__all__ = [
    "DomainGapSummary",
    "McNemarResult",
    "domain_comparison",
    "domain_gap_summary",
    "holm_adjust",
    "mcnemar_test",
    "paired_class_differences",
]


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


# ------------------------------------------------------------------------------------------
# Two sets: the domain gap
# ------------------------------------------------------------------------------------------
def _fisher_p_values(
    cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    compared: np.ndarray,
    alternative: Literal["two-sided", "greater"],
) -> np.ndarray:
    """Fisher's exact p-value per class from ``(correct_in, wrong_in, correct_out, wrong_out)``
    counts; NaN for the classes not ``compared``."""
    from scipy.stats import fisher_exact

    tables = np.stack(cells, axis=1).reshape(-1, 2, 2)
    p_values = np.full(compared.shape, np.nan)
    p_values[compared] = [
        fisher_exact(table, alternative=alternative).pvalue for table in tables[compared]
    ]
    return p_values


def _support_and_correct(predictions: Predictions) -> tuple[np.ndarray, np.ndarray]:
    encoded = encode_predictions(predictions)
    counts = confusion_counts(encoded.true, encoded.pred, encoded.n_classes)
    return counts.sum(axis=1), np.diagonal(counts).copy()


def _check_domain_arguments(
    in_domain: Predictions, out_of_domain: Predictions, alpha: float, alternative: str
) -> None:
    check_predictions(in_domain, "domain_comparison's in_domain")
    check_predictions(out_of_domain, "domain_comparison's out_of_domain")
    if tuple(in_domain.classes) != tuple(out_of_domain.classes):
        raise MetricError(
            "the two sets have different classes; evaluate both with the same model "
            f"({len(in_domain.classes)} vs {len(out_of_domain.classes)} classes)."
        )
    check_choice("alternative", alternative, ("two-sided", "greater"))
    check_confidence(alpha, "alpha")


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
    _check_domain_arguments(in_domain, out_of_domain, alpha, alternative)
    support_in, correct_in = _support_and_correct(in_domain)
    support_out, correct_out = _support_and_correct(out_of_domain)
    compared = (support_in > 0) & (support_out > 0)
    warn_undefined(
        "the domain drop",
        [c for c, ok in zip(in_domain.classes, compared, strict=True) if not ok],
        "without images in both sets",
    )
    p_values = _fisher_p_values(
        (correct_in, support_in - correct_in, correct_out, support_out - correct_out),
        compared,
        alternative,
    )
    table = _domain_table(
        in_domain.classes, (support_in, correct_in), (support_out, correct_out), p_values, alpha
    )
    return table.sort_values("drop", ascending=False, kind="stable", na_position="last")


def _domain_table(
    classes: Sequence[Hashable],
    inside: tuple[np.ndarray, np.ndarray],
    outside: tuple[np.ndarray, np.ndarray],
    p_values: np.ndarray,
    alpha: float,
) -> pd.DataFrame:
    """The :func:`domain_comparison` table from ``(support, correct)`` of each set, unsorted."""
    (support_in, correct_in), (support_out, correct_out) = inside, outside
    accuracy_in = safe_divide(correct_in, support_in)
    accuracy_out = safe_divide(correct_out, support_out)
    adjusted = holm_adjust(p_values)
    return pd.DataFrame(
        {
            "support_in": support_in,
            "correct_in": correct_in,
            "accuracy_in": accuracy_in,
            "support_out": support_out,
            "correct_out": correct_out,
            "accuracy_out": accuracy_out,
            "drop": accuracy_in - accuracy_out,
            "p_value": p_values,
            "p_adjusted": adjusted,
            "significant": np.nan_to_num(adjusted, nan=1.0) < alpha,
        },
        index=class_index(classes),
    )


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
        raise MetricError(
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
# Two models on the same images
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
    paired = encode_paired(y_true, pred_a, pred_b, classes)
    right_a, right_b = paired.pred_a == paired.true, paired.pred_b == paired.true
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    n = int(paired.true.size)
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
    paired = encode_paired(y_true, pred_a, pred_b, classes)
    true, k = paired.true, len(paired.classes)
    right_a, right_b = paired.pred_a == true, paired.pred_b == true
    support = np.bincount(true, minlength=k)
    only_a = np.bincount(true[right_a & ~right_b], minlength=k)
    only_b = np.bincount(true[~right_a & right_b], minlength=k)
    warn_undefined(
        "the paired difference",
        [c for c, s in zip(paired.classes, support, strict=True) if s == 0],
        "without images",
    )
    p_values = np.where(support > 0, _exact_mcnemar_p(only_a, only_b), np.nan)
    accuracy_a = safe_divide(np.bincount(true[right_a], minlength=k), support)
    accuracy_b = safe_divide(np.bincount(true[right_b], minlength=k), support)
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
        index=class_index(paired.classes),
    )
