"""The ``asl-eval`` command line: a thin Typer adapter over the library.

Each command parses its options, calls one library function and prints where the result went.
Errors the library raises on purpose (:class:`~asl_eval.errors.AslEvalError`) are translated here,
in one place, into a one-paragraph message on stderr and exit code 1. Usage errors exit with 2.

Layer: the top; nothing imports it. Imports Typer, :mod:`asl_eval.errors`,
:mod:`asl_eval._version`, the options (:mod:`asl_eval.cli_options`,
:mod:`asl_eval.cli_report_options`) and the commands whose adapters live with their stage at
module level, and every stage it calls inside the command that calls it, so ``asl-eval --help``
imports neither torch nor fastai.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from asl_eval._version import __version__
from asl_eval.audit_cli import audit_command
from asl_eval.cli_options import (
    Arch,
    Augment,
    BatchSize,
    Bf16,
    CacheDir,
    ChannelsLast,
    CheckImages,
    ChunkSize,
    EngineName,
    Epochs,
    FollowLinks,
    GroupBy,
    Images,
    ImageSize,
    InDomain,
    InferenceBatchSize,
    LabelMap,
    LabelRegex,
    LabelsCsv,
    LabelsFrom,
    LearningRate,
    MetadataPathColumn,
    ModelFile,
    NamedSets,
    NumWorkers,
    Pretrained,
    RedactPaths,
    ReportName,
    ReportOut,
    SafeCopy,
    Seed,
    ShowProgress,
    Split,
    Strict,
    TestDirs,
    TrainLabelsFrom,
    TrainMetadata,
    TrainOut,
    TrainStrict,
    TrustModel,
    UseCache,
    ValidPct,
    engine_name,
    parse_label_options,
    parse_lr,
    parse_sets,
    split_kind,
)
from asl_eval.cli_report_options import (
    Audit,
    Cam,
    CamClasses,
    CamImages,
    CamK,
    CamLayer,
    CamMethod,
    CamSet,
    Embeddings,
    EmbeddingSamples,
    Metadata,
    Properties,
    SliceBy,
    Stress,
    StressCorruptions,
    StressPerClass,
    StressSeed,
    StressSeverities,
    cam_options,
    stress_options,
)
from asl_eval.compare.command import compare_command
from asl_eval.errors import AslEvalError, printable
from asl_eval.stress.command import stress_command

if TYPE_CHECKING:
    from asl_eval.progress import Progress
    from asl_eval.training import TrainResult

__all__ = ["app", "main"]

app = typer.Typer(
    name="asl-eval",
    help="Evaluate fastai image classifiers and find out why they fail.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")


def _fail(message: str) -> typer.Exit:
    """Print ``message`` on stderr (terminal control characters from file names and labels
    made visible, never run) and return the exit to raise."""
    text = printable(message, keep="\n")
    typer.echo(f"error: {text}", err=True)
    return typer.Exit(code=1)


def _echo(label: str, value: object) -> None:
    """Print ``label: value`` with any control characters in the value made visible."""
    typer.echo(f"{label}: {printable(value)}")


def _call(function: Callable[[], T]) -> T:
    """Run one library call; an AslEvalError becomes a message and exit code 1."""
    try:
        return function()
    except AslEvalError as error:
        raise _fail(str(error)) from None


def _command_line() -> str:
    return shlex.join(["asl-eval", *sys.argv[1:]])


class _PrintableFormatter(logging.Formatter):
    """Log lines with terminal control characters (from file names) made visible."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep="\n")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"asl-eval {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    """Evaluate fastai image classifiers and find out why they fail."""
    # fastai imports torch.jit.script at import time; that deprecation is not the user's concern.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
    handler = logging.StreamHandler()
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


def _with_progress(requested: bool | None, job: Callable[[Progress], T]) -> T:
    """Run ``job`` with progress bars on stderr (or None), closing them before it returns;
    an AslEvalError becomes a message and exit code 1."""
    from asl_eval.console import progress_bars, progress_enabled

    with progress_bars(progress_enabled(requested)) as progress:
        return _call(lambda: job(progress))


@app.command()
def train(
    data_dir: Annotated[
        Path,
        typer.Argument(help="Training folder: one subfolder per class, or see the label options."),
    ],
    out: TrainOut = Path("model.pkl"),
    arch: Arch = "resnet18",
    image_size: ImageSize = 200,
    epochs: Epochs = 4,
    lr: LearningRate = "1e-2",
    batch_size: BatchSize = 64,
    valid_pct: ValidPct = 0.2,
    seed: Seed = 42,
    split: Split = "random",
    pretrained: Pretrained = True,
    augment: Augment = True,
    num_workers: NumWorkers = 0,
    safe_copy: SafeCopy = False,
    check_images: CheckImages = True,
    labels_from: TrainLabelsFrom = None,
    label_regex: LabelRegex = None,
    labels_csv: LabelsCsv = None,
    label_map: LabelMap = None,
    strict: TrainStrict = False,
    follow_links: FollowLinks = False,
    progress: ShowProgress = None,
    group_by: GroupBy = None,
    metadata: TrainMetadata = None,
    metadata_path_column: MetadataPathColumn = "path",
) -> None:
    """Train with the fastai ASL tutorial's recipe and export the learner.

    Labels are the class folders' names, as in the tutorial, unless the label options say
    otherwise; they become the model's classes.
    """
    from asl_eval.training import TrainConfig, train_model

    implied = "auto" if label_regex is not None or labels_csv is not None else "folder"
    source = labels_from or implied
    label_options = _call(
        lambda: parse_label_options(
            source, label_regex, labels_csv, label_map, strict, follow_links
        )
    )
    config = _call(
        lambda: TrainConfig(
            arch=arch,
            image_size=image_size,
            epochs=epochs,
            lr=parse_lr(lr),  # type: ignore[arg-type]
            batch_size=batch_size,
            valid_pct=valid_pct,
            seed=seed,
            split=split_kind(split),  # type: ignore[arg-type]
            pretrained=pretrained,
            augment=augment,
            num_workers=num_workers,
            safe_copy=safe_copy,
            check_images=check_images,
            group_by=group_by,
            metadata=str(metadata) if metadata is not None else None,
            metadata_path_column=metadata_path_column,
        )
    )
    result = _with_progress(
        progress,
        lambda bars: train_model(data_dir, out, config, label_options=label_options, progress=bars),
    )
    _echo_training(result)


def _echo_training(result: TrainResult) -> None:
    """Print how training went and where its files are."""
    typer.echo(f"validation accuracy {result.valid_accuracy:.4f} (learning rate {result.lr:.2e})")
    _echo("model", result.model_path)
    _echo("validation predictions", result.valid_predictions_path)
    if result.n_not_used:
        _echo(f"{result.n_not_used} files not used for training: see", result.record_path)
    if result.safe_weights_path is not None:
        _echo("safe copy", result.safe_weights_path)


@app.command()
def report(
    model: ModelFile,
    test_dirs: TestDirs = None,
    out: ReportOut = Path("reports"),
    name: ReportName = None,
    sets: NamedSets = None,
    in_domain: InDomain = None,
    labels_from: LabelsFrom = "auto",
    label_regex: LabelRegex = None,
    labels_csv: LabelsCsv = None,
    label_map: LabelMap = None,
    strict: Strict = False,
    trust_model: TrustModel = False,
    batch_size: InferenceBatchSize = None,
    cam: Cam = True,
    cam_method: CamMethod = "gradcam",
    cam_layer: CamLayer = None,
    cam_classes: CamClasses = None,
    cam_set: CamSet = None,
    cam_k: CamK = 3,
    cam_images: CamImages = 4,
    follow_links: FollowLinks = False,
    redact_paths: RedactPaths = False,
    images: Images = True,
    engine: EngineName = "fastai",
    cache: UseCache = True,
    cache_dir: CacheDir = None,
    chunk_size: ChunkSize = 512,
    progress: ShowProgress = None,
    audit: Audit = False,
    properties: Properties = None,
    metadata: Metadata = None,
    metadata_path_column: MetadataPathColumn = "path",
    slice_by: SliceBy = None,
    embeddings: Embeddings = False,
    embedding_samples: EmbeddingSamples = 50,
    stress: Stress = False,
    stress_corruptions: StressCorruptions = "default",
    stress_severities: StressSeverities = "3",
    stress_n_per_class: StressPerClass = 30,
    stress_seed: StressSeed = 0,
    bf16: Bf16 = False,
    channels_last: ChannelsLast = False,
) -> None:
    """Evaluate MODEL on test folders and write an HTML + JSON report.

    Predictions are cached by the model's, the engine's and each image's content hash, so a
    second report on the same model and images re-renders without predicting again, and an
    interrupted run resumes where it stopped (--no-cache to predict everything).
    """
    from dataclasses import replace

    from asl_eval.pipeline import ReportRequest, name_sets, run_report

    label_options = _call(
        lambda: parse_label_options(
            labels_from, label_regex, labels_csv, label_map, strict, follow_links
        )
    )
    request = ReportRequest(
        model=model,
        test_sets=_call(lambda: name_sets(list(test_dirs or []), parse_sets(list(sets or [])))),
        out=out,
        name=name,
        in_domain=in_domain,
        trust_model=trust_model,
        label_options=label_options,
        command=_command_line(),
        batch_size=batch_size,
        cam=cam_options(cam, cam_method, cam_layer, cam_classes, cam_set, cam_k, cam_images),
        redact_paths=redact_paths,
        images=images,
        engine=engine_name(engine),
        use_cache=cache,
        cache_dir=cache_dir,
        chunk_size=chunk_size,
        audit=audit,
        properties=properties,
        metadata=metadata,
        metadata_path_column=metadata_path_column,
        slice_by=tuple(slice_by or ()),
        embeddings=embeddings,
        embedding_samples=embedding_samples,
        stress=stress_options(
            stress, stress_corruptions, stress_severities, stress_n_per_class, stress_seed
        ),
        engine_options={
            key: True for key, on in (("bf16", bf16), ("channels_last", channels_last)) if on
        },
    )
    files = _with_progress(progress, lambda bars: run_report(replace(request, progress=bars)))
    _echo("report", files.html)
    _echo("numbers", files.json)
    _echo("predictions", files.predictions_csv)
    _echo_findings(files.findings)


def _echo_findings(text: str) -> None:
    """The report's top findings (already made printable by the findings stage)."""
    if text:
        typer.echo("findings:")
        typer.echo(text)


@app.command()
def labels(
    test_dir: Annotated[Path, typer.Argument(help="Folder of images to label.")],
    model: Annotated[
        Path | None, typer.Option(help="Align labels with this model's classes.")
    ] = None,
    labels_from: LabelsFrom = "auto",
    label_regex: LabelRegex = None,
    labels_csv: LabelsCsv = None,
    label_map: LabelMap = None,
    strict: Strict = False,
    trust_model: TrustModel = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    follow_links: FollowLinks = False,
) -> None:
    """Dry run: how each rule labels TEST_DIR, counts per class, what is unmatched.

    Loads no image and runs no model (with --model, only its classes are read).
    """
    from asl_eval.labels import preview_labels

    options = _call(
        lambda: parse_label_options(
            labels_from, label_regex, labels_csv, label_map, strict, follow_links
        )
    )
    classes = None
    if model is not None:
        from asl_eval.inference import model_classes
        from asl_eval.trust import load_learner_file

        learner = _call(lambda: load_learner_file(model, trust_model=trust_model))
        classes = list(model_classes(learner))
    preview = _call(lambda: preview_labels(test_dir, classes=classes, options=options))
    if as_json:
        typer.echo(json.dumps(preview.to_dict(), indent=2, sort_keys=True))
    else:
        typer.echo(preview.render_text())
    if not preview.ok:
        raise _fail(str(preview.error))


@app.command("export-safe")
def export_safe_command(
    model: Annotated[Path, typer.Argument(help="Exported fastai learner (.pkl).")],
    out: Annotated[Path, typer.Argument(help="Weights file to write, ending in .safetensors.")],
    trust_model: TrustModel = False,
) -> None:
    """Write MODEL as safetensors weights plus a JSON sidecar that loads without pickle."""
    from asl_eval.trust import export_safe, load_learner_file

    if out.suffix != ".safetensors":
        raise typer.BadParameter(f"must end in .safetensors, got {out.name}", param_hint="OUT")
    learner = _call(lambda: load_learner_file(model, trust_model=trust_model))
    weights, sidecar = _call(lambda: export_safe(learner, out))
    _echo("weights", weights)
    _echo("sidecar", sidecar)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the report.")] = Path(
        "reports"
    ),
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Where to put the generated data and model (default: a temp folder)."),
    ] = None,
    engine: EngineName = "fastai",
    progress: ShowProgress = None,
) -> None:
    """Generate stand-in ASL data, train a small model offline, and write its report."""
    from asl_eval.demo import run_demo

    name = engine_name(engine)
    files = _with_progress(
        progress,
        lambda bars: run_demo(
            out=out, work_dir=work_dir, echo=typer.echo, engine=name, progress=bars
        ),
    )
    _echo("report", files.html)
    _echo("open it in a browser", files.html.resolve().as_uri())
    _echo_findings(files.findings)


# Commands whose adapters live with their stage (each module imports only Typer and
# asl_eval.errors at the top, so `asl-eval --help` stays free of torch).
app.command("audit")(audit_command)
app.command("compare")(compare_command)
app.command("stress")(stress_command)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
