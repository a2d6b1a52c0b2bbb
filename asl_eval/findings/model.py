"""What a finding is: :class:`Finding` (one ranked, plain-language conclusion with its numbers
and evidence), :class:`Evidence` (where in the report it is proven), :class:`Skipped` (a check
that could not run, and why), and the ranking score they all share.

The score (:data:`SCORE_DEFINITION`) puts every kind of finding on one scale: the number of
evaluated images the finding accounts for, at the conservative end of its 95% interval. A
confusion, a calibration gap and a leakage share can then be ordered together.

Imports the standard library and :mod:`asl_eval.errors` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from asl_eval.errors import MetricError

__all__ = [
    "SCORE_DEFINITION",
    "SEVERITIES",
    "Evidence",
    "Finding",
    "Severity",
    "Skipped",
    "severity_for",
]

Severity = Literal["high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low", "info")

SCORE_DEFINITION = (
    "Findings are ranked by the number of evaluated images each accounts for, at the "
    "conservative end of its 95% interval (for example the lower bound of the accuracy drop "
    "times the out-of-domain images); ties keep the checks' registry order, then the ids."
)

#: Share of a set's images a finding must account for to be ``"high"`` (else ``"medium"``
#: from :data:`MEDIUM_SHARE`, else ``"low"``).
HIGH_SHARE = 0.10
MEDIUM_SHARE = 0.01


def severity_for(score: float, n_images: int) -> Severity:
    """The severity of a finding accounting for ``score`` of a set's ``n_images`` images.

    ``"high"`` from 10% of the set, ``"medium"`` from 1%, ``"low"`` below; ``"info"`` when the
    finding accounts for no image (a note about the evidence, not about the model).

    >>> severity_for(30.0, 100), severity_for(2.0, 100), severity_for(0.5, 100)
    ('high', 'medium', 'low')
    >>> severity_for(0.0, 100)
    'info'
    """
    if not score > 0 or n_images <= 0:
        return "info"
    share = score / n_images
    if share >= HIGH_SHARE:
        return "high"
    return "medium" if share >= MEDIUM_SHARE else "low"


@dataclass(frozen=True)
class Evidence:
    """Where a finding is proven: a section of the report and the rows or images behind it.

    Attributes
    ----------
    anchor
        The report section's HTML id without ``#`` (``"per-class"``, ``"confusion"``,
        ``"calibration"``, ``"cam"``, ``"leakage"``, ...).
    set_name
        The evaluation set the numbers come from ("" when the finding spans sets).
    classes
        The classes (rows of the section's tables) behind the finding.
    paths
        Image paths behind the finding (the highest-loss ones first), possibly none.
    """

    anchor: str
    set_name: str = ""
    classes: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One conclusion about the model or its evaluation, with its numbers.

    Attributes
    ----------
    id
        Stable identifier: the check, the set and the classes involved
        (``"confusion:massey:T>X"``); the same problem gets the same id in every run.
    check
        Key of the check that found it (:mod:`asl_eval.findings.registry`).
    severity
        :func:`severity_for` of the score and the set's size.
    score
        The ranking score (:data:`SCORE_DEFINITION`), in images, ``>= 0``.
    effect_name
        What ``effect`` measures, in words ("accuracy drop", "share predicted as X").
    effect, effect_low, effect_high
        The effect size and its 95% interval (NaN bounds when it has none).
    sentence
        One plain-text sentence with the numbers (rendered escaped; never markup).
    evidence
        Where the report proves it.
    suggestion
        What to try next, when something is known to help ("" otherwise).
    numbers
        The numbers behind the sentence, by name (for the JSON and the tests).
    """

    id: str
    check: str
    severity: Severity
    score: float
    effect_name: str
    effect: float
    effect_low: float
    effect_high: float
    sentence: str
    evidence: Evidence
    suggestion: str = ""
    numbers: Mapping[str, float | int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not math.isfinite(self.score) or self.score < 0:
            raise MetricError(
                f"finding {self.id!r} needs a finite score >= 0 (images); got {self.score!r}."
            )
        if self.severity not in SEVERITIES:
            raise MetricError(
                f"finding {self.id!r} has severity {self.severity!r}; expected one of "
                f"{', '.join(SEVERITIES)}."
            )


@dataclass(frozen=True)
class Skipped:
    """A check that did not run on this report, and what it would need."""

    check: str
    title: str
    reason: str
