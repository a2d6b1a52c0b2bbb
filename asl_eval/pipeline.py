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

if TYPE_CHECKING:
    from fastai.learner import Learner

    from asl_eval.analysis import AnalysisResult
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
    learner: Learner, request: ReportRequest, record: Mapping[str, object]
) -> Predictions | None:
    from asl_eval.inference import model_classes
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
            learner,
            request.in_domain,
            valid_pct=float(str(config.get("valid_pct", 0.2))),
            seed=int(str(config.get("seed", 42))),
            check_images=bool(config.get("check_images", True)),
            label_options=label_options,
            expected_files=int(str(expected)) if expected is not None else None,
            batch_size=request.batch_size,
        )
    saved = valid_predictions_path(request.model)
    if not saved.is_file():
        logger.warning("no saved validation predictions at %s; report has no in-domain set", saved)
        return None
    predictions = Predictions.load(saved)
    if predictions.classes != model_classes(learner):
        raise ReportError(
            f"{saved} was saved for other classes than the model's; delete it or pass "
            "--in-domain TRAINING_DIR to re-create the validation split."
        )
    return predictions


def _cam_section(
    learner: Learner, sets: Sequence[EvaluationSet], options: CamOptions
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


def run_report(request: ReportRequest) -> ReportFiles:
    """Load the model, predict every set, build and write the report."""
    from asl_eval.inference import model_classes, predict_folder
    from asl_eval.report import (
        EvaluationSet,
        ModelInfo,
        build_context,
        runtime_versions,
        write_report,
    )
    from asl_eval.report.sharing import Sharing
    from asl_eval.training import read_training_record
    from asl_eval.trust import input_size, load_learner_file

    report_name = _check_request(request)
    learner = load_learner_file(request.model, trust_model=request.trust_model)
    sets: list[EvaluationSet] = []
    record = read_training_record(request.model) or {}
    in_domain = _in_domain_predictions(learner, request, record)
    if in_domain is not None:
        sets.append(EvaluationSet(in_domain, role="in-domain"))
    for name, folder in request.test_sets:
        predictions = predict_folder(
            learner,
            folder,
            name=name,
            label_options=request.label_options,
            batch_size=request.batch_size,
        )
        sets.append(EvaluationSet(predictions, role="test"))
    arch = str(_training_config(record).get("arch") or type(learner.model).__name__)
    size = input_size(learner)
    model = ModelInfo.describe(
        request.model,
        arch=arch,
        classes=model_classes(learner),
        input_size=f"{size[0]}×{size[1]}" if size else "unknown",
        versions=runtime_versions(),
    )
    sections: dict[str, AnalysisResult] = {}
    if request.cam is not None:
        cam_section = _cam_section(learner, sets, request.cam)
        if cam_section is not None:
            sections["cam"] = cam_section
    context = build_context(
        sets,
        model=model,
        command=_recorded_command(request),
        title=request.title,
        sections=sections,
        sharing=Sharing(redact_paths=request.redact_paths, images=request.images),
    )
    return write_report(context, request.out, name=report_name)


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
