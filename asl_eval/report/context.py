"""Building the report's context: evaluate every set once, compare each test set with the
in-domain set, draw every figure, encode every thumbnail and build every optional section,
all before anything is rendered.

Every number shown in the HTML and written to the JSON comes from :mod:`asl_eval.metrics`
here. Imports the metrics, :class:`Predictions`, the analysis shape and the report's own data,
figure, table and section modules (no Jinja2).
"""

from __future__ import annotations

import platform
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePath

from asl_eval import metrics
from asl_eval.analysis import AnalysisResult
from asl_eval.errors import ReportError
from asl_eval.report.data import (
    Comparison,
    EvaluationSet,
    ModelInfo,
    ReportContext,
    SetResult,
)
from asl_eval.report.figures import Locate, domain_gap_chart, per_class_chart, set_figures
from asl_eval.report.sections import build_sections, check_sections
from asl_eval.report.sharing import (
    Sharing,
    display_paths,
    redact_analysis,
    redact_command,
    redact_predictions,
    set_root,
    strip_images,
)
from asl_eval.report.tables import (
    bootstrap_note,
    class_rows,
    comparison_rows,
    headline_sentence,
    ledger_rows,
    predicted_classes,
    uncertainty_note,
)

__all__ = ["build_context", "compare_sets", "evaluate_set", "runtime_versions"]


def evaluate_set(
    evaluation: EvaluationSet,
    *,
    seed: int = 0,
    n_gallery: int = 24,
    thumb_size: int = 96,
    locate: Locate | None = str,
) -> SetResult:
    """Compute every metric of one set (all classes of the model kept, in its order), draw its
    figures and make its thumbnails.

    Undefined values (a class without images, a class never predicted) are NaN and shown as
    such; the warnings :mod:`asl_eval.metrics` raises about them are not repeated here.
    ``locate`` maps a path to the file a thumbnail is read from (None: no thumbnails).
    """
    p = evaluation.predictions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        computed = metrics.evaluate(p, n_top_losses=None, seed=seed)
    return SetResult(
        evaluation=computed,
        role=evaluation.role,
        source=p.source,
        ledger=p.ledger.summary(),
        content={"n_hashed": len(p.sha256), "digest": p.content_digest},
        not_evaluated=ledger_rows(p.ledger.to_frame()),
        figures=set_figures(computed, n_gallery=n_gallery, thumb_size=thumb_size, locate=locate),
        predicted=predicted_classes(computed.confusion),
    )


def compare_sets(in_domain: EvaluationSet, other: EvaluationSet) -> Comparison:
    """Per-class accuracy of ``other`` against the in-domain set, with its drop chart."""
    with warnings.catch_warnings():  # classes absent from a set are NaN rows, shown as such
        warnings.simplefilter("ignore", RuntimeWarning)
        table = metrics.domain_comparison(in_domain.predictions, other.predictions)
    summary = metrics.domain_gap_summary(table)
    rows, n_too_few = comparison_rows(in_domain.predictions.classes, table)
    return Comparison(
        in_domain=in_domain.name,
        out_of_domain=other.name,
        table=table,
        n_significant=summary.n_significant_drops,
        n_compared=summary.n_compared,
        chart=domain_gap_chart(rows, in_domain.name, other.name),
        rows=rows,
        n_too_few=n_too_few,
    )


