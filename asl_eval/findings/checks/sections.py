"""Checks on the optional sections, read as data (never by importing their stages): Grad-CAM
(``"cam"``) and the leakage audit (``"leakage"``). (The robustness sweep's check lives in
:mod:`asl_eval.findings.checks.robustness`.)

Each is registered with the section it ``requires``; without it, it is skipped with a note.
A section present without the numbers a check needs makes it raise
:class:`~asl_eval.findings.data.SkipCheck`, naming what is missing.

Imports numpy, pandas and the findings' own modules.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import numpy as np
import pandas as pd

from asl_eval.analysis import AnalysisResult, number_or_nan
from asl_eval.findings.checks.common import make_finding
from asl_eval.findings.data import FindingsData, SkipCheck
from asl_eval.findings.model import Evidence, Finding
from asl_eval.findings.registry import Check, register_check
from asl_eval.findings.stats import conservative_images, newcombe_difference
from asl_eval.findings.wording import interval, percent, points, points_interval, say, suggest
from asl_eval.metrics import wilson_interval

__all__ = [
    "LEAKAGE_ANCHOR",
    "OUTSIDE_MASS_COLUMN",
    "cam_background",
    "cam_faithfulness",
    "leakage",
]

#: The per-image column of the cam section's items the background check reads: the share of
#: the predicted class's heatmap mass outside the hand's foreground estimate (0 to 1).
OUTSIDE_MASS_COLUMN = "outside_mass_pred"

#: The HTML id of the report's leakage-audit section.
LEAKAGE_ANCHOR = "leakage"


def _explained(result: AnalysisResult, column: str) -> pd.DataFrame:
    """The cam section's gallery images (each path once) with a finite ``column``."""
    items = result.items
    if column not in items.columns:
        raise SkipCheck(
            f"the Grad-CAM section has no per-image {column!r} column "
            f"(it has: {', '.join(map(str, items.columns))})."
        )
    rows = items[items["group"] == "class"].drop_duplicates("path")
    values = pd.to_numeric(rows[column], errors="coerce")
    return rows[np.isfinite(values.to_numpy(dtype=np.float64))]


def _set_size(data: FindingsData, name: str, fallback: int) -> int:
    return next((s.n_images for s in data.sets if s.name == name), fallback)


def cam_faithfulness(data: FindingsData) -> list[Finding]:
    """Most explained images' heatmaps do not single out what the model uses: the share of
    gallery images whose faithfulness is at or beyond the metric's bound
    (``faithfulness_bounds``) has a lower Wilson bound above 1/2."""
    result = data.sections["cam"]
    summary = result.summary_record()
    metric = str(summary.get("faithfulness_metric", ""))
    bound = data.options.faithfulness_bounds.get(metric)
    if bound is None:
        raise SkipCheck(f"the Grad-CAM section has no faithfulness scores (metric {metric!r}).")
    rows = _explained(result, "faithfulness_pred")
    scores = rows["faithfulness_pred"].to_numpy(dtype=np.float64)
    higher = bool(summary.get("faithfulness_higher_is_better", True))
    unfaithful = scores <= bound if higher else scores >= bound
    n, u = int(scores.size), int(unfaithful.sum())
    if n == 0:
        return []
    low, high = wilson_interval(u, n)
    if not low > 0.5:
        return []
    set_name = str(summary.get("ood_set", ""))
    order = np.argsort(scores if higher else -scores, kind="stable")
    sentence = say(
        "cam-faithfulness",
        set=set_name,
        u=u,
        n=n,
        direction="at or below" if higher else "at or above",
        bound=bound,
        metric=metric,
        share=percent(u / n),
        ci=interval(low, high),
        mean=f"{scores.mean():.3f}",
    )
    return [
        make_finding(
            f"cam-faithfulness:{set_name}",
            "cam-faithfulness",
            score=conservative_images(n, low),
            n_images=_set_size(data, set_name, n),
            effect=("share of unfaithful heatmaps", u / n, low, high),
            sentence=sentence,
            evidence=Evidence(
                "cam",
                set_name,
                tuple(str(c) for c in rows["class"].drop_duplicates()),
                tuple(str(rows["path"].iloc[i]) for i in order[: data.options.n_evidence_images]),
            ),
            suggestion=suggest("cam-faithfulness"),
            numbers={"metric": metric, "bound": bound, "mean": float(scores.mean())},
        )
    ]


