"""The report's optional analyses, each run by one function from the predicted sets: Grad-CAM
(:mod:`asl_eval.cam`), the leakage audit and the image properties of each domain and
accuracy by metadata slice (:mod:`asl_eval.audit`).

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
    from asl_eval.report import EvaluationSet

__all__ = ["audit_section", "cam_section", "domains_section", "slices_section"]

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


def audit_section(
    request: ReportRequest, record: Mapping[str, object], sets: Sequence[EvaluationSet]
) -> AnalysisResult:
    """The leakage section: the in-domain set (or the first test set) against the training
    folder, the other sets with ``against``."""
    from asl_eval.audit import audit_leakage

    train = request.in_domain or record.get("data_dir")
    if not train or not Path(str(train)).is_dir():
        raise InputError(
            "--audit needs the training folder: pass --in-domain TRAINING_DIR (the training "
            "record beside the model names none that exists here)."
        )
    if not sets:
        raise InputError("--audit needs at least one evaluated set.")
    first, *others = [e.predictions for e in sets]
    try:
        return audit_leakage(Path(str(train)), first, against=others, progress=request.progress)
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