def _check_sets(evaluation_sets: Sequence[EvaluationSet]) -> tuple[str, ...]:
    """The model's classes, once the sets are known to be non-empty, unique and alike."""
    if not evaluation_sets:
        raise ReportError("A report needs at least one evaluation set.")
    names = [e.name for e in evaluation_sets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ReportError(f"Evaluation set names must be unique; repeated: {duplicates}.")
    first = evaluation_sets[0]
    for evaluation in evaluation_sets:
        if evaluation.predictions.classes != first.predictions.classes:
            raise ReportError(
                f"Set {evaluation.name!r} was predicted with other classes than "
                f"{first.name!r}; all sets must come from the same model."
            )
    return tuple(first.predictions.classes)


def _typical_supports(results: Sequence[SetResult]) -> list[tuple[str, int]]:
    """Each set's median class size, over the classes it has images of."""
    sizes = []
    for result in results:
        support = result.evaluation.per_class["support"]
        present = support[support > 0]
        if len(present):
            sizes.append((result.name, int(present.median())))
    return sizes


def _interval(result: SetResult) -> tuple[float, float]:
    return result.evaluation.overall.ci_low, result.evaluation.overall.ci_high


@dataclass(frozen=True)
class _Shared:
    """The inputs of a report as it may show them (see :mod:`asl_eval.report.sharing`), and
    where each set's thumbnails are read from (None: no thumbnails)."""

    sets: tuple[EvaluationSet, ...]
    locate: tuple[Locate | None, ...]
    sections: dict[str, AnalysisResult]
    model: ModelInfo
    command: str


def _share(
    sharing: Sharing,
    evaluation_sets: Sequence[EvaluationSet],
    sections: dict[str, AnalysisResult],
    model: ModelInfo,
    command: str,
) -> _Shared:
    """Leave out what ``sharing`` says before anything is computed from the inputs."""
    sets = tuple(evaluation_sets)
    locate: tuple[Locate | None, ...] = tuple(str for _ in sets)
    if sharing.redact_paths:
        shown = {e.name: display_paths(e.predictions) for e in sets}
        locate = tuple(
            {text: path for path, text in shown[e.name].items()}.__getitem__ for e in sets
        )
        roots = [root for e in sets if (root := set_root(e.predictions))]
        sets = tuple(replace(e, predictions=redact_predictions(e.predictions)) for e in sets)
        sections = {key: redact_analysis(result, shown, roots) for key, result in sections.items()}
        model = replace(model, path=PurePath(model.path).name)
        command = redact_command(command, roots)
    if not sharing.images:
        locate = tuple(None for _ in sets)
        sections = {key: strip_images(result) for key, result in sections.items()}
    return _Shared(sets, locate, sections, model, command)


def build_context(
    evaluation_sets: Sequence[EvaluationSet],
    *,
    model: ModelInfo,
    command: str,
    title: str = "asl-eval report",
    sections: Mapping[str, AnalysisResult] | None = None,
    now: datetime | None = None,
    n_gallery: int = 24,
    thumb_size: int = 96,
    sharing: Sharing | None = None,
    findings: bool = False,
) -> ReportContext:
    """Evaluate every set, compare each test set with the (first) in-domain set, and build
    every figure, table and optional section the report shows.

    With ``findings``, the findings stage (:func:`asl_eval.findings.find`) reads the sets'
    evaluations computed here, and the other sections, and its result opens the page as the
    ``"findings"`` section.

    ``sections`` are optional analyses keyed by their name; each needs a section registered
    in :mod:`asl_eval.report.registry`. ``sharing`` says what the report leaves out (paths
    made relative to each set's folder, images; :mod:`asl_eval.report.sharing`); it is
    applied to the inputs first, so nothing left out reaches a table, the JSON or the page.
    """
    classes = _check_sets(evaluation_sets)
    sharing = sharing or Sharing()
    shared = _share(sharing, evaluation_sets, check_sections(sections or {}), model, command)
    return _context(
        shared,
        sharing,
        classes,
        title=title,
        now=now,
        n_gallery=n_gallery,
        thumb_size=thumb_size,
        findings=findings,
    )


def _context(
    shared: _Shared,
    sharing: Sharing,
    classes: tuple[str, ...],
    *,
    title: str,
    now: datetime | None,
    n_gallery: int,
    thumb_size: int,
    findings: bool = False,
) -> ReportContext:
    """The report's data from inputs already stripped of what it leaves out."""
    evaluation_sets, analyses, model = shared.sets, shared.sections, shared.model
    results = tuple(
        evaluate_set(e, n_gallery=n_gallery, thumb_size=thumb_size, locate=locate)
        for e, locate in zip(evaluation_sets, shared.locate, strict=True)
    )
    if findings:
        from asl_eval.findings import FindingsSet, find

        sets = [
            FindingsSet(e.predictions, e.role, evaluation=r.evaluation)
            for e, r in zip(evaluation_sets, results, strict=True)
        ]
        analyses = {**analyses, "findings": find(sets, sections=analyses)}
    in_domain = next((e for e in evaluation_sets if e.role == "in-domain"), None)
    comparisons: tuple[Comparison, ...] = ()
    if in_domain is not None:
        comparisons = tuple(
            compare_sets(in_domain, e) for e in evaluation_sets if e.role != "in-domain"
        )
    headline = headline_sentence(
        [(r.name, r.evaluation.overall.accuracy, _interval(r)) for r in results],
        [(c.out_of_domain, c.n_significant, c.n_compared) for c in comparisons],
        [c.n_too_few for c in comparisons],
    )
    return ReportContext(
        title=title,
        model=model,
        command=shared.command,
        generated_at=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC"),
        classes=classes,
        sets=results,
        comparisons=comparisons,
        headline=headline,
        uncertainty_note=uncertainty_note(_typical_supports(results)),
        bootstrap_note=bootstrap_note(
            [(r.evaluation.n_resamples, r.evaluation.seed) for r in results]
        ),
        class_rows=class_rows(classes, [r.evaluation.per_class for r in results], comparisons),
        per_class_chart=per_class_chart(
            {r.name: r.evaluation.per_class for r in results}, len(classes)
        ),
        predictions=tuple(e.predictions for e in evaluation_sets),
        sections=analyses,
        built_sections=build_sections(analyses),
        sharing=sharing,
    )


def runtime_versions() -> dict[str, str]:
    """Versions of asl-eval, fastai, torch and Python for the header (read from the installed
    packages' metadata: nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    from asl_eval._version import __version__

    found = {"asl-eval": __version__, "python": platform.python_version()}
    for package in ("fastai", "torch", "torchvision"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
