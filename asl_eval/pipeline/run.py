"""The report job end to end: open the model, predict every set (from the cache where it can),
run the optional analyses, build and write the report.

Nothing is written until every set has been predicted and the report rendered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import InputError, LabelError, ReportError
from asl_eval.pipeline.request import ReportRequest
from asl_eval.pipeline.sections import (
    audit_section,
    cam_section,
    domains_section,
    embeddings_section,
    robustness_section,
    slices_section,
)
from asl_eval.predictions import Predictions

if TYPE_CHECKING:
    from PIL import Image

    from asl_eval.analysis import AnalysisResult
    from asl_eval.inference import LazyModel, PredictionCache
    from asl_eval.report import EvaluationSet, ReportFiles

__all__ = ["run_report"]

logger = logging.getLogger(__name__)


def _training_config(record: Mapping[str, object]) -> Mapping[str, object]:
    """The training configuration in a training record ({} when there is none)."""
    config = record.get("config")
    return config if isinstance(config, dict) else {}


def _in_domain_predictions(
    model: LazyModel,
    request: ReportRequest,
    record: Mapping[str, object],
    cache: PredictionCache | None,
) -> Predictions | None:
    from asl_eval.training import (
        predict_validation_split,
        recorded_label_options,
        recorded_split,
        valid_predictions_path,
    )

    if request.in_domain is not None:
        config = _training_config(record)
        if not config:
            logger.warning(
                "no training record beside %s: re-creating the split with the recipe's defaults "
                "(valid_pct 0.2, seed 42); if training used others, the split differs",
                request.model,
            )
        expected = record.get("n_valid")
        split = recorded_split(record)  # a grouped split's metadata CSV must be unchanged
        try:
            label_options = replace(
                recorded_label_options(record),
                follow_links=request.label_options.follow_links,
            )
        except LabelError as error:
            raise InputError(
                f"--in-domain {request.in_domain}: {error} Leave out --in-domain to use the "
                "saved validation predictions."
            ) from error
        return predict_validation_split(
            model,
            request.in_domain,
            valid_pct=float(str(config.get("valid_pct", 0.2))),
            seed=int(str(config.get("seed", 42))),
            check_images=bool(config.get("check_images", True)),
            label_options=label_options,
            expected_files=int(str(expected)) if expected is not None else None,
            split=split.kind,
            group_by=split.group_by,
            metadata=split.metadata,
            metadata_path_column=split.metadata_path_column,
            batch_size=request.batch_size,
            chunk_size=request.chunk_size,
            cache=cache,
            progress=request.progress,
        )
    saved = valid_predictions_path(request.model)
    if not saved.is_file():
        logger.warning("no saved validation predictions at %s; report has no in-domain set", saved)
        return None
    predictions = Predictions.load(saved)
    if predictions.classes != model.classes:
        raise ReportError(
            f"{saved} was saved for other classes than the model's; delete it or pass "
            "--in-domain TRAINING_DIR to re-create the validation split."
        )
    return predictions


def _check_request(request: ReportRequest) -> str:
    """The report's name, once the request is known to be usable: a bad ``--out`` or
    ``--name`` or a missing folder fails now, not after predicting everything."""
    from asl_eval.report.write import report_paths

    report_name = request.name if request.name is not None else Path(request.model).stem
    report_paths(request.out, report_name)
    if not request.test_sets and request.in_domain is None:
        raise InputError("Give at least one test folder (or --in-domain TRAINING_DIR).")
    for _, folder in request.test_sets:
        if not Path(folder).exists():
            raise InputError(f"Test folder {folder} does not exist.")
    return report_name


def _open_model(request: ReportRequest, record: Mapping[str, object]) -> LazyModel:
    """The model file behind an engine, with the predictions cache unless ``--no-cache``; it
    is loaded now when nothing is cached for it (so a bad model file fails before any work)."""
    from asl_eval.inference import LazyModel, PredictionCache, default_cache_dir

    cache = None
    if request.use_cache:
        try:
            cache = PredictionCache(request.cache_dir or default_cache_dir(), request.model)
        except OSError:  # a missing or unreadable model file: loading it says what is wrong
            cache = None
    arch = _training_config(record).get("arch")
    model = LazyModel(
        request.model,
        engine=request.engine,
        batch_size=request.batch_size,
        trust_model=request.trust_model,
        cache=cache,
        arch=str(arch) if arch else None,
        engine_options=request.engine_options,
        calibration=lambda: _calibration_images(request),
    )
    model.describe()  # from the cache's model record, or by loading the model
    return model


def _predict_sets(
    model: LazyModel, request: ReportRequest, record: Mapping[str, object]
) -> list[EvaluationSet]:
    """The in-domain set (when there is one), then each test set, predicted."""
    from asl_eval.inference import predict_folder
    from asl_eval.report import EvaluationSet

    sets: list[EvaluationSet] = []
    in_domain = _in_domain_predictions(model, request, record, model.cache)
    if in_domain is not None:
        sets.append(EvaluationSet(in_domain, role="in-domain"))
    for name, folder in request.test_sets:
        predictions = predict_folder(
            model,
            folder,
            name=name,
            label_options=request.label_options,
            batch_size=request.batch_size,
            chunk_size=request.chunk_size,
            cache=model.cache,
            progress=request.progress,
        )
        sets.append(EvaluationSet(predictions, role="test"))
    return sets


N_CALIBRATION = 100
"""In-domain images ``onnx-int8`` calibrates on (evenly spaced through the list)."""
N_AGREEMENT = 32
"""Images an ONNX engine is checked against the fastai engine on, every run."""


def _calibration_images(request: ReportRequest) -> list[Image.Image]:
    """In-domain images for ``onnx-int8``: the saved validation split's files, else the
    ``--in-domain`` training folder's."""
    from asl_eval.inputs import discover_images
    from asl_eval.training import valid_predictions_path

    saved = valid_predictions_path(request.model)
    paths: list[str] = []
    if saved.is_file():
        paths = [p for p in Predictions.load(saved).paths if Path(p).is_file()]
    if not paths and request.in_domain is not None:
        paths = [str(p) for p in discover_images(request.in_domain).images]
    if not paths:
        raise InputError(
            "--engine onnx-int8 calibrates on in-domain images: keep the validation "
            f"predictions {saved.name} beside the model (asl-eval train writes them, and the "
            "images must still be there), or pass --in-domain TRAINING_DIR."
        )
    return _decoded(paths[:: max(1, len(paths) // N_CALIBRATION)][:N_CALIBRATION])


def _decoded(paths: Sequence[str]) -> list[Image.Image]:
    from asl_eval.errors import UnreadableImage
    from asl_eval.inputs import load_rgb

    images = []
    for path in paths:
        try:
            images.append(load_rgb(path))
        except UnreadableImage:
            continue
    return images


def _engine_info(model: LazyModel, sets: Sequence[EvaluationSet]) -> dict[str, object]:
    """The report's ``model.engine``: the engine's name and options, and for the ONNX engines
    their agreement with the fastai engine, checked in this run (on the first images it
    predicted, or, when every prediction came from the cache, on the first
    :data:`N_AGREEMENT` images of the sets)."""
    info: dict[str, object] = {"engine": model.name, **model.describe()}
    if model.name == "fastai":
        return info
    engine = model.engine
    agreement = getattr(engine, "agreement", None)
    if agreement is None:
        paths = [p for e in sets for p in e.predictions.paths if Path(p).is_file()]
        sample = _decoded(paths[:N_AGREEMENT])
        verify = getattr(engine, "verify", None)
        if sample and verify is not None:
            agreement = verify(sample)
    if agreement is not None:
        info["agreement"] = {
            "n_checked": int(agreement.n_checked),
            "max_abs_diff": float(agreement.max_abs_diff),
            "top1_agreement": float(agreement.top1_agreement),
        }
    return info


def run_report(request: ReportRequest) -> ReportFiles:
    """Predict every set (from the cache where it can), build and write the report.

    The files returned carry the top findings in words for the terminal
    (:attr:`asl_eval.report.ReportFiles.findings`).
    """
    from asl_eval.findings import findings_text
    from asl_eval.report import ModelInfo, build_context, runtime_versions, write_report
    from asl_eval.report.sharing import Sharing
    from asl_eval.training import read_training_record

    report_name = _check_request(request)
    record = read_training_record(request.model) or {}
    model = _open_model(request, record)
    sets = _predict_sets(model, request, record)
    size = model.input_size
    model_info = ModelInfo.describe(
        request.model,
        arch=model.arch,
        classes=model.classes,
        input_size=f"{size[0]}×{size[1]}" if size else "unknown",
        versions=runtime_versions(),
        engine=_engine_info(model, sets),
        sha256=model.cache.file_sha256 if model.cache is not None else None,
    )
    logger.info("engine %s: %s (model loaded: %s)", model.name, model.describe(), model.loaded)
    sections: dict[str, AnalysisResult] = {}
    if request.audit:
        sections["leakage"] = audit_section(request, record, sets)
    if request.audit if request.properties is None else request.properties:
        domains = domains_section(request, sets)
        if domains is not None:
            sections["domains"] = domains
    if request.metadata is not None:
        sections["slices"] = slices_section(request, sets)
    if request.embeddings:
        sections["embeddings"] = embeddings_section(
            model, request, record, sets, leakage=sections.get("leakage")
        )
    if request.stress is not None:
        sections["robustness"] = robustness_section(model, request, sets)
    if request.cam is not None:
        cam = cam_section(model.learner, sets, request.cam, request.progress)
        if cam is not None:
            sections["cam"] = cam
    context = build_context(
        sets,
        model=model_info,
        command=_recorded_command(request),
        title=request.title,
        sections=sections,
        sharing=Sharing(redact_paths=request.redact_paths, images=request.images),
        findings=True,
    )
    files = write_report(context, request.out, name=report_name)
    return replace(files, findings=findings_text(context.sections["findings"]))


def _recorded_command(request: ReportRequest) -> str:
    """The command line for the report; with ``redact_paths``, every path it was given (the
    model, the folders, the output, the labels CSV) by its last component."""
    from asl_eval.report.sharing import redact_command

    if not request.redact_paths:
        return request.command
    csv = request.label_options.labels_csv
    paths = [
        request.model,
        *(folder for _, folder in request.test_sets),
        request.out,
        request.in_domain,
        csv if isinstance(csv, str | Path) else None,
    ]
    return redact_command(request.command, paths)
