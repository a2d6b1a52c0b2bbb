"""Small helpers the checks share: picking evidence images and building a finding from its
numbers.

Imports numpy and the findings' own modules.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from asl_eval.findings.model import Evidence, Finding, severity_for
from asl_eval.predictions import Predictions

__all__ = ["evidence_paths", "make_finding"]


def evidence_paths(
    predictions: Predictions,
    n: int,
    *,
    true_class: str | None = None,
    pred_class: str | None = None,
    wrong_only: bool = True,
) -> tuple[str, ...]:
    """Up to ``n`` image paths of ``predictions`` (misclassified ones by default) of the given
    true and predicted class, highest loss first (ties keep the set's order)."""
    keep = np.ones(predictions.n_images, dtype=bool)
    if wrong_only:
        keep &= predictions.y_true != predictions.y_pred
    if true_class is not None:
        keep &= predictions.y_true == predictions.classes.index(true_class)
    if pred_class is not None:
        keep &= predictions.y_pred == predictions.classes.index(pred_class)
    rows = np.flatnonzero(keep)
    order = rows[np.argsort(-predictions.loss[rows], kind="stable")]
    return tuple(predictions.paths[i] for i in order[:n])


def make_finding(
    finding_id: str,
    check: str,
    *,
    score: float,
    n_images: int,
    effect: tuple[str, float, float, float],
    sentence: str,
    evidence: Evidence,
    suggestion: str = "",
    numbers: Mapping[str, float | int | str] | None = None,
) -> Finding:
    """A :class:`Finding` whose severity follows from its score and its set's size;
    ``effect`` is ``(name, value, low, high)``."""
    name, value, low, high = effect
    return Finding(
        id=finding_id,
        check=check,
        severity=severity_for(score, n_images),
        score=float(score),
        effect_name=name,
        effect=float(value),
        effect_low=float(low),
        effect_high=float(high),
        sentence=sentence,
        evidence=evidence,
        suggestion=suggestion,
        numbers=dict(numbers or {}),
    )
