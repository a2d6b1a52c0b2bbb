"""The report job end to end: model file and folders in, report files out.

This is what ``asl-eval report`` and ``asl-eval demo`` call; the CLI only parses arguments.
Nothing is written until every set has been predicted and the report rendered.

Layer: above :mod:`asl_eval.report`, below :mod:`asl_eval.demo` and :mod:`asl_eval.cli`.
Imports the stages it runs (:mod:`asl_eval.trust`, :mod:`asl_eval.inference`,
:mod:`asl_eval.training` for the record next to a model, :mod:`asl_eval.cam`,
:mod:`asl_eval.report`) inside its functions, so importing it stays light.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from asl_eval.errors import AslEvalError, InputError, LabelError, ReportError
from asl_eval.labels import LabelOptions
from asl_eval.predictions import Predictions
from asl_eval.progress import Progress

if TYPE_CHECKING:
    from fastai.learner import Learner
    from PIL import Image

    from asl_eval.analysis import AnalysisResult
    from asl_eval.inference import LazyModel, PredictionCache
    from asl_eval.report import EvaluationSet, ReportFiles

__all__ = ["CamOptions", "ReportRequest", "name_sets", "run_report"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CamOptions:
    """The Grad-CAM section: which set, classes, method and layer (``--cam-*`` options)."""

    method: str = "gradcam"
    layer: str | None = None
    classes: tuple[str, ...] | None = None
    set_name: str | None = None
    k: int = 3
    n_per_class: int = 4


@dataclass(frozen=True)
class ReportRequest:
    """Everything ``asl-eval report`` needs.

    ``test_sets`` are ``(name, folder)`` pairs. The in-domain set is the model's saved
    validation predictions (``model.valid.parquet``) unless ``in_domain`` names the training
    folder, whose validation split is then re-created and predicted. ``name`` must be a plain
    file name (no folder). Symbolic links out of a folder are followed only with
    ``label_options.follow_links``. ``redact_paths`` and ``images`` say what the report leaves
    out to be shared (:class:`asl_eval.report.sharing.Sharing`).

    ``engine`` names the engine (:data:`asl_eval.inference.ENGINES`) and ``engine_options``
    are its options (``bf16``, ``channels_last``; see docs/engines.md). With ``use_cache``,
    predictions are looked up in and added to the predictions cache under ``cache_dir``
    (default :func:`asl_eval.inference.default_cache_dir`), and the model is loaded only if an
    image must be predicted or Grad-CAM is on. ``chunk_size`` images are decoded, predicted and
    cached together. ``progress`` receives progress events (see :mod:`asl_eval.progress`).
    With ``audit``, the leakage section measures near-duplicates of training images in the
    in-domain and test sets (:func:`asl_eval.audit.audit_leakage`); the training folder is
    ``in_domain``, else the one the training record names.
    """

    model: Path
    test_sets: Sequence[tuple[str, Path]]
    out: Path = Path("reports")
    name: str | None = None
    in_domain: Path | None = None
    trust_model: bool = False
    label_options: LabelOptions = field(default_factory=LabelOptions)
    command: str = "asl-eval report"
    title: str = "asl-eval report"
    batch_size: int = 64
    cam: CamOptions | None = field(default_factory=CamOptions)
    redact_paths: bool = False
    images: bool = True
    audit: bool = False
    engine: str = "fastai"
    engine_options: Mapping[str, object] = field(default_factory=dict)
    use_cache: bool = True
    cache_dir: Path | None = None
    chunk_size: int = 512
    progress: Progress = None


def name_sets(
    folders: Sequence[Path], named: Sequence[tuple[str, Path]] = ()
) -> list[tuple[str, Path]]:
    """Name each folder after itself (``test``, ``test-2`` on a clash), after explicit names.

    >>> [(name, str(folder)) for name, folder in name_sets(
    ...     [Path("a/test"), Path("b/test")], [("kaggle28", Path("c"))])]
    [('kaggle28', 'c'), ('test', 'a/test'), ('test-2', 'b/test')]
    """
    result = list(named)
    names = [name for name, _ in result]
    clashes = sorted({n for n in names if names.count(n) > 1 or n == "valid"})
    if clashes:
        raise InputError(
            f"Set names must be unique and not 'valid' (the in-domain split's name); "
            f"--set repeats or reuses: {', '.join(clashes)}."
        )
    taken = set(names)
    for folder in folders:
        base = folder.resolve().name or "test"
        candidate, n = base, 1
        while candidate in taken or candidate == "valid":
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        result.append((candidate, folder))
    return result


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
            split=str(config.get("split", "random")),
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


def _cam_section(
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


def _audit_section(
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
    )
    logger.info("engine %s: %s (model loaded: %s)", model.name, model.describe(), model.loaded)
    sections: dict[str, AnalysisResult] = {}
    if request.audit:
        sections["leakage"] = _audit_section(request, record, sets)
    if request.cam is not None:
        cam_section = _cam_section(model.learner, sets, request.cam, request.progress)
        if cam_section is not None:
            sections["cam"] = cam_section
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
