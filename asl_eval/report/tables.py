"""The report's tables and sentences as plain values: every lookup, comparison and bit of
arithmetic the page needs happens here, so the template only loops and prints.

Imports :mod:`asl_eval.metrics` (the Wilson interval), the findings' statistics (Newcombe's
interval, Fisher's smallest p: the findings quote the same numbers), the report's dataclasses
and its number formatting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from asl_eval import metrics
from asl_eval.findings.stats import fisher_min_p_value, newcombe_difference
from asl_eval.report.data import (
    ClassCell,
    ClassRow,
    Comparison,
    ComparisonRow,
    GapCell,
    LedgerRow,
    PredictedClass,
    PredictedClasses,
)
from asl_eval.report.formatting import fmt_interval, fmt_percent

__all__ = [
    "bootstrap_note",
    "class_rows",
    "comparison_rows",
    "confused_pairs_by_loss",
    "headline_sentence",
    "ledger_rows",
    "predicted_classes",
    "uncertainty_note",
]

#: The family-wise error rate of the report's per-class drop tests (metrics.domain_comparison).
ALPHA = 0.05


def _row(table: pd.DataFrame, name: str) -> pd.Series:
    """The row of class ``name`` (tables are indexed by class, one row each)."""
    row = table.loc[name]
    if not isinstance(row, pd.Series):
        raise TypeError(f"class {name!r} appears more than once in a per-class table")
    return row


def _cell(row: pd.Series) -> ClassCell:
    return ClassCell(
        accuracy=float(row["accuracy"]),
        ci_low=float(row["ci_low"]),
        ci_high=float(row["ci_high"]),
        correct=int(row["correct"]),
        support=int(row["support"]),
    )


def _gap(row: pd.Series) -> GapCell:
    drop = float(row["drop"])
    significant = bool(row["significant"]) and math.isfinite(drop)
    dropped, gained = significant and drop > 0, significant and drop < 0
    return GapCell(
        drop=drop,
        p_adjusted=float(row["p_adjusted"]),
        significant_drop=dropped,
        marker=" *" if dropped else (" +" if gained else ""),
    )


def class_rows(
    classes: Sequence[str],
    per_class: Sequence[pd.DataFrame],
    comparisons: Sequence[Comparison],
) -> tuple[ClassRow, ...]:
    """The per-class table: for every class (in the model's order) a cell per set (its
    :func:`metrics.per_class_accuracy` table) and a gap cell per comparison."""
    return tuple(
        ClassRow(
            position=position,
            name=name,
            cells=tuple(_cell(_row(table, name)) for table in per_class),
            gaps=tuple(_gap(_row(comparison.table, name)) for comparison in comparisons),
        )
        for position, name in enumerate(classes)
    )


def _comparison_cell(row: pd.Series, side: str) -> ClassCell:
    """The ``"in"`` or ``"out"`` side of one row of a domain comparison, with its interval."""
    correct, support = int(row[f"correct_{side}"]), int(row[f"support_{side}"])
    low, high = metrics.wilson_interval(correct, support) if support else (math.nan, math.nan)
    return ClassCell(
        accuracy=float(row[f"accuracy_{side}"]),
        ci_low=low,
        ci_high=high,
        correct=correct,
        support=support,
    )


def comparison_rows(
    classes: Sequence[str], table: pd.DataFrame, *, alpha: float = ALPHA
) -> tuple[tuple[ComparisonRow, ...], int]:
    """One comparison's compact table: per class (in the model's order) its accuracy in both
    sets, the drop with Newcombe's interval and the Holm-adjusted p-value; and how many of
    the compared classes are too small for a drop to be detected on their own.

    ``table`` is a :func:`metrics.domain_comparison` result. A class is "too few to tell" when
    Fisher's smallest attainable p-value at its two sizes is at or above ``alpha / m`` (``m``
    classes with images in both sets): Holm's first step, as the findings' ``too-few-drop``.
    """
    compared = int(((table["support_in"] > 0) & (table["support_out"] > 0)).sum())
    bound = alpha / max(compared, 1)
    rows = []
    for position, name in enumerate(classes):
        row = _row(table, name)
        inside, outside = _comparison_cell(row, "in"), _comparison_cell(row, "out")
        _, low, high = newcombe_difference(
            inside.correct, inside.support, outside.correct, outside.support
        )
        gap = _gap(row)
        tested = inside.support > 0 and outside.support > 0
        rows.append(
            ComparisonRow(
                position=position,
                name=name,
                inside=inside,
                outside=outside,
                drop=float(row["drop"]),
                drop_low=low,
                drop_high=high,
                p_adjusted=gap.p_adjusted,
                significant_drop=gap.significant_drop,
                marker=gap.marker,
                too_few=tested and fisher_min_p_value(inside.support, outside.support) >= bound,
            )
        )
    return tuple(rows), sum(r.too_few for r in rows)


def predicted_classes(confusion: pd.DataFrame, *, n_top: int = 5) -> PredictedClasses:
    """The distribution of a set's predictions from its confusion matrix (rows: true class,
    columns: predicted class, counts), with the chance and majority-class accuracies.

    >>> counts = pd.DataFrame([[1, 3, 0], [0, 4, 0], [0, 1, 1]], index=list("ABC"),
    ...                       columns=list("ABC"))
    >>> found = predicted_classes(counts, n_top=2)
    >>> [(c.name, c.predicted, c.support) for c in found.top], found.n_distinct
    ([('B', 8, 4), ('A', 1, 4)], 3)
    >>> round(found.chance_accuracy, 4), found.majority_class, found.majority_accuracy
    (0.3333, 'A', 0.4)
    """
    counts = confusion.to_numpy(dtype=np.int64)
    names = [str(c) for c in confusion.columns]
    predicted, support = counts.sum(axis=0), counts.sum(axis=1)
    n = int(counts.sum())
    order = np.argsort(-predicted, kind="stable")
    top = tuple(
        PredictedClass(
            names[i], int(predicted[i]), predicted[i] / n if n else math.nan, int(support[i])
        )
        for i in order[:n_top]
        if predicted[i] > 0
    )
    majority = int(np.argmax(support)) if len(support) else 0
    return PredictedClasses(
        n_images=n,
        n_classes=len(names),
        n_distinct=int((predicted > 0).sum()),
        top=top,
        chance_accuracy=1.0 / len(names) if names else math.nan,
        majority_class=names[majority] if names else "",
        majority_accuracy=float(support[majority] / n) if n else math.nan,
    )


def confused_pairs_by_loss(pairs: pd.DataFrame, losses: pd.DataFrame) -> pd.DataFrame:
    """The most-confused-pairs table (:attr:`metrics.Evaluation.confused_pairs`) with each
    pair's summed ``loss`` (from the per-image ``losses`` table) and pairs with as many images
    ordered by it, highest first (the class order after that).

    >>> pairs = pd.DataFrame({"actual": ["A", "B"], "predicted": ["B", "A"], "count": [1, 1]})
    >>> losses = pd.DataFrame({"actual": ["A", "B"], "predicted": ["B", "A"], "loss": [0.5, 2.0]})
    >>> confused_pairs_by_loss(pairs, losses)[["actual", "loss"]].values.tolist()
    [['B', 2.0], ['A', 0.5]]
    """
    summed = losses.groupby(["actual", "predicted"], sort=False)["loss"].sum()
    keys = list(zip(pairs["actual"], pairs["predicted"], strict=True))
    table = pairs.assign(loss=[float(summed.get(key, math.nan)) for key in keys])
    ordered = table.assign(_order=np.arange(len(table))).sort_values(
        ["count", "loss", "_order"], ascending=[False, False, True], kind="stable"
    )
    return ordered.drop(columns="_order").reset_index(drop=True)


def ledger_rows(frame: pd.DataFrame) -> tuple[LedgerRow, ...]:
    """The files of a :meth:`Ledger.to_frame` table that were not evaluated."""
    kept = frame[frame["status"] != "evaluated"]
    return tuple(
        LedgerRow(
            path=str(row["path"]),
            status=str(row["status"]),
            reason=str(row["reason"] or ""),
            label=None if row["label"] is None or pd.isna(row["label"]) else str(row["label"]),
        )
        for row in kept.to_dict(orient="records")
    )


def _set_width(name: str, n: int) -> str:
    """One set's part of :func:`uncertainty_note`."""
    if n == 1:
        low, high = metrics.wilson_interval(1, 1)
        return (
            f"{name} (1 image per class): 0 of 1 right gives 0–{100 * (1 - low):.0f}%, 1 of 1 "
            f"gives {100 * low:.0f}–{100 * high:.0f}%"
        )
    half = n // 2
    low, high = metrics.wilson_interval(half, n)
    return (
        f"{name} (about {n} images per class): {half} of {n} right gives "
        f"{100 * low:.0f}–{100 * high:.0f}% (about ±{50 * (high - low):.0f} points)"
    )


