"""Checks on the domain comparisons: the out-of-domain drop overall and per class, and the
classes too small for any drop to be detected.

Each comparison is the report's: :func:`asl_eval.metrics.domain_comparison` of the first
in-domain set against one other set (Fisher's exact test per class, Holm across classes).

Imports numpy, pandas, scipy (inside the functions) and the findings' own modules.
"""

from __future__ import annotations

import math

import pandas as pd

from asl_eval.findings.checks.common import evidence_paths, make_finding
from asl_eval.findings.data import DomainComparison, FindingsData
from asl_eval.findings.model import Evidence, Finding
from asl_eval.findings.registry import Check, register_check
from asl_eval.findings.stats import conservative_images, fisher_min_p_value, newcombe_difference
from asl_eval.findings.wording import (
    names,
    percent,
    points,
    points_interval,
    pvalue,
    say,
    suggest,
)

__all__ = ["class_drops", "domain_drop", "untestable_drops"]


def _row(table: pd.DataFrame, name: str) -> dict[str, float]:
    """One class's row of a comparison table as numbers."""
    return {str(key): float(value) for key, value in table.loc[name].to_dict().items()}


def _significant_drops(comparison: DomainComparison, alpha: float) -> list[str]:
    """Classes whose drop is significant after Holm at ``alpha``, largest drop first."""
    table = comparison.table
    rows = table[(table["p_adjusted"] < alpha) & (table["drop"] > 0)]
    return [str(c) for c in rows.sort_values("drop", ascending=False, kind="stable").index]


def _worst_text(comparison: DomainComparison, worst: list[str], limit: int) -> str:
    if not worst:
        return "no single class drops significantly after Holm"
    rows = {c: _row(comparison.table, c) for c in worst[:limit]}
    parts = [f"{c} {int(r['correct_out'])} of {int(r['support_out'])}" for c, r in rows.items()]
    return f"worst classes: {names(parts, limit)}"


def _overall(comparison: DomainComparison, data: FindingsData) -> list[Finding]:
    from scipy.stats import fisher_exact

    inside = comparison.in_domain.evaluation.overall
    outside = comparison.out_of_domain.evaluation.overall
    drop, low, high = newcombe_difference(inside.correct, inside.n, outside.correct, outside.n)
    if not math.isfinite(drop) or drop <= 0:
        return []
    table = [
        [inside.correct, inside.n - inside.correct],
        [outside.correct, outside.n - outside.correct],
    ]
    p_value = float(fisher_exact(table).pvalue)
    if p_value >= data.options.alpha:
        return []
    options, out_name = data.options, comparison.out_of_domain.name
    worst = _significant_drops(comparison, options.alpha)
    shown = worst[: options.n_worst_classes]
    sentence = say(
        "domain-drop",
        acc_in=percent(inside.accuracy),
        in_set=comparison.in_domain.name,
        c_in=inside.correct,
        n_in=inside.n,
        acc_out=percent(outside.accuracy),
        out_set=out_name,
        c_out=outside.correct,
        n_out=outside.n,
        drop=points(drop),
        ci=points_interval(low, high),
        p=pvalue(p_value),
        worst=_worst_text(comparison, worst, options.n_worst_classes),
    )
    return [
        make_finding(
            f"domain-drop:{out_name}",
            "domain-drop",
            score=conservative_images(outside.n, low),
            n_images=outside.n,
            effect=("accuracy drop", drop, low, high),
            sentence=sentence,
            evidence=Evidence(
                "per-class",
                out_name,
                tuple(shown),
                _worst_paths(comparison, shown, options.n_evidence_images),
            ),
            suggestion=suggest("domain-drop"),
            numbers={
                "accuracy_in": inside.accuracy,
                "accuracy_out": outside.accuracy,
                "p_value": p_value,
                "n_significant_classes": len(worst),
            },
        )
    ]


def _worst_paths(comparison: DomainComparison, classes: list[str], n: int) -> tuple[str, ...]:
    predictions = comparison.out_of_domain.predictions
    paths: list[str] = []
    for name in classes:
        paths.extend(evidence_paths(predictions, n, true_class=name))
    return tuple(paths[:n])


def domain_drop(data: FindingsData) -> list[Finding]:
    """The overall accuracy drop of each out-of-domain set, when Fisher's exact test on the
    pooled counts rejects equal accuracy at alpha; names the classes with the largest
    significant (Holm) drops."""
    return [f for comparison in data.comparisons for f in _overall(comparison, data)]


