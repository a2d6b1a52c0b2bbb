"""The report's data: plain dataclasses built from :class:`Predictions`, before any rendering.

Every number shown in the HTML and written to the JSON comes from :mod:`asl_eval.metrics`
here; templates only loop and print.
"""

from __future__ import annotations

import platform
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import pandas as pd

from asl_eval import metrics
from asl_eval.errors import ReportError
from asl_eval.hashing import file_sha256
from asl_eval.predictions import Predictions
from asl_eval.report.formatting import fmt_interval, fmt_percent

Role = Literal["in-domain", "test"]


class Section(Protocol):
    """An optional analysis shown in the report (the Grad-CAM gallery, ...): the template
    renders it, and ``summary()`` gives its numbers for the JSON."""

    def summary(self) -> Mapping[str, object]: ...


@dataclass(frozen=True)
class ModelInfo:
    """What the header says about the model."""

    path: str
    sha256: str
    arch: str
    classes: tuple[str, ...]
    input_size: str
    versions: Mapping[str, str]

    @classmethod
    def describe(
        cls,
        path: str | Path,
        *,
        arch: str,
        classes: Sequence[str],
        input_size: str,
        versions: Mapping[str, str],
    ) -> ModelInfo:
        """Fill in the file's sha256 (streamed, so large models are fine)."""
        return cls(
            path=str(path),
            sha256=file_sha256(path),
            arch=arch,
            classes=tuple(classes),
            input_size=input_size,
            versions=dict(versions),
        )


@dataclass(frozen=True)
class EvaluationSet:
    """One named set of predictions and its role in the comparison."""

    predictions: Predictions
    role: Role = "test"

    @property
    def name(self) -> str:
        return self.predictions.name


@dataclass(frozen=True)
class SetResult:
    """One evaluation set in the report: its metrics (a :class:`metrics.Evaluation`, computed
    once) and where it came from. The properties only name the numbers the page shows."""

    evaluation: metrics.Evaluation
    role: Role
    source: str
    ledger: Mapping[str, object]
    ledger_rows: pd.DataFrame

    name = property(lambda self: self.evaluation.name)
    n_images = property(lambda self: self.evaluation.overall.n)
    accuracy = property(lambda self: self.evaluation.overall.accuracy)
    accuracy_ci = property(
        lambda self: (self.evaluation.overall.ci_low, self.evaluation.overall.ci_high)
    )
    error_rate = property(lambda self: self.evaluation.overall.error_rate)
    macro_f1 = property(lambda self: self.evaluation.macro_f1)
    macro_f1_ci = property(lambda self: self.evaluation.macro_f1_ci)
    top5_accuracy = property(lambda self: self.evaluation.top_k_accuracy)
    ece = property(lambda self: self.evaluation.ece)
    brier_score = property(lambda self: self.evaluation.brier)
    log_loss = property(lambda self: self.evaluation.log_loss)
    per_class = property(lambda self: self.evaluation.per_class)
    classification = property(lambda self: self.evaluation.classification)
    confusion = property(lambda self: self.evaluation.confusion)
    most_confused = property(lambda self: self.evaluation.confused_pairs)
    reliability = property(lambda self: self.evaluation.reliability)
    losses = property(lambda self: self.evaluation.losses)
    """Every image, highest loss first."""


@dataclass(frozen=True)
class Comparison:
    """In-domain versus one out-of-domain set, per class.

    ``n_significant`` counts the classes whose accuracy drops significantly (a significant
    gain is not a drop); ``n_compared`` those with images in both sets.
    """

    in_domain: str
    out_of_domain: str
    table: pd.DataFrame
    n_significant: int
    n_compared: int


@dataclass(frozen=True)
class ReportContext:
    """Everything the templates and the JSON need; built once, rendered twice."""

    title: str
    model: ModelInfo
    command: str
    generated_at: str
    classes: tuple[str, ...]
    sets: tuple[SetResult, ...]
    comparisons: tuple[Comparison, ...]
    headline: str
    predictions: tuple[Predictions, ...]
    sections: Mapping[str, Section] = field(default_factory=dict)