def uncertainty_note(supports: Sequence[tuple[str, int]]) -> str:
    """How wide a per-class interval is at each set's own typical class size (its median
    class size, ``(set name, size)`` per set); empty without images.

    >>> uncertainty_note([("valid", 20), ("official", 1)])
    'Per-class 95% Wilson intervals at each set’s typical class size: valid (about 20 images \
per class): 10 of 20 right gives 30–70% (about ±20 points); official (1 image per class): 0 of \
1 right gives 0–79%, 1 of 1 gives 21–100%. Differences between classes smaller than that are \
not evidence of anything.'
    >>> uncertainty_note([])
    ''
    """
    parts = [_set_width(name, n) for name, n in supports if n > 0]
    if not parts:
        return ""
    return (
        "Per-class 95% Wilson intervals at each set’s typical class size: "
        + "; ".join(parts)
        + ". Differences between classes smaller than that are not evidence of anything."
    )


def bootstrap_note(runs: Sequence[tuple[int, int]]) -> str:
    """What the macro-F1 intervals are, from each set's ``(n_resamples, seed)``.

    >>> bootstrap_note([(1000, 0), (1000, 0)])
    'Macro-F1 intervals: percentile bootstrap over the images, 1000 resamples (seed 0).'
    >>> bootstrap_note([])
    ''
    """
    described = sorted({f"{n} resamples (seed {seed})" for n, seed in runs})
    if not described:
        return ""
    return f"Macro-F1 intervals: percentile bootstrap over the images, {'; '.join(described)}."