def _class_drop(comparison: DomainComparison, name: str, data: FindingsData) -> Finding:
    row = _row(comparison.table, name)
    c_in, n_in = int(row["correct_in"]), int(row["support_in"])
    c_out, n_out = int(row["correct_out"]), int(row["support_out"])
    drop, low, high = newcombe_difference(c_in, n_in, c_out, n_out)
    out_name = comparison.out_of_domain.name
    sentence = say(
        "domain-drop-class",
        cls=name,
        acc_in=percent(row["accuracy_in"]),
        in_set=comparison.in_domain.name,
        c_in=c_in,
        n_in=n_in,
        acc_out=percent(row["accuracy_out"]),
        out_set=out_name,
        c_out=c_out,
        n_out=n_out,
        drop=points(row["drop"]),
        ci=points_interval(low, high),
        p=pvalue(row["p_adjusted"]),
    )
    return make_finding(
        f"class-drop:{out_name}:{name}",
        "class-drop",
        score=conservative_images(n_out, low),
        n_images=comparison.out_of_domain.n_images,
        effect=("accuracy drop", drop, low, high),
        sentence=sentence,
        evidence=Evidence(
            "per-class",
            out_name,
            (name,),
            evidence_paths(
                comparison.out_of_domain.predictions,
                data.options.n_evidence_images,
                true_class=name,
            ),
        ),
        suggestion=suggest("domain-drop-class", cls=name),
        numbers={
            "accuracy_in": row["accuracy_in"],
            "accuracy_out": row["accuracy_out"],
            "drop": row["drop"],
            "p_adjusted": row["p_adjusted"],
        },
    )


def class_drops(data: FindingsData) -> list[Finding]:
    """One finding per class whose out-of-domain drop is significant after Holm (the report's
    per-class drop columns), with Newcombe's interval of the drop."""
    return [
        _class_drop(comparison, name, data)
        for comparison in data.comparisons
        for name in _significant_drops(comparison, data.options.alpha)
    ]


def _untestable(comparison: DomainComparison, data: FindingsData) -> list[Finding]:
    table, alpha = comparison.table, data.options.alpha
    compared = table[(table["support_in"] > 0) & (table["support_out"] > 0)]
    bound = alpha / max(len(compared), 1)
    small = [
        str(name)
        for name, row in compared.iterrows()
        if fisher_min_p_value(int(row["support_in"]), int(row["support_out"])) >= bound
    ]
    if not small:
        return []
    out_name = comparison.out_of_domain.name
    sizes = {c: _row(table, c) for c in small}
    listed = [
        f"{c} ({int(r['support_in'])} and {int(r['support_out'])} images)" for c, r in sizes.items()
    ]
    sentence = say(
        "too-few-drop",
        m=len(small),
        k=len(compared),
        in_set=comparison.in_domain.name,
        out_set=out_name,
        bound=f"{bound:.2g}",
        classes=names(listed),
    )
    return [
        make_finding(
            f"too-few-drop:{out_name}",
            "too-few-drop",
            score=0.0,
            n_images=comparison.out_of_domain.n_images,
            effect=("classes that cannot show a drop", len(small), math.nan, math.nan),
            sentence=sentence,
            evidence=Evidence("per-class", out_name, tuple(small)),
            suggestion=suggest("too-few-drop"),
            numbers={"n_classes": len(small), "n_compared": len(compared), "bound": bound},
        )
    ]


def untestable_drops(data: FindingsData) -> list[Finding]:
    """The classes of each comparison where even a drop from 100% to 0% could not reach
    significance at their sizes, so "no significant drop" says nothing about them.

    A class is listed when Fisher's smallest attainable p-value at its two sizes is at or
    above ``alpha / m`` (``m`` compared classes): Holm's first step. Such a class can only be
    found significant after some other class has been, and never on its own.
    """
    return [f for comparison in data.comparisons for f in _untestable(comparison, data)]


register_check(Check("domain-drop", "out-of-domain accuracy drop", domain_drop, order=10))
register_check(Check("class-drop", "per-class out-of-domain drop", class_drops, order=20))
register_check(
    Check("too-few-drop", "classes too small to show a drop", untestable_drops, order=65)
)
