"""What the checks read: the evaluated sets, their domain comparisons, the optional sections
and the thresholds, gathered once by :func:`asl_eval.findings.find` into a
:class:`FindingsData`.

Imports numpy, pandas, :mod:`asl_eval.analysis`, :mod:`asl_eval.errors`,
:mod:`asl_eval.metrics` and :mod:`asl_eval.predictions`; never the report (above), nor the cam
or training stages (siblings): the optional sections are read as data.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from asl_eval.analysis import AnalysisResult
from asl_eval.errors import MetricError
from asl_eval.metrics import Evaluation, domain_comparison, evaluate
from asl_eval.predictions import Predictions

__all__ = [
    "DomainComparison",
    "EvaluatedSet",
    "FindingsData",
    "FindingsOptions",
    "FindingsSet",
    "Role",
    "SkipCheck",
    "gather",
]

Role = Literal["in-domain", "test"]


class SkipCheck(Exception):
    """Raised by a check that cannot run on this report; its message says what is missing."""


@dataclass(frozen=True)
class FindingsSet:
    """One evaluation set as given to :func:`~asl_eval.findings.find`.

    ``evaluation`` is the set's :func:`asl_eval.metrics.evaluate` result when the caller has
    it already (the report's); otherwise it is computed with the report's settings.
    """

    predictions: Predictions
    role: Role = "test"
    evaluation: Evaluation | None = None


@dataclass(frozen=True)
class EvaluatedSet:
    """One set with its metrics."""

    predictions: Predictions
    role: Role
    evaluation: Evaluation

    @property
    def name(self) -> str:
        return self.predictions.name

    @property
    def n_images(self) -> int:
        return self.predictions.n_images


@dataclass(frozen=True)
class DomainComparison:
    """The in-domain set against one other set: :func:`asl_eval.metrics.domain_comparison`'s
    per-class table (the report's per-class drop columns)."""

    in_domain: EvaluatedSet
    out_of_domain: EvaluatedSet
    table: pd.DataFrame


@dataclass(frozen=True)
class FindingsOptions:
    """The thresholds of the checks (docs/findings.md explains each).

    Attributes
    ----------
    alpha
        Family-wise error rate of every test (Holm across classes).
    max_interval_width
        A class whose Wilson interval is wider than this cannot support a conclusion.
    min_confusion_share, min_confusion_count
        A confusion is "concentrated" when at least this share of the class's errors, and at
        least this many images, go to one other class (and the test rejects an even spread).
    min_support, almost_never_share
        A class with at least ``min_support`` images is "given up" when it is predicted for at
        most ``almost_never_share`` of that many images (and the test rejects its own rate).
    collapse_share
        A set has "collapsed" onto a class predicted for at least this share of it (lower
        95% bound) and for at least twice as many images as the class has.
    high_confidence
        Confidence from which an error counts as a high-confidence error.
    min_overconfidence
        Smallest mean confidence minus accuracy reported as overconfidence.
    faithfulness_bounds
        Per faithfulness metric, the score at or beyond which a heatmap does not single out the
        pixels the model uses (ROAD: at or below; confidence drop: at or above).
    outside_mass_bound
        A heatmap with more than this share of its mass outside the hand is "on the background".
    n_worst_classes, n_evidence_images
        How many classes a sentence names and how many images a finding links to.
    """

    alpha: float = 0.05
    max_interval_width: float = 0.5
    min_confusion_share: float = 0.5
    min_confusion_count: int = 3
    min_support: int = 5
    almost_never_share: float = 0.1
    collapse_share: float = 0.25
    high_confidence: float = 0.9
    min_overconfidence: float = 0.05
    faithfulness_bounds: Mapping[str, float] = field(
        default_factory=lambda: {"road": 0.05, "confidence_drop": 0.5}
    )
    outside_mass_bound: float = 0.5
    n_worst_classes: int = 3
    n_evidence_images: int = 9

    def __post_init__(self) -> None:
        shares = {
            "alpha": self.alpha,
            "max_interval_width": self.max_interval_width,
            "min_confusion_share": self.min_confusion_share,
            "almost_never_share": self.almost_never_share,
            "collapse_share": self.collapse_share,
            "high_confidence": self.high_confidence,
            "outside_mass_bound": self.outside_mass_bound,
        }
        wrong = [f"{k}={v!r}" for k, v in shares.items() if not 0 < v < 1]
        if wrong:
            raise MetricError(
                f"findings options must lie strictly between 0 and 1; got {', '.join(wrong)}."
            )


@dataclass(frozen=True)
class FindingsData:
    """Everything a check reads."""

    sets: tuple[EvaluatedSet, ...]
    comparisons: tuple[DomainComparison, ...]
    sections: Mapping[str, AnalysisResult]
    options: FindingsOptions

    @property
    def in_domain(self) -> EvaluatedSet | None:
        """The (first) in-domain set, the reference of every comparison."""
        return next((s for s in self.sets if s.role == "in-domain"), None)


def _evaluated(given: FindingsSet) -> EvaluatedSet:
    evaluation = given.evaluation
    if evaluation is None:
        with warnings.catch_warnings():  # undefined values are NaN rows, read as such
            warnings.simplefilter("ignore", RuntimeWarning)
            evaluation = evaluate(given.predictions, n_top_losses=None)
    elif evaluation.name != given.predictions.name:
        raise MetricError(
            f"the evaluation of set {given.predictions.name!r} is named {evaluation.name!r}; "
            "pass each set's own evaluate() result."
        )
    return EvaluatedSet(given.predictions, given.role, evaluation)


def _check(sets: Sequence[FindingsSet]) -> None:
    if not sets:
        raise MetricError("find() needs at least one evaluation set.")
    names = [s.predictions.name for s in sets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise MetricError(f"evaluation set names must be unique; repeated: {repeated}.")
    classes = sets[0].predictions.classes
    other = next((s for s in sets if s.predictions.classes != classes), None)
    if other is not None:
        raise MetricError(
            f"set {other.predictions.name!r} has other classes than "
            f"{sets[0].predictions.name!r}; all sets must come from the same model."
        )


def gather(
    sets: Sequence[FindingsSet],
    sections: Mapping[str, AnalysisResult],
    options: FindingsOptions,
) -> FindingsData:
    """Evaluate the sets that need it and compare each other set with the first in-domain
    one, as the report does."""
    _check(sets)
    evaluated = tuple(_evaluated(s) for s in sets)
    reference = next((s for s in evaluated if s.role == "in-domain"), None)
    comparisons: list[DomainComparison] = []
    if reference is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for other in evaluated:
                if other.role != "in-domain":
                    table = domain_comparison(reference.predictions, other.predictions)
                    comparisons.append(DomainComparison(reference, other, table))
    return FindingsData(evaluated, tuple(comparisons), dict(sections), options)