def _drop_text(name: str, n: int, total: int, too_few: int) -> str:
    if total and too_few >= total:
        return f"too few images per class on {name} to tell which classes drop"
    text = f"{n} of {total} classes drop significantly on {name}"
    return text + (f" ({too_few} too few to tell)" if too_few else "")


def headline_sentence(
    accuracies: Sequence[tuple[str, float, tuple[float, float]]],
    drops: Sequence[tuple[str, int, int]] = (),
    too_few: Sequence[int] = (),
) -> str:
    """One sentence: accuracy per set ``(name, accuracy, interval)`` with its interval, and
    per comparison ``(out-of-domain set, n_significant, n_compared)`` how many classes drop;
    ``too_few`` (per comparison) says how many of them are too small for any drop to be
    detected: when all are, the sentence says so instead of counting no drop.

    >>> headline_sentence([("a", 0.5, (0.4, 0.6))], [("a", 0, 28)], [28])
    '50.0% (40.0–60.0) on a; too few images per class on a to tell which classes drop.'

    >>> headline_sentence([("valid", 0.999, (0.99, 1.0)), ("test", 0.62, (0.587, 0.652))])
    '99.9% (99.0–100.0) on valid, 62.0% (58.7–65.2) on test.'
    >>> headline_sentence([("test", 0.5, (0.4, 0.6))], [("test", 3, 29)])
    '50.0% (40.0–60.0) on test; 3 of 29 classes drop significantly on test.'
    """
    parts = []
    for name, accuracy, interval in accuracies:
        text = fmt_interval(interval)
        text = f" ({text})" if text != "–" else ""
        parts.append(f"{fmt_percent(accuracy)}{text} on {name}")
    sentence = ", ".join(parts)
    few = list(too_few) + [0] * (len(drops) - len(too_few))
    counts = [
        _drop_text(name, n, total, k) for (name, n, total), k in zip(drops, few, strict=False)
    ]
    if counts:
        sentence += "; " + "; ".join(counts)
    return sentence + "."
