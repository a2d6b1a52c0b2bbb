"""The report's optional analyses, each run by one function from the predicted sets: Grad-CAM
(:mod:`asl_eval.cam`), the leakage audit and the image properties of each domain and
accuracy by metadata slice (:mod:`asl_eval.audit`), the embedding drift
(:mod:`asl_eval.inference.features`) and the robustness sweep (:mod:`asl_eval.stress`).

Each returns an :class:`~asl_eval.analysis.AnalysisResult` for the report's section registry, or
None when the report has nothing for it; a stage's error becomes a :class:`ReportError` that
says which section failed and how to skip it. The stages are imported inside the functions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import AslEvalError, InputError, ReportError
from asl_eval.pipeline.request import CamOptions, ReportRequest
from asl_eval.progress import Progress

if TYPE_CHECKING:
    from fastai.learner import Learner

    from asl_eval.analysis import AnalysisResult
    from asl_eval.inference import LazyModel
    from asl_eval.report import EvaluationSet

__all__ = [
    "audit_section",
    "cam_section",
    "domains_section",
    "embeddings_section",
    "robustness_section",
    "slices_section",
]

logger = logging.getLogger(__name__)


def cam_section(
    learner: Learner,
    sets: Sequence[EvaluationSet],
    options: CamOptions,
    progress: Progress = None,
) -> AnalysisResult | None:
    """Grad-CAM for the failing classes of one test set (by default the largest)."""
    from asl_eval.cam import build_cam_section

    tests = [e for e in sets if e.role == "test"]
    if not tests:
        return None
    if options.set_name is not None:
        chosen = next((e for e in tests if e.name == options.set_name), None)
        if chosen is None:
            raise ReportError(
                f"--cam-set {options.set_name!r} is not one of the test sets: "
                f"{', '.join(e.name for e in tests)}."
            )
    else:
        chosen = max(tests, key=lambda e: e.predictions.n_images)
    in_domain = next((e.name for e in sets if e.role == "in-domain"), None)
    try:
        return build_cam_section(
            learner,
            {e.name: e.predictions for e in sets},
            ood_set=chosen.name,
            in_domain_set=in_domain,
            classes=options.classes,
            k=options.k,
            n_per_class=options.n_per_class,
            method=options.method,  # type: ignore[arg-type]
            layer=options.layer,
            progress=progress,
        )
    except AslEvalError as error:
        raise ReportError(f"Grad-CAM section: {error} (pass --no-cam to skip it)") from error


def _training_folder(request: ReportRequest, record: Mapping[str, object], flag: str) -> Path:
    """The training folder: ``--in-domain``, else the one the training record names."""
    train = request.in_domain or record.get("data_dir")
    if not train or not Path(str(train)).is_dir():
        raise InputError(
            f"{flag} needs the training folder: pass --in-domain TRAINING_DIR (the training "
            "record beside the model names none that exists here)."
        )
    return Path(str(train))


def audit_section(
    request: ReportRequest, record: Mapping[str, object], sets: Sequence[EvaluationSet]
) -> AnalysisResult:
    """The leakage section: the in-domain set (or the first test set) against the training
    folder, the other sets with ``against``."""
    from asl_eval.audit import audit_leakage

    train = _training_folder(request, record, "--audit")
    if not sets:
        raise InputError("--audit needs at least one evaluated set.")
    first, *others = [e.predictions for e in sets]
    try:
        return audit_leakage(
            train,
            first,
            against=others,
            progress=request.progress,
            cache=request.use_cache,
            cache_dir=request.cache_dir,
        )
    except AslEvalError as error:
        raise ReportError(f"Leakage audit: {error}") from error


def domains_section(request: ReportRequest, sets: Sequence[EvaluationSet]) -> AnalysisResult | None:
    """What differs between the in-domain set's images and each other set's (None without an
    in-domain set and another set)."""
    from asl_eval.audit.domains import domain_analysis

    in_domain = next((e for e in sets if e.role == "in-domain"), None)
    others = [e.predictions for e in sets if e is not in_domain]
    if in_domain is None or not others:
        logger.warning("image properties need an in-domain set and another set; section skipped")
        return None
    try:
        return domain_analysis(in_domain.predictions, others, progress=request.progress)
    except AslEvalError as error:
        raise ReportError(
            f"Image properties: {error} (pass --no-properties to skip them)"
        ) from error


def slices_section(request: ReportRequest, sets: Sequence[EvaluationSet]) -> AnalysisResult:
    """Accuracy by the values of the ``--metadata`` CSV's columns, in every set."""
    from asl_eval.audit.slices import read_metadata, slice_analysis

    if request.metadata is None:
        raise InputError("the slices section needs a metadata CSV (--metadata).")
    table = read_metadata(request.metadata, path_column=request.metadata_path_column)
    return slice_analysis(
        [e.predictions for e in sets],
        table,
        path_column=request.metadata_path_column,
        columns=list(request.slice_by) or None,
    )


def robustness_section(
    model: LazyModel, request: ReportRequest, sets: Sequence[EvaluationSet]
) -> AnalysisResult:
    """The robustness sweep on the in-domain images, forecast against each test set."""
    from asl_eval.stress import DEFAULT_CORRUPTIONS, DEFAULT_SEVERITIES, robustness_for_report

    options = request.stress
    if options is None:
        raise InputError("the robustness section needs its options (--stress).")
    in_domain = next((e.predictions for e in sets if e.role == "in-domain"), None)
    if in_domain is None:
        raise InputError(
            "--stress sweeps the in-domain validation images: keep model.valid.parquet beside "
            "the model or pass --in-domain TRAINING_DIR."
        )
    try:
        return robustness_for_report(
            model,
            in_domain,
            [e.predictions for e in sets if e.role == "test"],
            corruptions=options.corruptions or DEFAULT_CORRUPTIONS,
            severities=options.severities or DEFAULT_SEVERITIES,
            n_per_class=options.n_per_class,
            seed=options.seed,
            batch_size=request.batch_size,
            progress=request.progress,
        )
    except AslEvalError as error:
        raise ReportError(f"Robustness sweep: {error} (leave out --stress to skip it)") from error


def embeddings_section(
    model: LazyModel,
    request: ReportRequest,
    record: Mapping[str, object],
    sets: Sequence[EvaluationSet],
    leakage: AnalysisResult | None = None,
) -> AnalysisResult:
    """The model's features of every set against a per-class sample of the training folder;
    with the leakage section, its near-duplicate candidates are confirmed by similarity."""
    from asl_eval.inference.features import embedding_audit
    from asl_eval.training import recorded_label_options

    train = _training_folder(request, record, "--embeddings")
    try:
        return embedding_audit(
            model.learner,
            train,
            [e.predictions for e in sets],
            n_per_class=request.embedding_samples,
            leakage=leakage,
            in_domain=next((e.name for e in sets if e.role == "in-domain"), None),
            label_options=recorded_label_options(record),
            batch_size=request.batch_size,
            progress=request.progress,
            cache=request.use_cache,
            cache_dir=request.cache_dir,
            model_key=model.cache.model_key if model.cache is not None else None,
        )
    except AslEvalError as error:
        raise ReportError(
            f"Embedding analysis: {error} (leave out --embeddings to skip it)"
        ) from error