def cam_background(data: FindingsData) -> list[Finding]:
    """Heatmaps on the background: among the explained images, the share whose heatmap has
    more than ``outside_mass_bound`` of its mass outside the hand (column
    :data:`OUTSIDE_MASS_COLUMN`) is larger for misclassified images than for correct ones
    (Newcombe's interval of the difference above 0). Scored by the misclassified images times
    the lower bound."""
    result = data.sections["cam"]
    rows = _explained(result, OUTSIDE_MASS_COLUMN)
    outside = rows[OUTSIDE_MASS_COLUMN].to_numpy(dtype=np.float64) > data.options.outside_mass_bound
    wrong = ~rows["correct"].to_numpy(dtype=bool)
    a, n_a = int((outside & wrong).sum()), int(wrong.sum())
    b, n_b = int((outside & ~wrong).sum()), int((~wrong).sum())
    diff, low, high = newcombe_difference(a, n_a, b, n_b)
    if not (math.isfinite(low) and low > 0):
        return []
    set_name = str(result.summary_record().get("ood_set", ""))
    paths = rows["path"][outside & wrong].astype(str).tolist()
    sentence = say(
        "cam-background",
        set=set_name,
        a=a,
        n_a=n_a,
        share_a=percent(a / n_a),
        b=b,
        n_b=n_b,
        share_b=percent(b / n_b),
        diff=points(diff),
        ci=points_interval(low, high),
    )
    return [
        make_finding(
            f"cam-background:{set_name}",
            "cam-background",
            score=conservative_images(n_a, low),
            n_images=_set_size(data, set_name, n_a + n_b),
            effect=("more heatmaps off the hand when wrong", diff, low, high),
            sentence=sentence,
            evidence=Evidence("cam", set_name, (), tuple(paths[: data.options.n_evidence_images])),
            suggestion=suggest("cam-background"),
            numbers={"wrong_outside": a, "wrong": n_a, "right_outside": b, "right": n_b},
        )
    ]


def _leakage_finding(
    data: FindingsData, result: AnalysisResult, row: Mapping[Hashable, object]
) -> list[Finding]:
    name = str(row["set"])
    n, n_near = int(number_or_nan(row, "n_evaluated")), int(number_or_nan(row, "near_duplicates"))
    accuracy = number_or_nan(row, "accuracy")
    adjusted = number_or_nan(row, "leak_adjusted_accuracy")
    adjusted_low = number_or_nan(row, "leak_adjusted_accuracy_low")
    adjusted_high = number_or_nan(row, "leak_adjusted_accuracy_high")
    inflation, low, high = accuracy - adjusted, accuracy - adjusted_high, accuracy - adjusted_low
    if n <= 0 or n_near <= 0 or not (math.isfinite(low) and low > 0):
        return []
    items = result.items
    flagged = items[(items["set"] == name) & items["near_duplicate"].astype(bool)]
    flagged = flagged.sort_values(["phash_distance", "dhash_distance"], kind="stable")
    sentence = say(
        "leakage",
        set=name,
        d=n_near,
        n=int(number_or_nan(row, "n_images")),
        share=percent(number_or_nan(row, "near_duplicate_share")),
        acc=percent(accuracy),
        adjusted=percent(adjusted),
        ci_adjusted=interval(adjusted_low, adjusted_high),
        inflation=points(inflation),
        ci=points_interval(low, high),
    )
    return [
        make_finding(
            f"leakage:{name}",
            "leakage",
            score=conservative_images(n, low),
            n_images=n,
            effect=("accuracy inflation", inflation, low, high),
            sentence=sentence,
            evidence=Evidence(
                LEAKAGE_ANCHOR,
                name,
                (),
                tuple(flagged["path"].astype(str)[: data.options.n_evidence_images]),
            ),
            suggestion=suggest("leakage"),
            numbers={"accuracy": accuracy, "leak_adjusted_accuracy": adjusted},
        )
    ]


def leakage(data: FindingsData) -> list[Finding]:
    """Accuracy inflated by near-duplicates of training frames, per audited set with
    predictions: the set's accuracy minus its leak-adjusted accuracy (both the audit's), with
    the leak-adjusted interval (group-aware) carried over; a finding when even its lower end is
    above 0. Scored by the evaluated images times that lower end."""
    result = data.sections["leakage"]
    sets = result.info.get("sets")
    if not isinstance(sets, pd.DataFrame) or "leak_adjusted_accuracy" not in sets.columns:
        raise SkipCheck("the leakage section has no per-set leak-adjusted accuracy (info['sets']).")
    return [
        f for row in sets.to_dict(orient="records") for f in _leakage_finding(data, result, row)
    ]


register_check(
    Check(
        "cam-background",
        "Grad-CAM heatmaps on the background",
        cam_background,
        order=70,
        requires=("cam",),
        missing="no Grad-CAM section in this report.",
    )
)
register_check(
    Check(
        "cam-faithfulness",
        "unfaithful Grad-CAM heatmaps",
        cam_faithfulness,
        order=75,
        requires=("cam",),
        missing="no Grad-CAM section in this report.",
    )
)
register_check(
    Check(
        "leakage",
        "validation inflated by near-duplicates",
        leakage,
        order=80,
        requires=("leakage",),
        missing="no leakage audit in this report (asl-eval audit).",
    )
)