def evaluate_set(evaluation: EvaluationSet, *, seed: int = 0) -> SetResult:
    """Compute every metric of one set (all classes of the model kept, in its order).

    Undefined values (a class without images, a class never predicted) are NaN and shown as
    such; the warnings :mod:`asl_eval.metrics` raises about them are not repeated here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _evaluate_set(evaluation, seed=seed)


def _evaluate_set(evaluation: EvaluationSet, *, seed: int) -> SetResult:
    p = evaluation.predictions
    return SetResult(
        evaluation=metrics.evaluate(p, n_top_losses=None, n_resamples=300, seed=seed),
        role=evaluation.role,
        source=p.source,
        ledger=p.ledger.summary(),
        ledger_rows=p.ledger.to_frame().query("status != 'evaluated'").reset_index(drop=True),
    )


def headline_sentence(sets: Sequence[SetResult], comparisons: Sequence[Comparison]) -> str:
    """One sentence: accuracy per set with its interval, and how many classes drop.

    >>> r = lambda name, role, acc, ci: type("R", (), {"name": name, "role": role,
    ...     "accuracy": acc, "accuracy_ci": ci, "source": ""})()
    >>> headline_sentence([r("valid", "in-domain", 0.999, (0.99, 1.0)),
    ...                    r("test", "test", 0.62, (0.587, 0.652))], [])
    '99.9% (99.0–100.0) on valid, 62.0% (58.7–65.2) on test.'
    """
    parts = []
    for result in sets:
        interval = fmt_interval(result.accuracy_ci)
        interval = f" ({interval})" if interval != "–" else ""
        parts.append(f"{fmt_percent(result.accuracy)}{interval} on {result.name}")
    sentence = ", ".join(parts)
    drops = [
        f"{c.n_significant} of {c.n_compared} classes drop significantly on {c.out_of_domain}"
        for c in comparisons
    ]
    if drops:
        sentence += "; " + "; ".join(drops)
    return sentence + "."


def build_context(
    evaluation_sets: Sequence[EvaluationSet],
    *,
    model: ModelInfo,
    command: str,
    title: str = "asl-eval report",
    sections: Mapping[str, Section] | None = None,
    now: datetime | None = None,
) -> ReportContext:
    """Evaluate every set and compare each test set with the (first) in-domain set."""
    if not evaluation_sets:
        raise ReportError("A report needs at least one evaluation set.")
    names = [e.name for e in evaluation_sets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ReportError(f"Evaluation set names must be unique; repeated: {duplicates}.")
    classes = evaluation_sets[0].predictions.classes
    for evaluation in evaluation_sets:
        if evaluation.predictions.classes != classes:
            raise ReportError(
                f"Set {evaluation.name!r} was predicted with other classes than "
                f"{evaluation_sets[0].name!r}; all sets must come from the same model."
            )
    results = tuple(evaluate_set(e) for e in evaluation_sets)
    in_domain = next((e for e in evaluation_sets if e.role == "in-domain"), None)
    comparisons: list[Comparison] = []
    if in_domain is not None:
        for evaluation in evaluation_sets:
            if evaluation.role == "in-domain":
                continue
            with warnings.catch_warnings():  # classes absent from a set are NaN rows, shown as such
                warnings.simplefilter("ignore", RuntimeWarning)
                table = metrics.domain_comparison(in_domain.predictions, evaluation.predictions)
            summary = metrics.domain_gap_summary(table)
            comparisons.append(
                Comparison(
                    in_domain=in_domain.name,
                    out_of_domain=evaluation.name,
                    table=table,
                    n_significant=summary.n_significant_drops,
                    n_compared=summary.n_compared,
                )
            )
    timestamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return ReportContext(
        title=title,
        model=model,
        command=command,
        generated_at=timestamp,
        classes=tuple(classes),
        sets=results,
        comparisons=tuple(comparisons),
        headline=headline_sentence(results, comparisons),
        predictions=tuple(e.predictions for e in evaluation_sets),
        sections=dict(sections or {}),
    )


def runtime_versions() -> dict[str, str]:
    """Versions of asl-eval, fastai, torch and Python for the header."""
    from importlib.metadata import PackageNotFoundError, version

    from asl_eval._version import __version__

    found = {"asl-eval": __version__, "python": platform.python_version()}
    for package in ("fastai", "torch", "torchvision"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
