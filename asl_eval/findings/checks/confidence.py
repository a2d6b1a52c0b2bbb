"""Checks on what each set's numbers can be trusted for: overconfidence (the confidence the
model claims against the accuracy it reaches) and classes with too few images to tell.

The ECE and the per-class intervals are the set's :class:`asl_eval.metrics.Evaluation` values,
the ones the report's calibration and per-class sections print.

Imports numpy and the findings' own modules.
"""

from __future__ import annotations

import math

import numpy as np

from asl_eval.findings.checks.common import make_finding
from asl_eval.findings.data import EvaluatedSet, FindingsData
from asl_eval.findings.model import Evidence, Finding
from asl_eval.findings.registry import Check, register_check
from asl_eval.findings.stats import conservative_images, mann_whitney, mean_interval
from asl_eval.findings.wording import names, percent, points, points_interval, pvalue, say, suggest

__all__ = ["MIN_IMAGES_FOR_CALIBRATION", "overconfidence", "too_few_images"]

#: Sets smaller than this are not judged for overconfidence.
MIN_IMAGES_FOR_CALIBRATION = 10


def _separation(wrong: np.ndarray, right: np.ndarray) -> str:
    if wrong.size == 0 or right.size == 0:
        return "every prediction was " + ("right" if wrong.size == 0 else "wrong")
    _, p_value = mann_whitney(wrong, right)
    return (
        f"wrong predictions had a median confidence of {percent(float(np.median(wrong)))} "
        f"against {percent(float(np.median(right)))} for right ones (Mann-Whitney p "
        f"{pvalue(p_value)})"
    )


def _overconfident(data: FindingsData, evaluated: EvaluatedSet) -> list[Finding]:
    predictions, options = evaluated.predictions, data.options
    if predictions.n_images < MIN_IMAGES_FOR_CALIBRATION:
        return []
    confidence = predictions.confidence
    correct = predictions.y_true == predictions.y_pred
    gap, low, high = mean_interval(confidence - correct)
    if not (math.isfinite(low) and low > 0 and gap >= options.min_overconfidence):
        return []
    wrong, right = confidence[~correct], confidence[correct]
    high_errors = np.flatnonzero(~correct & (confidence >= options.high_confidence))
    order = high_errors[np.argsort(-confidence[high_errors], kind="stable")]
    ece = evaluated.evaluation.ece
    sentence = say(
        "overconfidence",
        set=evaluated.name,
        confidence=percent(float(confidence.mean())),
        acc=percent(evaluated.evaluation.overall.accuracy),
        gap=points(gap),
        ci=points_interval(low, high),
        ece=f"{ece:.3f}",
        h=high_errors.size,
        errors=int(wrong.size),
        threshold=percent(options.high_confidence),
        separation=_separation(wrong, right),
    )
    auc, p_value = mann_whitney(wrong, right)
    return [
        make_finding(
            f"overconfidence:{evaluated.name}",
            "overconfidence",
            score=conservative_images(predictions.n_images, low),
            n_images=predictions.n_images,
            effect=("mean confidence minus accuracy", gap, low, high),
            sentence=sentence,
            evidence=Evidence(
                "calibration",
                evaluated.name,
                (),
                tuple(predictions.paths[i] for i in order[: options.n_evidence_images]),
            ),
            suggestion=suggest("overconfidence"),
            numbers={
                "ece": ece,
                "mean_confidence": float(confidence.mean()),
                "accuracy": evaluated.evaluation.overall.accuracy,
                "n_high_confidence_errors": int(high_errors.size),
                "mann_whitney_auc": auc,
                "mann_whitney_p": p_value,
            },
        )
    ]


def overconfidence(data: FindingsData) -> list[Finding]:
    """Sets where the model is surer than it is right: the mean over images of (confidence
    minus correct), with its Student-t interval, is at least ``min_overconfidence`` and its
    lower bound above 0. The sentence adds the set's ECE, its errors made with a confidence of
    ``high_confidence`` or more (the evidence images, surest first) and a Mann-Whitney test of
    the confidence of wrong against right predictions. Scored by ``n * lower bound``: the
    images the model claims beyond those it gets right."""
    return [f for s in data.sets for f in _overconfident(data, s)]


def _too_few(data: FindingsData, evaluated: EvaluatedSet) -> list[Finding]:
    table = evaluated.evaluation.per_class
    width = table["ci_high"] - table["ci_low"]
    wide = table[(table["support"] > 0) & (width > data.options.max_interval_width)]
    if wide.empty:
        return []
    listed = [
        f"{name} ({int(row['support'])} image{'s' if int(row['support']) != 1 else ''})"
        for name, row in wide.iterrows()
    ]
    sentence = say(
        "too-few",
        set=evaluated.name,
        m=len(wide),
        k=len(table),
        width=points(data.options.max_interval_width),
        classes=names(listed),
    )
    return [
        make_finding(
            f"too-few:{evaluated.name}",
            "too-few",
            score=0.0,
            n_images=evaluated.n_images,
            effect=("classes with too wide an interval", len(wide), math.nan, math.nan),
            sentence=sentence,
            evidence=Evidence("per-class", evaluated.name, tuple(str(c) for c in wide.index)),
            suggestion=suggest("too-few"),
            numbers={"n_classes": len(wide), "max_interval_width": data.options.max_interval_width},
        )
    ]


def too_few_images(data: FindingsData) -> list[Finding]:
    """Per set, the classes whose Wilson interval (the per-class table's) is wider than
    ``max_interval_width``: no conclusion about them holds. A note about the evidence, so its
    score is 0 and it ranks after every finding about the model."""
    return [f for s in data.sets for f in _too_few(data, s)]


register_check(Check("overconfidence", "overconfidence", overconfidence, order=50))
register_check(Check("too-few", "classes with too few images to tell", too_few_images, order=60))
