"""The report's tables and sentences as plain values: every lookup, comparison and bit of
arithmetic the page needs happens here, so the template only loops and prints.

Imports :mod:`asl_eval.metrics` (the Wilson interval), the report's dataclasses and its number
formatting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from asl_eval import metrics
from asl_eval.report.data import ClassCell, ClassRow, Comparison, GapCell, LedgerRow
from asl_eval.report.formatting import fmt_interval, fmt_percent

__all__ = [
    "bootstrap_note",
    "class_rows",
    "headline_sentence",
    "ledger_rows",
    "uncertainty_note",
]


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


def uncertainty_note(supports: Sequence[int]) -> str:
    """How wide a per-class interval is at the typical class size (the largest of the given
    median class sizes); empty without images.

    >>> uncertainty_note([30])[:60]
    'With about 30 images per class, a class with 15 of 30 right '
    >>> uncertainty_note([])
    ''
    """
    n = max(supports, default=0)
    if n <= 0:
        return ""
    half = n // 2
    low, high = metrics.wilson_interval(half, n)
    return (
        f"With about {n} images per class, a class with {half} of {n} right "
        f"({100 * half / n:.0f}%) has a 95% Wilson interval of {100 * low:.0f}–{100 * high:.0f}% "
        f"(about ±{50 * (high - low):.0f} points): differences between classes smaller than "
        "that are not evidence of anything."
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


def headline_sentence(
    accuracies: Sequence[tuple[str, float, tuple[float, float]]],
    drops: Sequence[tuple[str, int, int]] = (),
) -> str:
    """One sentence: accuracy per set ``(name, accuracy, interval)`` with its interval, and
    per comparison ``(out-of-domain set, n_significant, n_compared)`` how many classes drop.

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
    counts = [f"{n} of {total} classes drop significantly on {name}" for name, n, total in drops]
    if counts:
        sentence += "; " + "; ".join(counts)
    return sentence + "."
